"""The report's statistics sections: rankings with the Friedman and post-hoc tests (4) and
paired differences to the baseline (5)."""

from __future__ import annotations

import pandas as pd

from lnmbench.report.baseline import against_baseline
from lnmbench.report.context import ReportContext, Section
from lnmbench.report.figures import cd_diagram, forest_plot, save_figure
from lnmbench.report.ranking import rank_methods
from lnmbench.report.table_model import frame_table


def ranks_section(ctx: ReportContext) -> Section:
    """Mean ranks, Friedman test, post-hoc p-values and the CD diagram."""
    values, metric, csvs = ctx.values, ctx.metric, ctx.csvs
    fig_dir, pdf = ctx.fig_dir, ctx.pdf
    s = Section("ranks", "4. Rankings and significance")
    ranking = rank_methods(values, metric.higher_is_better, ctx.posthoc) if len(values) else None
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
                "left out (run on fewer cells than the others; ranking them would leave too few "
                "common blocks): " + ", ".join(ranking.dropped_methods)
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
                    pdf=pdf,
                )
            )
        else:
            s.add_text(
                "the Friedman test needs at least 3 methods and 2 blocks "
                f"(here {len(ranking.methods)} methods, {ranking.n_blocks} blocks); the "
                "paired comparison with the baseline follows."
            )
    return s


def baseline_section(ctx: ReportContext) -> Section:
    """Paired differences to the baseline, bootstrap intervals, Wilcoxon, forest plot."""
    values, metric, csvs, warnings = ctx.values, ctx.metric, ctx.csvs, ctx.warnings
    fig_dir, pdf = ctx.fig_dir, ctx.pdf
    s = Section("baseline", f"5. Against the baseline ({ctx.baseline})")
    if ctx.baseline in set(values["method"]):
        diffs = against_baseline(values, ctx.baseline, metric.scale())
        csvs["baseline"] = diffs
        s.add_table(
            frame_table(
                diffs,
                f"paired differences to {ctx.baseline} over matched (dataset, noise, "
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
                    forest_plot(diffs, ctx.baseline, metric.short),
                    fig_dir,
                    "forest_baseline",
                    f"difference to {ctx.baseline}",
                    rel="figures/",
                    pdf=pdf,
                )
            )
    else:
        msg = (
            f"baseline {ctx.baseline!r} has no finished run (methods: "
            f"{', '.join(sorted(set(values['method'])))}); use --baseline"
        )
        s.add_text(msg)
        warnings.append(msg)
    return s
