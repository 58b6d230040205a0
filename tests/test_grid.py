"""Benchmark grids: spec expansion and hashing, the result store, the grid runner (failures,
--retry-failed), the grid/results commands, and resuming after the driver is killed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from lnmbench import cli_grid
from lnmbench.errors import ConfigError, UnknownNameError
from lnmbench.executors import ExecutorOptions, RunTask, create_executor
from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.grid import (
    CostSettings,
    estimate_seconds,
    expand_grid,
    grid_cells,
    load_grid_spec,
    measured_images_per_s,
    parse_grid_spec,
    run_cost,
)
from lnmbench.experiment.grid_runner import run_grid
from lnmbench.experiment.store import (
    find_run_folders,
    mean_std_over_seeds,
    results_table,
    run_lock,
    run_status,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
cli_grid.console.width = 200


def make_app() -> typer.Typer:
    """The commands as the main CLI registers them."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("grid")(cli_grid.grid)
    app.command("results")(cli_grid.results)
    return app


def _write_npz(path: Path, sizes: tuple[int, int, int]) -> Path:
    from lnmbench.data import load_dataset

    ds = load_dataset("demo")
    out = {}
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        out[f"{split}_images"] = ds[split].images[:n].permute(0, 2, 3, 1).numpy()
        out[f"{split}_labels"] = ds[split].labels[:n].numpy()[:, None]
    np.savez(path, **out)
    return path


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    """160/64/64 images of the bundled demo set, MedMNIST layout."""
    return _write_npz(tmp_path_factory.mktemp("grid") / "tiny.npz", (160, 64, 64))


def small_spec(npz: Path, **over) -> dict:
    spec = {
        "name": "small",
        "preset": "fast",
        "methods": ["ce", "sce"],
        "datasets": [str(npz)],
        "noise": "symmetric",
        "rates": [0.4],
        "seeds": [0, 1],
        "overrides": {"model": "cnn-tiny", "epochs": 1},
        "hparams": {"all": {"batch_size": 32}},
    }
    spec.update(over)
    return spec


# --------------------------------------------------------------------------- expansion


def test_blocks_products_exclude_include_and_dedupe(tiny_npz):
    spec = parse_grid_spec(
        {
            "methods": ["ce", "sce"],
            "seeds": [0, 1],
            "overrides": {"model": "cnn-tiny"},
            "blocks": [
                {
                    "name": "synthetic",
                    "datasets": [str(tiny_npz)],
                    "noise": ["symmetric", {"name": "pairflip"}],
                    "rates": [0.2, 0.5],
                },
                # rate-less noise: one cell per (method, seed) whatever the rates
                {"name": "real", "datasets": [str(tiny_npz)], "noise": "realworld"},
            ],
            "exclude": [{"method": "sce", "rate": 0.5, "noise": ["symmetric", "pairflip"]}],
            "include": [  # the same as a block cell -> merged by hash
                {"method": "ce", "dataset": str(tiny_npz), "noise": "symmetric", "rate": 0.2}
            ],
        }
    )
    cells, excluded = grid_cells(spec)
    assert excluded == 4  # sce × 2 noises × rate 0.5 × 2 seeds
    assert len(cells) == 2 * 2 * 2 * 2 - 4 + 2 * 2 + 1
    real = [c for c in cells if c.block == "real"]
    assert {(c.method, c.rate, c.seed) for c in real} == {
        (m, 0.0, s) for m in ("ce", "sce") for s in (0, 1)
    }
    plan = expand_grid(spec)
    assert plan.duplicates == 1 and plan.excluded == 4 and not plan.problems
    assert len(plan.runs) == 16
    names = {r.name for r in plan.runs}
    assert len(names) == 16
    assert "ce_tiny_symmetric0.2_s0_" in " ".join(sorted(names))
    assert not any(n.startswith("sce_tiny_symmetric0.5") for n in names)
    assert sum(n.startswith("ce_tiny_realworld_") for n in names) == 2
    assert all(r.config.progress is False for r in plan.runs)


