"""benchmarks/validity.py --export: a committed benchmark table becomes a results table that
`lnmbench report` reads without the run folders (which the benchmarks do not keep)."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import import_benchmark
from lnmbench.report import ReportOptions, build_report


@pytest.fixture(scope="module")
def validity():
    return import_benchmark("validity")


def _row(validity, method: str, seed: int, acc: float, **extra) -> dict:
    cfg = validity.config("demo", "symmetric", 0.5, seed, method, False)
    return {
        "dataset": "demo",
        "noise": "symmetric",
        "rate": 0.5,
        "seed": seed,
        "method": method,
        "config_hash": cfg.config_hash(),
        "epochs": cfg.epochs,
        "acc_last5": acc,
        "acc_peak": acc + 0.1,
        "bal_acc_last5": acc - 0.05,
        "sel_precision": extra.get("sel_precision", float("nan")),
        "t_error": float("nan"),
        "wall_s": 10.0,
    }


def test_validity_rows_export_to_a_reportable_results_table(validity, tmp_path):
    rows = [
        _row(validity, "ce", 0, 0.40),
        _row(validity, "ce", 1, 0.50),
        _row(validity, "coteaching", 0, 0.80, sel_precision=0.9),
        _row(validity, "coteaching", 1, 0.84, sel_precision=0.92),
    ]
    table = pd.DataFrame(rows)
    exported = validity.store_table(table, "method", lambda *c: validity.config(*c, False))
    co = exported[exported["method"] == "coteaching"].iloc[0]
    assert co["accuracy_last5"] == co["test_acc_last5"] == co["headline"] == 0.80
    assert co["balanced_accuracy_last5"] == pytest.approx(0.75)
    assert co["test_acc_best_oracle"] == pytest.approx(0.90)
    assert co["selection_precision"] == 0.9 and co["preset"] == "fast" and co["status"] == "done"
    assert co["run"].startswith("coteaching_demo_symmetric0.5_s0_")
    path = tmp_path / "validity.parquet"
    validity.export_store_table(exported, path)
    opts = ReportOptions(metric="balanced_accuracy", pdf=False, formats=("csv",))
    build_report(path, tmp_path / "report", opts)
    cells = pd.read_csv(tmp_path / "report" / "tables" / "cells.csv").set_index("method")
    assert cells["mean"].to_dict() == pytest.approx({"ce": 40.0, "coteaching": 77.0})
    # a row made by other code (its hash is not the current config's) is refused, not mislabelled
    stale = table.assign(config_hash=["0" * 64, *table["config_hash"][1:]])
    with pytest.raises(ValueError, match="not the current config"):
        validity.store_table(stale, "method", lambda *c: validity.config(*c, False))
    with pytest.raises(SystemExit, match=r"must end in \.parquet or \.csv"):
        validity.export_store_table(exported, tmp_path / "validity.txt")


def test_validity_summary_names_the_cells_with_unlearnable_classes(validity):
    rows = [
        _row(validity, "ce", 0, 0.40),
        _row(validity, "ce", 1, 0.50),
        _row(validity, "coteaching", 0, 0.80),
        _row(validity, "coteaching", 1, 0.84),
    ]
    table = pd.DataFrame(rows)
    # the real cells' noise: symmetric 0.5 over 8 classes leaves every class learnable
    unlearnable = validity.unlearnable_by_cell(table, lambda *c: validity.config(*c, "ce", False))
    assert unlearnable == {("demo", "symmetric", 0.5, 0): [], ("demo", "symmetric", 0.5, 1): []}
    text = validity.summary_markdown(table, "demo", unlearnable=unlearnable)
    assert "| coteaching | +37.0 (+40.0 / +34.0) |" in text and "unlearnable" not in text
    marked = {**unlearnable, ("demo", "symmetric", 0.5, 1): [3, 5]}
    text = validity.summary_markdown(table, "demo", unlearnable=marked)
    assert text.endswith("unlearnable (noise.json): symmetric 0.5 seed 1 (class 3, 5)")
    # another dataset's marked cells are not named in this dataset's summary
    other = {**unlearnable, ("breastmnist", "instance", 0.5, 0): [1]}
    assert "unlearnable" not in validity.summary_markdown(table, "demo", unlearnable=other)
