"""The report's result sections: main tables (1), the summary by noise pattern beside the
paper's published averages (2) and the metric against noise rate (3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lnmbench.report.cells import CellTable
from lnmbench.report.context import ReportContext, Section
from lnmbench.report.figures import pattern_bars, rate_curves, save_figure
from lnmbench.report.load import rate_label
from lnmbench.report.paper import paper_averages
from lnmbench.report.patterns import pattern_averages, pattern_names
from lnmbench.report.table_model import frame_table, main_tables


def main_section(ctx: ReportContext) -> Section:
    """Per (dataset, noise): method rows × rate columns of the metric."""
    table, metric, csvs = ctx.table, ctx.metric, ctx.csvs
    s = Section("main", "1. Main tables")
    mains = main_tables(table, metric.label)
    for t in mains:
        s.add_table(t)
    if not mains:
        s.add_text("no cell has a finished run yet")
    csvs["cells"] = cells_frame(table)
    for t in mains:
        d, n = t.title.split(" — ")
        sub = csvs["cells"]
        csvs[t.key] = sub[(sub["dataset"] == d) & (sub["noise"] == n)]
    return s


def summary_section(ctx: ReportContext) -> Section:
    """Pattern averages per method, the paper's numbers beside them where they apply."""
    table, metric, csvs, df = ctx.table, ctx.metric, ctx.csvs, ctx.df
    fig_dir, pdf = ctx.fig_dir, ctx.pdf
    s = Section("summary", "2. Summary by noise pattern")
    pats = pattern_averages(table, metric.higher_is_better)
    names = pattern_names(table)
    paper = paper_averages()
    datasets = set(df["dataset"].unique())
    from_paper = (
        metric.name == "accuracy" and ctx.summary == "last5" and datasets <= set(paper.datasets)
    )
    paper_rows = paper.for_methods(list(pats["method"])) if from_paper else {}
    shown = pats[["method", *names, "overall"]].copy()
    for p in names:
        shown[f"{p} cells"] = pats[f"{p}_cells"]
    if paper_rows:
        for p in [*[n for n in names if n in ("symmetric", "instance", "real-world")], "overall"]:
            shown[f"{p} (paper)"] = [paper_rows.get(m, {}).get(p, np.nan) for m in pats["method"]]
    s.add_table(
        frame_table(
            shown,
            f"per method: unweighted mean over cells of each pattern ({metric.label})",
            "patterns",
            notes=[
                "overall = mean of the method's pattern averages; 'cells' = cells "
                "the method has of those in the results (fewer: average over a "
                "subset, not comparable)."
            ],
        )
    )
    csvs["patterns"] = shown
    if paper_rows:
        src = paper.source
        s.add_text(
            f"paper columns: {src['title']} — {src['source']}, {src['url']} "
            f"({src['file']}); {src['protocol']}. Ours may differ in protocol (see top)."
        )
    else:
        src = paper.source
        s.add_text(
            "The paper's published pattern averages stand beside ours only for test "
            "accuracy, last-5 summary, on the paper's datasets "
            f"({', '.join(paper.datasets)}); these results are on "
            f"{', '.join(sorted(datasets))}. Source of the paper's numbers: "
            f"{src['source']}, {src['url']}."
        )
    paper_plot = {m: r for m, r in paper_rows.items()}
    if len(pats):
        s.add_figure(
            save_figure(
                pattern_bars(pats, names, paper_plot, metric.short),
                fig_dir,
                "pattern_summary",
                "per-method pattern averages",
                rel="figures/",
                pdf=pdf,
            )
        )
    return s


def rates_section(ctx: ReportContext) -> Section:
    """The metric against noise rate, a panel per (dataset, noise)."""
    table, metric, fig_dir, pdf = ctx.table, ctx.metric, ctx.fig_dir, ctx.pdf
    s = Section("rates", "3. Against noise rate")
    fig = rate_curves(table, metric.short)
    if fig is None:
        s.add_text("no setting with a nominal noise rate")
    else:
        s.add_figure(
            save_figure(
                fig,
                fig_dir,
                "rate_curves",
                f"{metric.label} against noise rate, mean ± std over seeds",
                rel="figures/",
                pdf=pdf,
            )
        )
    return s


def cells_frame(table: CellTable) -> pd.DataFrame:
    rows = []
    for i, m in enumerate(table.methods):
        for j, (d, n, r) in enumerate(table.cells):
            rank = table.rank[i, j]
            rows.append(
                {
                    "method": m,
                    "dataset": d,
                    "noise": n,
                    "rate": rate_label(r),
                    "mean": table.mean[i, j],
                    "std": table.std[i, j],
                    "n_seeds": int(table.n[i, j]),
                    "expected_seeds": int(table.expected[j]),
                    "mark": "best" if rank == 1 else "second" if rank == 2 else "",
                }
            )
    return pd.DataFrame(rows)
