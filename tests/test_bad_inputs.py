"""Bad input through the real CLI: a non-zero exit, one line that names the problem, no traceback,
and no run folder left behind. Every case fails before any training starts."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lnmbench.cli import app
from lnmbench.cli.console import console
from lnmbench.data import load_dataset

runner = CliRunner()
TINY = ["--model", "cnn-tiny", "--epochs", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """No wrapping: a message is one line exactly when the command printed one line."""
    monkeypatch.setattr(console, "width", 10_000)


def write_npz(path: Path, sizes=(60, 20, 20), **replace) -> Path:
    ds = load_dataset("demo")
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        arrays[f"{split}_images"] = ds[split].images[:n].permute(0, 2, 3, 1).numpy()
        arrays[f"{split}_labels"] = ds[split].labels[:n].numpy()[:, None]
    arrays.update(replace)
    for k in [k for k, v in arrays.items() if v is None]:
        del arrays[k]
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    return write_npz(tmp_path_factory.mktemp("bad") / "u.npz")


def cases(table: list[tuple]) -> list:
    """``(id, *values)`` rows -> pytest params named by their id."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


def run_cli(args: list[str]):
    return runner.invoke(app, args, catch_exceptions=True)


def assert_refused(res, fragment: str, out: Path | None = None) -> None:
    """Non-zero exit, exactly one ``error:`` line containing ``fragment``, no traceback, and
    nothing under ``out`` (no run folder, not even an empty one)."""
    assert res.exit_code != 0, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.output
    assert fragment in errors[0], errors[0]
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


def _config(tmp_path: Path, text: bytes | str, name: str = "run.yaml") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


RUN_CASES = [
    # (id, extra args, expected fragment)
    ("unknown method", ["--method", "nosuch"], "unknown method 'nosuch'; known:"),
    ("unknown noise", ["--noise", "nosuch"], "unknown noise generator 'nosuch'"),
    ("rate above 1", ["--rate", "1.5"], "noise.rate=1.5: noise rate must be in [0, 1)"),
    ("negative rate", ["--rate", "-0.1"], "noise rate must be in [0, 1)"),
    ("negative seed", ["--seed", "-1"], "seed=-1"),
    ("negative noise seed", ["--noise-seed", "-5"], "noise.seed=-5"),
    ("zero epochs", ["--epochs", "0"], "epochs=0"),
    ("unknown model", ["--model", "nosuch"], "unknown model 'nosuch'"),
    ("unknown preset", ["--preset", "nosuch"], "unknown preset 'nosuch'"),
    ("assumed rate 2", ["--assumed-noise-rate", "2"], "assumed noise rate must be in [0, 1)"),
    ("lr not a number", ["--set", "lr=abc"], "lr=abc: expected a number"),
    ("negative lr", ["--set", "lr=-1"], "lr=-1: expected a number > 0"),
    ("zero batch size", ["--set", "batch_size=0"], "batch_size=0: expected an integer >= 1"),
    ("cut list", ["--set", "milestones=[1,"], "milestones=[1,: expected a list"),
    ("unknown hparam", ["--set", "nosuch=1"], "unknown hyperparameter(s) ['nosuch']"),
    ("set without =", ["--set", "lr"], "--set expects KEY=VALUE"),
    ("unknown optimizer", ["--set", "optimizer=rmsprop"], "known: sgd, adam"),
    ("momentum 1.5", ["--set", "momentum=1.5"], "momentum=1.5: expected a number in [0, 1)"),
    (
        "forget rate 1",
        ["--method", "coteaching", "--set", "forget_rate=1.0"],
        "forget_rate=1.0: expected a number in [0, 1)",
    ),
    ("unknown device", ["--device", "foo"], "unknown device 'foo'"),
    ("realworld on synthetic", ["--noise", "realworld"], "has no real-world noisy labels"),
]


@pytest.mark.parametrize(("args", "fragment"), cases(RUN_CASES))
def test_bad_run_options(npz, tmp_path, args, fragment):
    out = tmp_path / "runs"
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out), *args])
    assert_refused(res, fragment, out)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is here")
def test_absent_mps_device(npz, tmp_path):
    out = tmp_path / "runs"
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out), "--device", "mps"])
    assert_refused(res, "MPS is not available", out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")
def test_absent_cuda_device(npz, tmp_path):
    out = tmp_path / "runs"
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out), "--device", "cuda:0"])
    assert_refused(res, "CUDA is not available", out)


def test_unknown_dataset_name(tmp_path):
    out = tmp_path / "runs"
    assert_refused(
        run_cli(["run", "--dataset", "nosuch", *TINY, "--out", str(out)]),
        "unknown dataset 'nosuch'",
        out,
    )


