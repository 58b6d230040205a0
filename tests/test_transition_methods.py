"""CDR, T-Revision and VolMinNet (methods.md §3.2, §3.3, §3.5) and their T diagnostics (§6.4)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import Interrupt, interrupt_train_step, method_context, run_config
from lnmbench.engine.run_folder import RunFolder
from lnmbench.errors import ConfigError
from lnmbench.experiment.run import run_one
from lnmbench.methods import METHODS, RunContext
from lnmbench.methods.cdr import (
    CDR,
    CDRHparams,
    clip_rate,
    kth_largest,
    mask_gradients,
    maskable_weights,
)
from lnmbench.methods.t_revision import (
    TRevision,
    TRevisionHparams,
    anchor_transition_matrix,
    importance_weights,
    revision_loss,
    reweighted_ce,
    stage_lengths,
    stage_of_epoch,
)
from lnmbench.methods.volminnet import SigmoidTransition, VolMinNetHparams, volminnet_loss

# --------------------------------------------------------------------------- helpers


class _FakeTrain:
    """A tiny training split: N random 3×28×28 images, served like the engine's TrainView."""

    def __init__(self, n: int = 20, num_classes: int = 3) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, 28, 28, generator=g)
        self.noisy_labels = torch.arange(n) % num_classes
        self.num_samples = n

    def view(self, index: torch.Tensor, kind: str = "train") -> torch.Tensor:
        return self.images[index]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.num_samples, batch_size):
            idx = torch.arange(start, min(start + batch_size, self.num_samples))
            yield idx, self.images[idx]


def _ctx(epochs: int = 20, noise_rate: float | None = 0.4, num_classes: int = 3) -> RunContext:
    return method_context(
        _FakeTrain(num_classes=num_classes),
        num_classes,
        epochs=epochs,
        noise_rate=noise_rate,
        generator_seed=0,
    )


