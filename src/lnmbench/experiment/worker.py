"""The worker side of a grid: train one task under its run lock, never raise.

Every executor calls :func:`execute_run` (handed to ``Executor.run`` by the grid runner) in its
worker, wherever that runs (this process, a spawned process, a Ray task). An exception inside a
run is recorded as ``failed.txt`` (with the traceback) in the run's folder and returned as a
``failed`` outcome, so the rest of the grid goes on. A run whose worker process died comes back
from the executor as ``lost``; :func:`record_lost` turns it into a recorded failure.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from lnmbench.engine.run_folder import RunFolder
from lnmbench.engine.run_status import failure_message, run_lock, worker_label
from lnmbench.errors import ConfigError
from lnmbench.executors.base import RunOutcome, RunTask
from lnmbench.experiment import run as run_module
from lnmbench.experiment.config import RunConfig


def record_failure(out_root: str | Path, task: RunTask, text: str, worker: str) -> None:
    """Write ``failed.txt`` (header + traceback) into the run folder, and its config if absent."""
    folder = RunFolder(Path(out_root) / task.name)
    folder.path.mkdir(parents=True, exist_ok=True)
    if not folder.config.exists():
        folder.write_config(task.config)
    folder.write_failure(text, worker)


def execute_run(task: RunTask, device: str | None = None) -> RunOutcome:
    """Train one task with ``run_one`` (skip if done, resume if interrupted) while holding the run
    folder's lock; never raises for an exception inside the run: it is recorded in ``failed.txt``
    and returned as ``failed``.

    ``device`` (e.g. ``cuda:1``) replaces the config's device; it is not part of the run hash.
    """
    t0 = time.perf_counter()
    worker = worker_label(device)
    with run_lock(Path(task.out_root) / task.name, holder=worker) as mine:
        if not mine:
            return RunOutcome(
                task.name, "busy", 0.0, error="another process is running it", worker=worker
            )
        return _execute_locked(task, device, worker, t0)


def _execute_locked(task: RunTask, device: str | None, worker: str, t0: float) -> RunOutcome:
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


def record_lost(task: RunTask, outcome: RunOutcome) -> RunOutcome:
    """A run whose worker died (retries exhausted): record it as failed, from the driver side."""
    message = outcome.error or "the worker process running this run was lost"
    record_failure(task.out_root, task, message, outcome.worker or "(worker lost)")
    return RunOutcome(
        task.name, "failed", outcome.wall_s, error=message.splitlines()[0], worker=outcome.worker
    )
