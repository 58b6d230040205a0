"""Build the report of a result root: read the results table, compute every section, write
report.html (self-contained), report.md, report.tex, tables/*.csv and figures/*.png|pdf."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lnmbench.errors import ConfigError
from lnmbench.experiment.store import parse_filters
from lnmbench.report import writers
from lnmbench.report.baseline import against_baseline
from lnmbench.report.cells import CellTable, cell_table, expected_seeds, seed_values
from lnmbench.report.diagnostics import DIAGNOSTIC_TABLES, selection_curves
from lnmbench.report.figures import (
    FigureRef,
    cd_diagram,
    epoch_curves,
    forest_plot,
    heatmaps,
    pattern_bars,
    rate_curves,
    save_figure,
)
from lnmbench.report.html_page import definition_box, esc, figure_html, page, toc
from lnmbench.report.imbalance import per_class_sensitivity
from lnmbench.report.load import add_keys, load_results, rate_label
from lnmbench.report.metric import Metric
from lnmbench.report.paper import paper_averages
from lnmbench.report.patterns import pattern_averages, pattern_names
from lnmbench.report.ranking import rank_methods
from lnmbench.report.run_pages import is_fresh, page_name, write_run_page
from lnmbench.report.table_model import (
    Cell,
    Table,
    fmt,
    frame_table,
    incomplete_count,
    main_tables,
)

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


def _values(df: pd.DataFrame, column: str) -> pd.DataFrame:
    return seed_values(df, column)


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
    seconds = {"read": time.perf_counter() - t0}
    counts = Counter(df["status"])
    warnings: list[str] = []
    fig_dir = out / "figures"
    tab_dir = out / "tables"
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    csvs: dict[str, pd.DataFrame] = {}

    values = _values(df, metric.column)
    expected = expected_seeds(df)
    table = cell_table(
        values,
        expected,
        metric.higher_is_better,
        metric.scale(),
        methods=sorted(df["method"].unique()),
    )
    sections: list[Section] = []

    # 1. main tables
    s = Section("main", "1. Main tables")
    mains = main_tables(table, metric.label)
    for t in mains:
        s.add_table(t)
    if not mains:
        s.add_text("no cell has a finished run yet")
    csvs["cells"] = _cells_frame(table)
    for t in mains:
        d, n = t.title.split(" — ")
        sub = csvs["cells"]
        csvs[t.key] = sub[(sub["dataset"] == d) & (sub["noise"] == n)]
    sections.append(s)

    # 2. summary by noise pattern
    s = Section("summary", "2. Summary by noise pattern")
    pats = pattern_averages(table, metric.higher_is_better)
    names = pattern_names(table)
    paper = paper_averages()
    datasets = set(df["dataset"].unique())
    from_paper = (
        metric.name == "accuracy" and opts.summary == "last5" and datasets <= set(paper.datasets)
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
                pdf=opts.pdf,
            )
        )
    sections.append(s)

    # 3. against noise rate
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
                pdf=opts.pdf,
            )
        )
    sections.append(s)

    # 4. rankings
    s = Section("ranks", "4. Rankings and significance")
    ranking = rank_methods(values, metric.higher_is_better, opts.posthoc) if len(values) else None
    if ranking is None or ranking.n_blocks == 0:
        s.add_text("no block where every method finished: no ranking")
    else:
        rk = pd.DataFrame(
            {"method": ranking.mean_rank.index, "mean rank": ranking.mean_rank.to_numpy()}
        )
        rk["blocks"] = ranking.n_blocks
        s.add_table(
            frame_table(
                rk,
                f"mean rank over {ranking.n_blocks} {ranking.block_kind} blocks (1 = best)",
                "ranks",
            )
        )
        csvs["ranks"] = rk
        if ranking.dropped_methods:
            s.add_text(
                "left out (no block in common with the others): "
                + ", ".join(ranking.dropped_methods)
            )
        if ranking.friedman_stat == ranking.friedman_stat:
            s.add_text(
                f"Friedman test over {len(ranking.methods)} methods and "
                f"{ranking.n_blocks} blocks: chi² = {ranking.friedman_stat:.3f}, "
                f"p = {ranking.friedman_p:.3g}. Post-hoc: {ranking.posthoc} "
                f"(scikit-posthocs); Nemenyi critical difference at alpha 0.05: "
                f"{ranking.cd:.3f}."
            )
            pv = ranking.pvalues.copy()
            pv.insert(0, "method", pv.index)
            s.add_table(
                frame_table(
                    pv.reset_index(drop=True),
                    f"{ranking.posthoc} post-hoc p-values",
                    "posthoc",
                    digits=dict.fromkeys(ranking.methods, 3),
                )
            )
            csvs["posthoc_pvalues"] = pv
            s.add_figure(
                save_figure(
                    cd_diagram(
                        ranking.mean_rank,
                        ranking.pvalues,
                        f"critical-difference diagram ({ranking.posthoc}, alpha 0.05)",
                    ),
                    fig_dir,
                    "cd_diagram",
                    "mean ranks; bars join methods not significantly different",
                    rel="figures/",
                    pdf=opts.pdf,
                )
            )
        else:
            s.add_text(
                "the Friedman test needs at least 3 methods and 2 blocks "
                f"(here {len(ranking.methods)} methods, {ranking.n_blocks} blocks); the "
                "paired comparison with the baseline follows."
            )
    sections.append(s)

    # 5. baseline
    s = Section("baseline", f"5. Against the baseline ({opts.baseline})")
    if opts.baseline in set(values["method"]):
        diffs = against_baseline(values, opts.baseline, metric.scale())
        csvs["baseline"] = diffs
        s.add_table(
            frame_table(
                diffs,
                f"paired differences to {opts.baseline} over matched (dataset, noise, "
                f"rate, seed) runs ({metric.label})",
                "baseline",
                digits={"wilcoxon_p": 3},
                notes=[
                    "mean_diff = mean of (method − baseline); 95 % percentile bootstrap "
                    "interval (scipy.stats.bootstrap, 2000 resamples); two-sided Wilcoxon "
                    "signed-rank p-value; wins/losses = pairs above/below the baseline."
                ],
            )
        )
        if len(diffs):
            s.add_figure(
                save_figure(
                    forest_plot(diffs, opts.baseline, metric.short),
                    fig_dir,
                    "forest_baseline",
                    f"difference to {opts.baseline}",
                    rel="figures/",
                    pdf=opts.pdf,
                )
            )
    else:
        msg = (
            f"baseline {opts.baseline!r} has no finished run (methods: "
            f"{', '.join(sorted(set(values['method'])))}); use --baseline"
        )
        s.add_text(msg)
        warnings.append(msg)
    sections.append(s)

    # 6. class imbalance
    s = Section("imbalance", "6. Class imbalance")
    t1 = time.perf_counter()
    _imbalance_section(s, df, metric, fig_dir, csvs, opts.pdf)
    seconds["imbalance"] = time.perf_counter() - t1
    sections.append(s)

    # 7. diagnostics
    s = Section("diagnostics", "7. LNL diagnostics")
    t1 = time.perf_counter()
    _diagnostics_section(s, df, expected, fig_dir, csvs, opts.pdf)
    seconds["diagnostics"] = time.perf_counter() - t1
    sections.append(s)

    # 8. runs
    s = Section("runs", "8. Runs")
    t1 = time.perf_counter()
    pages = opts.run_pages == "all" or (opts.run_pages == "auto" and len(df) <= AUTO_RUN_PAGES)
    if opts.run_pages == "auto" and not pages:
        s.add_text(
            f"{len(df)} runs: per-run pages are drawn for at most {AUTO_RUN_PAGES} runs "
            "unless --run-pages all (each page is redrawn only when its run changed)"
        )
    _runs_section(s, df, out, pages)
    seconds["run_pages"] = time.perf_counter() - t1
    sections.append(s)

    protocol = _protocol(df, opts, metric, table, root, counts)
    title = f"lnmbench report — {root.name or root}"
    if "html" in opts.formats:
        body = [f"<h1>{esc(title)}</h1>", definition_box(protocol)]
        body += [f"<p class='warn'>{esc(w)}</p>" for w in warnings]
        body.append(toc([(x.anchor, x.title) for x in sections]))
        for x in sections:
            body.append(f'<h2 id="{x.anchor}">{esc(x.title)}</h2>')
            body += x.html
        (out / "report.html").write_text(page(title, "".join(body)))
        files.append(out / "report.html")
    if "md" in opts.formats:
        md = [f"# {title}", ""] + [f"- **{k}**: {v}" for k, v in protocol] + [""]
        for x in sections:
            md += [f"## {x.title}", "", *x.md]
        (out / "report.md").write_text("\n".join(md))
        files.append(out / "report.md")
    if "tex" in opts.formats:
        tex = ["% lnmbench report; needs \\usepackage{booktabs,graphicx}"]
        tex += (
            ["\\begin{itemize}"]
            + [
                f"\\item \\textbf{{{writers.latex_escape(k)}}}: {writers.latex_escape(v)}"
                for k, v in protocol
            ]
            + ["\\end{itemize}"]
        )
        for x in sections:
            tex += [f"\\section*{{{writers.latex_escape(x.title)}}}", *x.tex]
        (out / "report.tex").write_text("\n".join(tex))
        files.append(out / "report.tex")
    if "csv" in opts.formats:
        tab_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in csvs.items():
            path = tab_dir / f"{name}.csv"
            frame.to_csv(path, index=False, float_format="%.6g")
            files.append(path)
    files += sorted(fig_dir.glob("*.p*"))
    seconds["total"] = time.perf_counter() - t0
    return ReportResult(out, files, len(df), dict(counts), n_read, seconds, warnings)


def _cells_frame(table: CellTable) -> pd.DataFrame:
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


def _imbalance_section(
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


def _diagnostics_section(
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
        csvs[col] = _cells_frame(t)
    if not any_table and curves.empty:
        s.add_text(
            "no run logged selection, correction or transition-matrix diagnostics "
            "(methods such as coteaching, dividemix, disc, t-revision, volminnet do)"
        )


def _runs_section(s: Section, df: pd.DataFrame, out: Path, run_pages: bool) -> None:
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
        folder = Path(rec.run_folder)
        link = None
        if run_pages:
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
        f"<h3>{len(rows)} runs</h3><table class='t'><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in header)
        + f"</tr></thead><tbody>{''.join(html_rows)}</tbody></table>"
    )
    s.md.append(writers.to_markdown(table))
