"""What every report section reads (the filtered results, the metric's cell table, options) and
the :class:`Section` each one fills with HTML, Markdown and LaTeX parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lnmbench.report import writers
from lnmbench.report.cells import CellTable
from lnmbench.report.figures import FigureRef
from lnmbench.report.html_page import esc, figure_html
from lnmbench.report.metric import Metric
from lnmbench.report.table_model import Table


@dataclass
class ReportContext:
    """``df``: the filtered results table with the report's keys; ``values``: finished runs'
    values of the metric (one per method, cell, seed); ``expected``: seeds planned per cell;
    ``table``: the metric's :class:`CellTable`. Sections add CSV frames to ``csvs`` and
    messages to ``warnings``."""

    df: pd.DataFrame
    values: pd.DataFrame
    expected: dict[tuple[str, str, float], int]
    table: CellTable
    metric: Metric
    summary: str
    baseline: str
    posthoc: str
    pdf: bool
    out: Path
    csvs: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def fig_dir(self) -> Path:
        return self.out / "figures"


@dataclass
class Section:
    anchor: str
    title: str
    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    tex: list[str] = field(default_factory=list)

    def add_table(self, table: Table) -> None:
        self.html.append(writers.to_html(table))
        self.md.append(writers.to_markdown(table))
        self.tex.append(writers.to_latex(table))

    def add_text(self, text: str) -> None:
        self.html.append(f"<p>{esc(text)}</p>")
        self.md.append(text + "\n")
        self.tex.append(writers.latex_escape(text) + "\n")

    def add_figure(self, ref: FigureRef | None) -> None:
        if ref is None:
            return
        self.html.append(figure_html(ref))
        self.md.append(f"![{ref.caption or ref.name}]({ref.png})\n")
        self.tex.append(
            "\\begin{figure}[t]\\centering\\includegraphics[width=\\linewidth]{"
            + ref.png.replace(".png", ".pdf")
            + "}\\caption{"
            + writers.latex_escape(ref.caption or ref.name)
            + "}\\end{figure}\n"
        )
