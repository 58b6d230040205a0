"""``lnmbench audit``: planted flips ranked first, outputs that parse, resume and determinism,
the page in headless Chromium, a real-world CSV dataset's noisy column, clear errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from typer import Typer
from typer.testing import CliRunner

from chromium_page import check_page, chromium_binary
from lnmbench.audit import confident_joint
from lnmbench.audit.crossfit import CrossFitSettings, batch_bounds, cross_fit_dynamics
from lnmbench.audit.evaluation import detection_auroc, flagged_f1, precision_at_k, top_k
from lnmbench.audit.scoring import score_records
from lnmbench.audit.signals import SIGNALS, combine, parse_signals
from lnmbench.cli.audit import audit as audit_command
from lnmbench.data.example_layouts import write_kaggledr_plus
from lnmbench.errors import ConfigError

N_CLASSES = 3
SIDE = 16


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 16, 16) uint8 images: a central square whose brightness is the class (3 classes,
    flip- and crop-invariant) on a noisy background, and their labels (n,): an easy task, so a
    flipped label is unambiguous."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % N_CLASSES
    x = rng.normal(40, 15, (n, 1, SIDE, SIDE))
    x[:, :, 4:12, 4:12] += 70 * (y[:, None, None, None] + 1)
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def plant_flips(y: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Given labels with ``count`` labels moved to the next class; (given, is_flipped)."""
    rng = np.random.default_rng(seed)
    flipped = np.zeros(y.size, dtype=bool)
    flipped[rng.choice(y.size, count, replace=False)] = True
    return np.where(flipped, (y + 1) % N_CLASSES, y), flipped


def write_npz(path: Path, n_train: int = 150, flips: int = 15) -> tuple[Path, np.ndarray]:
    """A MedMNIST-layout .npz of blobs whose *train labels* carry ``flips`` planted flips;
    returns (path, is_flipped (n_train,))."""
    x, y = blobs(n_train + 60, 1)
    given, flipped = plant_flips(y[:n_train], flips, 2)
    arrays = {}
    for split, sl, labels in (
        ("train", slice(0, n_train), given),
        ("val", slice(n_train, n_train + 30), y[n_train : n_train + 30]),
        ("test", slice(n_train + 30, None), y[n_train + 30 :]),
    ):
        arrays[f"{split}_images"] = x[sl, 0]
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path, flipped


def cli() -> Typer:
    app = Typer()
    app.command("audit")(audit_command)
    app.command("noop")(lambda: None)  # two commands: "audit" is a subcommand, as in cli.py
    return app


TINY = [
    "--model",
    "cnn-tiny",
    "--folds",
    "3",
    "--epochs",
    "4",
    "--batch-size",
    "16",
    "--lr",
    "0.003",
]


def test_combined_score_ranks_planted_flips_first():
    x, y = blobs(240, 0)
    given, flipped = plant_flips(y, 24, 1)
    settings = CrossFitSettings(folds=3, model="cnn-tiny", epochs=4, batch_size=16, lr=3e-3, seed=0)
    records = cross_fit_dynamics(
        torch.from_numpy(x), given, N_CLASSES, settings, device=torch.device("cpu")
    )
    scored = score_records(records, given, seed=0)
    assert set(scored.signals) == set(SIGNALS)
    assert detection_auroc(scored.combined, flipped) > 0.97
    assert precision_at_k(scored.combined, flipped) >= 0.85  # of the top 24, >= 21 are flips
    for name, s in scored.signals.items():  # every signal alone is far better than chance
        assert detection_auroc(s, flipped) > 0.85, name
    # suggestions recover the planted flips' true class
    top = top_k(scored.combined, 24) & flipped
    assert np.mean(scored.suggested[top] == y[top]) > 0.9
    np.testing.assert_allclose(scored.pred_probs.sum(axis=1), 1.0, atol=1e-5)


