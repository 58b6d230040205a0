"""``lnmbench grid``: run or dry-run a benchmark grid."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lnmbench.cli.console import console, fail
from lnmbench.errors import LnmbenchError


def _join_numbers(values: list[float] | list[int]) -> str:
    return "/".join(f"{v:g}" for v in sorted(set(values)))


def print_plan(plan, out_root: Path, workers: int) -> None:
    """The dry-run report: runs by dataset × noise and by method, status, time, problems."""
    from lnmbench.experiment.grid_cost import estimate_seconds, measured_images_per_s
    from lnmbench.experiment.grid_runner import done_wall_times, format_duration, grid_statuses

    spec = plan.spec
    status = grid_statuses(plan, out_root) if out_root.exists() else {}
    status = {r.name: status.get(r.name, "pending") for r in plan.runs}
    measured = measured_images_per_s(plan, done_wall_times(plan, out_root)) if status else {}
    todo = [r for r in plan.runs if status[r.name] != "done"]
    console.print(
        f"grid [bold]{spec.name}[/] ({spec.description or 'no description'}): "
        f"{len(plan.runs)} runs, {len(plan.problems)} cells that cannot run, "
        f"{plan.duplicates} duplicate cells merged, {plan.excluded} excluded; "
        f"result root {out_root}",
        highlight=False,
    )
    t = Table(title="runs by dataset and noise")
    cols = ("dataset", "noise", "methods", "rates", "seeds", "runs", "done", "failed")
    for col in (*cols, "running", "interrupted", "pending", "est. time left"):
        t.add_column(col, justify="left" if col in ("dataset", "noise") else "right")
    groups: dict[tuple[str, str], list] = {}
    for r in plan.runs:
        groups.setdefault((r.config.dataset, r.config.noise.name), []).append(r)
    for (ds, noise), runs in groups.items():
        counts = Counter(status[r.name] for r in runs)
        left = [r for r in runs if status[r.name] != "done"]
        rates = [r.config.noise.rate for r in runs]
        t.add_row(
            Path(ds).stem if ds.endswith(".npz") else ds,
            noise,
            str(len({r.config.method for r in runs})),
            "—" if noise == "realworld" else _join_numbers(rates),
            _join_numbers([r.config.seed for r in runs]),
            str(len(runs)),
            str(counts["done"]),
            str(counts["failed"]),
            str(counts["running"]),
            str(counts["interrupted"]),
            str(counts["pending"]),
            format_duration(estimate_seconds(left, spec.cost, measured)),
        )
    console.print(t)
    m = Table(title="runs by method")
    for col in ("method", "runs", "cost factor", "done", "est. time left"):
        m.add_column(col, justify="left" if col == "method" else "right")
    by_method: dict[str, list] = {}
    for r in plan.runs:
        by_method.setdefault(r.config.method, []).append(r)
    for method, runs in by_method.items():
        left = [r for r in runs if status[r.name] != "done"]
        m.add_row(
            method,
            str(len(runs)),
            f"{spec.cost.factor(method):g}",
            str(sum(status[r.name] == "done" for r in runs)),
            format_duration(estimate_seconds(left, spec.cost, measured)),
        )
    console.print(m)
    total = estimate_seconds(todo, spec.cost, measured)
    source = (
        "measured on finished runs of this root: "
        + ", ".join(f"{k} {v:.0f}/s" for k, v in sorted(measured.items()))
        if measured
        else f"assumed {spec.cost.images_per_s:g} image-passes/s per worker (cost.images_per_s)"
    )
    parallel = f", {format_duration(total / workers)} on {workers} workers" if workers > 1 else ""
    console.print(
        f"time left: {format_duration(total)} on one worker{parallel} (throughput {source})",
        highlight=False,
    )
    if plan.problems:
        console.print(
            f"[yellow]{len(plan.problems)} cells cannot run[/] (left out with --skip-unknown; "
            "without it the grid refuses to start):",
            highlight=False,
        )
        for line in plan.problem_summary():
            console.print(f"  {escape(line)}", highlight=False)
    for note in plan.notes:
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False)


def grid(
    spec: Annotated[Path, typer.Argument(help="grid YAML (e.g. grids/lnmbench.yaml)")],
    dry_run: Annotated[
        bool, typer.Option(help="show the runs, their status and time estimate; run nothing")
    ] = False,
    executor: Annotated[str, typer.Option(help="where runs execute: local or ray")] = "local",
    workers: Annotated[
        int | None,
        typer.Option(help="local: parallel worker processes (default: one per device, else 1)"),
    ] = None,
    devices: Annotated[
        str | None, typer.Option(help="local: devices for the workers, e.g. cuda:0,cuda:1")
    ] = None,
    threads_per_worker: Annotated[
        int | None, typer.Option(help="local: CPU threads per worker (default: cores / workers)")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="ray: cluster address, auto or HOST:PORT (or local)")
    ] = None,
    gpus_per_run: Annotated[
        float | None, typer.Option(help="ray: GPUs per run (fractions share a GPU)")
    ] = None,
    cpus_per_run: Annotated[float | None, typer.Option(help="ray: CPUs per run")] = None,
    max_retries: Annotated[
        int | None, typer.Option(help="retries of a run whose worker process dies (default 2)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="result root (default: the spec's out, or runs/NAME)")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="rerun runs that failed before (default: skip them)")
    ] = False,
    skip_unknown: Annotated[
        bool, typer.Option(help="leave out cells with unregistered names or missing files")
    ] = False,
    images_per_s: Annotated[
        float | None, typer.Option(help="throughput for the time estimate (image-passes/s)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a live progress bar")] = True,
) -> None:
    """Run every cell of a grid (skip finished runs, resume interrupted ones), or --dry-run it."""
    from lnmbench.executors import ExecutorOptions, create_executor
    from lnmbench.experiment.grid import expand_grid
    from lnmbench.experiment.grid_runner import format_duration, run_grid
    from lnmbench.experiment.grid_spec import load_grid_spec

    try:
        grid_spec = load_grid_spec(spec)
        if images_per_s is not None:
            cost = grid_spec.cost.model_copy(update={"images_per_s": images_per_s})
            grid_spec = grid_spec.model_copy(update={"cost": cost})
        root = out or Path(grid_spec.out or f"runs/{grid_spec.name}")
        plan = expand_grid(grid_spec)
        options = ExecutorOptions(
            workers=workers,
            devices=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
            threads_per_worker=threads_per_worker,
            address=address,
            gpus_per_run=gpus_per_run,
            cpus_per_run=cpus_per_run,
            max_retries=max_retries,
        )
        runner = create_executor(executor, options)
        if dry_run:
            print_plan(plan, root, runner.capacity)
            return
        plan.check(skip_unknown)
        if plan.problems:
            console.print(
                f"[yellow]skipping {len(plan.problems)} cells[/] (--skip-unknown):",
                highlight=False,
            )
            for line in plan.problem_summary():
                console.print(f"  {escape(line)}", highlight=False)
        report = run_grid(
            plan,
            root,
            runner,
            retry_failed=retry_failed,
            console=console,
            show_progress=progress and console.is_terminal,
        )
    except LnmbenchError as exc:
        fail(exc)
    console.print(
        f"grid {grid_spec.name!r}: {report.done_at_end}/{report.total} runs done "
        f"({report.done} now, in {format_duration(report.elapsed_s)}); {len(report.failed)} failed"
        + (
            f"; {report.running_at_end} still running in another process"
            if report.running_at_end
            else ""
        ),
        highlight=False,
    )
    if report.failed:
        console.print(
            "failed runs (traceback in each folder's failed.txt; rerun with --retry-failed):",
            highlight=False,
        )
        for name in report.failed:
            console.print(f"  {root / name}", highlight=False)
        raise typer.Exit(1)
