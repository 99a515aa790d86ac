"""Atomic, verified downloads and archive extraction.

Every file is written to a temporary file next to its destination and moved into place with
:func:`os.replace` only once it is complete and its checksum matches, so a destination path
either does not exist or holds the verified content: an interrupted or corrupted transfer
never leaves a partial file behind for a later run to trust.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sgdl_wrap.data.datasets.checksum import Checksum

__all__ = ["DownloadError", "extract_member", "fetch"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class DownloadError(OSError):
    """A download or extraction could not be completed (network, truncation, bad archive)."""


@contextmanager
def _atomic_destination(dest: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """Yield a temp file beside ``dest``; it replaces ``dest`` only if the block succeeds.

    The temp file lives in the destination directory so that the final ``os.replace`` is a
    rename on one filesystem, which is atomic.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, temp
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def fetch(url: str, dest: Path | str, checksum: Checksum | None, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically and verify it.

    Args:
        url: any URL urllib opens (``https://``, ``file://``).
        dest: the final path; its directory is created if needed.
        checksum: the expected digest; ``None`` only for containers (archives) whose
            members are verified after extraction.
        timeout: socket timeout in seconds.

    Returns:
        ``dest``.

    Raises:
        DownloadError: the transfer failed or delivered fewer/more bytes than announced.
        ChecksumError: the content does not match ``checksum``.
        Nothing is left at ``dest`` (nor a temp file) when an error is raised.
    """
    dest = Path(dest)
    logger.info("downloading %s to %s", url, dest)
    with _atomic_destination(dest) as (handle, temp):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                announced = response.headers.get("Content-Length")
                written = 0
                while block := response.read(_CHUNK):
                    handle.write(block)
                    written += len(block)
        except (OSError, http.client.HTTPException) as error:
            raise DownloadError(f"downloading {url} to {dest} failed: {error}") from error
        if announced is not None and written != int(announced):
            raise DownloadError(
                f"downloading {url} to {dest} is incomplete: got {written} bytes, "
                f"the server announced {announced}"
            )
        handle.flush()
        if checksum is not None:
            checksum.verify(temp, label=dest)
    return dest


def extract_member(archive: Path | str, member: str, dest: Path | str, checksum: Checksum) -> Path:
    """Extract ``member`` of the zip ``archive`` to ``dest`` atomically and verify it.

    Raises:
        DownloadError: ``archive`` is not a readable zip or lacks ``member``.
        ChecksumError: the extracted content does not match ``checksum``.
    """
    archive, dest = Path(archive), Path(dest)
    with _atomic_destination(dest) as (handle, temp):
        try:
            with zipfile.ZipFile(archive) as bundle, bundle.open(member) as source:
                shutil.copyfileobj(source, handle, _CHUNK)
        except KeyError as error:
            raise DownloadError(f"{archive} has no member {member!r}") from error
        except zipfile.BadZipFile as error:
            raise DownloadError(f"{archive} is not a valid zip archive: {error}") from error
        handle.flush()
        checksum.verify(temp, label=f"{archive}:{member}")
    return dest
