"""Executors: where the runs of a grid execute (in process, worker processes, a Ray cluster)."""

from __future__ import annotations

from lnmbench.executors import local, ray_executor  # noqa: F401  (register executors)
from lnmbench.executors.base import (
    EXECUTORS,
    Executor,
    ExecutorEvent,
    ExecutorOptions,
    Notice,
    RunFinished,
    RunOutcome,
    RunStarted,
    RunTask,
    WorkFunction,
    create_executor,
    lost_outcome,
)

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorEvent",
    "ExecutorOptions",
    "Notice",
    "RunFinished",
    "RunOutcome",
    "RunStarted",
    "RunTask",
    "WorkFunction",
    "create_executor",
    "lost_outcome",
]
