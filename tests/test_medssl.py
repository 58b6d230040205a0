"""medssl (methods.md §8): DivideMix plus class-aware co-divide, robust L_x, imbalance handling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_method
from lnmbench.engine.run_folder import RunFolder
from lnmbench.errors import ConfigError
from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.run import run_one
from lnmbench.methods.base import Batch
from lnmbench.methods.common.gmm_divide import Split
from lnmbench.methods.common.soft_targets import soft_cross_entropy
from lnmbench.methods.dividemix import DivideMix
from lnmbench.methods.medssl import (
    MedSSL,
    class_quotas,
    class_thresholds,
    quota_split,
    smoothed_frequencies,
    soft_sce_loss,
)

OFF = {"divide": "global", "lx_loss": "ce", "imbalance": "none", "prior": "uniform"}
RETINA_COUNTS = np.array([486, 128, 206, 194, 66])  # RetinaMNIST training grades 0-4


_method = tiny_method


def _run_epoch(method, epoch: int) -> dict:
    """Drive one epoch as the engine does; returns the epoch-end diagnostics."""
    method.train_mode()
    method.on_epoch_start(epoch)
    for idx in method.epoch_batches(epoch):
        views = {k: method.ctx.train.view(idx, k) for k in method.views}
        method.train_step(Batch(idx, method.ctx.train.noisy_labels[idx], views))
    return method.on_epoch_end(epoch)


def _cfg(small_npz: Path, method: str, epochs: int = 3, **hparams):
    return resolve_config(
        {
            "method": method,
            "dataset": str(small_npz),
            "model": "cnn-tiny",
            "epochs": epochs,
            "progress": False,
            "noise": {"name": "symmetric", "rate": 0.4},
            "hparams": {"batch_size": 32, "warmup_epochs": 1, "ref_epochs": epochs, **hparams},
        }
    )


# --------------------------------------------------------------------------------------------------
# components off = DivideMix
# --------------------------------------------------------------------------------------------------


def test_components_off_reproduce_dividemix_exactly(small_npz, tmp_path):
    runs = {}
    for method, hparams in (("dividemix", {}), ("medssl", OFF)):
        cfg = _cfg(small_npz, method, **hparams)
        summary = run_one(cfg, tmp_path)
        folder = RunFolder(tmp_path / cfg.run_name())
        with np.load(folder.path / "selection.npz") as sel:
            arrays = {k: sel[k] for k in sel.files}
        runs[method] = (summary, folder.read_metrics(), arrays)
    (s_dm, rows_dm, sel_dm), (s_ms, rows_ms, sel_ms) = runs["dividemix"], runs["medssl"]
    assert len(rows_dm) == len(rows_ms) == 3
    for a, b in zip(rows_dm, rows_ms, strict=True):
        assert a["train"] == b["train"]  # losses (loss, lx, lu, reg), λ_u, mixup λ
        assert a["test_acc"] == b["test_acc"] and a["val_acc"] == b["val_acc"]
        assert a["test"] == b["test"]
        medssl_only = b["diagnostics"].pop("medssl", None)
        assert a["diagnostics"] == b["diagnostics"]  # labelled sets, GMM means, selections
        if a["diagnostics"]["phase"] == "semi-supervised":
            assert medssl_only["by_net"]["net1"]["quota_filled"] == []
    assert sel_dm.keys() == sel_ms.keys()
    for key in sel_dm:  # the final labelled sets and clean probabilities w, per net
        np.testing.assert_array_equal(sel_dm[key], sel_ms[key], err_msg=key)
    assert s_dm["headline"]["value"] == s_ms["headline"]["value"]
    assert s_dm["metrics"] == s_ms["metrics"]


def test_components_off_same_weights_after_an_epoch():
    labels = np.arange(60) % 3
    nets = {}
    for cls, hp in ((DivideMix, {}), (MedSSL, OFF)):
        m = _method(cls, labels, 3, batch_size=16, warmup_epochs=1, ref_epochs=4, **hp)
        _run_epoch(m, 0)
        _run_epoch(m, 1)
        nets[cls.name] = m.nets
    for name in ("net1", "net2"):
        a, b = nets["dividemix"][name].state_dict(), nets["medssl"][name].state_dict()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{name} {key}")


# --------------------------------------------------------------------------------------------------
# class-aware co-divide
# --------------------------------------------------------------------------------------------------


def test_thresholds_match_the_formula_and_stay_in_range():
    t = class_thresholds(RETINA_COUNTS, 0.6, 0.4)
    log = np.log
    alpha = (log(RETINA_COUNTS) - log(66)) / (log(486) - log(66))
    np.testing.assert_allclose(t, 0.4 + 0.2 * alpha)
    assert t[0] == pytest.approx(0.6) and t[4] == pytest.approx(0.4)  # head strict, tail lenient
    assert t[1] == pytest.approx(0.4 + 0.2 * math.log(128 / 66) / math.log(486 / 66))
    np.testing.assert_allclose(class_thresholds(np.full(4, 50)), 0.5)  # all equal: DivideMix's τ
    extreme = class_thresholds(RETINA_COUNTS, t_head=1.0, t_tail=0.0)
    assert extreme.min() == pytest.approx(0.2) and extreme.max() == pytest.approx(0.95)
    assert np.all((extreme >= 0.2) & (extreme <= 0.95))
    with_empty = class_thresholds(np.array([100, 0, 10]))
    assert with_empty.tolist() == pytest.approx([0.6, 0.4, 0.4])  # n_c = 0 ignored in α


def test_quotas():
    assert class_quotas(np.array([486, 128, 206, 194, 66, 3, 0, 8, 200])).tolist() == [
        25,  # ⌈0.05·486⌉
        8,
        11,
        10,
        8,
        3,  # min(n_c, 8): a class of 3 is labelled whole
        0,
        8,
        10,
    ]


def test_quota_split_fills_classes_by_highest_w():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    w = np.array([0.9, 0.8, 0.1, 0.7, 0.3, 0.2, 0.25])
    split, filled = quota_split(w, labels, np.array([0.5, 0.5]), np.array([2, 2]))
    # class 0: {0, 1, 3} above 0.5 (≥ 2, kept); class 1: none, filled with its two best (4, 6)
    assert np.flatnonzero(split.labelled).tolist() == [0, 1, 3, 4, 6]
    assert filled == [1] and split.fallback is None


def _imbalanced_labels() -> np.ndarray:
    """150 / 30 / 12 / 5 samples of classes 0-3, class 4 absent (n_c = 0)."""
    return np.repeat(np.arange(4), [150, 30, 12, 5])


@pytest.mark.parametrize("divide", ["global", "adaptive", "rescue", "per_class"])
def test_a_class_that_the_global_gmm_drops(divide):
    """Class 2's losses all sit in the noisy mode of the global distribution: DivideMix's global
    GMM labels none of it; the class-aware divides keep at least q_c."""
    labels = _imbalanced_labels()
    m = _method(MedSSL, labels, 5, divide=divide, warmup_epochs=1, ref_epochs=4)
    rng = np.random.default_rng(0)
    losses = np.where(labels == 2, rng.normal(3.0, 0.1, len(labels)), 0.0)
    noisy = rng.random(len(labels)) < 0.3
    losses = np.where(
        labels == 2, losses, np.where(noisy, 3.0, 0.2) + rng.normal(0, 0.05, len(labels))
    )
    probs = np.full((len(labels), 5), 0.2, dtype=np.float32)
    m.divide_pass = lambda: ({"net1": losses, "net2": losses}, {"net1": probs, "net2": probs})
    m.co_divide(1)
    for name in ("net1", "net2"):
        per_class = np.bincount(labels[m.splits[name].labelled], minlength=5)
        if divide == "global":
            assert per_class[2] == 0  # DivideMix would train without class 2
        else:
            assert np.all(per_class >= m.quotas), per_class
            assert 2 in m.class_info[name]["quota_filled"]


@pytest.mark.parametrize("divide", ["adaptive", "rescue", "per_class"])
def test_every_class_keeps_its_quota_at_every_epoch(divide):
    labels = _imbalanced_labels()
    m = _method(
        MedSSL, labels, 5, epochs=3, divide=divide, batch_size=32, warmup_epochs=1, ref_epochs=3
    )
    q = class_quotas(np.bincount(labels, minlength=5))
    assert q.tolist() == [8, 8, 8, 5, 0]
    for epoch in range(3):
        diag = _run_epoch(m, epoch)
        if epoch == 0:
            assert diag["phase"] == "warmup"
            continue
        for name in ("net1", "net2"):
            per_class = np.bincount(labels[m.splits[name].labelled], minlength=5)
            assert np.all(per_class >= q), (epoch, name, per_class)
        assert diag["medssl"]["quotas"] == q.tolist()


def test_per_class_posteriors_only_for_large_classes():
    labels = _imbalanced_labels()
    m = _method(MedSSL, labels, 5, divide="per_class", warmup_epochs=1, ref_epochs=4)
    rng = np.random.default_rng(1)
    losses = rng.random(len(labels))
    w = m.clean_probability("net1", losses, epoch=1)
    assert m.class_info["net1"]["gmm_classes"] == [0, 1]  # n_c ≥ 20 only
    global_w = DivideMix.clean_probability(m, "net1", losses, 1)
    small = np.isin(labels, [2, 3])
    np.testing.assert_array_equal(w[small], global_w[small])
    assert not np.allclose(w[~small], global_w[~small])


def test_rescue_fits_own_gmm_only_for_a_class_the_global_division_empties():
    """Class 1 (30 samples) sits wholly in the global noisy mode, in two sub-modes of its own:
    ``rescue`` gives it its own GMM; class 0 (mostly clean under the global w) keeps the global
    posterior. With no class emptied (uniform losses) ``rescue`` is ``adaptive``."""
    labels = _imbalanced_labels()
    m = _method(MedSSL, labels, 5, divide="rescue", warmup_epochs=1, ref_epochs=4)
    rng = np.random.default_rng(2)
    noisy = rng.random(len(labels)) < 0.3
    losses = np.where(noisy, 3.0, 0.2) + rng.normal(0, 0.05, len(labels))
    ones = np.flatnonzero(labels == 1)
    losses[ones] = np.where(np.arange(len(ones)) % 2 == 0, 2.6, 3.4) + rng.normal(0, 0.02, 30)
    global_w = DivideMix.clean_probability(m, "net1", losses, 1)
    assert (global_w[ones] > m.thresholds[1]).mean() == 0.0  # the global division empties it
    w = m.clean_probability("net1", losses, epoch=1)
    assert m.class_info["net1"]["gmm_classes"] == [1]
    np.testing.assert_array_equal(w[labels != 1], global_w[labels != 1])
    assert (w[ones] > m.thresholds[1]).sum() >= 10  # its low-loss sub-mode is now labelled

    uniform = rng.random(len(labels))
    w = m.clean_probability("net1", uniform, epoch=1)
    assert m.class_info["net1"]["gmm_classes"] == []
    np.testing.assert_array_equal(w, DivideMix.clean_probability(m, "net1", uniform, 1))


# --------------------------------------------------------------------------------------------------
# labelled loss and imbalance handling
# --------------------------------------------------------------------------------------------------


def test_soft_sce_on_fixed_tensors():
    logits = torch.tensor([[0.0, math.log(2.0), 0.0]])  # p = [0.25, 0.5, 0.25]
    targets = torch.tensor([[0.5, 0.5, 0.0]])
    ce = 1.5 * math.log(2.0)
    rce = -(0.25 * math.log(0.5) + 0.5 * math.log(0.5) + 0.25 * math.log(1e-4))
    assert float(soft_sce_loss(logits, targets, 1.0, 1.0)) == pytest.approx(ce + rce)
    assert float(soft_sce_loss(logits, targets, 1.0, 0.0)) == pytest.approx(
        float(soft_cross_entropy(logits, targets))
    )


def test_smoothed_frequencies_and_prior_of_the_labelled_set():
    np.testing.assert_allclose(
        smoothed_frequencies(np.array([0, 0, 0, 1]), 3), [4 / 7, 2 / 7, 1 / 7]
    )
    labels = _imbalanced_labels()
    m = _method(MedSSL, labels, 5, warmup_epochs=1, ref_epochs=4)
    expected_all = smoothed_frequencies(labels, 5)
    torch.testing.assert_close(m.prior("net1"), torch.tensor(expected_all).float())
    division = Split(labels >= 2, np.full(len(labels), 0.6))  # classes 2 and 3 only
    m.begin_phase("net1", division)
    pi = smoothed_frequencies(labels[labels >= 2], 5)
    torch.testing.assert_close(m.prior("net1"), torch.tensor(pi).float())
    z = torch.zeros(2, 5)
    torch.testing.assert_close(m.train_logits(z), torch.log(torch.tensor(pi)).float().expand(2, 5))
    uniform = _method(MedSSL, labels, 5, prior="uniform", imbalance="none")
    torch.testing.assert_close(uniform.prior("net1"), torch.full((5,), 0.2))
    torch.testing.assert_close(uniform.train_logits(z), z)


def test_logit_adjustment_never_touches_predictions(small_npz, tmp_path):
    labels = _imbalanced_labels()
    m = _method(MedSSL, labels, 5, imbalance="logit_adjust")
    m.begin_phase("net1", Split(labels == 0, np.full(len(labels), 0.9)))  # a very skewed π̂
    x = torch.randn(6, 3, 28, 28)
    assert not torch.allclose(m.train_logits(torch.zeros(1, 5)), torch.zeros(1, 5))
    m.eval_mode()  # as the engine's evaluation
    out = m.predict(x)
    with torch.no_grad():
        f1, f2 = m.nets["net1"](x), m.nets["net2"](x)
    torch.testing.assert_close(out["net1"], f1, rtol=0, atol=0)
    torch.testing.assert_close(out["ensemble"], (f1 + f2) / 2, rtol=0, atol=0)
    # end to end: the evaluated test accuracy is that of the raw ensemble logits
    cfg = _cfg(small_npz, "medssl", epochs=2)
    run_one(cfg, tmp_path)
    rows = RunFolder(tmp_path / cfg.run_name()).read_metrics()
    assert "medssl" in rows[-1]["diagnostics"]
    with np.load(tmp_path / cfg.run_name() / "predictions.npz") as pred:
        acc = float(np.mean(pred["test_probs_ensemble"].argmax(1) == pred["test_labels"]))
    assert acc == pytest.approx(rows[-1]["test_acc"]["ensemble"])


def test_balanced_sampler_draws_classes_evenly():
    labels = np.repeat(np.arange(4), [1500, 300, 120, 50])
    m = _method(MedSSL, labels, 5, imbalance="balanced_sampler")
    labelled = torch.arange(len(labels))
    order = m.labelled_order(labelled)
    assert len(order) == len(labelled)
    counts = np.bincount(labels[order.numpy()], minlength=5)[:4]
    assert counts.min() > 0.8 * counts.max()  # ~492 each, not 1500 / 300 / 120 / 50
    off = _method(MedSSL, labels, 5, imbalance="none")
    assert sorted(off.labelled_order(labelled).tolist()) == labelled.tolist()  # a permutation


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "known"),
    [
        ("divide", "classwise", "known: per_class, adaptive, rescue, global"),
        ("lx_loss", "soft_ce", "known: sce_soft, ce, sce_argmax"),
        ("imbalance", "focal", "known: logit_adjust, balanced_sampler, none"),
        ("prior", "test_freq", "known: labelled_freq, uniform"),
    ],
)
def test_bad_hparams_are_one_line_errors_listing_known_values(key, value, known):
    with pytest.raises(ConfigError, match=known) as err:
        resolve_config({"method": "medssl", "hparams": {key: value}})
    message = str(err.value)
    assert "\n" not in message and f"medssl: unknown {key}" in message and repr(value) in message


def test_presets_give_medssl_dividemix_schedule():
    for preset in ("fast", "lnmbench"):
        dm = resolve_config({"method": "dividemix", "preset": preset}).hparams
        ms = resolve_config({"method": "medssl", "preset": preset}).hparams
        for key in ("lr", "schedule", "milestones", "warmup_epochs", "rampup_epochs", "lambda_u"):
            assert ms[key] == dm[key], (preset, key)
        assert ms["lx_loss"] == "ce" and ms["divide"] == "per_class"


class _Interrupt(Exception):
    pass


def test_resume_equals_uninterrupted(small_npz, tmp_path, monkeypatch):
    """A run killed in its first semi-supervised epoch and resumed from the checkpoint of the
    warm-up gives the uninterrupted rows (per-class state and class prior restored or rebuilt)."""
    cfg = _cfg(small_npz, "medssl", epochs=2, imbalance="balanced_sampler")
    run_one(cfg, tmp_path / "a")
    rows_full = RunFolder(tmp_path / "a" / cfg.run_name()).read_metrics()
    original, calls = MedSSL.train_step, {"n": 0}

    def dying_step(self, batch):
        if self.epoch == 1:
            calls["n"] += 1
            if calls["n"] == 2:
                raise _Interrupt
        return original(self, batch)

    monkeypatch.setattr(MedSSL, "train_step", dying_step)
    with pytest.raises(_Interrupt):
        run_one(cfg, tmp_path / "b")
    monkeypatch.setattr(MedSSL, "train_step", original)
    run_one(cfg, tmp_path / "b")
    rows_resumed = RunFolder(tmp_path / "b" / cfg.run_name()).read_metrics()
    assert [r["epoch"] for r in rows_resumed] == [0, 1]
    assert rows_resumed[1]["diagnostics"]["phase"] == "semi-supervised"
    for a, b in zip(rows_full, rows_resumed, strict=True):
        assert a["train"] == b["train"] and a["test_acc"] == b["test_acc"]
        assert a["diagnostics"] == b["diagnostics"]