BAD_FILES = [
    ("missing file", None, "does not exist"),
    ("text file", b"not an npz", "cannot read"),
    ("empty test split", {"sizes": (60, 20, 0)}, "the test split(s) have no rows"),
    ("zero rows", {"sizes": (0, 0, 0)}, "have no rows"),
    ("missing arrays", {"test_labels": None}, "lacks the arrays test_labels"),
    ("multi-label", {"train_labels": np.zeros((60, 3), dtype=np.int64)}, "multi-label"),
    ("negative label", {"val_labels": -np.ones((20, 1), dtype=np.int64)}, "negative label -1"),
    (
        "val label beyond train classes",
        {"val_labels": np.full((20, 1), 9, dtype=np.int64)},
        "val_labels holds label 9 in 20 row(s), outside the 8 classes 0..7",
    ),
    (
        "class absent from train",
        {
            "train_labels": np.r_[np.zeros(30), np.full(30, 2)].astype(np.int64)[:, None],
            "val_labels": np.zeros((20, 1), dtype=np.int64),
            "test_labels": np.zeros((20, 1), dtype=np.int64),
        },
        "classes [1] of 3 never occur in train_labels",
    ),
]


@pytest.mark.parametrize(("content", "fragment"), cases(BAD_FILES))
def test_bad_dataset_files(tmp_path, content, fragment):
    path = tmp_path / "d.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        content = dict(content)
        write_npz(path, content.pop("sizes", (60, 20, 20)), **content)
    out = tmp_path / "runs"
    assert_refused(
        run_cli(["run", "--dataset", str(path), *TINY, "--out", str(out)]), fragment, out
    )


def test_folder_without_manifest_says_the_cache_is_incomplete(tmp_path):
    cache = tmp_path / "prepared" / "x" / "28px"
    cache.mkdir(parents=True)
    (cache / "train_images.npy").write_bytes(b"")
    out = tmp_path / "runs"
    res = run_cli(["run", "--dataset", str(cache), *TINY, "--out", str(out)])
    assert_refused(res, "without manifest.json", out)
    assert "lnmbench prepare" in res.output and "download it again" not in res.output


CONFIGS = [
    ("missing config", None, "does not exist"),
    ("not UTF-8", b"method: ce\nnote: \xff\xfe\n", "is not UTF-8 text"),
    ("cut YAML", "method: [ce,\n", "is not valid YAML"),
    ("a list", "- ce\n", "must hold a mapping"),
    ("unknown key", "bogus: 1\n", "bogus=1: unknown setting"),
]


@pytest.mark.parametrize(("text", "fragment"), cases(CONFIGS))
def test_bad_config_files(npz, tmp_path, text, fragment):
    path = tmp_path / "run.yaml" if text is None else _config(tmp_path, text)
    out = tmp_path / "runs"
    res = run_cli(["run", "--config", str(path), "--dataset", str(npz), *TINY, "--out", str(out)])
    assert_refused(res, fragment, out)


def test_out_is_a_file(npz, tmp_path):
    out = tmp_path / "runs"
    out.write_text("")
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out)])
    assert_refused(res, "is a file, not a folder")
    assert out.is_file()


def test_out_below_a_file_is_a_file_system_error(npz, tmp_path):
    (tmp_path / "f").write_text("")
    out = tmp_path / "f" / "runs"
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out)])
    assert_refused(res, "f is a file, not a folder")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--max-retries", "-1"], "--max-retries must be >= 0"),
        (["--threads-per-worker", "0"], "--threads-per-worker must be at least 1"),
    ],
)
def test_bad_grid_options(npz, tmp_path, args, fragment):
    spec = tmp_path / "g.yaml"
    spec.write_text(
        f"name: g\nmethods: [ce]\ndatasets: [{npz}]\nnoise: symmetric\nrates: [0.2]\nseeds: [0]\n"
    )
    out = tmp_path / "runs"
    assert_refused(run_cli(["grid", str(spec), "--out", str(out), *args]), fragment, out)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--rate", "2"], "noise rate must be in [0, 1)"),
        (["--split", "test"], "unknown split 'test'"),
        (["--noise", "nosuch"], "unknown noise generator 'nosuch'"),
        (["--param", "bogus=1"], "unknown parameter(s) 'bogus'"),
    ],
)
def test_bad_noise_options(npz, args, fragment):
    assert_refused(run_cli(["noise", "--dataset", str(npz), *args]), fragment)


def test_results_of_a_missing_root(tmp_path):
    assert_refused(run_cli(["results", str(tmp_path / "nope")]), "does not exist")


# --------------------------------------------------------------------------- after the folder


def test_disk_full_while_writing_the_summary_is_one_line_and_resumes(npz, tmp_path, monkeypatch):
    from lnmbench.engine.run_folder import RunFolder

    out = tmp_path / "runs"

    def full(self, summary):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.summary))

    monkeypatch.setattr(RunFolder, "write_summary", full)
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    line = " ".join(res.output.split())
    assert "No space left on device" in line and "summary.json" in line and "resumes" in line
    (folder,) = out.iterdir()
    assert (folder / "checkpoint.pt").exists()  # kept for the resume
    monkeypatch.undo()
    monkeypatch.setattr(console, "width", 10_000)
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (folder / "summary.json").exists() and not (folder / "failed.txt").exists()
    assert [
        json.loads(x)["epoch"] for x in (folder / "metrics.jsonl").read_text().splitlines()
    ] == [0]


