"""Per-run pages: training curves, the noise report with the empirical transition matrix, the
summary and the resolved config. A page is rewritten only when its run folder changed."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np

from lnmbench.engine.run_folder import RunFolder
from lnmbench.report.figures import run_figure, save_figure
from lnmbench.report.html_page import definition_box, esc, figure_html, page

SOURCES = ("config.yaml", "metrics.jsonl", "summary.json", "noise.json", "failed.txt")


def page_name(run: str) -> str:
    return f"{run}.html"


def _newest_source(folder: Path) -> float:
    times = []
    for name in SOURCES:
        with contextlib.suppress(OSError):
            times.append(os.stat(folder / name).st_mtime)
    return max(times, default=0.0)


def is_fresh(page_path: Path, folder: Path) -> bool:
    try:
        return page_path.stat().st_mtime > _newest_source(folder)
    except OSError:
        return False


def _noise(folder: RunFolder) -> tuple[str, np.ndarray | None]:
    """The noise table (HTML) and the train split's empirical T, from noise.json."""
    try:
        report = json.loads(folder.noise.read_text())
    except (OSError, ValueError):
        return "<p>no noise.json (the run did not get that far)</p>", None
    rows = []
    t = None
    for split, rep in report.items():
        if not isinstance(rep, dict):
            continue
        rr = rep.get("realised_rate")
        rows.append(
            f"<tr><td>{esc(split)}</td><td>{esc(rep.get('generator', ''))}</td>"
            f"<td>{esc(rep.get('rate', ''))}</td>"
            f"<td>{'–' if rr is None else f'{100 * rr:.2f}'}</td>"
            f"<td>{esc(rep.get('num_samples', ''))}</td></tr>"
        )
        if split == "train" and rep.get("transition_matrix"):
            t = np.array(rep["transition_matrix"], float)
    table = (
        '<table class="t"><thead><tr><th>split</th><th>generator</th><th>nominal rate</th>'
        f"<th>realised rate (%)</th><th>samples</th></tr></thead><tbody>{''.join(rows)}"
        "</tbody></table>"
    )
    return table, t


def write_run_page(folder_path: str | Path, out_dir: Path, back: str = "../report.html") -> Path:
    """Write ``out_dir``/<run>.html for one run folder; returns its path."""
    folder = RunFolder(folder_path)
    run = folder.path.name
    rows = folder.read_metrics()
    summary = None
    if folder.summary.exists():
        try:
            summary = json.loads(folder.summary.read_text())
        except ValueError:
            summary = None
    parts = [f'<p><a href="{esc(back)}">← report</a></p><h1>{esc(run)}</h1>']
    if summary:
        h = summary.get("headline", {})
        parts.append(
            definition_box(
                [
                    ("headline", f"{100 * h.get('value', float('nan')):.2f} % ({h.get('name')})"),
                    ("test acc @ best val", f"{100 * summary.get('test_acc_best_val', 0):.2f} %"),
                    ("best noisy-val epoch", str(summary.get("best_val_epoch"))),
                    ("final test acc", f"{100 * summary.get('test_acc_final', 0):.2f} %"),
                    ("epochs", str(summary.get("epochs_done"))),
                ]
            )
        )
    elif folder.failed.exists():
        parts.append(f"<h2>failed</h2><pre>{esc(folder.failed.read_text()[-4000:])}</pre>")
    else:
        parts.append(f"<p class='warn'>not finished: {len(rows)} epochs logged so far</p>")
    noise_table, t_matrix = _noise(folder)
    parts.append("<h2>Training curves and noise</h2>")
    if rows or t_matrix is not None:
        best = summary.get("best_val_epoch") if summary else None
        fig = run_figure(rows, best, t_matrix)
        parts.append(figure_html(save_figure(fig, out_dir, run, pdf=False, rel="runs/")))
    if not rows:
        parts.append("<p>no epoch logged yet</p>")
    parts.append(noise_table)
    try:
        cfg = folder.config.read_text()
    except OSError:
        cfg = "(no config.yaml)"
    parts.append(f"<h2>Resolved config</h2><pre>{esc(cfg)}</pre>")
    path = out_dir / page_name(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(page(run, "".join(parts)))
    return path
