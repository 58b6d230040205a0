"""The report's figures (matplotlib, Agg, no pyplot state) and how they are saved: PNG (embedded
in the HTML as data) and PDF beside it."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.lines

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lnmbench.report.cells import CellTable
from lnmbench.report.load import rate_label

DPI = 110
ANNOTATE_MAX = 64  # heat-map panels with more cells are not annotated (values are in the CSV)
PATTERN_COLOURS = {"symmetric": "#4c72b0", "instance": "#dd8452", "real-world": "#55a868"}
METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}}


@dataclass(frozen=True)
class FigureRef:
    """A saved figure: its name, PNG file (relative to the report folder) and PNG data URI."""

    name: str
    png: str
    data_uri: str
    caption: str = ""


def save_figure(
    fig: Figure, folder: Path, name: str, caption: str = "", pdf: bool = True, rel: str = ""
) -> FigureRef:
    """Write ``name``.png (and .pdf) under ``folder``; returns the reference with the PNG inline."""
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=METADATA["png"])
    data = buf.getvalue()
    (folder / f"{name}.png").write_bytes(data)
    if pdf:
        fig.savefig(folder / f"{name}.pdf", metadata=METADATA["pdf"])
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return FigureRef(name, f"{rel}{name}.png", uri, caption)


def label_inches(labels: list[str], fontsize: float = 10.0) -> float:
    """Inches the longest of ``labels`` takes when set horizontally at ``fontsize`` (about 0.55 em
    per character): room a figure must leave so that long method labels (configuration variants
    such as ``dividemix [forwards=concatenated]``) are not cut off."""
    longest = max((len(str(x)) for x in labels), default=0)
    return 0.55 * fontsize / 72 * longest


def _colours(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def pattern_bars(patterns: pd.DataFrame, names: list[str], paper: dict[str, dict], label: str):
    """Grouped bars: per method (in the table's order) one bar per pattern and overall; the
    paper's published values as hatched bars beside ours where given."""
    groups = [*names, "overall"]
    methods = list(patterns["method"])
    has_paper = bool(paper)
    per = len(groups) * (2 if has_paper else 1)
    width = 0.8 / per
    fig = Figure(  # the rotated labels hang below the axes: room for the longest
        figsize=(
            max(6.0, 0.9 * len(methods) * (2 if has_paper else 1) + 2),
            3.6 + 0.5 * label_inches(methods),
        ),
        layout="constrained",
    )
    ax = fig.add_subplot()
    x = np.arange(len(methods))
    for g, grp in enumerate(groups):
        colour = PATTERN_COLOURS.get(grp, "#8c8c8c")
        k = g * (2 if has_paper else 1)
        ax.bar(
            x + (k - per / 2 + 0.5) * width,
            patterns[grp].to_numpy(float),
            width,
            color=colour,
            label=f"{grp} (ours)" if has_paper else grp,
        )
        if has_paper:
            vals = [paper.get(m, {}).get(grp, np.nan) for m in methods]
            ax.bar(
                x + (k + 1 - per / 2 + 0.5) * width,
                vals,
                width,
                color="white",
                edgecolor=colour,
                hatch="///",
                label=f"{grp} (paper)",
            )
    ax.set_xticks(x, methods, rotation=30, ha="right")
    ax.set_ylabel(label)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=min(4, len(labels)), loc="outside upper center")
    ax.grid(axis="y", alpha=0.3)
    return fig


def rate_curves(table: CellTable, label: str):
    """One panel per (dataset, noise) with rates: a line per method, shaded ± std."""
    panels: dict[tuple[str, str], list[int]] = {}
    for j, (d, n, r) in enumerate(table.cells):
        if r >= 0:
            panels.setdefault((d, n), []).append(j)
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    colours = _colours(len(table.methods))
    for p, ((d, n), idx) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, p + 1)
        rates = np.array([table.cells[j][2] for j in idx])
        for i, m in enumerate(table.methods):
            mu, sd = table.mean[i, idx], np.nan_to_num(table.std[i, idx])
            ok = ~np.isnan(mu)
            if not ok.any():
                continue
            ax.plot(rates[ok], mu[ok], marker="o", ms=3, color=colours[i], label=m)
            ax.fill_between(
                rates[ok], mu[ok] - sd[ok], mu[ok] + sd[ok], color=colours[i], alpha=0.15, lw=0
            )
        ax.set_title(f"{d} — {n}", fontsize=9)
        ax.set_xlabel("noise rate")
        ax.set_ylabel(label, fontsize=8)
        ax.set_xticks(rates, [rate_label(r) for r in rates])
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    return fig


