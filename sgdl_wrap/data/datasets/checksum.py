"""Pinned file checksums: sha256, or the git blob id that GitHub's trees record.

The dataset files come from git repositories, and for some of them only the git blob id is
published (``git hash-object FILE``: sha1 of ``b"blob <size>\\0" + content``), so both
kinds are first-class.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Checksum", "ChecksumError"]

ChecksumKind = Literal["sha256", "git-blob"]

_HEX_LENGTH: dict[str, int] = {"sha256": 64, "git-blob": 40}
_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's content does not match its pinned checksum."""

    def __init__(self, path: Path | str, expected: Checksum, actual: str) -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"checksum mismatch for {self.path}: expected {expected.kind} {expected.value}, "
            f"got {actual}"
        )


@dataclass(frozen=True)
class Checksum:
    """An expected digest of a file.

    Attributes:
        kind: ``"sha256"`` or ``"git-blob"`` (sha1 of the git blob header plus content).
        value: lowercase hex digest.
    """

    kind: ChecksumKind
    value: str

    def __post_init__(self) -> None:
        if self.kind not in _HEX_LENGTH:
            raise ValueError(f"unknown checksum kind {self.kind!r}; use 'sha256' or 'git-blob'")
        length = _HEX_LENGTH[self.kind]
        if len(self.value) != length or not set(self.value) <= set(string.hexdigits.lower()):
            raise ValueError(
                f"{self.kind} checksum must be {length} lowercase hex digits, got {self.value!r}"
            )

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"

    def of_file(self, path: Path | str) -> str:
        """The digest of ``path`` computed the way this checksum is defined."""
        path = Path(path)
        if self.kind == "sha256":
            digest = hashlib.sha256()
        else:
            digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
        return digest.hexdigest()

    def verify(self, path: Path | str, *, label: Path | str | None = None) -> None:
        """Raise :class:`ChecksumError` unless ``path`` matches this checksum.

        ``label`` is the name the error reports, for content checked in a temp file before it
        is moved to its final name.
        """
        actual = self.of_file(path)
        if actual != self.value:
            raise ChecksumError(path if label is None else label, self, actual)
