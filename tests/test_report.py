"""The report layer on generated result stores with known numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from lnmbench.cli import app
from lnmbench.engine.run_status import run_lock
from lnmbench.errors import ConfigError
from lnmbench.report import ReportOptions, build_report
from lnmbench.report.baseline import against_baseline, bootstrap_ci, paired_differences
from lnmbench.report.build import parse_formats
from lnmbench.report.cells import cell_table, expected_seeds, seed_values
from lnmbench.report.example_store import write_run
from lnmbench.report.load import add_keys, load_results
from lnmbench.report.metric import Metric
from lnmbench.report.paper import paper_averages
from lnmbench.report.patterns import pattern_averages
from lnmbench.report.ranking import rank_methods
from lnmbench.report.run_pages import write_run_page
from lnmbench.report.table_model import main_tables
from lnmbench.report.variants import split_variants
from lnmbench.report.writers import to_latex, to_markdown

# method -> (rate -> value per seed); known numbers, fractions
KNOWN = {
    "ce": {0.2: [0.60, 0.62], 0.5: [0.50, 0.54]},
    "sce": {0.2: [0.70, 0.74], 0.5: [0.55, 0.57]},
    "coteaching": {0.2: [0.65, 0.67], 0.5: [0.58]},  # seed 1 at 0.5 unfinished
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    for m, by_rate in KNOWN.items():
        for rate, vals in by_rate.items():
            for seed, v in enumerate(vals):
                write_run(root, m, "bloodmnist", "symmetric", rate, seed, v, epochs=3)
    write_run(root, "coteaching", "bloodmnist", "symmetric", 0.5, 1, None, epochs=3)  # running
    write_run(root, "ce", "bloodmnist", "instance", 0.5, 0, 0.40, epochs=3)  # only ce here
    write_run(root, "sce", "bloodmnist", "instance", 0.5, 0, 0.0, failed=True)
    return root


@pytest.fixture(scope="module")
def table_df(store):
    df, _ = load_results(store)
    return add_keys(df)


def _table(df, metric: Metric | None = None):
    metric = metric or Metric()
    values = seed_values(df, metric.column)
    return cell_table(values, expected_seeds(df), metric.higher_is_better, metric.scale())


def test_table_values_seed_counts_missing_and_incomplete(table_df):
    t = _table(table_df)
    assert t.methods == ["ce", "coteaching", "sce"]
    assert t.cells == [
        ("bloodmnist", "instance", 0.5),
        ("bloodmnist", "symmetric", 0.2),
        ("bloodmnist", "symmetric", 0.5),
    ]
    sce, cot, ce = t.methods.index("sce"), t.methods.index("coteaching"), t.methods.index("ce")
    assert t.mean[sce, 1] == pytest.approx(72.0)
    assert t.std[sce, 1] == pytest.approx(np.std([70, 74], ddof=1))
    assert t.n[cot, 2] == 1 and t.expected[2] == 2 and t.incomplete[cot, 2]
    assert np.isnan(t.std[cot, 2])  # one seed: no std
    assert t.missing[sce, 0] and not t.missing[ce, 0]  # sce failed on instance: "–"
    # ranks per column, 1 = best: rate 0.2 sce > coteaching > ce; rate 0.5 coteaching 58 > sce 56
    assert list(t.rank[:, 1]) == [3, 2, 1]
    assert list(t.rank[:, 2]) == [3, 1, 2]


def test_bold_second_dash_and_dagger_in_every_format(table_df):
    tables = {t.key: t for t in main_tables(_table(table_df), "acc")}
    sym = tables["main_bloodmnist_symmetric"]
    rows = {r[0].text: r for r in sym.rows}
    assert rows["sce"][1].text == "72.00 ± 2.83" and rows["sce"][1].mark == "best"
    assert rows["coteaching"][1].mark == "second" and rows["ce"][1].mark is None
    assert rows["coteaching"][2].text == "58.00" and rows["coteaching"][2].flag
    assert rows["coteaching"][2].note == "1/2"
    md = to_markdown(sym)
    assert "**72.00 ± 2.83**" in md and "<ins>66.00 ± 1.41</ins>" in md and "†" in md
    tex = to_latex(sym)
    assert r"\textbf{72.00 $\pm$ 2.83}" in tex and r"\underline{66.00 $\pm$ 1.41}" in tex
    assert r"\toprule" in tex and r"$^\dagger$" in tex
    inst = tables["main_bloodmnist_instance"]
    assert [r[0].text for r in inst.rows] == ["ce"]  # rows with no finished run are left out


def test_lower_is_better_metric_ranks_the_smallest_first(table_df):
    t = _table(table_df, Metric("ece", "final"))
    assert list(t.rank[:, 1]) == [1, 2, 3]  # ce has the smallest value


def test_pattern_averages_and_the_paper_numbers(table_df):
    pats = pattern_averages(_table(table_df))
    row = pats.set_index("method").loc["ce"]
    assert row["symmetric"] == pytest.approx((61 + 52) / 2)
    assert row["instance"] == pytest.approx(40.0)
    assert row["overall"] == pytest.approx(((61 + 52) / 2 + 40) / 2)
    assert (
        row["instance_cells"] == "1/1"
        and pats.set_index("method").loc["sce", "instance_cells"] == "0/1"
    )
    assert list(pats["method"]) == ["sce", "coteaching", "ce"]  # by overall, best first
    paper = paper_averages()
    rows = paper.rows
    assert (
        rows["Co-teaching"]["symmetric"],
        rows["Co-teaching"]["instance"],
        rows["Co-teaching"]["real-world"],
    ) == (60.41, 60.00, 45.31)
    assert rows["DivideMix"]["real-world"] == 38.75 and rows["CE"]["instance"] == 53.61
    for r in rows.values():  # the figure's overall bar is the mean of its three pattern bars
        assert r["overall"] == pytest.approx(
            (r["symmetric"] + r["instance"] + r["real-world"]) / 3, abs=0.011
        )
    assert "fig2.png" in paper.source["source"]
    assert paper.for_methods(["ce", "sce"])["ce"]["paper_name"] == "CE"


def test_friedman_matches_scipy_and_ranks_are_exact(table_df):
    values = seed_values(table_df, "accuracy_last5")
    r = rank_methods(values)
    assert r.block_kind == "cell × seed"
    # complete blocks: rate 0.2 seeds 0 and 1, rate 0.5 seed 0 (coteaching seed 1 unfinished)
    blocks = np.array([[0.60, 0.65, 0.70], [0.62, 0.67, 0.74], [0.50, 0.58, 0.55]])
    np.testing.assert_allclose(r.blocks, blocks)
    stat, p = stats.friedmanchisquare(*blocks.T)
    assert r.friedman_stat == pytest.approx(stat) and r.friedman_p == pytest.approx(p)
    assert r.mean_rank.to_dict() == pytest.approx({"sce": 4 / 3, "coteaching": 5 / 3, "ce": 3.0})
    assert r.pvalues.shape == (3, 3) and list(r.pvalues.index) == r.methods


def test_bootstrap_interval_covers_a_known_difference():
    rng = np.random.default_rng(1)
    true = 2.0
    covered = 0
    for _ in range(200):
        d = true + rng.normal(0, 1.5, size=30)
        lo, hi = bootstrap_ci(d)
        assert lo < d.mean() < hi
        covered += lo <= true <= hi
    assert 0.88 <= covered / 200 <= 0.99  # nominal 95 %


def test_paired_differences_match_seeds_and_wilcoxon(table_df):
    values = seed_values(table_df, "accuracy_last5")
    diffs = paired_differences(values, "ce")
    sce = diffs[diffs["method"] == "sce"].sort_values(["rate_key", "seed"])
    np.testing.assert_allclose(sce["diff"], [0.10, 0.12, 0.05, 0.03])
    res = against_baseline(values, "ce").set_index("method")
    assert res.loc["sce", "n_pairs"] == 4 and res.loc["sce", "mean_diff"] == pytest.approx(7.5)
    assert res.loc["sce", "wilcoxon_p"] == pytest.approx(stats.wilcoxon([10, 12, 5, 3]).pvalue)
    assert res.loc["coteaching", "n_pairs"] == 3 and res.loc["sce", "wins"] == 4
    with pytest.raises(ConfigError, match="baseline 'nope' has no finished run; methods: ce"):
        paired_differences(values, "nope")


def test_bad_options_and_empty_root_give_one_line_errors(tmp_path, store):
    with pytest.raises(ConfigError, match="unknown metric 'acc'; known: accuracy, balanced"):
        Metric("acc")
    with pytest.raises(ConfigError, match="unknown summary 'best'; known: last5, best_val"):
        Metric("accuracy", "best")
    with pytest.raises(ConfigError, match="unknown format pdf; known: html, md, tex, csv"):
        parse_formats("html,pdf")
    with pytest.raises(ConfigError, match="no run folders under"):
        build_report(tmp_path)
    with pytest.raises(ConfigError, match="no run .* passes the filters"):
        build_report(store, tmp_path / "r", ReportOptions(filters=["method=nope"]))


def test_results_parquet_is_reused_for_finished_runs(tmp_path):
    for s in (0, 1):
        write_run(tmp_path, "ce", "demo", "symmetric", 0.2, s, 0.5)
    write_run(tmp_path, "ce", "demo", "symmetric", 0.5, 0, None)  # unfinished
    df, read = load_results(tmp_path)
    assert read == 3 and (tmp_path / "results.parquet").exists()
    df2, read2 = load_results(tmp_path)
    assert read2 == 1  # only the unfinished run is read again
    pd.testing.assert_frame_equal(df, df2)


def test_report_files_on_a_partial_store(store, tmp_path):
    out = tmp_path / "report"
    running = next(
        p
        for p in store.iterdir()
        if p.is_dir() and not (p / "summary.json").exists() and not (p / "failed.txt").exists()
    )
    with run_lock(running) as got:  # a worker is training this run now
        assert got
        res = build_report(store, out, ReportOptions(posthoc="conover", run_pages="none"))
    html = (out / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing fetched
    assert html.count("data:image/png;base64,") >= 5
    # every table sits in a box that scrolls sideways, so a wide one never widens the page
    assert html.count("<table") == html.count('<div class="tw"><table') > 5
    for anchor in (
        "main",
        "summary",
        "rates",
        "ranks",
        "baseline",
        "imbalance",
        "diagnostics",
        "runs",
    ):
        assert f'id="{anchor}"' in html
    assert "1 running" in html and "1 failed" in html and "Friedman test" in html
    assert (out / "report.md").exists() and (out / "report.tex").exists()
    for name in ("pattern_summary", "rate_curves", "cd_diagram", "forest_baseline"):
        assert (out / "figures" / f"{name}.png").exists()
        assert (out / "figures" / f"{name}.pdf").exists()
    cells = pd.read_csv(out / "tables" / "cells.csv")
    sce = cells[(cells["method"] == "sce") & (cells["rate"].astype(str) == "0.2")].iloc[0]
    assert sce["mean"] == pytest.approx(72.0) and sce["mark"] == "best"
    assert res.status_counts == {"done": 12, "running": 1, "failed": 1}
    page = write_run_page(running, out / "runs")  # an unfinished run has its page too
    assert "not finished: 3 epochs logged so far" in page.read_text()
    # the paper's columns stand beside ours on the paper's datasets (bloodmnist is one)
    assert "symmetric (paper)" in pd.read_csv(out / "tables" / "patterns.csv").columns
    # deterministic: a second build gives the same HTML (the running run now reads interrupted)
    build_report(store, out, ReportOptions(posthoc="conover", run_pages="none", pdf=False))
    then = html.replace("1 running, 0 interrupted", "0 running, 1 interrupted")
    assert (out / "report.html").read_text() == then.replace(">running</td>", ">interrupted</td>")


def test_configuration_variants_are_split_not_averaged(tmp_path):
    """An ablation run beside the preset run of the same cell and seed is its own row."""
    root = tmp_path / "store"
    for seed, v in enumerate([0.58, 0.60]):
        write_run(
            root,
            "coteaching",
            "bloodmnist",
            "symmetric",
            0.5,
            seed,
            v,
            epochs=3,
            hparams={"forget_ramp_epochs": 7},
        )  # the fast preset's value
        write_run(root, "ce", "bloodmnist", "symmetric", 0.5, seed, 0.5, epochs=3)
    write_run(
        root,
        "coteaching",
        "bloodmnist",
        "symmetric",
        0.5,
        0,
        0.70,
        epochs=3,
        hparams={"forget_ramp_epochs": 10},
    )
    df, notes = split_variants(add_keys(load_results(root)[0]))
    assert sorted(df["method"].unique()) == [
        "ce",
        "coteaching",
        "coteaching [forget_ramp_epochs=10]",
    ]
    assert len(notes) == 1 and "forget_ramp_epochs" in notes[0]
    out = tmp_path / "report"
    res = build_report(root, out, ReportOptions(run_pages="none", pdf=False))
    cells = pd.read_csv(out / "tables" / "cells.csv").set_index("method")
    assert cells.loc["coteaching", "mean"] == pytest.approx(59.0)  # 0.70 not mixed in
    assert cells.loc["coteaching [forget_ramp_epochs=10]", "mean"] == pytest.approx(70.0)
    assert any("not averaged" in w for w in res.warnings)
    assert "not averaged" in (out / "report.html").read_text()
    assert "not averaged" in (out / "report.md").read_text()
    # the CLI prints the labels with their brackets (not eaten as console markup)
    res = CliRunner().invoke(app, ["report", str(root), "--out", str(out), "--format", "md"])
    assert res.exit_code == 0 and "coteaching [forget_ramp_epochs=10]" in res.output
    # one configuration per cell and seed: nothing is relabelled
    same, none = split_variants(add_keys(load_results(root, {"seed": 1})[0]))
    assert none == [] and sorted(same["method"].unique()) == ["ce", "coteaching"]


def test_ranking_drops_a_one_cell_method_rather_than_rank_on_a_single_block():
    """Four methods on two cells and an ablation variant on one: the variant is left out and
    the Friedman test runs over the two blocks (not over the one block all five share)."""
    rows = []
    for j, (noise, rate) in enumerate([("symmetric", 0.5), ("symmetric", 0.8)]):
        for i, m in enumerate(["a", "b", "c", "d"]):
            rows.append(("demo", noise, "symmetric", rate, 0, m, 0.5 + 0.1 * i - 0.05 * j))
    rows.append(("demo", "symmetric", "symmetric", 0.5, 0, "a [x=1]", 0.9))
    cols = ["dataset", "noise", "pattern", "rate_key", "seed", "method", "value"]
    r = rank_methods(pd.DataFrame(rows, columns=cols))
    assert r.dropped_methods == ["a [x=1]"] and r.n_blocks == 2
    assert list(r.mean_rank.index) == ["d", "c", "b", "a"] and np.isfinite(r.friedman_stat)
    # a one-cell comparison keeps every method (nothing to gain by dropping any)
    one = pd.DataFrame([r for r in rows if r[3] == 0.5 and "[" not in r[5]], columns=cols)
    r1 = rank_methods(one)
    assert r1.dropped_methods == [] and r1.n_blocks == 1 and len(r1.methods) == 4


def test_long_variant_labels_fit_inside_the_figures():
    from lnmbench.report.figures import forest_plot, heatmaps

    long = "dividemix-oracle [milestones=[10,20], rampup_epochs=16, schedule=constant]"
    diffs = pd.DataFrame(
        {"method": ["ce-ls", long], "mean_diff": [1.0, 2.0], "ci_low": [0.0, 1.0],
         "ci_high": [2.0, 3.0]}
    )  # fmt: skip
    for fig in (
        forest_plot(diffs, "ce", "test accuracy (%)"),
        heatmaps([("rate 0.5", np.full((2, 3), 50.0))], ["ce", long], ["0", "1", "2"]),
    ):
        fig.draw_without_rendering()
        box = fig.get_tightbbox()  # inches: every drawn label, ticks included
        assert box.x0 >= -0.05 and box.x1 <= fig.get_figwidth() + 0.05


def test_report_from_a_results_table_matches_the_folder_report(store, tmp_path):
    """`lnmbench results --parquet/--csv` then `lnmbench report FILE`: the same numbers as the
    report of the run folders, without them (no run pages, per-epoch curves or per-class rows)."""
    runner = CliRunner()
    pq, csv = tmp_path / "t.parquet", tmp_path / "t.csv"
    res = runner.invoke(app, ["results", str(store), "--parquet", str(pq), "--csv", str(csv)])
    assert res.exit_code == 0, res.output
    opts = ReportOptions(run_pages="none", pdf=False, formats=("md", "csv"))
    build_report(store, tmp_path / "folders", opts)
    want = pd.read_csv(tmp_path / "folders" / "tables" / "cells.csv")
    for table in (pq, csv):
        out = tmp_path / table.suffix[1:]
        res = runner.invoke(app, ["report", str(table), "--out", str(out), "--no-pdf"])
        assert res.exit_code == 0, res.output
        assert "read from the table" in res.output
        got = pd.read_csv(out / "tables" / "cells.csv")
        pd.testing.assert_frame_equal(got, want)
        for name in ("ranks", "baseline"):
            pd.testing.assert_frame_equal(
                pd.read_csv(out / "tables" / f"{name}.csv"),
                pd.read_csv(tmp_path / "folders" / "tables" / f"{name}.csv"),
            )
        md = (out / "report.md").read_text()
        assert "runs read from the results table" in md and "runs/" not in md
        assert "1 interrupted" in md and "1 failed" in md  # statuses come from the table
    df, read = load_results(csv)
    assert read == 0 and df["run_folder"].isna().all() and len(df) == 14


def test_results_table_errors_name_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match=r"results table .*nope\.parquet not found"):
        load_results(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.csv"
    bad.write_text("method,dataset,noise,rate,accuracy_last5\nce,demo,symmetric,0.5,0.4\n")
    with pytest.raises(ConfigError, match=r"bad\.csv lacks the column\(s\) seed"):
        load_results(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("method,dataset,noise,rate,seed\n")
    with pytest.raises(ConfigError, match=r"empty\.csv has no rows"):
        load_results(empty)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(ConfigError, match=r"junk\.parquet cannot be read"):
        load_results(junk)
    # a minimal hand-made table is enough: missing columns are empty, status defaults to done
    ok = tmp_path / "ok.csv"
    ok.write_text(
        "method,dataset,noise,rate,seed,accuracy_last5\n"
        "ce,demo,symmetric,0.5,0,0.40\nce,demo,symmetric,0.5,1,0.44\n"
        "sce,demo,symmetric,0.5,0,0.50\nsce,demo,symmetric,0.5,1,0.56\n"
    )
    res = build_report(ok, tmp_path / "r", ReportOptions(pdf=False, formats=("csv",)))
    assert res.status_counts == {"done": 4}
    cells = pd.read_csv(tmp_path / "r" / "tables" / "cells.csv")
    assert cells.set_index("method")["mean"].to_dict() == pytest.approx({"ce": 42.0, "sce": 53.0})
