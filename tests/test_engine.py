"""The engine: run folder contents, summaries, checkpoint resume equal to an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import Interrupt, interrupt_train_step, run_config
from lnmbench.engine.run_folder import RunFolder
from lnmbench.experiment.run import run_one
from lnmbench.methods.base import Method


def _cfg(small_npz: Path, method: str = "ce", **over):
    return run_config(small_npz, method, **over)


def test_run_folder_contents_and_summary(small_npz, tmp_path):
    cfg = _cfg(small_npz)
    summary = run_one(cfg, tmp_path)
    folder = RunFolder(tmp_path / cfg.run_name())
    assert folder.config.exists() and folder.metrics.exists() and folder.summary.exists()
    assert not folder.checkpoint.exists()  # removed after a finished run unless kept
    saved = yaml.safe_load(folder.config.read_text())
    assert saved["method"] == "ce" and saved["hparams"]["batch_size"] == 32
    rows = [json.loads(x) for x in folder.metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    test_acc = [r["test_headline_acc"] for r in rows]
    assert summary["headline"]["value"] == pytest.approx(np.mean(test_acc[-5:]))
    val = [r["val_headline_acc"] for r in rows]
    best = int(np.argmax(val))
    assert summary["best_val_epoch"] == best
    assert summary["test_acc_best_val"] == pytest.approx(test_acc[best])
    assert summary["test_acc_final"] == pytest.approx(test_acc[-1])
    for key in ("balanced_accuracy", "macro_f1", "macro_auc", "ece", "fpr95"):
        assert key in summary["metrics"]
    assert 0.3 < summary["realised_noise_rate"]["train"] < 0.5
    noise = json.loads((folder.path / "noise.json").read_text())
    assert noise["train"]["sha256"] != noise["val"]["sha256"]
    # test labels are the clean ones, untouched; validation is scored against its noisy labels
    pred = np.load(folder.path / "predictions.npz")
    from lnmbench.data import load_dataset

    ds = load_dataset(str(small_npz))
    assert np.array_equal(pred["test_labels"], ds["test"].labels.numpy())
    final_acc = (pred["test_probs_net"].argmax(1) == pred["test_labels"]).mean()
    assert summary["test_acc_final"] == pytest.approx(final_acc)
    val_noisy = pred["val_labels_noisy"]
    assert 0.3 < (val_noisy != ds["val"].labels.numpy()).mean() < 0.55
    assert summary["best_val_acc"] == pytest.approx(max(val))
    # a finished run is skipped: same summary, nothing retrained
    again = run_one(cfg, tmp_path)
    assert again["headline"] == summary["headline"]


@pytest.mark.parametrize("method", ["ce", "sce"])
def test_resume_equals_uninterrupted(small_npz, tmp_path, monkeypatch, method):
    cfg = _cfg(small_npz, method=method)
    full = run_one(cfg, tmp_path / "a")
    rows_full = RunFolder(tmp_path / "a" / cfg.run_name()).read_metrics()

    # kill in the middle of epoch 2 (after the checkpoint of epoch 1)
    calls = interrupt_train_step(monkeypatch, Method, 8 * 2 + 3)  # 240/32 -> 8 batches an epoch
    with pytest.raises(Interrupt):
        run_one(cfg, tmp_path / "b")
    folder = RunFolder(tmp_path / "b" / cfg.run_name())
    assert folder.checkpoint.exists() and not folder.summary.exists()
    assert [r["epoch"] for r in folder.read_metrics()] == [0, 1]
    calls["restore"]()
    resumed = run_one(cfg, tmp_path / "b")
    rows_resumed = folder.read_metrics()
    assert [r["epoch"] for r in rows_resumed] == [0, 1, 2, 3]
    for a, b in zip(rows_full, rows_resumed, strict=True):
        assert a["test_acc"] == b["test_acc"]
        assert a["train"]["loss"] == b["train"]["loss"]
    assert resumed["headline"]["value"] == full["headline"]["value"]


def test_same_seed_same_result_different_seed_differs(small_npz, tmp_path):
    a = run_one(_cfg(small_npz, epochs=2), tmp_path / "a")
    b = run_one(_cfg(small_npz, epochs=2), tmp_path / "b")
    c = run_one(_cfg(small_npz, epochs=2, seed=1), tmp_path / "c")
    assert a["headline"] == b["headline"]
    assert a["config_hash"] != c["config_hash"]
    assert a["heads"] != c["heads"] or a["realised_noise_rate"] != c["realised_noise_rate"]


def test_cpu_evaluation_chunks_give_bitwise_identical_probabilities():
    """The CPU forward runs in chunks of CPU_EVAL_CHUNK whatever the eval batch size; that must
    not change a single bit of the probabilities (config hashes stay valid)."""
    import torch

    from lnmbench import models
    from lnmbench.data import load_dataset
    from lnmbench.engine.evaluation import CPU_EVAL_CHUNK, predict_split
    from lnmbench.engine.image_transform import ImageTransform

    class OneNet:
        def __init__(self) -> None:
            torch.manual_seed(0)
            self.net = models.create("cnn", 8, 3)
            self.net.train()
            self.net(torch.rand(64, 3, 28, 28))  # BatchNorm running stats away from the init
            self.calls: list[int] = []

        def eval_mode(self) -> None:
            self.net.eval()

        def predict(self, x):
            self.calls.append(len(x))
            return {"net": self.net(x)}

    ds = load_dataset("demo")
    images = ds["test"].images[:700]
    tf = ImageTransform.of(*ds.channel_stats())
    m = OneNet()
    big = predict_split(m, images, transform=tf, batch_size=1024)
    assert max(m.calls) == CPU_EVAL_CHUNK and sum(m.calls) == 700
    # the reference: one forward per image-chunk size that a GPU or an older version would use
    with torch.inference_mode():
        whole = m.net(tf(images)).float().softmax(1).double().numpy()
    small = predict_split(m, images, transform=tf, batch_size=50)
    assert np.array_equal(big["net"], whole) and np.array_equal(small["net"], whole)


def test_step_timer_splits_data_and_compute_time_on_the_cpu():
    import time

    import torch

    from lnmbench.engine.step_timer import StepTimer

    timer = StepTimer(torch.device("cpu"))
    for _ in range(3):
        timer.begin()
        time.sleep(0.01)  # "data"
        timer.between()
        time.sleep(0.03)  # "compute"
        timer.end()
    data_s, compute_s = timer.totals()
    assert 0.03 <= data_s < 0.06 and 0.09 <= compute_s < 0.15
    assert timer.totals() == (data_s, compute_s)  # reading twice adds nothing


def test_resume_on_other_numerics_is_refused_and_keeps_the_checkpoint(
    small_npz, tmp_path, monkeypatch
):
    """The hash leaves the device out, so the checkpoint records what it was computed with
    (cpu/fp32 here); a resume under other numerics (e.g. a GPU's bf16) must not mix them."""
    import torch

    from lnmbench.errors import ConfigError

    cfg = _cfg(small_npz)
    calls = interrupt_train_step(monkeypatch, Method, 8 * 2 + 3)
    with pytest.raises(Interrupt):
        run_one(cfg, tmp_path)
    calls["restore"]()
    folder = RunFolder(tmp_path / cfg.run_name())
    state = torch.load(folder.checkpoint, weights_only=False)
    assert state["numerics"] == "cpu/fp32"
    state["numerics"] = "cuda/bf16"  # as if a GPU run had been interrupted
    torch.save(state, folder.checkpoint)
    with pytest.raises(ConfigError, match=r"written on cuda/bf16 .* runs on cpu/fp32"):
        run_one(cfg, tmp_path)
    assert folder.checkpoint.exists() and not folder.summary.exists()
    assert [r["epoch"] for r in folder.read_metrics()] == [0, 1]
    # the same numerics resume as before, and the summary says which they were
    state["numerics"] = "cpu/fp32"
    torch.save(state, folder.checkpoint)
    summary = run_one(cfg, tmp_path)
    assert summary["numerics"] == "cpu/fp32"
    assert [r["epoch"] for r in folder.read_metrics()] == [0, 1, 2, 3]
