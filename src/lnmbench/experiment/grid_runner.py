"""Run a grid plan through an executor: skip finished runs, resume interrupted ones, skip failed
ones unless asked, and report progress (done / running / failed, ETA) while the runs go on.

The driver holds no state of its own: what is done is read from the run folders, so killing the
driver at any moment loses no finished run, and running it again picks up where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lnmbench.engine.run_status import RunStatus, statuses
from lnmbench.executors.base import Executor, Notice, RunFinished, RunStarted, RunTask
from lnmbench.experiment.grid import GridPlan, PlannedRun
from lnmbench.experiment.grid_cost import CostSettings, measured_images_per_s, throughput_key
from lnmbench.experiment.store import read_run
from lnmbench.experiment.worker import execute_run, record_lost


@dataclass
class GridRunReport:
    """What a grid run did. ``failed`` lists run names whose status is failed at the end."""

    total: int
    already_done: int
    skipped_failed: int
    running_elsewhere: int
    scheduled: int
    done: int = 0
    busy: int = 0
    failed: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    done_at_end: int | None = None  # runs done when the grid ended, by whichever process
    running_at_end: int = 0  # runs another process was still running then


def grid_statuses(plan: GridPlan, out_root: str | Path) -> dict[str, RunStatus]:
    return statuses(out_root, (r.name for r in plan.runs))


def done_wall_times(plan: GridPlan, out_root: str | Path) -> dict[str, float]:
    """Wall time of each finished run of the plan (for the measured throughput)."""
    out = {}
    for run in plan.runs:
        rec = read_run(Path(out_root) / run.name)
        if rec.summary and rec.summary.get("wall_s"):
            out[run.name] = float(rec.summary["wall_s"])
    return out


def tasks_to_run(
    plan: GridPlan, out_root: str | Path, retry_failed: bool
) -> tuple[list[RunTask], dict[str, RunStatus]]:
    """The runs still to do: interrupted ones first (they hold partial work), then pending ones
    in plan order; failed ones only with ``retry_failed``. Runs that another process is running
    now (a second driver on the same root) are left to it."""
    root = str(Path(out_root).resolve())
    status = grid_statuses(plan, out_root)
    order = {"interrupted": 0, "pending": 1, "failed": 2}
    todo = [
        r
        for r in plan.runs
        if status[r.name] in ("interrupted", "pending")
        or (status[r.name] == "failed" and retry_failed)
    ]
    todo.sort(key=lambda r: order[status[r.name]])  # stable: plan order within a status
    tasks = [RunTask(r.name, r.config.model_dump(mode="json"), root, r.cost) for r in todo]
    return tasks, status


class _Eta:
    """Remaining time: remaining image-passes over the throughput (estimated, then observed)."""

    def __init__(self, tasks: Sequence[RunTask], rate: float) -> None:
        self.remaining = sum(t.cost for t in tasks)
        self.rate = rate  # image-passes per second, all workers together
        self.t0 = time.perf_counter()
        self.finished_cost = 0.0

    def finish(self, task: RunTask) -> None:
        self.remaining -= task.cost
        self.finished_cost += task.cost

    def seconds(self) -> float:
        elapsed = time.perf_counter() - self.t0
        if self.finished_cost > 0:
            return max(self.remaining, 0.0) * elapsed / self.finished_cost
        # nothing finished yet: the estimate, less the time already spent on it
        return max(self.remaining / max(self.rate, 1e-9) - elapsed, 0.0)


def format_duration(seconds: float) -> str:
    s = round(seconds)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s"


def initial_rate(
    runs: Sequence[PlannedRun], cost: CostSettings, measured: dict[str, float], workers: int
) -> float:
    """All-worker throughput before any run finishes: measured where known, else configured."""
    if not runs:
        return cost.images_per_s * workers
    rates = [measured.get(throughput_key(r.config), cost.images_per_s) for r in runs]
    return sum(rates) / len(rates) * workers


def run_grid(
    plan: GridPlan,
    out_root: str | Path,
    executor: Executor,
    *,
    retry_failed: bool = False,
    console: Console | None = None,
    show_progress: bool = True,
) -> GridRunReport:
    """Execute the plan's unfinished runs with ``executor``; print one line per finished run."""
    console = console or Console(stderr=True)
    Path(out_root).mkdir(parents=True, exist_ok=True)
    tasks, status = tasks_to_run(plan, out_root, retry_failed)
    report = GridRunReport(
        total=len(plan.runs),
        already_done=sum(s == "done" for s in status.values()),
        skipped_failed=0 if retry_failed else sum(s == "failed" for s in status.values()),
        running_elsewhere=sum(s == "running" for s in status.values()),
        scheduled=len(tasks),
    )
    elsewhere = (
        f"{report.running_elsewhere} running in another process (left to it), "
        if report.running_elsewhere
        else ""
    )
    console.print(
        f"grid {plan.spec.name!r}: {report.total} runs in {out_root} — {report.already_done} "
        f"done, {report.skipped_failed} failed (skipped; --retry-failed reruns them), "
        f"{elsewhere}{report.scheduled} to run; {executor.describe()}",
        highlight=False,
    )
    t0 = time.perf_counter()
    if not tasks:
        report.failed = [n for n, s in status.items() if s == "failed"]
        report.done_at_end = report.already_done
        return report
    todo_names = {t.name for t in tasks}
    measured = measured_images_per_s(plan, done_wall_times(plan, out_root))
    eta = _Eta(
        tasks,
        initial_rate(
            [r for r in plan.runs if r.name in todo_names],
            plan.spec.cost,
            measured,
            executor.capacity,
        ),
    )
    running = 0
    failed_now: list[str] = []
    progress = Progress(
        TextColumn("[bold]grid"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("running {task.fields[running]}, failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=console,
        disable=not show_progress,
        transient=True,
    )
    with progress:
        bar = progress.add_task(
            "grid",
            total=report.total,
            completed=report.already_done,
            running=0,
            failed=0,
            eta=format_duration(eta.seconds()),
        )
        events = executor.run(tasks, execute_run)
        try:
            for event in events:
                if isinstance(event, Notice):
                    console.print(f"[yellow]{escape(event.text)}[/]", highlight=False)
                elif isinstance(event, RunStarted):
                    running += 1
                elif isinstance(event, RunFinished):
                    running -= 1
                    eta.finish(event.task)
                    out = event.outcome
                    if out.status == "lost":
                        out = record_lost(event.task, out)
                    if out.status == "busy":
                        report.busy += 1
                        console.print(
                            f"[yellow]busy[/]   {out.name}: another process is running it",
                            highlight=False,
                        )
                    elif out.status == "done":
                        report.done += 1
                        head = f"{100 * out.headline:.2f}%" if out.headline is not None else "n/a"
                        console.print(
                            f"[green]done[/]   {out.name}  headline {head}  ({out.wall_s:.0f} s)",
                            highlight=False,
                        )
                    else:
                        failed_now.append(out.name)
                        console.print(
                            f"[red]failed[/] {out.name}: {escape(str(out.error))} (traceback in "
                            f"{Path(out_root) / out.name / 'failed.txt'})",
                            highlight=False,
                        )
                progress.update(
                    bar,
                    completed=report.already_done + report.done,
                    running=running,
                    failed=len(failed_now),
                    eta=format_duration(eta.seconds()),
                )
        finally:
            close = getattr(events, "close", None)  # a generator: stops the workers
            if close is not None:
                close()
    report.elapsed_s = time.perf_counter() - t0
    final = grid_statuses(plan, out_root)
    report.failed = [n for n, s in final.items() if s == "failed"]
    report.done_at_end = sum(s == "done" for s in final.values())
    report.running_at_end = sum(s == "running" for s in final.values())
    return report
