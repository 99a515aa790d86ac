"""LightGCN with SGDL on MovieLens-100K (the authors' split), in a plain training loop with
validation-based model selection:

    python examples/lightgcn_ml100k.py [--data-dir ../shared/data] [--epochs 400]

The defaults are the authors' budget (lr 5e-4, validation every 5 epochs, patience 20,
400 epochs), under which SGDL beats Normal training here
(``benchmarks/results/REPRODUCTION.md``); its benchmark runs took 46 to 72 minutes each,
one torch thread per run, two runs at a time on a 2-core CPU.

Without ``--data-dir`` (or ``SGDL_DATA_DIR``) the data is downloaded into the cache from
its pinned source.
"""

import argparse
import logging
from pathlib import Path

import torch

from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters import BPRLoss, LightGCN
from sgdl_wrap.data.datasets import load_dataset
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.training import ModelSelector


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--patience", type=int, default=20, help="validations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    data = load_dataset("ml100k", data_dir=args.data_dir)
    torch.manual_seed(args.seed)
    model = LightGCN(data.train)  # embedding 64, 3 layers (the paper's settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    sgdl = SGDLWrapper(model, BPRLoss(), train=data.train, config=SGDLConfig(seed=args.seed))
    selector = ModelSelector(metric="recall@5", patience=args.patience)
    switched = False

    for epoch in range(args.epochs):
        model.train()
        for batch in sgdl.batches(128):
            sgdl.step(batch, optimizer)
        report = sgdl.end_epoch()
        print(f"epoch {epoch} {report.phase}: memorized {report.memory_ratio:.3f}, "
              f"estimated clean {report.clean_ratio:.3f}")
        switched = switched or report.switched
        if (epoch + 1) % args.eval_every and epoch + 1 < args.epochs:
            continue
        valid = evaluate(model, data.valid, exclude=[data.train])
        selector.update(epoch, valid, model)
        if switched:
            selector.restart_patience()  # Phase II gets a full patience of its own
            switched = False
        print(f"  valid R@5 {valid['recall@5']:.4f}, best {selector.best_value:.4f}")
        if selector.should_stop and report.phase == "self_guided":
            break

    selector.restore(model)
    test = evaluate(model, data.test, exclude=[data.train, data.valid])
    print(f"best epoch {selector.best_epoch}, test {test}")
    return test


if __name__ == "__main__":
    main()
