"""``lnmbench report``: the benchmark's tables, figures and statistics for a result root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lnmbench.cli.console import console, fail
from lnmbench.errors import LnmbenchError


def report(
    root: Annotated[
        Path,
        typer.Argument(
            help="result root (folder of run folders), or a results table (.parquet / .csv "
            "as `lnmbench results` writes it)"
        ),
    ],
    out: Annotated[Path | None, typer.Option(help="report folder (default ROOT/report)")] = None,
    metric: Annotated[
        str,
        typer.Option(
            help="accuracy, balanced_accuracy, macro_f1, macro_auc, fpr95, ece or qwk (test)"
        ),
    ] = "accuracy",
    summary: Annotated[
        str, typer.Option(help="last5 (mean of the last 5 epochs), best_val or final")
    ] = "last5",
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="COLUMN=VALUE[,VALUE] (repeatable), e.g. dataset=demo"),
    ] = None,
    baseline: Annotated[str, typer.Option(help="method the others are compared to")] = "ce",
    format_: Annotated[
        str, typer.Option("--format", help="comma-separated: html, md, tex, csv")
    ] = "html,md,tex,csv",
    posthoc: Annotated[
        str, typer.Option(help="post-hoc test after Friedman: nemenyi or conover")
    ] = "nemenyi",
    run_pages: Annotated[
        str,
        typer.Option(
            help="per-run pages: all, none, or auto (all up to 200 runs); only changed runs "
            "are redrawn"
        ),
    ] = "auto",
    pdf: Annotated[bool, typer.Option(help="write a PDF beside every figure's PNG")] = True,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Write report.html (self-contained), report.md, report.tex, tables/*.csv and
    figures/*.png|pdf for every run under ROOT; works on partial and still-running grids."""
    from lnmbench.report import ReportOptions, build_report
    from lnmbench.report.build import parse_formats

    bar = Progress(
        TextColumn("reading runs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
        transient=True,
    )
    task = bar.add_task("read", total=None)

    def tick(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    try:
        opts = ReportOptions(
            metric=metric,
            summary=summary,
            filters=filter_ or [],
            baseline=baseline,
            formats=parse_formats(format_),
            posthoc=posthoc,
            run_pages=run_pages,
            pdf=pdf,
        )
        with bar:
            result = build_report(root, out, opts, progress=tick)
    except LnmbenchError as exc:
        fail(exc)
    counts = ", ".join(
        f"{result.status_counts.get(s, 0)} {s}"
        for s in ("done", "failed", "running", "interrupted")
    )
    if root.is_file():
        console.print(
            f"{result.n_runs} runs ({counts}) read from the table {root} (no run folders: "
            "per-epoch curves, per-class sensitivity and run pages are left out)",
            highlight=False,
        )
    else:
        table = root / "results.parquet"
        cached = result.n_runs - result.folders_read
        console.print(
            f"{result.n_runs} runs ({counts}): {result.folders_read} run folders read, "
            f"{max(cached, 0)} rows taken from {table}",
            highlight=False,
        )
    for w in result.warnings:
        console.print(f"[yellow]{escape(w)}[/]", highlight=False)  # labels hold [...]
    main = [p for p in result.files if p.name.startswith("report.")]
    n_fig = sum(1 for p in result.files if p.parent.name == "figures")
    n_csv = sum(1 for p in result.files if p.suffix == ".csv")
    console.print(
        "wrote "
        + ", ".join(str(p) for p in main)
        + f"; {n_fig} figure files, {n_csv} CSV tables in {result.out}",
        highlight=False,
    )
    console.print(
        f"time {result.seconds['total']:.1f} s (reading {result.seconds['read']:.2f} s)",
        highlight=False,
    )
