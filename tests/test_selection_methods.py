"""The Co-teaching family (methods.md §3.6–3.9): schedules, selection rules, losses, full runs."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lnmbench.engine.run_folder import RunFolder
from lnmbench.errors import ConfigError
from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.run import run_one
from lnmbench.methods.base import Batch, RunContext
from lnmbench.methods.codis import CoDis, codis_losses, js_divergence
from lnmbench.methods.common.two_net import (
    LinearDecayBeta1Schedule,
    cross_select,
    forget_rate_at,
    num_kept,
    remember_count,
    small_loss_indices,
)
from lnmbench.methods.coteaching import CoTeaching
from lnmbench.methods.coteaching_plus import (
    CoTeachingPlus,
    CoTeachingPlusHparams,
    disagreement_mask,
    disagreement_remember_count,
    fallback_horizon,
    fallback_trains,
)
from lnmbench.methods.hparams import resolve_hparams
from lnmbench.methods.jocor import JoCoR, joint_loss, symmetric_kl

FEATURES, CLASSES = 4, 3


class _LinearContext(RunContext):
    """A run context whose "networks" are linear layers on (B, 4) features."""

    def make_model(self) -> nn.Module:
        return nn.Linear(FEATURES, CLASSES)


def make_method(cls, n: int = 16, epochs: int = 50, noise_rate: float | None = 0.5, **hp):
    ctx = _LinearContext(
        num_classes=CLASSES,
        in_chans=1,
        device=torch.device("cpu"),
        epochs=epochs,
        seed=0,
        model_name="linear",
        pretrained=False,
        noise_rate=noise_rate,
        noise_rate_source="nominal",
        class_counts=np.zeros(CLASSES, dtype=np.int64),
        generator=torch.Generator().manual_seed(0),
        train=SimpleNamespace(num_samples=n, noisy_labels=torch.zeros(n, dtype=torch.long)),
    )
    torch.manual_seed(0)
    method = cls(resolve_hparams(cls.Hparams, hp, "test"), ctx)
    method.setup()
    return method


def hand_batch(size: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(index (B,) into N = 16 samples, features (B, 4), labels (B,))."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(16, generator=g)[:size]
    x = 2 * torch.randn(size, FEATURES, generator=g)
    y = torch.randint(0, CLASSES, (size,), generator=g)
    return index, x, y


def param_grads(net: nn.Module, loss_fn) -> list[torch.Tensor]:
    net.zero_grad()
    loss_fn().backward()
    return [p.grad.clone() for p in net.parameters()]


def grads_equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, atol=1e-7) for x, y in zip(a, b, strict=True))


def mask_of(index: torch.Tensor, n: int = 16) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[index.numpy()] = True
    return out


# ----- schedules -------------------------------------------------------------------------------
def test_forget_rate_schedule_values():
    assert forget_rate_at(0, 0.5, 10) == 0.0
    assert forget_rate_at(3, 0.5, 10) == pytest.approx(1 / 6)
    assert forget_rate_at(9, 0.5, 10) == pytest.approx(0.5)
    assert forget_rate_at(20, 0.5, 10) == pytest.approx(0.5)
    # reference variant: the first trained epoch already forgets τ/(T_k − 1)
    assert forget_rate_at(0, 0.5, 10, start_epoch=1) == pytest.approx(0.5 / 9)
    assert forget_rate_at(8, 0.5, 10, start_epoch=1) == pytest.approx(0.5)
    assert forget_rate_at(3, 0.5, 10, exponent=2.0) == pytest.approx(0.5 / 9)
    assert forget_rate_at(0, 0.5, 1) == pytest.approx(0.5)  # no ramp


def test_forget_ramp_scaled_to_run_length_and_tau_sources():
    m = make_method(CoTeaching, epochs=20)  # T_k = 10 of 50 -> 4 of 20
    assert m.ramp_epochs == 4
    assert m.forget_rate_of_epoch(1) == pytest.approx(0.5 / 3)
    assert m.forget_rate_of_epoch(3) == pytest.approx(0.5)
    assert (m.tau, m.forget_rate_source) == (0.5, "nominal")
    m = make_method(CoTeaching, forget_rate=0.3)
    assert (m.tau, m.forget_rate_source) == (0.3, "hparam")
    m = make_method(CoTeaching, forget_rate_scale=0.5)  # JoCoR's τ = n/2 for asymmetric noise
    assert m.tau == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="assumed_noise_rate"):
        make_method(CoTeaching, noise_rate=None)


def test_linear_decay_and_beta1_schedule():
    net = nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = LinearDecayBeta1Schedule(opt, epochs=50, decay_start=20)
    seen = {}
    for e in range(50):
        seen[e] = (opt.param_groups[0]["lr"], opt.param_groups[0]["betas"])
        sched.step()
    assert seen[0] == (1e-3, (0.9, 0.999))
    assert seen[19] == (1e-3, (0.9, 0.999))
    assert seen[20][0] == pytest.approx(1e-3) and seen[20][1] == (0.1, 0.999)
    assert seen[35][0] == pytest.approx(5e-4)
    assert seen[49][0] == pytest.approx(1e-3 / 30)
    # resume: a fresh schedule loaded from the state continues where the old one was
    opt2 = torch.optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-3)
    sched2 = LinearDecayBeta1Schedule(opt2, epochs=50, decay_start=20)
    state = LinearDecayBeta1Schedule(torch.optim.Adam(net.parameters(), lr=1e-3), 50, 20)
    for _ in range(35):
        state.step()
    sched2.load_state_dict(state.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert opt2.param_groups[0]["betas"][0] == 0.1


def test_method_schedule_scaled_decay_start():
    m = make_method(CoTeaching, epochs=20)  # e_d = 20 of 50 -> 8 of 20
    lrs, betas = [], []
    for e in range(20):
        m.on_epoch_start(e)
        lrs.append(m.optimizers["net2"].param_groups[0]["lr"])
        betas.append(m.optimizers["net1"].param_groups[0]["betas"][0])
        m.on_epoch_end(e)
    assert lrs[7] == pytest.approx(1e-3) and betas[7] == 0.9
    assert lrs[8] == pytest.approx(1e-3) and betas[8] == 0.1
    assert lrs[14] == pytest.approx(1e-3 * 6 / 12)
    assert lrs[19] == pytest.approx(1e-3 / 12)


# ----- small-loss selection ------------------------------------------------------------------
def test_small_loss_count_and_indices():
    losses = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2])
    r = remember_count(6, 0.5)
    assert r == 3
    assert small_loss_indices(losses, r).tolist() == [1, 5, 3]
    assert remember_count(6, 0.99) == 1  # at least one sample
    assert num_kept(10, 0.9) == 1  # ⌊0.1·10⌋ = 1 despite 0.1·10 = 0.999… in floats
    assert remember_count(128, 0.5) == 64
    assert remember_count(12, 1 / 6) == 10


def test_cross_select_updates_each_net_on_the_peer_selection():
    w1 = torch.ones(6, requires_grad=True)
    w2 = torch.ones(6, requires_grad=True)
    loss1 = w1 * torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2])  # S1 = {1, 5, 3}
    loss2 = w2 * torch.tensor([0.1, 0.8, 0.2, 0.6, 0.3, 0.9])  # S2 = {0, 2, 4}
    cs = cross_select(loss1, loss2, 3)
    assert cs.selected1.tolist() == [1, 5, 3] and cs.selected2.tolist() == [0, 2, 4]
    (cs.loss1 + cs.loss2).backward()
    third = 1 / 3
    assert w1.grad.tolist() == pytest.approx([0.9 * third, 0, 0.5 * third, 0, 0.7 * third, 0])
    assert w2.grad.tolist() == pytest.approx([0, 0.8 * third, 0, 0.6 * third, 0, 0.9 * third])


def test_coteaching_step_gradients_selection_and_scores():
    m = make_method(CoTeaching)
    m.on_epoch_start(20)  # R = τ = 0.5 -> r = 5 of 10
    index, x, y = hand_batch(10)
    n1, n2 = copy.deepcopy(m.net1), copy.deepcopy(m.net2)
    with torch.no_grad():
        ce1 = F.cross_entropy(n1(x), y, reduction="none")
        ce2 = F.cross_entropy(n2(x), y, reduction="none")
    s1, s2 = torch.argsort(ce1)[:5], torch.argsort(ce2)[:5]
    assert set(s1.tolist()) != set(s2.tolist())
    m.train_step(Batch(index, y, {"train": x}))
    peer = param_grads(n1, lambda: F.cross_entropy(n1(x[s2]), y[s2]))
    own = param_grads(n1, lambda: F.cross_entropy(n1(x[s1]), y[s1]))
    assert grads_equal([p.grad for p in m.net1.parameters()], peer)
    assert not grads_equal(peer, own)
    peer2 = param_grads(n2, lambda: F.cross_entropy(n2(x[s1]), y[s1]))
    assert grads_equal([p.grad for p in m.net2.parameters()], peer2)
    sel = m.selection()
    np.testing.assert_array_equal(sel["net1"].selected, mask_of(index[s1]))
    np.testing.assert_array_equal(sel["net2"].selected, mask_of(index[s2]))
    np.testing.assert_array_equal(sel["net1"].seen, mask_of(index))
    np.testing.assert_allclose(sel["net1"].score[index.numpy()], -ce1.numpy(), rtol=1e-6)


def test_predict_heads():
    m = make_method(CoTeaching)
    x = torch.randn(5, FEATURES)
    heads = m.predict(x)
    with torch.no_grad():
        f1, f2 = m.net1(x), m.net2(x)
    assert set(heads) == {"net1", "net2", "ensemble"}
    torch.testing.assert_close(heads["ensemble"], (f1 + f2) / 2)
    assert (m.headline, m.mean_heads, m.val_head) == ("mean", ("net1", "net2"), "mean")


# ----- Co-teaching+ -------------------------------------------------------------------------
def test_disagreement_set_and_counts():
    eye = torch.eye(3)
    logits1 = eye[[0, 1, 2, 0, 1]]
    logits2 = eye[[0, 2, 2, 1, 1]]
    assert disagreement_mask(logits1, logits2).tolist() == [False, True, False, True, False]
    assert disagreement_remember_count(4, 0.5) == 2
    assert disagreement_remember_count(1, 0.5) == 1  # ⌊0.5⌋ = 0 -> all of D
    assert disagreement_remember_count(2, 0.9) == 2
    assert fallback_trains(4999, 5000) and not fallback_trains(5000, 5000)
    hp = resolve_hparams(CoTeachingPlusHparams, {}, "test")
    assert fallback_horizon(hp, 2000) == 5000  # the original's fixed horizon
    hp = resolve_hparams(CoTeachingPlusHparams, {"fallback_fraction": 0.064}, "test")
    assert fallback_horizon(hp, 960) == 61  # 6.4 % of the run, as 5000 of 78k in the original


def test_coteaching_plus_selects_inside_disagreement():
    m = make_method(CoTeachingPlus, init_epoch=0)
    m.on_epoch_start(20)  # R = 0.5
    index, x, y = hand_batch(12)
    n1, n2 = copy.deepcopy(m.net1), copy.deepcopy(m.net2)
    with torch.no_grad():
        f1, f2 = n1(x), n2(x)
    inside = (f1.argmax(1) != f2.argmax(1)).nonzero().squeeze(1)
    assert 3 <= len(inside) < 12
    r = disagreement_remember_count(len(inside), 0.5)
    ce1 = F.cross_entropy(f1[inside], y[inside], reduction="none")
    ce2 = F.cross_entropy(f2[inside], y[inside], reduction="none")
    s1, s2 = inside[torch.argsort(ce1)[:r]], inside[torch.argsort(ce2)[:r]]
    stats = m.train_step(Batch(index, y, {"train": x}))
    assert float(stats["disagreement"]) == pytest.approx(len(inside) / 12)
    peer = param_grads(n1, lambda: F.cross_entropy(n1(x[s2]), y[s2]))
    assert grads_equal([p.grad for p in m.net1.parameters()], peer)
    sel = m.selection()
    np.testing.assert_array_equal(sel["net1"].selected, mask_of(index[s1]))
    np.testing.assert_array_equal(sel["net2"].selected, mask_of(index[s2]))
    np.testing.assert_array_equal(sel["net2"].seen, mask_of(index))
    assert m.global_step == 1


def test_coteaching_plus_warmup_is_coteaching():
    m = make_method(CoTeachingPlus)  # e_init = 5 of 50
    m.on_epoch_start(4)  # R = 0.5·4/9
    index, x, y = hand_batch(12)
    m.train_step(Batch(index, y, {"train": x}))
    r = remember_count(12, 0.5 * 4 / 9)  # ⌊(7/9)·12⌋ = 9, not restricted to D
    assert r == 9
    assert all(s.selected.sum() == r for s in m.selection().values())


@pytest.mark.parametrize("step, trains", [(4999, True), (5000, False)])
def test_coteaching_plus_empty_disagreement_fallback(step, trains):
    m = make_method(CoTeachingPlus, init_epoch=0)
    m.net2.load_state_dict(m.net1.state_dict())  # identical nets: D = ∅
    m.on_epoch_start(20)
    m.global_step = step
    index, x, y = hand_batch(8)
    before = [p.detach().clone() for p in m.net1.parameters()]
    n1 = copy.deepcopy(m.net1)
    stats = m.train_step(Batch(index, y, {"train": x}))
    after = list(m.net1.parameters())
    sel = m.selection()
    assert m.global_step == step + 1
    np.testing.assert_array_equal(sel["net1"].seen, mask_of(index))
    if trains:
        full = param_grads(n1, lambda: F.cross_entropy(n1(x), y))
        assert grads_equal([p.grad for p in after], full)
        assert not torch.equal(before[0], after[0])
        np.testing.assert_array_equal(sel["net1"].selected, mask_of(index))
        assert stats["skipped_update"] == 0.0
    else:
        assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
        assert sel["net1"].selected.sum() == 0 and sel["net2"].selected.sum() == 0
        assert stats["skipped_update"] == 1.0


# ----- CoDis ---------------------------------------------------------------------------------
def _logits(*probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.float64).log()


def test_codis_js_matches_hand_computation():
    l1, l2 = _logits([0.5, 0.5]), _logits([0.9, 0.1])  # m = (0.7, 0.3)
    true = 0.5 * (0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)) + 0.5 * (
        0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3)
    )
    official = 0.5 * (0.7 * math.log(0.7 / 0.5) + 0.3 * math.log(0.3 / 0.5)) + 0.5 * (
        0.7 * math.log(0.7 / 0.9) + 0.3 * math.log(0.3 / 0.1)
    )
    assert js_divergence(l1, l2).item() == pytest.approx(true, rel=1e-12)
    assert js_divergence(l1, l2, "official").item() == pytest.approx(official, rel=1e-12)
    assert js_divergence(l1, l1).item() == pytest.approx(0.0, abs=1e-12)
    y = torch.tensor([0])
    loss1, loss2 = codis_losses(l1, l2, y, 0.15, "true")
    assert loss1.item() == pytest.approx(-math.log(0.5) - 0.15 * true, rel=1e-12)
    assert loss2.item() == pytest.approx(-math.log(0.9) - 0.15 * true, rel=1e-12)


def test_codis_per_net_gradient_isolation():
    l1 = torch.tensor([[1.0, -0.5, 0.2], [0.1, 0.4, -1.0]], requires_grad=True)
    l2 = torch.tensor([[-0.3, 0.8, 0.0], [0.5, -0.2, 0.9]], requires_grad=True)
    y = torch.tensor([0, 2])
    loss1, loss2 = codis_losses(l1, l2, y, 0.15, "true")
    g1_peer = torch.autograd.grad(loss1.sum(), l2, allow_unused=True, retain_graph=True)[0]
    g2_peer = torch.autograd.grad(loss2.sum(), l1, allow_unused=True, retain_graph=True)[0]
    assert g1_peer is None or torch.count_nonzero(g1_peer) == 0
    assert g2_peer is None or torch.count_nonzero(g2_peer) == 0
    # the reference's single backward of L1 + L2 would reach net 2 through net 1's JS term
    js = js_divergence(l1, l2)
    assert torch.count_nonzero(torch.autograd.grad(js.sum(), l2)[0]) > 0


def test_codis_step_uses_own_loss_with_constant_peer():
    m = make_method(CoDis, co_lambda=0.5, batch_size=10)
    m.on_epoch_start(20)
    index, x, y = hand_batch(10)
    n1, n2 = copy.deepcopy(m.net1), copy.deepcopy(m.net2)

    def loss_of(net, peer, peer_first: bool):
        f, g = net(x), peer(x).detach()
        js = js_divergence(g, f) if peer_first else js_divergence(f, g)
        return F.cross_entropy(f, y, reduction="none") - 0.5 * js

    with torch.no_grad():
        s1 = torch.argsort(loss_of(n1, n2, False))[:5]
        s2 = torch.argsort(loss_of(n2, n1, True))[:5]
    m.train_step(Batch(index, y, {"train": x}))
    expected = param_grads(n1, lambda: loss_of(n1, n2, False)[s2].mean())
    assert grads_equal([p.grad for p in m.net1.parameters()], expected)
    expected2 = param_grads(n2, lambda: loss_of(n2, n1, True)[s1].mean())
    assert grads_equal([p.grad for p in m.net2.parameters()], expected2)
    np.testing.assert_array_equal(m.selection()["net1"].selected, mask_of(index[s1]))


# ----- JoCoR ---------------------------------------------------------------------------------
def test_jocor_joint_loss_matches_hand_computation():
    l1 = _logits([0.5, 0.5], [0.2, 0.8])
    l2 = _logits([0.9, 0.1], [0.6, 0.4])
    y = torch.tensor([0, 1])
    lam = 0.3

    def kl(a, b):
        return sum(ai * math.log(ai / bi) for ai, bi in zip(a, b, strict=True))

    ce = [-math.log(0.5) - math.log(0.9), -math.log(0.8) - math.log(0.4)]
    agree = [
        kl([0.5, 0.5], [0.9, 0.1]) + kl([0.9, 0.1], [0.5, 0.5]),
        kl([0.2, 0.8], [0.6, 0.4]) + kl([0.6, 0.4], [0.2, 0.8]),
    ]
    expected = [(1 - lam) * c + lam * a for c, a in zip(ce, agree, strict=True)]
    assert joint_loss(l1, l2, y, lam).tolist() == pytest.approx(expected, rel=1e-12)
    mean_ce = sum(ce) / 2
    expected_ref = [(1 - lam) * mean_ce + lam * a for a in agree]
    assert joint_loss(l1, l2, y, lam, "batch_mean").tolist() == pytest.approx(
        expected_ref, rel=1e-12
    )


def test_jocor_kl_gradients_reach_both_arguments():
    l1 = torch.tensor([[1.0, -0.5, 0.2]], requires_grad=True)
    l2 = torch.tensor([[-0.3, 0.8, 0.0]], requires_grad=True)
    g1, g2 = torch.autograd.grad(symmetric_kl(l1, l2).sum(), (l1, l2))
    p1, p2 = l1.softmax(1), l2.softmax(1)
    ref = ((p1 - p2) * (p1.log() - p2.log())).sum()
    r1, r2 = torch.autograd.grad(ref, (l1, l2))
    torch.testing.assert_close((g1, g2), (r1, r2))
    # detached KL targets (the reference code: KL(sg(p2)‖p1) + KL(sg(p1)‖p2)) differ
    p1, p2 = l1.softmax(1), l2.softmax(1)
    q1, q2 = p1.detach(), p2.detach()
    detached = (q2 * (q2.log() - p1.log())).sum() + (q1 * (q1.log() - p2.log())).sum()
    d1 = torch.autograd.grad(detached, l1)[0]
    assert not torch.allclose(d1, g1)


def test_jocor_step_one_optimiser_joint_selection():
    m = make_method(JoCoR, co_lambda=0.4)
    assert list(m.optimizers) == ["joint"]
    m.on_epoch_start(20)  # r = 5 of 10
    index, x, y = hand_batch(10)
    n1, n2 = copy.deepcopy(m.net1), copy.deepcopy(m.net2)
    with torch.no_grad():
        losses = joint_loss(n1(x), n2(x), y, 0.4)
    s = torch.argsort(losses)[:5]
    m.train_step(Batch(index, y, {"train": x}))
    pair = nn.ModuleList([n1, n2])
    expected = param_grads(pair, lambda: joint_loss(n1(x), n2(x), y, 0.4)[s].mean())
    got = [p.grad for p in m.net1.parameters()] + [p.grad for p in m.net2.parameters()]
    assert grads_equal(got, expected)
    sel = m.selection()
    assert list(sel) == ["joint"]
    np.testing.assert_array_equal(sel["joint"].selected, mask_of(index[s]))
    np.testing.assert_allclose(sel["joint"].score[index.numpy()], -losses.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "method, hp, match",
    [
        ("codis", {"js_form": "reversed"}, "known: true, official"),
        ("jocor", {"ce_reduction": "sum"}, "known: none, batch_mean"),
        ("coteaching", {"start_epoch": 2}, "start_epoch"),
        ("coteaching", {"schedule": "step"}, "known: linear_decay"),
        ("coteaching-plus", {"forget_rate": 1.0}, r"\[0, 1\)"),
    ],
)
def test_bad_hparams_are_refused(method, hp, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config({"method": method, "hparams": hp})


# ----- end to end ----------------------------------------------------------------------------
def _cfg(small_npz: Path, method: str, epochs: int = 2, **hp):
    return resolve_config(
        {
            "method": method,
            "dataset": str(small_npz),
            "model": "cnn-tiny",
            "epochs": epochs,
            "progress": False,
            "noise": {"name": "symmetric", "rate": 0.4},
            # T_k = 50 of 50 -> 2 of 2 epochs: R(0) = 0, R(1) = τ
            "hparams": {"batch_size": 32, "forget_ramp_epochs": 50, **hp},
        }
    )


@pytest.mark.parametrize(
    "method, hp, names",
    [
        ("coteaching", {}, ("net1", "net2")),
        ("coteaching-plus", {"init_epoch": 25}, ("net1", "net2")),  # e_init 25 of 50 -> 1 of 2
        ("codis", {}, ("net1", "net2")),
        ("jocor", {}, ("joint",)),
    ],
)
def test_end_to_end_selection_diagnostics(small_npz, tmp_path, method, hp, names):
    cfg = _cfg(small_npz, method, **hp)
    summary = run_one(cfg, tmp_path)
    folder = RunFolder(tmp_path / cfg.run_name())
    rows = [json.loads(x) for x in folder.metrics.read_text().splitlines()]
    noise = json.loads(folder.noise.read_text())
    clean_frac = 1 - noise["train"]["realised_rate"]
    assert [r["diagnostics"]["forget_rate"] for r in rows] == pytest.approx([0.0, 0.4])
    assert rows[0]["diagnostics"]["forget_rate_source"] == "nominal"
    for name in names:
        first, last = (
            rows[0]["diagnostics"][f"selection/{name}"],
            rows[1]["diagnostics"][f"selection/{name}"],
        )
        # R(0) = 0: every sample is selected, so precision = clean fraction and recall = 1
        assert first["n_selected"] == 240
        assert first["precision"] == pytest.approx(clean_frac)
        assert first["recall"] == pytest.approx(1.0)
        assert len(last["per_class_precision"]) == 8 and len(last["per_class_recall"]) == 8
        assert 0.0 <= last["precision"] <= 1.0 and 0.0 <= last["recall"] <= 1.0
        assert 0.0 <= last["detection_auroc"] <= 1.0
        sizes = rows[1]["diagnostics"]["selection_sizes_per_class"][name]
        assert sizes == last["per_class_selected"]  # the method's own count, by noisy label
        if method != "coteaching-plus":  # 7 batches of 32 keep 19, the last of 16 keeps 9
            assert last["n_selected"] == 7 * 19 + 9
        else:  # inside the disagreement set only
            assert 0 < last["n_selected"] < 7 * 19 + 9
    for r in rows:
        assert r["test_headline_acc"] == pytest.approx(
            (r["test_acc"]["net1"] + r["test_acc"]["net2"]) / 2
        )
    assert summary["headline"]["head"] == "mean"
    heads = summary["heads"]
    assert summary["headline"]["value"] == pytest.approx(
        (heads["net1"]["last5"] + heads["net2"]["last5"]) / 2
    )
    assert "ensemble" in heads


class _Interrupt(Exception):
    pass


def test_coteaching_plus_resume_equals_uninterrupted(small_npz, tmp_path, monkeypatch):
    # e_init 17 of 50 -> 1 of 3; the full-batch fallback horizon (12 steps) falls inside epoch 1
    cfg = _cfg(small_npz, "coteaching-plus", epochs=3, init_epoch=17, fallback_steps=12)
    full = run_one(cfg, tmp_path / "a")
    rows_full = RunFolder(tmp_path / "a" / cfg.run_name()).read_metrics()
    assert [r["diagnostics"]["global_step"] for r in rows_full] == [8, 16, 24]

    calls = {"n": 0}
    original = CoTeachingPlus.train_step

    def dying_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 8 * 2 + 3:  # in epoch 2, after the checkpoint of epoch 1
            raise _Interrupt
        return original(self, batch)

    monkeypatch.setattr(CoTeachingPlus, "train_step", dying_step)
    with pytest.raises(_Interrupt):
        run_one(cfg, tmp_path / "b")
    monkeypatch.setattr(CoTeachingPlus, "train_step", original)
    resumed = run_one(cfg, tmp_path / "b")
    rows_resumed = RunFolder(tmp_path / "b" / cfg.run_name()).read_metrics()
    for a, b in zip(rows_full, rows_resumed, strict=True):
        assert a["test_acc"] == b["test_acc"]
        assert a["train"] == b["train"]
        assert a["diagnostics"] == b["diagnostics"]
        assert a["lr"] == b["lr"]
    assert resumed["headline"]["value"] == full["headline"]["value"]