def cd_diagram(mean_rank: pd.Series, pvalues: pd.DataFrame, title: str):
    """Critical-difference diagram (scikit-posthocs) of mean ranks and post-hoc p-values."""
    import scikit_posthocs as sp

    fig = Figure(figsize=(7, 0.35 * len(mean_rank) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    sp.critical_difference_diagram(
        mean_rank,
        pvalues,
        ax=ax,
        label_fmt_left="{label} ({rank:.2f})",
        label_fmt_right="({rank:.2f}) {label}",
    )
    ax.set_title(title, fontsize=9)
    return fig


def forest_plot(diffs: pd.DataFrame, baseline: str, label: str):
    """Mean paired difference to the baseline per method, with its 95 % bootstrap interval."""
    names = list(diffs["method"])
    fig = Figure(figsize=(4.5 + label_inches(names), 0.45 * len(diffs) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(diffs))[::-1]
    mean = diffs["mean_diff"].to_numpy(float)
    lo = diffs["ci_low"].to_numpy(float)
    hi = diffs["ci_high"].to_numpy(float)
    err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
    ax.errorbar(mean, y, xerr=err, fmt="o", color="#4c72b0", capsize=3)
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, list(diffs["method"]))
    ax.set_xlabel(f"{label}: method − {baseline} (95% bootstrap CI)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def heatmaps(
    panels: list[tuple[str, np.ndarray]],
    methods: list[str],
    classes: list[str],
    label: str = "sensitivity (%)",
):
    """Methods × classes heat maps side by side (one per title), values written in the cells."""
    k = len(panels)
    fig = Figure(
        figsize=(
            max(4.0, 0.55 * len(classes) + 1.5) * k + label_inches(methods, 7),
            0.42 * len(methods) + 1.6,
        ),
        layout="constrained",
    )
    for p, (title, mat) in enumerate(panels):
        ax = fig.add_subplot(1, k, p + 1)
        im = ax.imshow(mat, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(mat if mat.size <= ANNOTATE_MAX else np.empty((0, 0))):
            if v == v:
                ax.text(
                    j,
                    i,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if v < 60 else "black",
                )
        ax.set_xticks(range(len(classes)), classes, fontsize=6)
        ax.set_yticks(range(len(methods)), methods if p == 0 else [""] * len(methods), fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=fig.axes, shrink=0.8, label=label)
    return fig


def epoch_curves(
    panels: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]], ylabel: str = "%"
):
    """Panels of per-epoch lines: (title, {line label: (epochs, values)}); one legend."""
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(3.6 * cols, 2.6 * rows + 0.4), layout="constrained")
    names = sorted({name for _, lines in panels for name in lines})
    colours = dict(zip(names, _colours(len(names)), strict=True))
    for p, (title, lines) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, p + 1)
        for name, (x, yv) in lines.items():
            ax.plot(
                x, yv, marker="." if len(x) <= 20 else None, ms=3, color=colours[name], label=name
            )
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
    handles = [matplotlib.lines.Line2D([], [], color=colours[n], label=n) for n in names]
    fig.legend(handles=handles, fontsize=7, ncol=min(6, len(names)), loc="outside upper center")
    return fig


def run_figure(
    rows: list[dict], best_epoch: int | None, t_matrix: np.ndarray | None, last_k: int = 5
):
    """One run: train loss and noisy-val / clean-test accuracy per epoch (best noisy-val epoch
    dotted, last-5 window shaded) and, when given, the empirical transition matrix (C, C)."""
    ep = np.array([r["epoch"] for r in rows])
    n = 3 if t_matrix is not None else 2
    fig = Figure(figsize=(4.2 * n, 3.0), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, n, 1), fig.add_subplot(1, n, 2)
    loss = [(r.get("train") or {}).get("loss") for r in rows]
    ax1.plot(ep, [np.nan if v is None else v for v in loss], marker=".", color="#c44e52")
    ax1.set_title("train loss (noisy labels)", fontsize=9)
    for key, name in (("val_headline_acc", "noisy val"), ("test_headline_acc", "clean test")):
        vals = [r.get(key) for r in rows]
        ax2.plot(ep, [np.nan if v is None else 100 * v for v in vals], marker=".", label=name)
    ax2.set_title("accuracy (%)", fontsize=9)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(ep):
            ax.axvspan(ep[-min(last_k, len(ep))] - 0.5, ep[-1] + 0.5, color="grey", alpha=0.12)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="green", ls=":", lw=1.2)
    ax2.legend(fontsize=7, title="dotted: best noisy-val epoch\ngrey: last 5", title_fontsize=6)
    if t_matrix is not None:
        _matrix_axes(fig.add_subplot(1, n, 3), t_matrix, "empirical T (train)")
    return fig


def _matrix_axes(ax, mat: np.ndarray, title: str) -> None:
    k = mat.shape[0]
    ax.imshow(mat, vmin=0, vmax=1, cmap="Blues")
    if k <= 12:
        for (i, j), v in np.ndenumerate(mat):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=5,
                color="white" if v > 0.6 else "black",
            )
    ax.set_xlabel("noisy label")
    ax.set_ylabel("clean label")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_title(title, fontsize=9)
