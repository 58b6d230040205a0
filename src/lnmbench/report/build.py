"""Build the report of a result root: read the results table, compute every section, write
report.html (self-contained), report.md, report.tex, tables/*.csv and figures/*.png|pdf."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lnmbench.errors import ConfigError
from lnmbench.experiment.store import parse_filters
from lnmbench.report import writers
from lnmbench.report.analysis_sections import diagnostics_section, imbalance_section, runs_section
from lnmbench.report.cells import CellTable, cell_table, expected_seeds, seed_values
from lnmbench.report.context import ReportContext, Section
from lnmbench.report.html_page import definition_box, esc, page, toc
from lnmbench.report.load import add_keys, has_folder, load_results
from lnmbench.report.metric import Metric
from lnmbench.report.result_sections import main_section, rates_section, summary_section
from lnmbench.report.statistics_sections import baseline_section, ranks_section
from lnmbench.report.table_model import incomplete_count
from lnmbench.report.variants import split_variants

FORMATS = ("html", "md", "tex", "csv")
RUN_PAGES = ("auto", "all", "none")
AUTO_RUN_PAGES = 200


def parse_formats(text: str) -> tuple[str, ...]:
    """ "html,md" -> ("html", "md"); unknown names raise ConfigError listing the known ones."""
    names = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in names if f not in FORMATS]
    if bad or not names:
        raise ConfigError(
            f"unknown format {', '.join(bad) or repr(text)}; known: {', '.join(FORMATS)}"
        )
    return names


@dataclass
class ReportOptions:
    metric: str = "accuracy"
    summary: str = "last5"
    filters: list[str] = field(default_factory=list)
    baseline: str = "ce"
    formats: tuple[str, ...] = FORMATS
    posthoc: str = "nemenyi"
    run_pages: str = "auto"  # all, none, or auto: all when at most AUTO_RUN_PAGES runs
    pdf: bool = True  # a PDF beside every figure's PNG

    def __post_init__(self) -> None:
        if self.run_pages not in RUN_PAGES:
            raise ConfigError(
                f"unknown --run-pages {self.run_pages!r}; known: {', '.join(RUN_PAGES)}"
            )


@dataclass
class ReportResult:
    out: Path
    files: list[Path]
    n_runs: int
    status_counts: dict[str, int]
    folders_read: int
    seconds: dict[str, float]
    warnings: list[str]


def _protocol(
    df: pd.DataFrame,
    opts: ReportOptions,
    metric: Metric,
    table: CellTable,
    root: Path,
    counts: Counter,
) -> list[tuple[str, str]]:
    def values(col: str) -> str:
        vals = sorted({str(v) for v in df[col].dropna().unique()})
        return ", ".join(vals) if vals else "–"

    inc, miss = incomplete_count(table)
    return [
        ("result root", str(root)),
        (
            "runs",
            ", ".join(
                f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "running", "interrupted")
            ),
        ),
        ("filters", " ".join(opts.filters) or "none"),
        ("preset", values("preset")),
        ("protocol", values("protocol")),
        ("model", values("model")),
        ("image size", values("size")),
        ("epochs", values("epochs")),
        ("metric", metric.label),
        ("summary", opts.summary),
        ("methods", ", ".join(table.methods)),
        ("cells", f"{len(table.cells)} (dataset, noise, rate)"),
        (
            "incomplete",
            f"{inc} method × cell entries with fewer seeds than planned, "
            f"{miss} with no finished run",
        ),
    ]


def build_report(
    root: str | Path,
    out: str | Path | None = None,
    options: ReportOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReportResult:
    """Write the report of ``root`` into ``out`` (default ROOT/report)."""
    opts = options or ReportOptions()
    metric = Metric(opts.metric, opts.summary)
    root = Path(root)
    out = Path(out) if out is not None else root / "report"
    t0 = time.perf_counter()
    df, n_read = load_results(root, parse_filters(opts.filters), progress)
    if df.empty:
        raise ConfigError(f"no run under {root} passes the filters {' '.join(opts.filters)}")
    df = add_keys(df[df["method"].notna() & df["dataset"].notna()])
    df, variant_notes = split_variants(df)
    seconds = {"read": time.perf_counter() - t0}
    out.mkdir(parents=True, exist_ok=True)
    values = seed_values(df, metric.column)
    expected = expected_seeds(df)
    methods = sorted(df["method"].unique())
    table = cell_table(values, expected, metric.higher_is_better, metric.scale(), methods)
    ctx = ReportContext(
        df,
        values,
        expected,
        table,
        metric,
        opts.summary,
        opts.baseline,
        opts.posthoc,
        opts.pdf,
        out,
        warnings=variant_notes,
    )
    sections: list[Section] = []
    for name, make in (
        ("main", main_section),
        ("summary", summary_section),
        ("rates", rates_section),
        ("ranks", ranks_section),
        ("baseline", baseline_section),
    ):
        t1 = time.perf_counter()
        sections.append(make(ctx))
        seconds[name] = time.perf_counter() - t1

    s = Section("imbalance", "6. Class imbalance")
    t1 = time.perf_counter()
    imbalance_section(s, df, metric, ctx.fig_dir, ctx.csvs, opts.pdf)
    seconds["imbalance"] = time.perf_counter() - t1
    sections.append(s)

    s = Section("diagnostics", "7. LNL diagnostics")
    t1 = time.perf_counter()
    diagnostics_section(s, df, expected, ctx.fig_dir, ctx.csvs, opts.pdf)
    seconds["diagnostics"] = time.perf_counter() - t1
    sections.append(s)

    s = Section("runs", "8. Runs")
    t1 = time.perf_counter()
    pages = opts.run_pages == "all" or (opts.run_pages == "auto" and len(df) <= AUTO_RUN_PAGES)
    if not any(has_folder(f) for f in df["run_folder"]):
        pages = False
        s.add_text(
            f"{len(df)} runs read from the results table {root}: per-run pages, per-epoch "
            "curves and per-class sensitivity need the run folders and are left out"
        )
    elif opts.run_pages == "auto" and not pages:
        s.add_text(
            f"{len(df)} runs: per-run pages are drawn for at most {AUTO_RUN_PAGES} runs "
            "unless --run-pages all (each page is redrawn only when its run changed)"
        )
    runs_section(s, df, out, pages)
    seconds["run_pages"] = time.perf_counter() - t1
    sections.append(s)

    counts = Counter(df["status"])
    protocol = _protocol(df, opts, metric, table, root, counts)
    title = f"lnmbench report — {root.name or root}"
    files = write_documents(out, title, protocol, ctx.warnings, sections, ctx.csvs, opts.formats)
    files += sorted(ctx.fig_dir.glob("*.p*"))
    seconds["total"] = time.perf_counter() - t0
    return ReportResult(out, files, len(df), dict(counts), n_read, seconds, ctx.warnings)


def write_documents(
    out: Path,
    title: str,
    protocol: list[tuple[str, str]],
    warnings: list[str],
    sections: list[Section],
    csvs: dict[str, pd.DataFrame],
    formats: tuple[str, ...],
) -> list[Path]:
    """report.html / report.md / report.tex / tables/*.csv as ``formats`` asks; their paths."""
    files = []
    if "html" in formats:
        body = [f"<h1>{esc(title)}</h1>", definition_box(protocol)]
        body += [f"<p class='warn'>{esc(w)}</p>" for w in warnings]
        body.append(toc([(x.anchor, x.title) for x in sections]))
        for x in sections:
            body.append(f'<h2 id="{x.anchor}">{esc(x.title)}</h2>')
            body += x.html
        (out / "report.html").write_text(page(title, "".join(body)))
        files.append(out / "report.html")
    if "md" in formats:
        md = [f"# {title}", ""] + [f"- **{k}**: {v}" for k, v in protocol] + [""]
        md += [f"> **Note:** {w}\n" for w in warnings]
        for x in sections:
            md += [f"## {x.title}", "", *x.md]
        (out / "report.md").write_text("\n".join(md))
        files.append(out / "report.md")
    if "tex" in formats:
        tex = ["% lnmbench report; needs \\usepackage{booktabs,graphicx}", "\\begin{itemize}"]
        tex += [
            f"\\item \\textbf{{{writers.latex_escape(k)}}}: {writers.latex_escape(v)}"
            for k, v in protocol
        ]
        tex.append("\\end{itemize}")
        tex += [f"\\paragraph{{Note.}} {writers.latex_escape(w)}" for w in warnings]
        for x in sections:
            tex += [f"\\section*{{{writers.latex_escape(x.title)}}}", *x.tex]
        (out / "report.tex").write_text("\n".join(tex))
        files.append(out / "report.tex")
    if "csv" in formats:
        (out / "tables").mkdir(parents=True, exist_ok=True)
        for name, frame in csvs.items():
            path = out / "tables" / f"{name}.csv"
            frame.to_csv(path, index=False, float_format="%.6g")
            files.append(path)
    return files