def test_a_failure_after_the_folder_exists_leaves_failed_txt(npz, tmp_path, monkeypatch):
    from lnmbench.methods.base import Method

    def boom(self, batch):
        raise RuntimeError("boom in train_step")

    monkeypatch.setattr(Method, "train_step", boom)
    out = tmp_path / "runs"
    res = run_cli(["run", "--dataset", str(npz), *TINY, "--out", str(out)])
    (folder,) = out.iterdir()
    assert_refused(res, f"failed: RuntimeError: boom in train_step (traceback in {folder}")
    text = (folder / "failed.txt").read_text()
    assert "Traceback" in text and "boom in train_step" in text
    from lnmbench.engine.run_status import run_status

    assert run_status(folder) == "failed"


def test_corrupt_checkpoint_is_moved_aside_and_the_run_restarts(npz, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "--dataset", str(npz), "--model", "cnn-tiny", "--epochs", "2", "--no-progress"]
    assert run_cli([*args, "--out", str(out)]).exit_code == 0
    (folder,) = out.iterdir()
    ref_rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().split("\n") if x]
    # unfinished, with a checkpoint cut short (as a full disk or a bad copy leaves it)
    (folder / "summary.json").unlink()
    (folder / "checkpoint.pt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.warns(UserWarning, match="checkpoint.pt.corrupt, the run restarts from epoch 0"):
        res = run_cli([*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (folder / "checkpoint.pt.corrupt").exists() and (folder / "summary.json").exists()
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().split("\n") if x]
    assert [r["epoch"] for r in rows] == [0, 1]  # trained again from epoch 0, each epoch once
    assert [r["test_acc"] for r in rows] == [r["test_acc"] for r in ref_rows]


def test_leftovers_of_killed_writers_are_removed(npz, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "--dataset", str(npz), *TINY, "--out", str(out)]
    assert run_cli(args).exit_code == 0
    (folder,) = out.iterdir()
    (folder / ".summary.json.abc123.tmp").write_text("{")
    (folder / "checkpoint.pt").write_bytes(b"left by a kill after the summary")
    stale = out / ".results.parquet.xyz.tmp"
    stale.write_text("")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert run_cli(args).exit_code == 0
    assert not (folder / ".summary.json.abc123.tmp").exists()
    assert not (folder / "checkpoint.pt").exists()
    assert run_cli(["results", str(out)]).exit_code == 0
    assert not stale.exists()
    for name in ("config.yaml", "summary.json", "metrics.jsonl"):
        assert (folder / name).stat().st_mode & 0o777 == 0o666 & ~_umask(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["environment"]["torch_threads"] == torch.get_num_threads()
    assert summary["environment"]["torch"] == torch.__version__
    assert summary["environment"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert summary["environment"]["device_name"] not in ("", None)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- changed files


def test_replacing_an_npz_in_place_gives_a_new_run_folder_and_new_noisy_labels(tmp_path):
    from lnmbench.experiment.config import resolve_config
    from lnmbench.experiment.run import split_noise

    path = write_npz(tmp_path / "u.npz")
    before = resolve_config({"dataset": str(path), "model": "cnn-tiny"})
    ds = load_dataset(str(path))
    noise_before = split_noise(before, ds, tmp_path / "cache")
    again = resolve_config({"dataset": str(path), "model": "cnn-tiny"})
    assert again.run_name() == before.run_name()  # the same file: the same run

    labels = ds["train"].labels.numpy().copy()
    rng = np.random.default_rng(0)
    rng.shuffle(labels)  # same classes and counts, other rows: the clean labels differ
    write_npz(path, train_labels=labels[:, None])
    after = resolve_config({"dataset": str(path), "model": "cnn-tiny"})
    assert after.run_name() != before.run_name()
    assert after.dataset_digest != before.dataset_digest
    noise_after = split_noise(after, load_dataset(str(path)), tmp_path / "cache")
    assert noise_after["train"].cache_key != noise_before["train"].cache_key
    assert not np.array_equal(noise_after["train"].noisy, noise_before["train"].noisy)


def test_a_registered_dataset_has_no_digest_and_keeps_its_hash():
    from lnmbench.experiment.config import resolve_config

    cfg = resolve_config({})
    assert cfg.dataset_digest is None and "dataset_digest" not in cfg.semantic_dict()


# --------------------------------------------------------------------------- two processes


@pytest.mark.slow
def test_two_identical_runs_at_once_train_once(npz, tmp_path):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "lnmbench.cli", "run", "--dataset", str(npz)]
    cmd += ["--model", "cnn-tiny", "--epochs", "3", "--no-progress", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "400"}
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert "Traceback" not in "".join(outputs)
    (folder,) = out.iterdir()
    epochs = [json.loads(x)["epoch"] for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]  # each epoch once
    assert 0 in codes, outputs
    for code, text in zip(codes, outputs, strict=True):
        if code != 0:  # the second one was refused while the first trained
            assert "is busy" in text and "running this run now" in text, text
    # with --wait, a second process waits and reads the finished run
    res = subprocess.run([*cmd, "--wait"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0 and "headline" in res.stdout
