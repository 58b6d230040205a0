"""The report's analysis sections: class imbalance (6), LNL diagnostics (7) and the run list
with per-run pages (8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lnmbench.report import writers
from lnmbench.report.cells import cell_table, seed_values
from lnmbench.report.context import Section
from lnmbench.report.diagnostics import DIAGNOSTIC_TABLES, selection_curves
from lnmbench.report.figures import epoch_curves, heatmaps, save_figure
from lnmbench.report.html_page import esc
from lnmbench.report.imbalance import per_class_sensitivity
from lnmbench.report.load import has_folder, rate_label
from lnmbench.report.metric import Metric
from lnmbench.report.result_sections import cells_frame
from lnmbench.report.run_pages import is_fresh, page_name, write_run_page
from lnmbench.report.table_model import Cell, Table, fmt, frame_table, main_tables


def imbalance_section(
    s: Section,
    df: pd.DataFrame,
    metric: Metric,
    fig_dir: Path,
    csvs: dict[str, pd.DataFrame],
    pdf: bool = True,
) -> None:
    cells = per_class_sensitivity(df)
    if not cells:
        s.add_text("no finished run with per-class sensitivity")
        return
    s.add_text(
        "Per-class test sensitivity (%) at the final epoch, mean over seeds; classes "
        "ordered by training count (fewest first), counts under the class index."
    )
    by_setting: dict[tuple[str, str], list] = {}
    for c in cells:
        by_setting.setdefault(c.cell[:2], []).append(c)
    long = []
    for (d, n), group in by_setting.items():
        methods = sorted({m for c in group for m in c.methods})
        ref = group[0]
        classes = [
            f"{k}\nn={ref.counts[i]}" if ref.counts else str(k) for i, k in enumerate(ref.classes)
        ]
        panels = []
        for c in group:
            mat = np.full((len(methods), len(c.classes)), np.nan)
            for i, m in enumerate(c.methods):
                mat[methods.index(m)] = c.sens[i]
            panels.append((f"rate {rate_label(c.cell[2])}", mat))
            for i, m in enumerate(c.methods):
                for k, cls in enumerate(c.classes):
                    long.append(
                        {
                            "method": m,
                            "dataset": d,
                            "noise": n,
                            "rate": rate_label(c.cell[2]),
                            "class": cls,
                            "train_count": c.counts[k] if c.counts else None,
                            "sensitivity": c.sens[i, k],
                        }
                    )
        s.add_figure(
            save_figure(
                heatmaps(panels, methods, classes),
                fig_dir,
                f"class_sensitivity_{d}_{n}",
                f"{d} — {n}: per-class sensitivity",
                rel="figures/",
                pdf=pdf,
            )
        )
    csvs["class_sensitivity"] = pd.DataFrame(long)
    # accuracy, balanced accuracy and smallest-class sensitivity side by side
    acc = seed_values(df, f"accuracy_{metric.summary}")
    bal = seed_values(df, f"balanced_accuracy_{metric.summary}")
    acc_m = acc.groupby(["method", "dataset", "noise", "rate_key"])["value"].mean()
    bal_m = bal.groupby(["method", "dataset", "noise", "rate_key"])["value"].mean()
    rows = []
    for c in cells:
        for i, m in enumerate(c.methods):
            key = (m, *c.cell)
            rows.append(
                {
                    "dataset": c.cell[0],
                    "noise": c.cell[1],
                    "rate": rate_label(c.cell[2]),
                    "method": m,
                    "accuracy": 100 * acc_m.get(key, np.nan),
                    "balanced accuracy": 100 * bal_m.get(key, np.nan),
                    "smallest-class sensitivity": c.smallest[i],
                    "smallest class (n train)": f"{c.classes[0]} ({c.counts[0]})"
                    if c.counts
                    else str(c.classes[0]),
                }
            )
    frame = pd.DataFrame(rows)
    csvs["imbalance"] = frame
    s.add_table(
        frame_table(
            frame,
            f"accuracy, balanced accuracy ({metric.summary}) and "
            "smallest-class sensitivity (final epoch), %",
            "imbalance",
        )
    )


def diagnostics_section(
    s: Section,
    df: pd.DataFrame,
    expected: dict,
    fig_dir: Path,
    csvs: dict[str, pd.DataFrame],
    pdf: bool = True,
) -> None:
    curves = selection_curves(df)
    if len(curves):
        for (d, n), g in curves.groupby(["dataset", "noise"], sort=True):
            panels = []
            for r, gr in g.groupby("rate_key", sort=True):
                for what in ("precision", "recall"):
                    lines = {
                        m: (x["epoch"].to_numpy(), x[what].to_numpy())
                        for m, x in gr.groupby("method", sort=True)
                    }
                    panels.append((f"{d} {n} {rate_label(r)}: selection {what}", lines))
            s.add_figure(
                save_figure(
                    epoch_curves(panels),
                    fig_dir,
                    f"selection_{d}_{n}",
                    f"{d} — {n}: selection precision (clean ratio) and recall "
                    "(coverage ratio) per epoch, mean over seeds",
                    rel="figures/",
                    pdf=pdf,
                )
            )
        csvs["selection_curves"] = curves
    any_table = False
    for col, (label, scale, higher) in DIAGNOSTIC_TABLES.items():
        vals = seed_values(df, col)
        if vals.empty:
            continue
        any_table = True
        sub = {
            k: v
            for k, v in expected.items()
            if k
            in set(zip(vals["dataset"], vals["noise"], vals["rate_key"].astype(float), strict=True))
        }
        t = cell_table(vals, sub, higher, scale)
        for tab in main_tables(t, f"{label}, final epoch"):
            tab.title = f"{label}: {tab.title}"
            tab.key = f"{col}_{tab.key}"
            s.add_table(tab)
        csvs[col] = cells_frame(t)
    if not any_table and curves.empty:
        s.add_text(
            "no run logged selection, correction or transition-matrix diagnostics "
            "(methods such as coteaching, dividemix, disc, t-revision, volminnet do)"
        )


def runs_section(s: Section, df: pd.DataFrame, out: Path, run_pages: bool) -> None:
    page_dir = out / "runs"
    header = [
        "run",
        "status",
        "method",
        "dataset",
        "noise",
        "rate",
        "seed",
        "epochs",
        "headline (%)",
        "note",
    ]
    rows = []
    html_rows = []
    for rec in df.itertuples(index=False):
        link = None
        if run_pages and has_folder(rec.run_folder):
            folder = Path(rec.run_folder)
            path = page_dir / page_name(rec.run)
            if not is_fresh(path, folder):
                write_run_page(folder, page_dir)
            link = f"runs/{page_name(rec.run)}"
        epochs = "–" if pd.isna(rec.epochs_done) else str(rec.epochs_done)
        cells = [
            rec.run,
            rec.status,
            rec.method,
            rec.dataset,
            rec.noise,
            rate_label(rec.rate_key),
            "–" if pd.isna(rec.seed) else str(rec.seed),
            epochs,
            fmt(100 * rec.headline if rec.headline == rec.headline else np.nan),
            rec.error if isinstance(rec.error, str) else "",
        ]
        rows.append([Cell(c) for c in cells])
        name = f'<a href="{esc(link)}">{esc(rec.run)}</a>' if link else esc(rec.run)
        html_rows.append(
            f"<tr><td>{name}</td>"
            + "".join(f"<td{writers.cell_class(c)}>{esc(c)}</td>" for c in cells[1:])
            + "</tr>"
        )
    table = Table(f"{len(rows)} runs", header, rows, [], "runs")
    s.html.append(
        f"<h3>{len(rows)} runs</h3>"
        + writers.scrolling(
            "<table class='t'><thead><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in header)
            + f"</tr></thead><tbody>{''.join(html_rows)}</tbody></table>"
        )
    )
    s.md.append(writers.to_markdown(table))