def test_same_config_same_folder_any_change_another(tiny_npz):
    base = small_spec(tiny_npz, methods=["ce"], seeds=[0])
    (run,) = expand_grid(parse_grid_spec(base)).runs
    # the folder a grid run writes is the folder `lnmbench run` writes for the same settings
    direct = resolve_config(
        {
            "method": "ce",
            "dataset": str(tiny_npz),
            "noise": {"name": "symmetric", "rate": 0.4},
            "seed": 0,
            "model": "cnn-tiny",
            "epochs": 1,
            "hparams": {"batch_size": 32},
        }
    )
    assert run.name == direct.run_name()
    assert run.name == expand_grid(parse_grid_spec(base)).runs[0].name
    # non-semantic settings keep the folder
    same = small_spec(
        tiny_npz, methods=["ce"], seeds=[0], overrides={**base["overrides"], "device": "cpu"}
    )
    assert expand_grid(parse_grid_spec(same)).runs[0].name == run.name
    changes = [
        {"overrides": {**base["overrides"], "epochs": 2}},
        {"hparams": {"all": {"batch_size": 32}, "ce": {"lr": 0.01}}},
        {"noise": {"name": "symmetric", "params": {"inclusive": True}}},
        {"noise": {"name": "symmetric", "seed": 7}},
        {"rates": [0.41]},
        {"seeds": [5]},
        {"preset": "lnmbench", "overrides": base["overrides"]},
    ]
    names = {run.name}
    for change in changes:
        (other,) = expand_grid(parse_grid_spec({**base, **change})).runs
        names.add(other.name)
    assert len(names) == 1 + len(changes)