class _TinyNet(nn.Module):
    """A linear layer (2, 3) with bias, a BatchNorm, and a 1×1×1×2 convolution weight."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        self.conv = nn.Conv2d(1, 1, (1, 2), bias=False)


def _tiny_net_with_grads() -> _TinyNet:
    """Scores |g·θ|: fc.weight [[6, 5, 4], [3, 2, 1]], conv.weight [0.5, 7] (no ties)."""
    net = _TinyNet()
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor([[1.0, -1.0, 2.0], [1.0, 1.0, -1.0]]))
        net.conv.weight.copy_(torch.tensor([[[[0.25, -1.0]]]]))
    net.fc.weight.grad = torch.tensor([[6.0, -5.0, 2.0], [3.0, 2.0, -1.0]])
    net.conv.weight.grad = torch.tensor([[[[2.0, -7.0]]]])
    net.fc.bias.grad = torch.tensor([0.3, -0.7])
    net.bn.weight.grad = torch.tensor([0.1, 0.2])
    net.bn.bias.grad = torch.tensor([-0.4, 0.5])
    return net


# --------------------------------------------------------------------------- CDR


def test_cdr_pool_is_the_2d_and_4d_weights_only():
    net = _tiny_net_with_grads()
    pool = maskable_weights(net)
    assert [p.shape for p in pool] == [torch.Size([2, 3]), torch.Size([1, 1, 1, 2])]


def test_cdr_keeps_top_fraction_scaled_and_zeroes_the_rest():
    net = _tiny_net_with_grads()
    kept = mask_gradients(maskable_weights(net), clip=0.5)  # |P| = 8 -> k = 4, t = 4
    assert kept == 4
    torch.testing.assert_close(
        net.fc.weight.grad, torch.tensor([[3.0, -2.5, 1.0], [0.0, 0.0, 0.0]])
    )
    torch.testing.assert_close(net.conv.weight.grad, torch.tensor([[[[0.0, -3.5]]]]))
    # biases and BatchNorm parameters keep their gradient untouched
    torch.testing.assert_close(net.fc.bias.grad, torch.tensor([0.3, -0.7]))
    torch.testing.assert_close(net.bn.weight.grad, torch.tensor([0.1, 0.2]))
    torch.testing.assert_close(net.bn.bias.grad, torch.tensor([-0.4, 0.5]))


def test_cdr_ties_at_the_threshold_are_all_kept():
    w = nn.Parameter(torch.ones(1, 5))
    w.grad = torch.tensor([[4.0, 3.0, -3.0, 3.0, 1.0]])
    # k = ⌊0.4·5⌋ = 2, t = 2nd largest = 3, m = 1[s >= 3] keeps 4 entries (more than k)
    assert mask_gradients([w], clip=0.4) == 4
    torch.testing.assert_close(w.grad, torch.tensor([[1.6, 1.2, -1.2, 1.2, 0.0]]))


def test_kth_largest_with_ties():
    values = torch.tensor([1.0, 3.0, 4.0, 3.0, 3.0])
    assert [kth_largest(values, k).item() for k in range(1, 6)] == [4.0, 3.0, 3.0, 3.0, 1.0]
    x = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    assert kth_largest(x, 137).item() == torch.sort(x, descending=True).values[136].item()


def test_cdr_k_zero_masks_everything():
    w = nn.Parameter(torch.ones(1, 5))
    w.grad = torch.tensor([[4.0, 3.0, 2.0, 1.0, 5.0]])
    assert mask_gradients([w], clip=0.1) == 0  # ⌊0.5⌋ = 0
    assert torch.count_nonzero(w.grad) == 0


def test_cdr_clip_schedule_values():
    assert clip_rate(0, 0.4, "ramp", 10) == pytest.approx(1.0)
    assert clip_rate(3, 0.4, "ramp", 10) == pytest.approx(1 - 0.4 * 3 / 9)
    assert clip_rate(9, 0.4, "ramp", 10) == pytest.approx(0.6)
    assert clip_rate(30, 0.4, "ramp", 10) == pytest.approx(0.6)
    assert clip_rate(0, 0.4, "constant", 10) == pytest.approx(0.6)
    assert clip_rate(0, 0.4, "ramp", 1) == pytest.approx(0.6)
    with pytest.raises(ConfigError, match="known: constant, ramp"):
        CDRHparams(clip_schedule="linear")


def test_cdr_step_masks_then_masked_weights_still_decay():
    """after_backward masks at the epoch's clip rate; SGD's coupled decay shrinks masked weights."""
    method = CDR(CDRHparams(), _ctx(epochs=50, noise_rate=0.5))
    method.setup()
    assert method.ramp_epochs == 10  # T_k = 10 at the reference 50 epochs
    net = _tiny_net_with_grads()
    method.net = method.nets["net"] = net
    opt = method.optimizers["net"] = torch.optim.SGD(
        net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3
    )
    method.schedulers = {}
    method.on_epoch_start(9)  # clip = 1 - 0.5 = 0.5 -> k = 4 of 8
    assert method.clip == pytest.approx(0.5)
    w_fc = net.fc.weight.detach().clone()
    w_conv = net.conv.weight.detach().clone()
    method.after_backward(net)
    opt.step()
    g_fc = torch.tensor([[3.0, -2.5, 1.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(net.fc.weight.detach(), w_fc - 0.1 * (g_fc + 1e-3 * w_fc))
    g_conv = torch.tensor([[[[0.0, -3.5]]]])
    torch.testing.assert_close(net.conv.weight.detach(), w_conv - 0.1 * (g_conv + 1e-3 * w_conv))
    assert net.fc.weight[1, 0].item() == pytest.approx(1.0 * (1 - 0.1 * 1e-3))  # masked, decayed
    assert method.on_epoch_end(9)["cdr_kept_fraction"] == pytest.approx(0.5)


# --------------------------------------------------------------------------- VolMinNet


def _expected_t(w: np.ndarray) -> np.ndarray:
    c = len(w)
    t = np.eye(c) + (1 / (1 + np.exp(-w))) * (1 - np.eye(c))
    return t / t.sum(1, keepdims=True)


@pytest.mark.parametrize("scale", [3.0, 60.0])
def test_volminnet_t_is_row_stochastic_with_dominant_diagonal(scale):
    module = SigmoidTransition(5, -2.0)
    w = torch.randn(5, 5, generator=torch.Generator().manual_seed(1)) * scale
    with torch.no_grad():
        module.w.copy_(w)
    t = module().detach().double().numpy()
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-6)
    assert np.all(t >= 0)
    off = np.where(np.eye(5, dtype=bool), -np.inf, t)
    assert np.all(np.diag(t) >= off.max(1) - 1e-7)  # T_ii >= T_ij (equal only when σ(W_ij) = 1)
    assert np.all(np.diag(t) >= 1 / 5 - 1e-7)
    np.testing.assert_allclose(t, _expected_t(w.double().numpy()), atol=1e-6)
    if scale == 3.0:
        assert np.all(np.diag(t) > off.max(1))


def test_volminnet_initial_t():
    t = SigmoidTransition(3, -2.0)().detach().double().numpy()
    s = 1 / (1 + math.exp(2.0))
    np.testing.assert_allclose(t, (np.eye(3) + s * (1 - np.eye(3))) / (1 + 2 * s), atol=1e-7)


def test_volminnet_loss_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
    labels = torch.tensor([0, 2])
    w = np.array([[0.0, -1.0, -3.0], [1.0, 0.0, -2.0], [-0.5, 0.5, 0.0]])
    t = _expected_t(w)
    z = logits.double().numpy()
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    q = p @ t
    lam = 0.5
    logdet = math.log(abs(np.linalg.det(t)))
    expected = -np.mean(np.log(q[[0, 1], [0, 2]])) + lam * logdet
    t_torch = torch.tensor(t, dtype=torch.float32)
    got = volminnet_loss(logits, labels, t_torch, lam, "probs")
    assert got.item() == pytest.approx(expected, abs=1e-5)
    # the reference variant: softmax-CE of the logits multiplied by T
    zt = z @ t
    log_soft = zt - np.log(np.exp(zt).sum(1, keepdims=True))
    expected_logits = -np.mean(log_soft[[0, 1], [0, 2]]) + lam * logdet
    got_logits = volminnet_loss(logits, labels, t_torch, lam, "logits")
    assert got_logits.item() == pytest.approx(expected_logits, abs=1e-5)


def test_volminnet_loss_floor_on_a_zero_noisy_posterior():
    logits = torch.tensor([[200.0, -200.0, -200.0]])
    loss = volminnet_loss(logits, torch.tensor([1]), torch.eye(3), 0.0, "probs")
    assert loss.item() == pytest.approx(-math.log(1e-12), rel=1e-5)
    with pytest.raises(ConfigError, match="known: logits, probs"):
        VolMinNetHparams(t_on="noisy")


# --------------------------------------------------------------------------- T-Revision


def _synthetic_posteriors(t: np.ndarray, n_per_class: int = 40, outliers: int = 0) -> np.ndarray:
    """Noisy posteriors P·T: one exact anchor e_i per class, Dirichlet rows that are never close
    to one-hot, and ``outliers`` rows per class of e_i itself (above every P·T value)."""
    c = len(t)
    rng = np.random.default_rng(0)
    clean = [np.eye(c)]  # the anchors
    clean.append(0.7 * rng.dirichlet(np.ones(c), size=n_per_class * c) + 0.3 / c)
    rows = np.concatenate(clean) @ t
    if outliers:
        rows = np.concatenate([rows, np.repeat(np.eye(c), outliers, axis=0)])
    return rng.permutation(rows)


T_KNOWN = np.array([[0.7, 0.2, 0.1], [0.15, 0.6, 0.25], [0.05, 0.3, 0.65]])


def test_anchor_estimator_recovers_known_t_and_does_not_mutate():
    probs = _synthetic_posteriors(T_KNOWN)
    before = probs.copy()
    t_hat = anchor_transition_matrix(probs, filter_outlier=False)
    np.testing.assert_allclose(t_hat, T_KNOWN, atol=1e-6)
    np.testing.assert_array_equal(probs, before)


def test_anchor_estimator_filter_removes_outliers_on_a_copy():
    # 3 + 45 + 9 = 57 rows: the 97th percentile ("higher") of a column is its 56th-ranked value
    # (0-based index ⌈0.97·56⌉ = 55), so exactly the 3 one-hot outliers are zeroed
    probs = _synthetic_posteriors(T_KNOWN, n_per_class=15, outliers=3)
    before = probs.copy()
    t_hat = anchor_transition_matrix(probs, filter_outlier=True, percentile=97)
    np.testing.assert_allclose(t_hat, T_KNOWN, atol=1e-6)
    np.testing.assert_array_equal(probs, before)  # filtering never touches the input
    # without the filter the outliers are taken as anchors: T̂ = I
    np.testing.assert_allclose(anchor_transition_matrix(probs, filter_outlier=False), np.eye(3))


def test_anchor_estimator_honours_percentile():
    col = np.linspace(0.9, 0.0, 10)  # rows 0..9 with column-0 values 0.9, 0.8, ..., 0.0
    probs = np.stack([col, 1 - col], axis=1)
    # percentile 97 (higher) -> threshold = the max: only 0.9 removed, anchor row 1 (0.8)
    np.testing.assert_allclose(anchor_transition_matrix(probs, True, 97)[0], [0.8, 0.2])
    # percentile 80 (higher) -> threshold = 0.8: 0.9 and 0.8 removed, anchor row 2 (0.7)
    np.testing.assert_allclose(anchor_transition_matrix(probs, True, 80)[0], [0.7, 0.3])
    with pytest.raises(ConfigError, match="non-negative"):
        anchor_transition_matrix(-probs)


def test_anchor_estimator_normalises_rows():
    probs = np.array([[0.5, 0.3], [0.1, 0.6]])  # rows not summing to one
    np.testing.assert_allclose(
        anchor_transition_matrix(probs, filter_outlier=False), [[0.625, 0.375], [1 / 7, 6 / 7]]
    )


def test_importance_weights_formula():
    p = torch.tensor([[0.8, 0.2], [0.8, 0.2], [0.1, 0.9]])
    t = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    y = torch.tensor([0, 1, 1])
    # Tᵀp: [0.78, 0.22] for the first two rows, [0.36, 0.64] for the last
    expected = torch.tensor([0.8 / 0.78, 0.2 / 0.22, 0.9 / 0.64])
    torch.testing.assert_close(importance_weights(p, y, t), expected)


def test_reweighting_beta_is_constant():
    logits = torch.tensor([[1.0, -0.5], [0.2, 0.4]], requires_grad=True)
    y = torch.tensor([0, 1])
    t = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    loss, beta = reweighted_ce(logits, y, t, detach_weights=True)
    loss.backward()
    with torch.no_grad():
        ce_grad = logits.softmax(1) - F.one_hot(y, 2)
        expected = beta[:, None] * ce_grad / 2
    torch.testing.assert_close(logits.grad, expected)


def test_revision_builds_t_prime_once_per_batch():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 3, generator=g)
    y = torch.tensor([0, 1, 2, 1])
    t_hat = torch.tensor(T_KNOWN, dtype=torch.float32)
    delta = torch.nn.Parameter(0.05 * torch.randn(3, 3, generator=g))
    loss, _ = revision_loss(logits, y, t_hat, delta)
    p = logits.softmax(1)
    t_prime = t_hat + delta.detach()
    per_sample = [
        p[i, y[i]] / (p[i] @ t_prime)[y[i]] * F.cross_entropy(logits[i : i + 1], y[i : i + 1])
        for i in range(4)
    ]
    assert loss.item() == pytest.approx(torch.stack(per_sample).mean().item(), rel=1e-6)
    # the reference's accumulating bug (sample k uses T̂ + (k+1)ΔT) gives a different value
    accumulated = [
        p[i, y[i]]
        / (p[i] @ (t_hat + (i + 1) * delta.detach()))[y[i]]
        * F.cross_entropy(logits[i : i + 1], y[i : i + 1])
        for i in range(4)
    ]
    assert abs(loss.item() - torch.stack(accumulated).mean().item()) > 1e-4
    loss.backward()  # β keeps its gradient: ΔT is learned
    assert delta.grad is not None and torch.count_nonzero(delta.grad) > 0


def test_stage_lengths_and_epochs():
    assert stage_lengths(20) == (2, 9, 9)
    assert stage_lengths(50) == (5, 22, 23)
    assert stage_lengths(3) == (1, 1, 1)
    assert stage_lengths(105, 5, 50, 50) == (5, 50, 50)
    assert stage_lengths(20, est=4) == (4, 8, 8)
    assert stage_lengths(20, rw=10) == (2, 10, 8)
    assert stage_lengths(20, est_fraction=0.25) == (5, 7, 8)
    with pytest.raises(ConfigError, match="est_fraction"):
        TRevisionHparams(est_fraction=1.0)
    with pytest.raises(ConfigError, match="add up to the run's epochs \\(20\\)"):
        stage_lengths(20, 5, 50, 50)
    with pytest.raises(ConfigError, match=">= 1"):
        stage_lengths(2)
    stages = [stage_of_epoch(e, (2, 3, 2)) for e in range(7)]
    assert stages == [
        ("estimation", 0),
        ("estimation", 1),
        ("reweighting", 0),
        ("reweighting", 1),
        ("reweighting", 2),
        ("revision", 0),
        ("revision", 1),
    ]
    with pytest.raises(ConfigError, match="beyond"):
        stage_of_epoch(7, (2, 3, 2))


def _set_marker_weights(net: nn.Module, epoch: int) -> dict[str, torch.Tensor]:
    """Give ``net`` weights that identify ``epoch``; returns a copy of its state."""
    g = torch.Generator().manual_seed(100 + epoch)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_t_revision_keeps_first_best_epoch_of_each_stage():
    """Stage 1 restores the first best epoch and estimates T̂ from its probabilities; stage 2
    restores its own first best epoch itself (no off-by-one); ΔT starts at zero."""
    method = TRevision(TRevisionHparams(est_epochs=3, rw_epochs=4, rev_epochs=1), _ctx(epochs=8))
    method.setup()
    val = [0.2, 0.6, 0.6, 0.3, 0.5, 0.5, 0.4]
    states, probs = {}, {}
    for epoch in range(7):
        method.train_mode()
        method.on_epoch_start(epoch)
        states[epoch] = _set_marker_weights(method.net, epoch)
        probs[epoch] = method.train_probabilities()
        assert method.on_epoch_end(epoch)["t_revision_stage"] == (
            "estimation" if epoch < 3 else "reweighting"
        )
        out = method.after_evaluation(epoch, {"net": 0.0, "noisy": val[epoch]})
        if epoch == 2:
            assert out == {"t_revision_estimation_best_epoch": 1}
            for k, v in method.net.state_dict().items():
                torch.testing.assert_close(v, states[1][k])
            np.testing.assert_allclose(
                method.transition_matrix(), anchor_transition_matrix(probs[1], True, 97)
            )
        elif epoch < 2:
            assert method.transition_matrix() is None
    assert out == {"t_revision_reweighting_best_epoch": 4}
    for k, v in method.net.state_dict().items():
        torch.testing.assert_close(v, states[4][k])
    assert method.best["reweighting"]["state"] is None  # freed after use
    method.on_epoch_start(7)
    assert method.stage == "revision"
    assert torch.count_nonzero(method.slack.delta) == 0
    np.testing.assert_allclose(method.transition_matrix(), anchor_transition_matrix(probs[1]))


def test_t_revision_rejects_stage_lengths_that_do_not_fit():
    method = TRevision(TRevisionHparams(est_epochs=5, rw_epochs=50, rev_epochs=50), _ctx(20))
    with pytest.raises(ConfigError, match="epochs: 105"):
        method.setup()


# --------------------------------------------------------------------------- end to end


def _cfg(small_npz: Path, method: str, epochs: int, **hparams):
    return run_config(small_npz, method, epochs, "pairflip", 0.3, **{"batch_size": 48, **hparams})


def _rows(root: Path, cfg) -> list[dict]:
    return RunFolder(root / cfg.run_name()).read_metrics()


def test_cdr_end_to_end_logs_clip_schedule(small_npz, tmp_path):
    cfg = _cfg(small_npz, "cdr", 3, ramp_epochs=50)  # T_k = 3 at 3 epochs: clip 1, 0.85, 0.7
    run_one(cfg, tmp_path)
    rows = _rows(tmp_path, cfg)
    clips = [r["diagnostics"]["cdr_clip"] for r in rows]
    assert clips == pytest.approx([1.0, 0.85, 0.7])
    kept = [r["diagnostics"]["cdr_kept_fraction"] for r in rows]
    assert kept[0] == pytest.approx(1.0)
    assert 0.7 - 1e-3 <= kept[2] < 0.75
    assert "transition_error" not in rows[-1]["diagnostics"]


def test_volminnet_end_to_end_logs_t_every_epoch(small_npz, tmp_path):
    cfg = _cfg(small_npz, "volminnet", 2)
    summary = run_one(cfg, tmp_path)
    rows = _rows(tmp_path, cfg)
    for r in rows:
        assert set(r["val_acc"]) == {"net", "noisy"}
        t = np.array(r["diagnostics"]["transition_estimate"])
        np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-6)
        assert 0.0 < r["diagnostics"]["transition_error"] < 2.0
    saved = np.load(tmp_path / cfg.run_name() / "transition_estimate.npy")
    np.testing.assert_allclose(saved, rows[-1]["diagnostics"]["transition_estimate"])
    assert (
        summary["diagnostics_final"]["transition_error"]
        == rows[-1]["diagnostics"]["transition_error"]
    )


def test_t_revision_end_to_end_and_resume_equals_uninterrupted(small_npz, tmp_path, monkeypatch):
    cfg = _cfg(small_npz, "t-revision", 6, est_epochs=2, rw_epochs=2, rev_epochs=2)
    full = run_one(cfg, tmp_path / "a")
    rows_full = _rows(tmp_path / "a", cfg)
    stages = [r["diagnostics"]["t_revision_stage"] for r in rows_full]
    assert stages == ["estimation"] * 2 + ["reweighting"] * 2 + ["revision"] * 2
    assert "transition_error" not in rows_full[0]["diagnostics"]
    for r in rows_full[1:]:
        t = np.array(r["diagnostics"]["transition_estimate"])
        np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-4)
        assert math.isfinite(r["diagnostics"]["transition_error"])
    assert rows_full[1]["diagnostics"]["t_revision_estimation_best_epoch"] in (0, 1)
    assert rows_full[3]["diagnostics"]["t_revision_reweighting_best_epoch"] in (2, 3)
    assert {"beta_mean", "loss"} <= set(rows_full[2]["train"])

    # kill mid-epoch 1 (stage 1, after the checkpoint of epoch 0), then mid-epoch 3 (stage 2)
    # 240/48 = 5 batches per epoch: 2nd batch of epoch 1
    calls = interrupt_train_step(monkeypatch, TRevision, 5 + 2)
    with pytest.raises(Interrupt):
        run_one(cfg, tmp_path / "b")
    assert [r["epoch"] for r in _rows(tmp_path / "b", cfg)] == [0]
    calls.update(n=5, die_at=5 * 3 + 2)  # resumed at epoch 1; dies in the 2nd batch of epoch 3
    with pytest.raises(Interrupt):
        run_one(cfg, tmp_path / "b")
    assert [r["epoch"] for r in _rows(tmp_path / "b", cfg)] == [0, 1, 2]
    calls["restore"]()
    resumed = run_one(cfg, tmp_path / "b")
    rows_resumed = _rows(tmp_path / "b", cfg)
    assert len(rows_resumed) == 6
    for a, b in zip(rows_full, rows_resumed, strict=True):
        assert a["test_acc"] == b["test_acc"] and a["val_acc"] == b["val_acc"]
        assert a["train"] == b["train"]
        assert a["diagnostics"].get("transition_error") == b["diagnostics"].get("transition_error")
    assert resumed["headline"]["value"] == full["headline"]["value"]
    saved = np.load(tmp_path / "b" / cfg.run_name() / "transition_estimate.npy")
    np.testing.assert_allclose(saved, rows_full[-1]["diagnostics"]["transition_estimate"])


@pytest.mark.parametrize("method", ["cdr", "volminnet"])
def test_resume_equals_uninterrupted(small_npz, tmp_path, monkeypatch, method):
    cfg = (
        _cfg(small_npz, method, 3, ramp_epochs=50)
        if method == "cdr"
        else _cfg(small_npz, method, 3)
    )
    run_one(cfg, tmp_path / "a")
    cls = METHODS.get(method)
    calls = interrupt_train_step(monkeypatch, cls, 5 + 2)  # 2nd batch of epoch 1
    with pytest.raises(Interrupt):
        run_one(cfg, tmp_path / "b")
    calls["restore"]()
    run_one(cfg, tmp_path / "b")
    for a, b in zip(_rows(tmp_path / "a", cfg), _rows(tmp_path / "b", cfg), strict=True):
        assert a["test_acc"] == b["test_acc"] and a["train"] == b["train"]
        assert a["diagnostics"] == b["diagnostics"]


def test_methods_are_registered_with_their_flags():
    assert METHODS.get("cdr").uses_noise_rate is True
    assert METHODS.get("t-revision").val_head == "noisy"
    assert METHODS.get("volminnet").val_head == "noisy"
    assert json.dumps(METHODS.get("volminnet").Hparams().t_on) == '"probs"'
