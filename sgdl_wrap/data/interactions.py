"""A validated, immutable container for implicit feedback.

Row ``k`` of an :class:`Interactions` is the observed positive ``(users[k], items[k])``.
Rows are the unit of bookkeeping everywhere in the library (memorization history, weights,
diagnostics), so their order is fixed at construction and never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

__all__ = ["Interactions", "UserCSR"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class UserCSR:
    """Per-user view of an :class:`Interactions`, built once.

    ``items[indptr[u]:indptr[u + 1]]`` are user ``u``'s items in increasing order and
    ``rows[indptr[u]:indptr[u + 1]]`` the interaction rows they come from.

    Shapes: ``indptr`` ``[n_users + 1]``, ``items`` ``[N]``, ``rows`` ``[N]``.
    """

    indptr: IntArray
    items: IntArray
    rows: IntArray

    def counts(self) -> IntArray:
        """Number of items per user, ``[n_users]``."""
        return np.diff(self.indptr)

    def slots(self, users: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """Positions in ``items``/``rows`` of all entries of the given users, without a loop.

        Args:
            users: ``[b]`` user ids.

        Returns:
            ``(position, index)``, both ``[nnz]``: entry ``index[j]`` belongs to
            ``users[position[j]]``.
        """
        users_array = np.asarray(users, dtype=np.int64)
        starts = self.indptr[users_array]
        counts = self.indptr[users_array + 1] - starts
        position = np.repeat(np.arange(users_array.size, dtype=np.int64), counts)
        first_of_run = np.repeat(np.cumsum(counts) - counts, counts)
        offsets = np.arange(position.size, dtype=np.int64) - first_of_run
        return position, np.repeat(starts, counts) + offsets

    def gather(self, users: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """All items of the given users: ``(position, items)``, see :meth:`slots`."""
        position, index = self.slots(users)
        return position, self.items[index]


def _as_id_array(name: str, values: npt.ArrayLike) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer ids, got dtype {array.dtype}")
    return array.astype(np.int64, copy=True)


def _check_range(name: str, ids: IntArray, size: int) -> None:
    if ids.size == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise ValueError(f"{name} id {bad} is out of range [0, {size})")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Interactions:
    """Observed positive interactions in an id space of ``n_users`` x ``n_items``.

    Attributes:
        users: ``[N]`` int64 user ids in ``[0, n_users)``.
        items: ``[N]`` int64 item ids in ``[0, n_items)``.
        n_users: size of the user id space.
        n_items: size of the item id space.
        noisy: optional ``[N]`` bool ground-truth flags (True = false positive). Only
            diagnostics and benchmarks read them; training never does.

    Each ``(user, item)`` pair may appear once. Arrays are copied and made read-only, so an
    instance can be shared freely.
    """

    users: IntArray
    items: IntArray
    n_users: int
    n_items: int
    noisy: BoolArray | None = None

    def __init__(
        self,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        n_users: int,
        n_items: int,
        noisy: npt.ArrayLike | None = None,
    ) -> None:
        users_array = _as_id_array("users", users)
        items_array = _as_id_array("items", items)
        if users_array.shape != items_array.shape:
            raise ValueError(
                f"users and items must have equal lengths, got {users_array.size} and "
                f"{items_array.size}"
            )
        for name, size in (("n_users", n_users), ("n_items", n_items)):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        _check_range("user", users_array, int(n_users))
        _check_range("item", items_array, int(n_items))
        noisy_array: BoolArray | None = None
        if noisy is not None:
            noisy_array = np.asarray(noisy)
            if noisy_array.shape != users_array.shape:
                raise ValueError(
                    f"noisy flags must have shape {users_array.shape}, got {noisy_array.shape}"
                )
            if noisy_array.dtype != np.bool_:
                raise TypeError(f"noisy flags must be bool, got dtype {noisy_array.dtype}")
            noisy_array = _read_only(noisy_array.copy())
        object.__setattr__(self, "users", _read_only(users_array))
        object.__setattr__(self, "items", _read_only(items_array))
        object.__setattr__(self, "n_users", int(n_users))
        object.__setattr__(self, "n_items", int(n_items))
        object.__setattr__(self, "noisy", noisy_array)
        keys = self._sorted_keys
        if keys.size > 1:
            repeated = np.flatnonzero(keys[1:] == keys[:-1])
            if repeated.size:
                key = int(keys[repeated[0]])
                raise ValueError(
                    f"duplicate interaction (user {key // self.n_items}, item "
                    f"{key % self.n_items}); each pair may appear once"
                )

    def __len__(self) -> int:
        return int(self.users.size)

    def __repr__(self) -> str:
        noisy = "" if self.noisy is None else f", noisy={int(self.noisy.sum())}"
        return (
            f"Interactions(n={len(self)}, n_users={self.n_users}, n_items={self.n_items}{noisy})"
        )

    @cached_property
    def _order(self) -> IntArray:
        """Row permutation that sorts rows by (user, item)."""
        return _read_only(np.lexsort((self.items, self.users)).astype(np.int64))

    @cached_property
    def _sorted_keys(self) -> IntArray:
        keys = self.users * np.int64(self.n_items) + self.items
        return _read_only(keys[self._order])

    @cached_property
    def csr(self) -> UserCSR:
        """The per-user CSR view (computed once)."""
        order = self._order
        counts = np.bincount(self.users, minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return UserCSR(
            indptr=_read_only(indptr),
            items=_read_only(self.items[order]),
            rows=_read_only(order.copy()),
        )

    @cached_property
    def item_counts(self) -> IntArray:
        """Interactions per item (popularity), ``[n_items]``."""
        return _read_only(np.bincount(self.items, minlength=self.n_items).astype(np.int64))

    @cached_property
    def user_counts(self) -> IntArray:
        """Interactions per user, ``[n_users]``."""
        return _read_only(np.bincount(self.users, minlength=self.n_users).astype(np.int64))

    def contains(self, users: npt.ArrayLike, items: npt.ArrayLike) -> BoolArray:
        """Whether each ``(users[k], items[k])`` is an interaction; any matching shapes."""
        users_array = np.asarray(users, dtype=np.int64)
        items_array = np.asarray(items, dtype=np.int64)
        keys = users_array * np.int64(self.n_items) + items_array
        sorted_keys = self._sorted_keys
        if sorted_keys.size == 0:
            return np.zeros(keys.shape, dtype=bool)
        position = np.searchsorted(sorted_keys, keys)
        position = np.minimum(position, sorted_keys.size - 1)
        return sorted_keys[position] == keys

    def select(self, rows: npt.ArrayLike) -> Interactions:
        """A new container with the given rows (int indices or a bool mask), same id space."""
        index = np.asarray(rows)
        return Interactions(
            self.users[index],
            self.items[index],
            self.n_users,
            self.n_items,
            None if self.noisy is None else self.noisy[index],
        )

    def clean(self) -> Interactions:
        """The rows not flagged noisy (all rows when there are no flags)."""
        if self.noisy is None:
            return self
        return self.select(~self.noisy)

    def union(self, other: Interactions) -> Interactions:
        """Rows of ``self`` followed by rows of ``other``; the pairs must be disjoint."""
        if (self.n_users, self.n_items) != (other.n_users, other.n_items):
            raise ValueError(
                f"id spaces differ: {self.n_users}x{self.n_items} vs "
                f"{other.n_users}x{other.n_items}"
            )
        noisy = None
        if self.noisy is not None and other.noisy is not None:
            noisy = np.concatenate([self.noisy, other.noisy])
        return Interactions(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            self.n_users,
            self.n_items,
            noisy,
        )
