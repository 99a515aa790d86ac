"""Which training interactions a model has memorized: a bit-packed ring buffer of the last
``h`` epochs' memorization marks, indexed by training row (SGDL eq. 1).

Memory is ``h * ceil(N / 8)`` bytes: no users x items structure.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["MemoryBank", "ThresholdRule"]

ThresholdRule = Literal["paper", "authors"]


class MemoryBank:
    """Ring buffer of memorization marks.

    Args:
        n_rows: number of training interactions ``N``.
        history: ``h``, the number of recent epochs kept.
        rule: ``"paper"``: memorized when the mean over the filled slots exceeds 0.5;
            ``"authors"``: when the count of marks is ``>= h / 2``, unfilled slots counting
            as 0 (so nothing is memorized before epoch ``ceil(h / 2)``).
    """

    def __init__(self, n_rows: int, history: int, rule: ThresholdRule = "paper") -> None:
        if n_rows <= 0:
            raise ValueError(f"n_rows must be positive, got {n_rows}")
        if history <= 0:
            raise ValueError(f"history length h must be positive, got {history}")
        if rule not in ("paper", "authors"):
            raise ValueError(f"unknown threshold rule {rule!r}; use 'paper' or 'authors'")
        self.n_rows, self.history, self.rule = n_rows, history, rule
        self._bits = np.zeros((history, -(-n_rows // 8)), dtype=np.uint8)
        self._filled = 0
        self._next = 0

    @property
    def filled(self) -> int:
        """Number of history slots holding an epoch (at most ``h``)."""
        return self._filled

    def record(self, marks: npt.ArrayLike) -> None:
        """Store one epoch's marks, ``[N]`` bool, overwriting the oldest slot when full."""
        array = np.asarray(marks)
        if array.shape != (self.n_rows,) or array.dtype != np.bool_:
            raise ValueError(
                f"marks must be a bool vector of shape ({self.n_rows},), got {array.dtype} "
                f"{array.shape}"
            )
        self._bits[self._next] = np.packbits(array)
        self._next = (self._next + 1) % self.history
        self._filled = min(self._filled + 1, self.history)

    def counts(self) -> npt.NDArray[np.int64]:
        """``[N]`` number of marks over the stored epochs."""
        total = np.zeros(self.n_rows, dtype=np.int64)
        for slot in range(self._filled):
            total += np.unpackbits(self._bits[slot], count=self.n_rows)
        return total

    def memorized(self) -> npt.NDArray[np.bool_]:
        """``[N]`` bool: memorized under the bank's threshold rule."""
        counts = self.counts()
        if self.rule == "authors":
            return counts >= self.history / 2
        if self._filled == 0:
            return np.zeros(self.n_rows, dtype=bool)
        return counts / self._filled > 0.5

    def state_dict(self) -> dict[str, Any]:
        return {
            "bits": self._bits.copy(),
            "filled": self._filled,
            "next": self._next,
            "history": self.history,
            "rule": self.rule,
            "n_rows": self.n_rows,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = (self.n_rows, self.history, self.rule)
        found = (state["n_rows"], state["history"], state["rule"])
        if found != expected:
            raise ValueError(
                f"memory bank state is for (n_rows, h, rule) = {found}, this bank is {expected}"
            )
        self._bits = np.array(state["bits"], dtype=np.uint8).copy()
        self._filled = int(state["filled"])
        self._next = int(state["next"])
