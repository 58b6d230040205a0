"""The command line: real invocations through typer's runner, outputs and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lnmbench.cli import app, parse_set

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    from lnmbench.data import load_dataset

    ds = load_dataset("demo")
    out = {}
    for split, n in (("train", 160), ("val", 64), ("test", 64)):
        out[f"{split}_images"] = ds[split].images[:n].permute(0, 2, 3, 1).numpy()
        out[f"{split}_labels"] = ds[split].labels[:n].numpy()[:, None]
    path = tmp_path_factory.mktemp("cli") / "tiny.npz"
    np.savez(path, **out)
    return path


def test_run_prints_summary_and_writes_run_folder(tiny_npz, tmp_path):
    res = runner.invoke(
        app,
        [
            "run",
            "--dataset",
            str(tiny_npz),
            "--model",
            "cnn-tiny",
            "--epochs",
            "2",
            "--rate",
            "0.3",
            "--set",
            "batch_size=32",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "headline (net head)" in res.output and "balanced_accuracy" in res.output
    (folder,) = list(tmp_path.iterdir())
    assert folder.name.startswith("ce_tiny_symmetric0.3_s0_")
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "noise.json"):
        assert (folder / name).exists(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["epochs_done"] == 2 and summary["rate"] == 0.3


def test_run_from_config_file(tiny_npz, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"method: sce\ndataset: {tiny_npz}\nmodel: cnn-tiny\nepochs: 1\n"
        "noise: {name: pairflip, rate: 0.2}\nhparams: {batch_size: 64}\n"
    )
    res = runner.invoke(app, ["run", "--config", str(cfg), "--out", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    (folder,) = list((tmp_path / "runs").iterdir())
    assert folder.name.startswith("sce_tiny_pairflip0.2_s0_")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--method", "xe"], "unknown method 'xe'; known:"),
        (["run", "--rate", "1.5"], "noise rate must be in [0, 1)"),
        (["run", "--noise", "gaussian"], "unknown noise generator 'gaussian'"),
        (["run", "--set", "lrr=1"], "unknown hyperparameter(s) ['lrr']"),
        (["run", "--dataset", "nope.npz"], "dataset file nope.npz does not exist"),
        (["run", "--config", "missing.yaml"], "config file missing.yaml does not exist"),
        (
            [
                "noise",
                "--noise",
                "transition",
                "--param",
                "matrix=[[0.5,0.4],[0,1]]",
                "--dataset",
                "breast.npz",
            ],
            "dataset file breast.npz does not exist",
        ),
    ],
)
def test_bad_input_gives_clear_error_without_traceback(args, message, tmp_path):
    res = runner.invoke(app, [*args, "--out", str(tmp_path)] if args[0] == "run" else args)
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_noise_command_reports_and_draws_heatmap(tmp_path):
    png = tmp_path / "t.png"
    res = runner.invoke(
        app,
        [
            "noise",
            "--dataset",
            "demo",
            "--noise",
            "pairflip",
            "--rate",
            "0.3",
            "--split",
            "train",
            "--heatmap",
            str(png),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "realised" in res.output and "empirical transition matrix" in res.output
    assert png.exists() and png.stat().st_size > 1000


def test_listing_commands():
    res = runner.invoke(app, ["datasets"])
    assert res.exit_code == 0 and "bundled" in res.output and "bloodmnist" in res.output
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 0 and "ce-ls" in res.output and "sce" in res.output
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0 and "preact_resnet18" in res.output


def test_parse_set_reads_yaml_values():
    assert parse_set(["lr=0.1", "milestones=[5, 10]", "optimizer=adam"]) == {
        "lr": 0.1,
        "milestones": [5, 10],
        "optimizer": "adam",
    }


def test_noise_run_compares_the_runs_own_transition_matrix(tiny_npz, tmp_path):
    res = runner.invoke(
        app,
        [
            "run",
            "--method",
            "volminnet",
            "--dataset",
            str(tiny_npz),
            "--model",
            "cnn-tiny",
            "--epochs",
            "1",
            "--noise",
            "pairflip",
            "--rate",
            "0.4",
            "--set",
            "batch_size=64",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    (folder,) = list(tmp_path.iterdir())
    png = tmp_path / "t.png"
    res = runner.invoke(app, ["noise", "--run", str(folder), "--heatmap", str(png)])
    assert res.exit_code == 0, res.output
    from lnmbench.metrics import transition_estimation_error

    noise = json.loads((folder / "noise.json").read_text())["train"]
    t_emp = np.array(noise["transition_matrix"], dtype=float)
    # pair-flip: the run's own T is non-zero only on the diagonal and at (i, i+1 mod C)
    c = len(t_emp)
    allowed = np.eye(c, dtype=bool) | np.roll(np.eye(c, dtype=bool), 1, axis=1)
    rows = np.isfinite(t_emp).all(1)
    assert np.all(t_emp[rows][~allowed[rows]] == 0) and np.all(
        t_emp[rows][~np.eye(c, dtype=bool)[rows]].sum() > 0
    )
    t_hat = np.load(folder / "transition_estimate.npy")
    err = transition_estimation_error(t_hat, t_emp)
    assert f"{err:.4f}" in res.output
    assert png.exists()
