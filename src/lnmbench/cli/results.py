"""``lnmbench results``: the results table of a result root (mean ± std over seeds)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lnmbench.cli.console import console, fail, pct
from lnmbench.errors import LnmbenchError


def results(
    root: Annotated[Path, typer.Argument(help="result root (folder of run folders)")],
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="COLUMN=VALUE[,VALUE] (repeatable), e.g. method=ce"),
    ] = None,
    csv: Annotated[
        Path | None, typer.Option(help="write the (filtered) per-run table as CSV")
    ] = None,
    parquet: Annotated[
        Path | None, typer.Option(help="write the (filtered) per-run table as Parquet")
    ] = None,
) -> None:
    """Mean ± std over seeds by method, dataset, noise and rate; the per-run table as files.

    The full per-run table is always (re)written to ROOT/results.parquet; --csv / --parquet
    write the rows that pass the filters.
    """
    from lnmbench.experiment.store import (
        apply_filters,
        mean_std_over_seeds,
        parse_filters,
        remove_stale_temporaries,
        results_table,
        write_results,
    )

    metrics = ("headline", "test_acc_best_val", "test_acc_final", "macro_f1_last5", "ece_last5")
    written = []
    try:
        remove_stale_temporaries(root)
        full = results_table(root)
        df = apply_filters(full, parse_filters(filter_ or []))
        try:
            write_results(full, parquet=root / "results.parquet")
            written.append(f"{root / 'results.parquet'} (all runs)")
        except OSError as exc:  # a read-only result root: the table is still shown
            console.print(f"[yellow]cannot write {root / 'results.parquet'}: {exc}[/]")
        if parquet or csv:
            write_results(df, parquet=parquet, csv=csv)
            written += [f"{p} ({len(df)} runs)" for p in (parquet, csv) if p]
    except LnmbenchError as exc:
        fail(exc)
    counts = Counter(df["status"])
    agg = mean_std_over_seeds(df, metrics)
    t = Table(title=f"results in {root} (test %, mean ± std over seeds)")
    keys = [c for c in agg.columns if not c.endswith(("_mean", "_std")) and c != "n_runs"]
    labels = {
        "headline": "last-5 acc",
        "test_acc_best_val": "acc @ best val",
        "test_acc_final": "final acc",
        "macro_f1_last5": "macro-F1",
        "ece_last5": "ECE",
    }
    for k in keys:
        t.add_column(
            "seeds" if k == "n_seeds" else k, justify="right" if k == "n_seeds" else "left"
        )
    for m in metrics:
        t.add_column(labels[m], justify="right", no_wrap=True)
    for _, row in agg.iterrows():
        cells = []
        for k in keys:
            v = row[k]
            if k == "rate":
                cells.append("—" if row["noise"] == "realworld" else f"{v:g}")
            else:
                cells.append(str(v))
        cells += [pct(row[f"{m}_mean"], std=row[f"{m}_std"]) for m in metrics]
        t.add_row(*cells)
    console.print(t)
    console.print(
        "runs: "
        + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "running", "interrupted")
        ),
        highlight=False,
    )
    mixed = agg[agg["n_runs"] > agg["n_seeds"]]
    if len(mixed):
        console.print(
            f"[yellow]{len(mixed)} rows mix configurations with the same seed (e.g. different "
            "hyperparameters): filter on config_hash or other columns to separate them[/]",
            highlight=False,
        )
    if written:
        console.print("per-run table: " + ", ".join(written), highlight=False)
