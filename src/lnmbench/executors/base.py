"""The executor interface and its registry.

An executor takes run tasks (resolved configs with their folder names) and a worker function, and
yields events as runs start and finish. It only schedules: the worker function (the experiment
layer's ``execute_run``, handed in by the grid runner) trains the run and writes straight into the
shared result root. A run whose worker process died more often than allowed is reported as
``lost``; the grid runner records it as failed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

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
    (another process holds the run's lock: a second driver on the same result root); or what
    the executor reports for a run whose worker process kept dying: ``lost``."""

    name: str
    status: Literal["done", "failed", "busy", "lost"]
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

# the worker function: trains one task on a device (None: the config's), never raises;
# a module-level function, so that it pickles into worker processes and Ray tasks
WorkFunction = Callable[[RunTask, str | None], RunOutcome]


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
        if options.max_retries is not None and options.max_retries < 0:
            raise ConfigError(f"--max-retries must be >= 0, got {options.max_retries}")
        self.options = options

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many runs execute at once (for the ETA)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the driver's header."""

    @abstractmethod
    def run(self, tasks: Sequence[RunTask], work: WorkFunction) -> Iterator[ExecutorEvent]:
        """Execute every task with ``work``; yield RunStarted / RunFinished (one per task) and
        Notice events.

        Closing the iterator early (Ctrl-C in the driver) stops the workers; finished runs stay
        finished and interrupted ones resume from their checkpoints next time.
        """


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def register_executor(name: str):
    """Class decorator: register an executor under ``name``."""
    return EXECUTORS.register_named(name)


def create_executor(name: str, options: ExecutorOptions | None = None) -> Executor:
    """The executor registered as ``name``, configured with ``options`` (validated)."""
    return EXECUTORS.get(name)(options or ExecutorOptions())


def lost_outcome(task: RunTask, message: str) -> RunOutcome:
    """A run whose worker died and was not retried again (the grid runner records it)."""
    return RunOutcome(task.name, "lost", 0.0, error=message)