def test_unknown_names_are_reported_and_skippable(tiny_npz, tmp_path):
    spec = parse_grid_spec(
        small_spec(
            tiny_npz, methods=["ce", "no-such-method"], datasets=[str(tiny_npz), "no-such-set"]
        )
    )
    plan = expand_grid(spec)
    assert len(plan.runs) == 2  # ce × tiny × 2 seeds
    kinds = {(p.kind, p.name) for p in plan.problems}
    assert kinds == {("unknown method", "no-such-method"), ("unknown dataset", "no-such-set")}
    lines = plan.problem_summary()
    assert any("unknown method 'no-such-method' (4 cells)" in x and "ce, " in x for x in lines)
    assert any("unknown dataset 'no-such-set' (2 cells)" in x and "bloodmnist" in x for x in lines)
    with pytest.raises(ConfigError, match="--skip-unknown"):
        plan.check(skip_unknown=False)
    plan.check(skip_unknown=True)

    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    app = make_app()
    res = runner.invoke(app, ["grid", str(spec_file), "--dry-run", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "unknown dataset 'no-such-set' (2 cells)" in res.output
    assert "2 runs, 6 cells that cannot run" in res.output
    res = runner.invoke(app, ["grid", str(spec_file), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--skip-unknown" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


def test_unprepared_real_world_dataset_is_missing_data(tiny_npz):
    from lnmbench.data import DATASETS

    if "drtid" not in DATASETS:
        pytest.skip("the real-world datasets are not registered in this tree")
    spec = small_spec(
        tiny_npz,
        blocks=[
            {"datasets": ["drtid"], "noise": "realworld", "dataset_overrides": {"drtid": {}}},
            {"datasets": ["demo"], "noise": "symmetric", "rates": [0.2]},
        ],
        datasets=None,
        overrides={"model": "cnn-tiny", "epochs": 1, "size": 224},
    )
    plan = expand_grid(parse_grid_spec(spec))
    assert {(p.kind, p.name) for p in plan.problems} == {
        ("missing data", "drtid (224 px)"),
        ("invalid", "demo"),  # the bundled demo set exists at 28 px only
    }
    assert "lnmbench prepare drtid --root PATH --size 224" in plan.problem_summary()[1]
    assert "not available at 224 px (sizes: 28)" in plan.problem_summary()[0]
    with pytest.raises(ConfigError, match="demo"):  # invalid cells are never skipped
        plan.check(skip_unknown=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "bogus: Extra inputs are not permitted"),
        ({"overrides": {"method": "ce"}}, "may not set 'method'"),
        ({"overrides": {"epoch": 3}}, "unknown run setting 'epoch'"),
        ({"preset": "nope"}, "unknown preset 'nope'; known: fast, fast-augmented, lnmbench"),
        ({"rates": [1.0]}, "noise rate must be in [0, 1)"),
        ({"hparams": {"cee": {"lr": 1}}}, "cee not in the grid"),
        ({"methods": None}, "no methods"),
    ],
)
def test_bad_specs_give_clear_errors(tiny_npz, change, message):
    with pytest.raises(ConfigError) as exc:
        parse_grid_spec(small_spec(tiny_npz, **change))
    assert message in str(exc.value)


def test_noise_without_rates_is_a_clear_error(tiny_npz):
    spec = parse_grid_spec(small_spec(tiny_npz, rates=None))
    with pytest.raises(ConfigError, match="block #1: noise 'symmetric' needs rates"):
        expand_grid(spec)


def test_bad_hparam_is_an_invalid_cell_not_skippable(tiny_npz):
    plan = expand_grid(parse_grid_spec(small_spec(tiny_npz, hparams={"ce": {"lrr": 0.1}})))
    assert {p.kind for p in plan.problems} == {"invalid"}
    assert "unknown hyperparameter(s) ['lrr']" in plan.problems[0].message
    with pytest.raises(ConfigError, match="lrr"):
        plan.check(skip_unknown=True)


def test_shipped_grids():
    full = load_grid_spec(ROOT / "grids" / "lnmbench.yaml")
    cells, excluded = grid_cells(full)
    synthetic = 12 * 4 * 2 * 4 * 3
    assert excluded == 0 and len(cells) == synthetic + 12 * 3 * 3
    assert {c.dataset for c in cells if c.noise.name == "realworld"} == {
        "drtid",
        "kaggledr+",
        "chexpert",
    }
    assert all(c.rate == 0.0 for c in cells if c.noise.name == "realworld")
    assert {c.overrides.get("assumed_noise_rate") for c in cells if c.dataset == "kaggledr+"} == {
        0.3
    }
    demo = expand_grid(load_grid_spec(ROOT / "grids" / "demo.yaml"))
    assert len(demo.runs) == 8 and not demo.problems
    assert {r.config.epochs for r in demo.runs} == {2}


def test_cost_model_exact(tiny_npz):
    plan = expand_grid(parse_grid_spec(small_spec(tiny_npz, cost={"method_factors": {"sce": 3.0}})))
    by_method = {r.config.method: r for r in plan.runs}
    # 1 epoch × (160 train × factor + (64 + 64) eval × 1/3)
    assert by_method["ce"].cost == pytest.approx(160 + 128 / 3)
    assert by_method["sce"].cost == pytest.approx(160 * 3 + 128 / 3)
    cost = CostSettings(images_per_s=100.0, eval_factor=0.0)
    assert run_cost(by_method["ce"].config, cost) == 160.0
    assert estimate_seconds(plan.runs, plan.spec.cost) == pytest.approx(
        sum(r.cost for r in plan.runs) / 400.0
    )
    ce_runs = [r for r in plan.runs if r.config.method == "ce"]
    walls = {ce_runs[0].name: ce_runs[0].cost / 10.0, ce_runs[1].name: ce_runs[1].cost / 30.0}
    measured = measured_images_per_s(plan, walls)
    assert measured == {"cnn-tiny@28": pytest.approx(20.0)}  # median of 10 and 30
    assert estimate_seconds(ce_runs, plan.spec.cost, measured) == pytest.approx(
        sum(r.cost for r in ce_runs) / 20.0
    )


# --------------------------------------------------------------------------- store


def test_store_statuses_and_discovery(tmp_path):
    root = tmp_path / "root"
    (root / "a_done").mkdir(parents=True)
    (root / "a_done" / "config.yaml").write_text("method: ce\n")
    (root / "a_done" / "summary.json").write_text("{}")
    (root / "b_failed").mkdir()
    (root / "b_failed" / "failed.txt").write_text("Traceback ...\nRuntimeError: boom\n")
    (root / "nested" / "c_interrupted").mkdir(parents=True)
    (root / "nested" / "c_interrupted" / "config.yaml").write_text("method: ce\n")
    (root / "not_a_run").mkdir()
    assert [p.name for p in find_run_folders(root)] == ["a_done", "b_failed", "c_interrupted"]
    assert run_status(root / "a_done") == "done"
    assert run_status(root / "b_failed") == "failed"
    assert run_status(root / "nested" / "c_interrupted") == "interrupted"
    assert run_status(root / "absent") == "pending"
    df = results_table(root)
    assert df.set_index("run").loc["b_failed", "error"] == "RuntimeError: boom"
    with pytest.raises(ConfigError, match="unknown filter column 'methd'"):
        results_table(root, {"methd": "ce"})
    with pytest.raises(ConfigError, match="does not exist"):
        results_table(tmp_path / "nowhere")


def test_run_lock_marks_running_and_keeps_a_second_worker_out(tiny_npz, tmp_path):
    from lnmbench.executors import execute_run
    from lnmbench.experiment.grid_runner import tasks_to_run

    plan = expand_grid(parse_grid_spec(small_spec(tiny_npz, methods=["ce"], seeds=[0, 1])))
    held, other = plan.runs
    folder = tmp_path / held.name
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(held.config.model_dump(mode="json")))
    with run_lock(folder) as mine:  # as a worker of another driver would
        assert mine
        assert run_status(folder) == "running"
        task = RunTask(held.name, held.config.model_dump(mode="json"), str(tmp_path))
        outcome = execute_run(task)
        assert (outcome.status, outcome.error) == ("busy", "another process is running it")
        assert not (folder / "metrics.jsonl").exists() and not (folder / "failed.txt").exists()
        tasks, status = tasks_to_run(plan, tmp_path, retry_failed=True)
        assert [t.name for t in tasks] == [other.name]
        assert status == {held.name: "running", other.name: "pending"}
    assert run_status(folder) == "interrupted"  # released: the next grid run resumes it
    tasks, _ = tasks_to_run(plan, tmp_path, retry_failed=False)
    assert [t.name for t in tasks] == [held.name, other.name]  # interrupted runs first


def test_mean_std_over_seeds_exact():
    df = pd.DataFrame(
        {
            "status": ["done", "done", "done", "failed", "done"],
            "method": ["ce", "ce", "ce", "ce", "sce"],
            "dataset": ["d"] * 5,
            "noise": ["symmetric"] * 5,
            "rate": [0.2] * 5,
            "seed": [0, 5, 10, 11, 0],
            "model": ["cnn"] * 5,
            "size": [28] * 5,
            "preset": ["fast"] * 5,
            "protocol": ["uniform"] * 5,
            "epochs": [2] * 5,
            "headline": [0.5, 0.6, 0.7, 0.9, 0.4],
        }
    )
    agg = mean_std_over_seeds(df).set_index("method")
    assert list(agg.columns[:4]) == ["dataset", "noise", "rate", "n_seeds"]
    assert agg.loc["ce", "n_seeds"] == 3 and agg.loc["ce", "n_runs"] == 3
    assert agg.loc["ce", "headline_mean"] == pytest.approx(0.6)
    assert agg.loc["ce", "headline_std"] == pytest.approx(0.1)  # sample std (ddof 1)
    assert agg.loc["sce", "headline_mean"] == pytest.approx(0.4)
    assert math.isnan(agg.loc["sce", "headline_std"])
    df.loc[2, "epochs"] = 4  # a varying setting becomes a group key
    assert "epochs" in mean_std_over_seeds(df).columns
    assert len(mean_std_over_seeds(df)) == 3


def test_executor_options_are_checked():
    with pytest.raises(ConfigError, match="--address not used by the local executor"):
        create_executor("local", ExecutorOptions(address="auto"))
    with pytest.raises(ConfigError, match="--workers not used by the ray executor"):
        create_executor("ray", ExecutorOptions(workers=2))
    with pytest.raises(UnknownNameError, match="unknown executor 'slurm'; known: local, ray"):
        create_executor("slurm")
    ex = create_executor("local", ExecutorOptions(devices=["cuda:0", "cuda:1"]))
    assert ex.capacity == 2


# --------------------------------------------------------------------------- running grids


def test_results_table_equals_the_run_folders(tiny_npz, tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(small_spec(tiny_npz)))
    root = tmp_path / "runs"
    app = make_app()
    res = runner.invoke(app, ["grid", str(spec_file), "--out", str(root), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "4/4 runs done (4 now" in res.output

    df = results_table(root)
    assert len(df) == 4
    plan = expand_grid(load_grid_spec(spec_file))
    for run in plan.runs:
        row = df.set_index("run").loc[run.name]
        summary = json.loads((root / run.name / "summary.json").read_text())
        expected = {
            "status": "done",
            "method": run.config.method,
            "dataset": "tiny",
            "noise": "symmetric",
            "rate": 0.4,
            "noise_seed": run.config.seed,
            "seed": run.config.seed,
            "model": "cnn-tiny",
            "size": 28,
            "preset": "fast",
            "protocol": "uniform",
            "epochs": 1,
            "config_hash": run.config.config_hash(),
            "run_folder": str(root.resolve() / run.name),
        }
        assert {k: row[k] for k in expected} == expected
        assert row["headline"] == summary["headline"]["value"]
        assert row["test_acc_best_val"] == summary["test_acc_best_val"]
        assert row["test_acc_final"] == summary["test_acc_final"]
        assert row["macro_f1_last5"] == summary["metrics"]["macro_f1"]["last5"]
        assert row["ece_final"] == summary["metrics"]["ece"]["final"]
        assert row["realised_noise_train"] == summary["realised_noise_rate"]["train"]
        assert row["epochs_done"] == 1
    # the command: Parquet by default, CSV on request, filters, mean ± std per group
    csv = tmp_path / "out.csv"
    res = runner.invoke(app, ["results", str(root), "--csv", str(csv)])
    assert res.exit_code == 0, res.output
    written = pd.read_parquet(root / "results.parquet")
    pd.testing.assert_frame_equal(written, df, check_dtype=False)
    assert len(pd.read_csv(csv)) == 4
    ce = df[df["method"] == "ce"]["headline"].to_numpy()
    row = next(x for x in res.output.splitlines() if "│ ce " in x)
    mean, std = 100 * ce.mean(), 100 * ce.std(ddof=1)
    assert f"{mean:.2f} ± {std:.2f}" in row and "│     2 │" in row
    one = tmp_path / "one.parquet"
    res = runner.invoke(
        app,
        [
            "results",
            str(root),
            "--filter",
            "method=sce",
            "--filter",
            "seed=1",
            "--parquet",
            str(one),
        ],
    )
    assert res.exit_code == 0
    assert list(pd.read_parquet(one)["run"]) == list(df[df["method"] == "sce"]["run"][-1:])
    assert len(pd.read_parquet(root / "results.parquet")) == 4  # always every run
    # a second grid run finds everything done and trains nothing
    res = runner.invoke(app, ["grid", str(spec_file), "--out", str(root), "--no-progress"])
    assert res.exit_code == 0 and "4 done, 0 failed (skipped" in res.output
    assert "0 to run" in res.output


def test_failed_run_is_recorded_others_go_on_and_retry_failed_reruns(
    tiny_npz, tmp_path, monkeypatch
):
    from lnmbench.methods.sce import SCE

    def broken_loss(self, logits, labels, batch):
        raise RuntimeError("sce exploded on purpose")

    monkeypatch.setattr(SCE, "loss", broken_loss)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(small_spec(tiny_npz)))
    root = tmp_path / "runs"
    app = make_app()
    res = runner.invoke(app, ["grid", str(spec_file), "--out", str(root), "--no-progress"])
    assert res.exit_code == 1, res.output
    assert "2/4 runs done" in res.output and "2 failed" in res.output
    df = results_table(root).set_index("run")
    assert sorted(df["status"]) == ["done", "done", "failed", "failed"]
    for name, row in df.iterrows():
        text = (root / name / "failed.txt").read_text() if row["status"] == "failed" else ""
        if row["method"] == "sce":
            assert row["status"] == "failed"
            assert "Traceback (most recent call last)" in text
            assert "RuntimeError: sce exploded on purpose" in text
            assert row["error"] == "RuntimeError: sce exploded on purpose"
        else:
            assert row["status"] == "done" and not (root / name / "failed.txt").exists()
    # without --retry-failed failed runs are skipped
    res = runner.invoke(app, ["grid", str(spec_file), "--out", str(root), "--no-progress"])
    assert res.exit_code == 1 and "0 to run" in res.output
    monkeypatch.undo()
    res = runner.invoke(
        app, ["grid", str(spec_file), "--out", str(root), "--no-progress", "--retry-failed"]
    )
    assert res.exit_code == 0, res.output
    assert "4/4 runs done (2 now" in res.output
    df = results_table(root)
    assert list(df["status"]) == ["done"] * 4
    assert not any((root / r / "failed.txt").exists() for r in df["run"])


def test_worker_reports_failure_without_raising(tiny_npz, tmp_path):
    """An exception before training (bad device) is recorded like any other failure."""
    from lnmbench.executors import execute_run

    (run,) = expand_grid(parse_grid_spec(small_spec(tiny_npz, methods=["ce"], seeds=[0]))).runs
    task = RunTask(run.name, run.config.model_dump(mode="json"), str(tmp_path))
    outcome = execute_run(task, device="cuda:7" if not _has_cuda() else "nosuchdevice")
    assert outcome.status == "failed" and outcome.headline is None
    assert (tmp_path / run.name / "config.yaml").exists()
    assert "Traceback" in (tmp_path / run.name / "failed.txt").read_text()
    assert run_status(tmp_path / run.name) == "failed"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_run_grid_api_with_in_process_executor(tiny_npz, tmp_path):
    plan = expand_grid(parse_grid_spec(small_spec(tiny_npz, methods=["ce"], seeds=[0])))
    report = run_grid(
        plan, tmp_path, create_executor("local"), console=cli_grid.console, show_progress=False
    )
    assert (report.total, report.scheduled, report.done, report.failed) == (1, 1, 1, [])
    assert run_status(tmp_path / plan.runs[0].name) == "done"


# --------------------------------------------------------------------------- kill and resume


def _pool_workers() -> list[int]:
    """PIDs of this process's spawned multiprocessing workers (not its resource tracker)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"spawn_main" in cmd:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the pool's workers")
def test_dead_worker_process_is_replaced_and_its_run_retried(tmp_path):
    import threading

    npz = _write_npz(tmp_path / "crash.npz", (320, 64, 64))
    spec = small_spec(npz, methods=["ce"], overrides={"model": "cnn-tiny", "epochs": 3})
    plan = expand_grid(parse_grid_spec(spec))
    executor = create_executor(
        "local", ExecutorOptions(workers=2, threads_per_worker=1, max_retries=1)
    )
    killed: list[int] = []

    def kill_a_worker_mid_run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if any(tmp_path.glob("runs/*/checkpoint.pt")) and _pool_workers():
                pid = _pool_workers()[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_mid_run, daemon=True)
    killer.start()
    report = run_grid(
        plan, tmp_path / "runs", executor, console=cli_grid.console, show_progress=False
    )
    killer.join(timeout=5)
    assert killed, "no worker was killed"
    assert (report.done, report.failed) == (2, [])
    for run in plan.runs:
        folder = tmp_path / "runs" / run.name
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]
        assert not (folder / "failed.txt").exists()


def _folder_state(root: Path) -> tuple[list[Path], list[Path]]:
    """(finished run folders, started-and-checkpointed unfinished ones)."""
    done, running = [], []
    for d in root.glob("*/"):
        if (d / "summary.json").exists():
            done.append(d)
        elif (d / "checkpoint.pt").exists():
            running.append(d)
    return done, running


@pytest.mark.slow
def test_killed_driver_resumes_and_each_run_is_done_once(tmp_path):
    npz = _write_npz(tmp_path / "kill.npz", (240, 64, 64))
    epochs = 3
    spec = small_spec(npz, overrides={"model": "cnn-tiny", "epochs": epochs})
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    root = tmp_path / "runs"
    cmd = [sys.executable, "-m", "lnmbench.cli_grid", "grid", str(spec_file), "--out", str(root)]
    cmd += ["--workers", "2", "--threads-per-worker", "1", "--no-progress"]
    log = open(tmp_path / "driver1.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            done, running = _folder_state(root) if root.exists() else ([], [])
            if done and running:
                break
            time.sleep(0.02)
        assert proc.poll() is None, (
            "the grid ended before it could be killed: " + (tmp_path / "driver1.log").read_text()
        )
        assert done and running, "no run finished / in progress within 150 s"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    finished_before = {d.name: (d / "summary.json").stat().st_mtime_ns for d in done}
    assert len(finished_before) < 4

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = " ".join(res.stdout.split())  # undo the console's line wrapping
    assert f"{len(finished_before)} done, 0 failed" in out
    assert f"4/4 runs done ({4 - len(finished_before)} now" in out
    folders = [d for d in root.iterdir() if d.is_dir()]
    assert len(folders) == 4
    for d in folders:
        epochs_logged = [
            json.loads(x)["epoch"] for x in (d / "metrics.jsonl").read_text().splitlines()
        ]
        assert epochs_logged == list(range(epochs)), d.name
        summary = json.loads((d / "summary.json").read_text())
        assert summary["epochs_done"] == epochs
        assert not (d / "checkpoint.pt").exists()
    for name, mtime in finished_before.items():  # finished runs were not trained again
        assert (root / name / "summary.json").stat().st_mtime_ns == mtime
