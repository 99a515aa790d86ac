"""Where a dataset file comes from and how it is found: offline dir, then cache, then network.

Lookup order for one file:

1. the offline data directory (``data_dir``, default ``$SGDL_DATA_DIR``), at the file's
   relative path (the layout of the shared data folder, e.g. ``ml100k/ml100k.train.rating``);
2. the cache (``cache_dir``, default ``$SGDL_CACHE_DIR`` or ``~/.cache/sgdl_wrap``), same
   relative path;
3. a download from the pinned URL into the cache, when ``download`` is true.

A file found in either place is re-hashed on every use. That costs a few milliseconds even
for the largest file here (Yelp's ~20 MB train file) and, unlike a "verified" marker, can
never vouch for content that changed after it was checked. A mismatch is an error, never a
silent fall-through to another copy: a corrupt file should be looked at, not hidden.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from sgdl_wrap.data.datasets.checksum import Checksum, ChecksumError
from sgdl_wrap.data.datasets.download import DownloadError, extract_member, fetch

__all__ = ["DATA_DIR_ENV", "CACHE_DIR_ENV", "FileSpec", "default_cache_dir", "resolve_file"]

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "SGDL_DATA_DIR"
CACHE_DIR_ENV = "SGDL_CACHE_DIR"


@dataclass(frozen=True)
class FileSpec:
    """One dataset file and its pinned origin.

    Attributes:
        path: relative path (POSIX) under the offline data dir and the cache.
        url: where to download it: the file itself, or a zip archive when ``member`` is set.
        checksum: the file's expected digest (of the extracted member for archives).
        member: name of the file inside the zip at ``url``; ``None`` for plain files.
    """

    path: str
    url: str
    checksum: Checksum
    member: str | None = None

    def __post_init__(self) -> None:
        relative = PurePosixPath(self.path)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"file path must be relative and inside the data dir: {self.path!r}")

    @property
    def archive_path(self) -> str:
        """Cache-relative path where the archive at ``url`` is kept (next to the member)."""
        name = PurePosixPath(urlparse(self.url).path).name
        return str(PurePosixPath(self.path).parent / name)

    def describe_source(self) -> str:
        """The origin in words, for error messages."""
        inside = f" (member {self.member} of the zip)" if self.member else ""
        return f"{self.url}{inside}, {self.checksum}"


def default_cache_dir() -> Path:
    """``$SGDL_CACHE_DIR``, else ``~/.cache/sgdl_wrap``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sgdl_wrap"


def _default_data_dir() -> Path | None:
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured).expanduser() if configured else None


def resolve_file(
    candidates: Sequence[FileSpec],
    *,
    data_dir: Path | str | None = None,
    cache_dir: Path | str | None = None,
    download: bool = True,
) -> Path:
    """The local, verified path of a dataset file.

    Args:
        candidates: interchangeable versions of the file, preferred first. Every local place
            is searched for each of them before anything is downloaded.
        data_dir: offline data directory; ``None`` reads ``$SGDL_DATA_DIR`` (unset: skipped).
        cache_dir: download cache; ``None`` means :func:`default_cache_dir`.
        download: whether a missing file may be downloaded into the cache.

    Raises:
        FileNotFoundError: no candidate is available; the message names each file, every
            place looked in, and the source URL.
        ChecksumError: a file was found (or downloaded) with the wrong content.
    """
    if not candidates:
        raise ValueError("resolve_file needs at least one FileSpec")
    offline = Path(data_dir).expanduser() if data_dir is not None else _default_data_dir()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    for root in (offline, cache):
        if root is None:
            continue
        for spec in candidates:
            local = root / spec.path
            if local.is_file():
                spec.checksum.verify(local)
                logger.debug("using %s", local)
                return local

    failures: list[DownloadError] = []
    if download:
        for spec in candidates:
            try:
                return _download(spec, cache)
            except DownloadError as error:
                failures.append(error)
    message = _missing_message(candidates, offline, cache, download, failures)
    raise FileNotFoundError(message) from (failures[-1] if failures else None)


def _download(spec: FileSpec, cache: Path) -> Path:
    dest = cache / spec.path
    if spec.member is None:
        return fetch(spec.url, dest, spec.checksum)
    archive = cache / spec.archive_path
    if not archive.is_file():
        # The archive has no pinned digest of its own; its member's checksum (checked on
        # extraction) and the zip CRCs cover its content.
        fetch(spec.url, archive, None)
    try:
        return extract_member(archive, spec.member, dest, spec.checksum)
    except (ChecksumError, DownloadError):
        # A bad archive would fail the same way forever: drop it so a retry re-downloads.
        archive.unlink(missing_ok=True)
        raise


def _missing_message(
    candidates: Sequence[FileSpec],
    offline: Path | None,
    cache: Path,
    download: bool,
    failures: Sequence[DownloadError],
) -> str:
    names = " or ".join(spec.path for spec in candidates)
    lines = [f"dataset file {names} not found. Looked in:"]
    if offline is None:
        lines.append(f"  - offline data dir: not set (pass data_dir= or set {DATA_DIR_ENV})")
    else:
        lines.extend(
            f"  - offline data dir: {offline / spec.path} (missing)" for spec in candidates
        )
    lines.extend(f"  - cache: {cache / spec.path} (missing)" for spec in candidates)
    if not download:
        lines.append("  - download: disabled (download=False)")
    lines.extend(f"  - download failed: {failure}" for failure in failures)
    lines.append("Source:")
    lines.extend(f"  - {spec.path}: {spec.describe_source()}" for spec in candidates)
    return "\n".join(lines)
