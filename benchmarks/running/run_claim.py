"""Claims on cached runs, so that processes sharing a run cache never train one run twice.

Two ``reproduce`` commands started on one cache (one per core, say) divide its runs between
them: a process trains a run only while it holds the run's claim, an exclusive ``flock`` on
a ``.claim`` file beside the run's result. The kernel drops the lock when its process ends,
however it ends, so a killed process leaves no stale claim: the next process to ask takes
the run over and continues it from its checkpoint.

``flock`` needs a POSIX system; elsewhere every claim is granted (one process per cache).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["claim_path", "run_claim"]

log = logging.getLogger(__name__)


def claim_path(result_path: Path) -> Path:
    """The claim file of the run whose result is kept at ``result_path``."""
    return result_path.with_suffix(".claim")


@contextmanager
def run_claim(result_path: Path) -> Iterator[bool]:
    """Try to claim the run whose result is kept at ``result_path``, without waiting.

    Yields True while this process holds the claim (released on exit), False when another
    process holds it. The claim file is removed once the result exists; a holder that failed
    leaves it, since removing a file another process may have opened would let a third one
    claim the run beside it.
    """
    if fcntl is None:
        yield True
        return
    path = claim_path(result_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        log.debug("claimed %s", path.name)
        try:
            yield True
        finally:
            if result_path.exists():
                path.unlink(missing_ok=True)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
