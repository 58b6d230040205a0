"""The status of a run folder and the run lock that marks a run as running.

Status: ``done`` (``summary.json``), ``failed`` (``failed.txt`` with the traceback, no summary),
``running`` (a process holds the folder's run lock now), ``interrupted`` (started, no summary, no
failure, nobody running it: the next run resumes it from its checkpoint), ``pending`` (nothing
there yet). The run lock is an advisory ``flock`` on ``.running.lock`` held by the process that
trains the run; the operating system releases it when that process dies, so a killed run is never
mistaken for a running one (without ``fcntl``, i.e. not on POSIX, no lock is taken and unfinished
runs read as interrupted).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from lnmbench.engine.run_folder import RunFolder

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

RunStatus = Literal["done", "failed", "running", "interrupted", "pending"]
STATUSES: tuple[RunStatus, ...] = ("done", "failed", "running", "interrupted", "pending")
LOCK_NAME = ".running.lock"


def worker_label(device: str | None = None) -> str:
    """``host:pid`` of this process, with the device when one is pinned."""
    label = f"{socket.gethostname()}:{os.getpid()}"
    return f"{label} ({device})" if device else label


@contextmanager
def run_lock(folder: str | Path, wait: bool = False, holder: str | None = None) -> Iterator[bool]:
    """Hold the run lock of ``folder`` (created if needed) while the block runs.

    Yields True when this process got it, False when another process holds it (with ``wait``,
    blocks until it is free instead). The holder (``host:pid``) is written into the lock file
    for :func:`lock_holder`.
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield True
        return
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder or worker_label()).encode(), 0)
        yield True
    finally:
        os.close(fd)  # releases the lock


def lock_holder(folder: str | Path) -> str | None:
    """Who holds (or last held) the run lock of ``folder``: ``host:pid``, or None."""
    try:
        text = (Path(folder) / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return text or None


def is_locked(folder: str | Path) -> bool:
    """Whether some process holds the run lock of ``folder`` now."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def run_status(folder: str | Path) -> RunStatus:
    """Status of one run folder (``pending`` when it does not exist or holds nothing yet)."""
    f = RunFolder(folder)
    if f.summary.exists():
        return "done"
    if is_locked(f.path):
        return "running"
    if f.failed.exists():
        return "failed"
    if f.config.exists() or f.metrics.exists() or f.checkpoint.exists():
        return "interrupted"
    return "pending"


def statuses(root: str | Path, names: Iterable[str]) -> dict[str, RunStatus]:
    """Status of each named run folder under ``root``."""
    root = Path(root)
    return {n: run_status(root / n) for n in names}


def failure_message(text: str) -> str:
    """The exception line of a traceback (its last non-empty line)."""
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else "failed (no message)"
