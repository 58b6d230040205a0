"""The executor interface, its registry, and the worker-side function every executor calls.

An executor takes run tasks (resolved configs with their folder names) and yields events as runs
start and finish. Runs write straight into the shared result root; the executor only schedules.
The worker side (:func:`execute_run`) wraps ``run_one``: an exception inside a run is recorded as
``failed.txt`` (with the traceback) in the run's folder and reported, never raised, so the rest of
the grid goes on.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from lnmbench.engine.run_folder import RunFolder, atomic_write_text
from lnmbench.errors import ConfigError
from lnmbench.registry import Registry


@dataclass(frozen=True)
class RunTask:
    """One run to execute: its folder name, its resolved config (JSON dict) and result root."""

    name: str
    config: dict[str, Any]
    out_root: str
    cost: float = 0.0  # estimated image-passes (for the ETA)


@dataclass(frozen=True)
class RunOutcome:
    """What a worker reports back: ``done``, ``failed`` (traceback in failed.txt) or ``busy``
    (another process holds the run's lock: a second driver on the same result root)."""

    name: str
    status: Literal["done", "failed", "busy"]
    wall_s: float
    headline: float | None = None
    error: str | None = None
    worker: str = ""


@dataclass(frozen=True)
class RunStarted:
    task: RunTask


@dataclass(frozen=True)
class RunFinished:
    task: RunTask
    outcome: RunOutcome


@dataclass(frozen=True)
class Notice:
    """Something the driver should show (a crashed worker pool, a resource warning)."""

    text: str


ExecutorEvent = RunStarted | RunFinished | Notice


DEFAULT_MAX_RETRIES = 2


@dataclass
class ExecutorOptions:
    """Options of all executors; each executor accepts only its own (see ``accepts``)."""

    workers: int | None = None
    devices: list[str] | None = None
    threads_per_worker: int | None = None
    address: str | None = None
    gpus_per_run: float | None = None
    cpus_per_run: float | None = None
    max_retries: int | None = None

    def given(self) -> set[str]:
        return {f.name for f in fields(self) if getattr(self, f.name) is not None}

    def retries(self) -> int:
        """Re-submissions of a run whose worker died: ``max_retries``, default 2."""
        return DEFAULT_MAX_RETRIES if self.max_retries is None else self.max_retries


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Executor(ABC):
    """Runs tasks; ``run`` yields :data:`ExecutorEvent` items from the driver's thread."""

    name: ClassVar[str]
    accepts: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: ExecutorOptions) -> None:
        stray = sorted(options.given() - self.accepts)
        if stray:
            flags = ", ".join(option_flag(s) for s in stray)
            own = ", ".join(option_flag(s) for s in sorted(self.accepts))
            raise ConfigError(
                f"{flags} not used by the {self.name} executor; it takes: {own or 'no options'}"
            )
        self.options = options

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many runs execute at once (for the ETA)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the driver's header."""

    @abstractmethod
    def run(self, tasks: Sequence[RunTask]) -> Iterator[ExecutorEvent]:
        """Execute every task; yield RunStarted / RunFinished (one per task) and Notice events.

        Closing the iterator early (Ctrl-C in the driver) stops the workers; finished runs stay
        finished and interrupted ones resume from their checkpoints next time.
        """


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def register_executor(name: str):
    """Class decorator: register an executor under ``name``."""

    def deco(cls: type[Executor]) -> type[Executor]:
        cls.name = name
        EXECUTORS.register(name)(cls)
        return cls

    return deco


def create_executor(name: str, options: ExecutorOptions | None = None) -> Executor:
    """The executor registered as ``name``, configured with ``options`` (validated)."""
    return EXECUTORS.get(name)(options or ExecutorOptions())


# --------------------------------------------------------------------------- worker side


def worker_label(device: str | None = None) -> str:
    label = f"{socket.gethostname()}:{os.getpid()}"
    return f"{label} ({device})" if device else label


def record_failure(out_root: str | Path, task: RunTask, text: str, worker: str) -> None:
    """Write ``failed.txt`` (header + traceback) into the run folder, and its config if absent."""
    folder = RunFolder(Path(out_root) / task.name)
    folder.path.mkdir(parents=True, exist_ok=True)
    if not folder.config.exists():
        folder.write_config(task.config)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    header = f"run {task.name} failed at {stamp} on {worker}\n\n"
    atomic_write_text(folder.failed, header + text.rstrip() + "\n")


def execute_run(task: RunTask, device: str | None = None) -> RunOutcome:
    """Train one task with ``run_one`` (skip if done, resume if interrupted) while holding the run
    folder's lock; never raises for an exception inside the run: it is recorded in ``failed.txt``
    and returned as ``failed``.

    ``device`` (e.g. ``cuda:1``) replaces the config's device; it is not part of the run hash.
    """
    from lnmbench.experiment.store import run_lock

    t0 = time.perf_counter()
    worker = worker_label(device)
    with run_lock(Path(task.out_root) / task.name) as mine:
        if not mine:
            return RunOutcome(
                task.name, "busy", 0.0, error="another process is running it", worker=worker
            )
        return _execute_locked(task, device, worker, t0)


def _execute_locked(task: RunTask, device: str | None, worker: str, t0: float) -> RunOutcome:
    from lnmbench.experiment import run as run_module
    from lnmbench.experiment.config import RunConfig
    from lnmbench.experiment.store import failure_message

    try:
        cfg = RunConfig.model_validate(task.config)
        if device is not None:
            cfg = cfg.model_copy(update={"device": device})
        if cfg.run_name() != task.name:
            raise ConfigError(
                f"the worker computes run name {cfg.run_name()} for task {task.name}: driver "
                "and worker run different lnmbench versions"
            )
        summary = run_module.run_one(cfg, task.out_root)
    except Exception:
        text = traceback.format_exc()
        record_failure(task.out_root, task, text, worker)
        wall = time.perf_counter() - t0
        return RunOutcome(task.name, "failed", wall, error=failure_message(text), worker=worker)
    return RunOutcome(
        task.name,
        "done",
        time.perf_counter() - t0,
        headline=float(summary["headline"]["value"]),
        worker=worker,
    )


def crash_outcome(task: RunTask, message: str, worker: str = "") -> RunOutcome:
    """Record a run whose worker died (retries exhausted) as failed, from the driver side."""
    record_failure(task.out_root, task, message, worker or "(worker lost)")
    return RunOutcome(task.name, "failed", 0.0, error=message.splitlines()[0], worker=worker)