def test_detection_metrics_on_hand_made_scores():
    is_noisy = np.array([True, True, False, False, False])
    perfect = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    assert detection_auroc(perfect, is_noisy) == 1.0
    assert detection_auroc(-perfect, is_noisy) == 0.0
    assert precision_at_k(np.array([0.9, 0.1, 0.8, 0.2, 0.3]), is_noisy) == 0.5
    f = flagged_f1(np.array([True, False, True, False, False]), is_noisy)
    assert (f["precision"], f["recall"], f["f1"]) == (0.5, 0.5, 0.5)
    assert top_k(np.array([1.0, 2.0, 2.0, 0.0]), 2).tolist() == [False, True, True, False]
    # rank average: each signal's order counts equally
    c = combine({"a": np.array([3.0, 2.0, 1.0]), "b": np.array([30.0, 10.0, 20.0])})
    assert c.argmax() == 0 and c[1] == c[2]


def test_batches_never_leave_one_sample():
    assert batch_bounds(129, 128) == [(0, 129)]
    assert batch_bounds(130, 128) == [(0, 128), (128, 130)]
    assert batch_bounds(1, 128) == [(0, 1)]


def test_audit_writes_outputs_that_parse_resumes_and_is_deterministic(tmp_path):
    npz, flipped = write_npz(tmp_path / "blobs.npz")
    out = tmp_path / "a"
    runner = CliRunner()
    res = runner.invoke(cli(), ["audit", str(npz), *TINY, "--out", str(out), "--top", "20"])
    assert res.exit_code == 0, res.output
    assert "suspects.csv" in res.output and "top 10 suspects" in res.output
    s = pd.read_csv(out / "suspects.csv")
    assert len(s) == 150 and sorted(s["index"]) == list(range(150))
    assert s["score"].is_monotonic_decreasing and s["rank"].tolist() == list(range(1, 151))
    for col in ("given", "suggested", "score", "flagged", *SIGNALS, "p_0", "p_1", "p_2"):
        assert col in s.columns, col
    given = np.load(npz)["train_labels"][:, 0]
    assert (s.sort_values("index")["given"].to_numpy() == given).all()
    probs = np.load(out / "pred_probs.npy")
    assert probs.shape == (150, N_CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    row = s.iloc[0]
    np.testing.assert_allclose(
        probs[int(row["index"])], row[["p_0", "p_1", "p_2"]].to_numpy(float), rtol=1e-4
    )
    # the planted flips are what the audit reports first
    top15 = s["index"].to_numpy()[:15]
    assert flipped[top15].sum() >= 12
    summary = json.loads((out / "audit.json").read_text())
    assert summary["n"] == 150 and summary["evaluation"] is None  # clean labels unknown
    rates = pd.read_csv(out / "noise_rates.csv")
    assert len(rates) == N_CLASSES and rates["given_count"].sum() == 150
    if confident_joint.cleanlab_available():
        t = pd.read_csv(out / "transition_matrix.csv").drop(columns="clean").to_numpy()
        np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-6)
        assert rates["estimated_wrong_fraction"].between(0, 1).all()
    html = (out / "audit.html").read_text()
    assert html.count('class="card"') == 20 and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html  # self-contained

    # re-run: every fold is loaded, not trained; same suspects
    res2 = runner.invoke(cli(), ["audit", str(npz), *TINY, "--out", str(out), "--top", "20"])
    assert res2.exit_code == 0, res2.output
    assert "(saved)" in res2.output
    assert pd.read_csv(out / "suspects.csv").equals(s)
    # a fresh folder, same seed: the same suspects (CPU determinism)
    res3 = runner.invoke(cli(), ["audit", str(npz), *TINY, "--out", str(tmp_path / "b")])
    assert res3.exit_code == 0, res3.output
    assert pd.read_csv(tmp_path / "b" / "suspects.csv")["index"].equals(s["index"])


