"""Human-readable noise reports: a rich table per split and transition-matrix heatmaps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

from lnmbench.errors import ConfigError
from lnmbench.metrics.diagnostics import transition_estimation_error
from lnmbench.noise.labels import NoisyLabels

_ANNOTATE_MAX_CLASSES = 12  # write the values into the cells up to this many classes


def _pct(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def report_table(noisy: NoisyLabels) -> Table:
    """One rich table: a row per class (clean/noisy counts, flip rate, T̃_ii, max off-diagonal,
    learnable, the precision of the label P(y = c | ỹ = c), red where another class dominates
    it), titled with generator, rates and label hash; q statistics in the caption."""
    rate = "n/a" if noisy.rate is None else f"{noisy.rate:g}"
    title = (
        f"noise {noisy.generator} (nominal {rate}, seed {noisy.seed}): "
        f"realised {_pct(noisy.realised_rate)}"
    )
    table = Table(title=title)
    columns = ("class", "clean n", "noisy n", "flip rate", "T̃_ii", "max T̃_ij (j≠i)", "learnable")
    for col in (*columns, "P(y=c | ỹ=c)"):
        table.add_column(col, justify="right" if col != "learnable" else "center")
    c = noisy.num_classes
    noisy_counts = np.bincount(noisy.noisy, minlength=c)
    t = noisy.transition_matrix
    if noisy.clean is None or t is None:
        for i in range(c):
            table.add_row(str(i), "n/a", str(noisy_counts[i]), *["n/a"] * 5)
    else:
        clean_counts = np.bincount(noisy.clean, minlength=c)
        unlearnable = set(noisy.unlearnable_classes or [])
        dominated = set(noisy.dominated_labels or [])
        precision = noisy.label_precision
        for i in range(c):
            prec_cell = _pct(precision[i])
            if i in dominated:
                prec_cell = f"[red]{prec_cell}[/red]"
            if clean_counts[i] == 0:
                table.add_row(
                    str(i), "0", str(noisy_counts[i]), "n/a", "n/a", "n/a", "absent", prec_cell
                )
                continue
            off = np.delete(t[i], i).max()
            table.add_row(
                str(i),
                str(clean_counts[i]),
                str(noisy_counts[i]),
                _pct(1.0 - t[i, i]),
                f"{t[i, i]:.3f}",
                f"{off:.3f}",
                "[red]no[/red]" if i in unlearnable else "yes",
                prec_cell,
            )
    caption = [f"sha256 {noisy.sha256[:16]}"]
    if noisy.dominated_labels:
        listed = ", ".join(str(c) for c in noisy.dominated_labels)
        caption.append(f"labels mostly another class (red): {listed}")
    q = noisy.extra.get("q")
    if isinstance(q, dict):
        # numeric order: a report read back from the cache has its keys sorted as strings
        quantiles = sorted(q.get("quantiles", {}).items(), key=lambda kv: float(kv[0]))
        qs = ", ".join(f"{k}%: {v:.3f}" for k, v in quantiles)
        caption.append(f"q mean {q['mean']:.3f} ({qs})")
    ref = noisy.extra.get("reference")
    if isinstance(ref, dict) and "accuracy" in ref:
        caption.append(f"reference classifier accuracy {_pct(ref['accuracy'])}")
    table.caption = "; ".join(caption)
    return table


def _heatmap(ax: Axes, matrix: np.ndarray, title: str) -> AxesImage:
    c = matrix.shape[0]
    masked = np.ma.masked_invalid(matrix)
    im = ax.imshow(masked, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_facecolor("0.8")  # nan rows (absent classes) show grey
    ax.set_title(title)
    ax.set_xlabel("noisy label j")
    ax.set_ylabel("clean label i")
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    if c <= _ANNOTATE_MAX_CLASSES:
        for i in range(c):
            for j in range(c):
                v = matrix[i, j]
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if v > 0.5 else "white",
                    )
    return im


def plot_transition(
    matrix: np.ndarray,
    path: Path | str,
    title: str,
    estimate: np.ndarray | None = None,
) -> Path:
    """Save a heatmap PNG of a (C, C) transition matrix (nan rows grey); with ``estimate`` (a
    (C, C) T̂) the two are drawn side by side and the §6.4 estimation error is in the title."""
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg canvas by default

    t = np.asarray(matrix, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ConfigError(f"transition matrix must be square (C, C), got shape {t.shape}")
    est = None
    if estimate is not None:
        est = np.asarray(estimate, dtype=np.float64)
        if est.shape != t.shape:
            raise ConfigError(f"estimate has shape {est.shape}, matrix has {t.shape}")
    panels = 1 if est is None else 2
    size = 1.0 + 0.45 * t.shape[0]
    fig = Figure(figsize=(max(4.0, size) * panels + 0.8, max(3.6, size)), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    im = _heatmap(axes[0], t, "T̃ (empirical)" if est is not None else title)
    if est is not None:
        _heatmap(axes[1], est, "T̂ (estimate)")
        err = transition_estimation_error(est, t)
        fig.suptitle(f"{title} — estimation error {err:.3f}")
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out
