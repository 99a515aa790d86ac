"""Saving an unfinished run after each epoch, so that an interrupted run continues there.

A checkpoint pickles the run's whole state in one dump (the trainer with its model,
optimizers, samplers and generators, the model selector, the history), so references shared
inside it (an optimizer's parameters are the model's) survive. The dataset is not stored: the
pickle refers to it and its three splits by name, and loading binds those names to the
dataset the resumed run was given.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import IO, Any

from sgdl_wrap.benchmarks.reports.reporting import atomic_write
from sgdl_wrap.data.datasets import Dataset
from sgdl_wrap.legacy import moved_module

__all__ = ["load_checkpoint", "save_checkpoint"]


def _shared(data: Dataset) -> dict[str, Any]:
    return {"dataset": data, "train": data.train, "valid": data.valid, "test": data.test}


class _Pickler(pickle.Pickler):
    def __init__(self, file: IO[bytes], data: Dataset) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = {id(obj): name for name, obj in _shared(data).items()}

    def persistent_id(self, obj: Any) -> str | None:
        return self._names.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], data: Dataset) -> None:
        super().__init__(file)
        self._objects = _shared(data)

    def persistent_load(self, pid: Any) -> Any:
        if pid not in self._objects:
            raise pickle.UnpicklingError(f"checkpoint refers to unknown dataset part {pid!r}")
        return self._objects[pid]

    def find_class(self, module: str, name: str) -> Any:
        # A checkpoint written before a module moved names its old place.
        return super().find_class(moved_module(module), name)


def save_checkpoint(path: Path, state: Any, data: Dataset) -> None:
    """Write ``state`` to ``path`` atomically (a reader sees the old file or the new one)."""
    buffer = io.BytesIO()
    _Pickler(buffer, data).dump(state)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path: Path, data: Dataset) -> Any:
    """The state saved at ``path``, its dataset references bound to ``data``.

    Only load checkpoints this package wrote: unpickling runs code named in the file.
    """
    with path.open("rb") as file:
        return _Unpickler(file, data).load()
