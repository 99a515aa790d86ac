"""The :class:`Dataset` triple: train, validation and test interactions in one id space."""

from __future__ import annotations

from dataclasses import dataclass

from sgdl_wrap.data.interactions import Interactions

__all__ = ["Dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A benchmark split.

    Attributes:
        name: registry name (or a descriptive name for generated data).
        train: training interactions; ``noisy`` holds ground-truth flags when known.
        valid: validation interactions, flags kept when known (noisy ones included, as in
            the reference data).
        test: clean interactions only; ``noisy`` is ``None`` or all ``False``.

    All three share ``n_users`` x ``n_items``.
    """

    name: str
    train: Interactions
    valid: Interactions
    test: Interactions

    def __post_init__(self) -> None:
        spaces = {
            split: (part.n_users, part.n_items)
            for split, part in (("train", self.train), ("valid", self.valid), ("test", self.test))
        }
        if len(set(spaces.values())) != 1:
            raise ValueError(
                f"{self.name}: splits use different id spaces (users x items): {spaces}"
            )
        if self.test.noisy is not None and self.test.noisy.any():
            raise ValueError(
                f"{self.name}: the test split must be clean, but {int(self.test.noisy.sum())} "
                "test interactions are flagged noisy"
            )

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def summary(self) -> dict[str, object]:
        """Sizes and noise rates, e.g. for logging; rates are ``None`` when flags are unknown."""

        def noise_rate(part: Interactions) -> float | None:
            if part.noisy is None or len(part) == 0:
                return None
            return float(part.noisy.mean())

        total = len(self.train) + len(self.valid) + len(self.test)
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "interactions": total,
            "density": total / (self.n_users * self.n_items),
            "users_in_train": int((self.train.user_counts > 0).sum()),
            "items_in_train": int((self.train.item_counts > 0).sum()),
            "train_noise_rate": noise_rate(self.train),
            "valid_noise_rate": noise_rate(self.valid),
        }
