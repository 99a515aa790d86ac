"""Time one LightGCN propagation (forward + backward) on the ML-100K training graph.

``python -m sgdl_wrap.benchmarks.studies.propagation [--data-dir DIR] [--threads 2] [--device cpu]``

Compares :func:`sgdl_wrap.adapters.graph.sparse_matmul` (CSR, backward with the stored transpose)
with ``torch.sparse.mm`` on COO and on CSR with their built-in backward, and with a dense product.
Each method runs ``--layers`` products and the layer mean, then backpropagates a fixed random
upstream gradient. Methods take turns (round robin) so that load from other processes hits them
alike; reported times are medians over ``--repeats`` rounds after ``--warmup`` rounds. Writes
``benchmarks/results/propagation_ml100k[_<device>].{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sgdl_wrap.adapters.graph import NormalizedAdjacency
from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.running.data import default_data_dir
from sgdl_wrap.data.datasets import load_dataset

Propagation = Callable[[Tensor], Tensor]

REFERENCE = "torch.sparse.mm, COO"
OURS = "sparse_matmul (ours)"
def _layer_mean(product: Callable[[Tensor], Tensor], embeddings: Tensor, layers: int) -> Tensor:
    """LightGCN's ``(E + A E + ... + A^layers E) / (layers + 1)``, ``[N, d]``."""
    layer, total = embeddings, embeddings
    for _ in range(layers):
        layer = product(layer)
        total = total + layer
    return total / (layers + 1)


def _propagations(
    adjacency: NormalizedAdjacency, layers: int, edge_dropout: float
) -> dict[str, Propagation]:
    csr = adjacency.matrix().csr
    coo = csr.to_sparse_coo().coalesce()
    dense = csr.to_dense()

    def with_dropout(x: Tensor) -> Tensor:
        # One dropped matrix per propagation, shared by the layers, as NGCF draws it.
        matrix = adjacency.edge_dropout(edge_dropout)
        return _layer_mean(lambda y: adjacency.matmul(y, matrix), x, layers)

    return {
        REFERENCE: lambda x: _layer_mean(lambda y: torch.sparse.mm(coo, y), x, layers),
        "torch.sparse.mm, CSR (built-in backward)": lambda x: _layer_mean(
            lambda y: torch.sparse.mm(csr, y), x, layers
        ),
        "dense matmul": lambda x: _layer_mean(lambda y: dense @ y, x, layers),
        OURS: lambda x: _layer_mean(adjacency.matmul, x, layers),
        f"{OURS} + edge dropout {edge_dropout}": with_dropout,
    }


def _round_robin_ms(
    runs: dict[str, Callable[[], Any]], args: argparse.Namespace
) -> dict[str, list[float]]:
    """Per method, the wall times (ms) of its calls in ``args.repeats`` rounds in which every
    method runs once, after ``args.warmup`` untimed rounds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(args.warmup + args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if round_index >= args.warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def benchmark(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    train = load_dataset("ml100k", data_dir=args.data_dir).train
    adjacency = NormalizedAdjacency(train).to(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    embeddings = torch.randn(adjacency.n_nodes, args.dim, generator=generator).to(args.device)
    upstream = torch.randn(adjacency.n_nodes, args.dim, generator=generator).to(args.device)
    embeddings.requires_grad_()

    def forward_backward(propagate: Propagation) -> tuple[Tensor, Tensor]:
        embeddings.grad = None
        out = propagate(embeddings)
        out.backward(upstream)
        assert embeddings.grad is not None
        return out.detach(), embeddings.grad

    propagations = _propagations(adjacency, args.layers, args.edge_dropout)
    reference_out, reference_grad = (t.clone() for t in forward_backward(propagations[OURS]))
    errors = {}
    for name, propagate in propagations.items():
        if "dropout" not in name:
            out, grad = forward_backward(propagate)
            errors[name] = {
                "max_abs_diff_out": float((out - reference_out).abs().max()),
                "max_abs_diff_grad": float((grad - reference_grad).abs().max()),
            }
    load_before = os.getloadavg()
    both = _round_robin_ms(
        {name: partial(forward_backward, f) for name, f in propagations.items()}, args
    )
    forward = _round_robin_ms(
        {name: partial(f, embeddings) for name, f in propagations.items()}, args
    )
    results = {
        name: {
            "fwd_ms": float(np.median(forward[name])),
            "fwd_bwd_ms": float(np.median(both[name])),
            "fwd_bwd_ms_p25": float(np.percentile(both[name], 25)),
            "fwd_bwd_ms_p75": float(np.percentile(both[name], 75)),
            **errors.get(name, {}),
        }
        for name in propagations
    }
    reference_ms = results[REFERENCE]["fwd_bwd_ms"]
    rows = [
        [name, r["fwd_ms"], r["fwd_bwd_ms"], f"{reference_ms / r['fwd_bwd_ms']:.1f}x"]
        for name, r in results.items()
    ]
    header = ["method", "fwd ms", "fwd+bwd ms", "fwd+bwd speed-up vs COO"]
    payload = {
        "graph": {
            "dataset": "ml100k (authors' train file)",
            "n_users": train.n_users,
            "n_items": train.n_items,
            "n_nodes": adjacency.n_nodes,
            "nnz": int(adjacency.values.numel()),
        },
        "dim": args.dim,
        "layers": args.layers,
        "dtype": str(embeddings.dtype),
        "warmup_rounds": args.warmup,
        "repeats": args.repeats,
        "statistic": "median over interleaved rounds",
        # Other processes on the machine inflate times; this shows how busy it was.
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "methods": results,
    }
    return payload, markdown_table(header, rows)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="offline data directory (default: $SGDL_DATA_DIR or ../shared/data)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--edge-dropout", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    payload, table = benchmark(args)
    suffix = "" if args.device == "cpu" else "_" + args.device.split(":")[0]
    path = write_result(
        f"propagation_ml100k{suffix}",
        payload,
        table,
        seeds=[args.seed],
        wall_time_s=time.perf_counter() - start,
        device=args.device,
        title=f"LightGCN propagation on ML-100K ({args.layers} layers, dim {args.dim}, "
        f"{args.threads} threads, {args.device}): forward + backward",
        results_dir=args.results_dir,
    )
    print(table)
    return path


if __name__ == "__main__":
    main()