def test_audit_without_cleanlab_runs_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(confident_joint, "cleanlab_available", lambda: False)
    npz, _ = write_npz(tmp_path / "blobs.npz", n_train=60, flips=6)
    out = tmp_path / "a"
    res = CliRunner().invoke(
        cli(), ["audit", str(npz), *TINY, "--epochs", "1", "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "confident-joint estimate" in res.output and "skipped" in res.output
    assert not (out / "transition_matrix.csv").exists()
    assert "estimated_wrong_fraction" not in pd.read_csv(out / "noise_rates.csv").columns
    assert "skipped" in (out / "audit.html").read_text()


def test_audit_html_renders_in_headless_chromium(tmp_path):
    if chromium_binary() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium): page not rendered")
    npz, _ = write_npz(tmp_path / "blobs.npz", n_train=60, flips=6)
    out = tmp_path / "a"
    res = CliRunner().invoke(
        cli(), ["audit", str(npz), *TINY, "--epochs", "1", "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    page = check_page(out / "audit.html", width=1280, height=2000)
    assert page.errors == []  # no console errors
    assert page.width <= 1280 and page.wide_tables == 0  # nothing overflows the window
    assert page.images and all(i["complete"] and i["w"] > 0 for i in page.images)
    img = np.asarray(Image.open(io.BytesIO(page.screenshot)).convert("RGB"))
    assert img.shape[:2] == (2000, 1280)
    top = img[:900]
    # not blank: dark text and images on the white page, and the orange noise-rate bars
    assert (top.mean(axis=2) < 100).mean() > 0.01
    assert len(np.unique(top.reshape(-1, 3), axis=0)) > 200
    orange = (img[..., 0] > 200) & (img[..., 1] > 110) & (img[..., 1] < 150) & (img[..., 2] < 80)
    assert orange.sum() > 100


def _kaggle_spec(path: Path) -> Path:
    spec = {
        "name": "fundus-grades",
        "modality": "fundus photography",
        "class_names": ["No DR", "Mild", "Moderate", "Severe", "Proliferative"],
        "ordinal": True,
        "image_column": "image",
        "image_root": "images",
        "image_suffix": ".jpeg",
        "split_column": "split",
        "splits": {
            s: {"csv": "labels.csv", "split_value": s, "noisy": "level", "reference": "vote"}
            for s in ("train", "val", "test")
        },
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def test_real_world_csv_dataset_audits_its_noisy_column(tmp_path):
    root = write_kaggledr_plus(tmp_path / "k", 60, 10, 10, noise=0.3, seed=4)
    spec = _kaggle_spec(tmp_path / "spec.yaml")
    out = tmp_path / "a"
    args = ["audit", str(spec), "--root", str(root), *TINY, "--epochs", "2", "--size", "16"]
    res = CliRunner().invoke(cli(), [*args, "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    with open(root / "labels.csv", newline="") as fh:
        train = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    s = pd.read_csv(out / "suspects.csv").sort_values("index")
    assert s["given"].tolist() == [int(r["level"]) for r in train]  # the noisy column
    assert s["name"].tolist() == [r["image"] + ".jpeg" for r in train]
    summary = json.loads((out / "audit.json").read_text())
    assert summary["labels"].startswith("noisy column")
    wrong = sum(r["level"] != r["vote"] for r in train)
    assert summary["evaluation"]["true_wrong_labels"] == wrong > 0  # clean column known


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--signals", "oof,nope"], "unknown signal(s) nope"),
        (["--folds", "30"], "cannot make 30 stratified folds"),
        (["--top", "0"], "--top must be >= 1"),
        (["--split", "holdout"], "unknown split 'holdout'"),
        (["--model", "nope"], "unknown model"),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path, extra, message):
    npz, _ = write_npz(tmp_path / "blobs.npz", n_train=60, flips=6)
    args = ["audit", str(npz), *TINY, *extra, "--out", str(tmp_path / "a"), "--no-progress"]
    res = CliRunner().invoke(cli(), args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_parse_signals():
    assert parse_signals("aum, oof,aum") == ("aum", "oof")
    with pytest.raises(ConfigError, match="known: oof"):
        parse_signals("")
