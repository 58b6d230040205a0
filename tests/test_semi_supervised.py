"""Semi-supervised LNL methods: DivideMix (§3.11) and DISC (§3.10), and their shared pieces."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import betaincinv
from torch import nn

from conftest import Interrupt, interrupt_train_step, run_config, tiny_method
from lnmbench.engine.run_folder import RunFolder
from lnmbench.errors import ConfigError
from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.run import run_one
from lnmbench.methods.base import Batch
from lnmbench.methods.common.gmm_divide import (
    LossHistory,
    Split,
    fit_clean_posterior,
    normalise_losses,
    split_by_threshold,
)
from lnmbench.methods.common.index_batches import UnlabelledCycle, covering_batches
from lnmbench.methods.common.mixup import mix, sample_mixup_lambda
from lnmbench.methods.common.ramps import linear_rampup, scaled_warmup
from lnmbench.methods.common.soft_targets import sharpen, soft_cross_entropy
from lnmbench.methods.disc import DISC, gce_loss, is_high_noise, update_sets
from lnmbench.methods.dividemix import (
    DivideMix,
    DivideMixHparams,
    prior_penalty,
    unlabelled_mse,
)
from lnmbench.methods.hparams import make_optimizer, make_scheduler

LN2 = math.log(2.0)

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


_method = tiny_method


def _run_epoch(method, epoch: int) -> tuple[list[dict], dict]:
    """Drive one epoch by hand as the engine does; returns (step stats, epoch-end diagnostics)."""
    method.train_mode()
    method.on_epoch_start(epoch)
    stats = []
    for idx in method.epoch_batches(epoch):
        views = {k: method.ctx.train.view(idx, k) for k in method.views}
        stats.append(method.train_step(Batch(idx, method.ctx.train.noisy_labels[idx], views)))
    return stats, method.on_epoch_end(epoch)


class _Identity(nn.Module):
    """A "network" whose logits are its (B, C) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# --------------------------------------------------------------------------------------------------
# shared pieces: GMM divide, sharpening, mixup, batching, ramps
# --------------------------------------------------------------------------------------------------


def test_normalise_losses_min_max_constant_and_nan():
    np.testing.assert_allclose(normalise_losses(np.array([1.0, 3.0, 2.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(normalise_losses(np.full(4, 0.7)), np.zeros(4))
    with pytest.raises(ConfigError, match="NaN/inf"):
        normalise_losses(np.array([0.1, np.nan]))


def test_gmm_split_bimodal_losses():
    rng = np.random.default_rng(0)
    clean = rng.normal(0.3, 0.05, 400)
    noisy = rng.normal(2.5, 0.3, 100)
    losses = normalise_losses(np.concatenate([clean, noisy]))
    post = fit_clean_posterior(losses, random_state=0)
    assert not post.degenerate
    assert np.all(post.prob[:400] > 0.5) and np.all(post.prob[400:] < 0.5)
    assert post.means[0] < 0.1 < 0.6 < post.means[1]  # low (clean) mode first
    split = split_by_threshold(post.prob, 0.5)
    assert split.labelled.sum() == 400 and split.labelled[:400].all() and split.fallback is None
    # same random_state -> identical posterior
    np.testing.assert_array_equal(post.prob, fit_clean_posterior(losses, 0).prob)


def test_split_fallbacks_all_losses_equal_and_all_clean():
    post = fit_clean_posterior(normalise_losses(np.full(250, 1.3)), random_state=0)
    assert post.degenerate and np.all(post.prob == 0.5)
    split = split_by_threshold(post.prob, 0.5)  # nothing is > 0.5: top ⌈0.01·250⌉ = 3
    assert split.fallback == "empty_labelled"
    assert np.flatnonzero(split.labelled).tolist() == [0, 1, 2]  # ties: lowest index first
    w = np.array([0.2, 0.45, 0.4, 0.1])
    assert np.flatnonzero(split_by_threshold(w, 0.5).labelled).tolist() == [1]  # ⌈0.04⌉ = 1
    assert np.flatnonzero(split_by_threshold(w, 0.5, 0.5).labelled).tolist() == [1, 2]
    everything = split_by_threshold(np.array([0.9, 0.8, 0.7]), 0.5)
    assert everything.fallback == "empty_unlabelled" and everything.unlabelled.sum() == 0


def test_loss_history_mean_of_last_k():
    h = LossHistory(2)
    np.testing.assert_allclose(h.push(np.array([0.0, 1.0])), [0.0, 1.0])
    np.testing.assert_allclose(h.push(np.array([1.0, 1.0])), [0.5, 1.0])
    np.testing.assert_allclose(h.push(np.array([0.0, 0.0])), [0.5, 0.5])  # first one dropped
    restored = LossHistory(2)
    restored.load_state_dict(h.state_dict())
    np.testing.assert_allclose(restored.push(np.array([1.0, 0.0])), [0.5, 0.0])


def test_sharpen_hand_computed():
    p = torch.tensor([[0.6, 0.3, 0.1]])
    expected = torch.tensor([[0.36, 0.09, 0.01]]) / 0.46  # p² / Σ p²  (T = 0.5)
    torch.testing.assert_close(sharpen(p, 0.5), expected)
    torch.testing.assert_close(sharpen(p, 1.0), p)


def test_mix_with_fixed_lambda_and_permutation():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    xm, tm = mix(x, t, 0.7, torch.tensor([1, 0, 2]))
    torch.testing.assert_close(xm, torch.tensor([[0.7, 0.6], [0.3, 1.4], [4.0, 4.0]]))
    torch.testing.assert_close(tm, torch.tensor([[0.7, 0.3], [0.3, 0.7], [0.5, 0.5]]))


def test_mixup_lambda_is_folded_inverse_cdf_of_one_uniform():
    g = torch.Generator().manual_seed(5)
    u = float(torch.rand((), generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    lam = sample_mixup_lambda(4.0, g)
    raw = float(betaincinv(4.0, 4.0, u))
    assert lam == pytest.approx(max(raw, 1 - raw), abs=1e-12)
    draws = [sample_mixup_lambda(4.0, g) for _ in range(200)]
    assert min(draws) >= 0.5 and max(draws) <= 1.0
    assert sample_mixup_lambda(0.0, g) == 1.0
    with pytest.raises(ConfigError):
        sample_mixup_lambda(-1.0, g)


def test_covering_batches_and_unlabelled_cycle():
    batches = covering_batches(torch.arange(9), 4)  # 4, 4, 1 -> 4, 5
    assert [len(b) for b in batches] == [4, 5]
    assert torch.cat(batches).tolist() == list(range(9))
    cycle = UnlabelledCycle(torch.tensor([10, 11, 12]), 2, torch.Generator().manual_seed(0))
    first_pass = torch.cat([cycle.next()]).tolist()  # 3 = 2 + 1 -> one batch of 3
    assert sorted(first_pass) == [10, 11, 12]
    assert sorted(cycle.next().tolist()) == [10, 11, 12]  # a new pass starts


def test_ramps():
    assert linear_rampup(3.5, 2.0, 6.0) == pytest.approx(0.25)
    assert linear_rampup(1.0, 2.0, 6.0) == 0.0 and linear_rampup(20.0, 2.0, 6.0) == 1.0
    hp = DivideMixHparams()
    assert scaled_warmup(5, hp, 50) == 5 and scaled_warmup(5, hp, 20) == 2
    assert scaled_warmup(5, hp, 3) == 1 and scaled_warmup(0, hp, 20) == 0


# --------------------------------------------------------------------------------------------------
# DivideMix
# --------------------------------------------------------------------------------------------------


def test_dividemix_losses_on_fixed_tensors():
    logits = torch.tensor([[0.0, LN2, 0.0]])  # softmax [0.25, 0.5, 0.25]
    assert float(soft_cross_entropy(logits, torch.tensor([[0.5, 0.5, 0.0]]))) == pytest.approx(
        1.5 * LN2
    )
    assert float(unlabelled_mse(logits, torch.tensor([[0.0, 1.0, 0.0]]))) == pytest.approx(0.125)
    probs = torch.tensor([[0.25, 0.5, 0.25], [0.25, 0.5, 0.25]])
    expected = math.log(32 / 27) / 3  # (1/3)[ln(4/3) + ln(2/3) + ln(4/3)]
    assert float(prior_penalty(probs, torch.full((3,), 1 / 3))) == pytest.approx(expected)
    uniform = torch.full((2, 3), 1 / 3)
    assert float(prior_penalty(uniform, torch.full((3,), 1 / 3))) == pytest.approx(0.0, abs=1e-7)


def test_dividemix_co_refine_and_co_guess_formulas():
    m = _method(DivideMix, np.zeros(8, dtype=int), num_classes=2)
    x1 = torch.tensor([[0.0, 0.0]])  # softmax [0.5, 0.5]
    x2 = torch.tensor([[math.log(3.0), 0.0]])  # softmax [0.75, 0.25]
    refined = m.co_refine(_Identity(), x1, x2, torch.tensor([1]), torch.tensor([[0.5]]))
    # 0.5·e_1 + 0.5·[0.625, 0.375] = [0.3125, 0.6875]; squared and normalised
    torch.testing.assert_close(refined, torch.tensor([[0.09765625, 0.47265625]]) / 0.5703125)
    guessed = m.co_guess(_Identity(), _Identity(), x1, x2)  # mean [0.625, 0.375]
    torch.testing.assert_close(guessed, torch.tensor([[0.390625, 0.140625]]) / 0.53125)
    lx = m.labelled_loss(torch.tensor([[0.0, LN2, 0.0]]), torch.tensor([[0.5, 0.5, 0.0]]))
    assert float(lx) == pytest.approx(1.5 * LN2)


def test_dividemix_corrected_labels_follow_section_6_3():
    m = _method(DivideMix, np.array([0, 1, 1]), num_classes=2)

    m.splits = {  # net 1 trains on net 2's division
        "net2": Split(np.array([True, True, False]), np.array([0.9, 0.2, 0.1])),
        "net1": Split(np.array([True, True, True]), np.array([0.9, 0.9, 0.9])),
    }
    m.divide_probs = {
        "net1": np.array([[0.8, 0.2], [0.9, 0.1], [0.3, 0.7]]),
        "net2": np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]]),
    }
    mask, r = m.corrected_labels()
    # i0 L: [0.98, 0.02] -> 0 = ỹ; i1 L: [0.72, 0.28] -> 0 ≠ 1; i2 U: mean [0.6, 0.4] -> 0 ≠ 1
    assert mask.tolist() == [False, True, True] and r.tolist() == [0, 0, 0]


def test_dividemix_empty_labelled_fallback_with_equal_losses_one_class():
    labels = np.zeros(250, dtype=int)  # one class only
    m = _method(DivideMix, labels, batch_size=16, warmup_epochs=1, ref_epochs=4)
    with torch.no_grad():
        for net in m.nets.values():  # constant logits -> every per-sample loss is equal
            net.fc.weight.zero_()
            net.fc.bias.zero_()
    stats, diag = _run_epoch(m, 1)
    for name in ("net1", "net2"):
        split = m.splits[name]
        assert split.fallback == "empty_labelled"
        assert np.flatnonzero(split.labelled).tolist() == [0, 1, 2]  # ⌈0.01·250⌉
    assert diag["fallbacks"] == ["net1: empty_labelled", "net2: empty_labelled"]
    assert diag["division"]["net1"]["n_labelled"] == 3
    assert len(stats) == 2 and all(math.isfinite(float(s["loss"])) for s in stats)


def test_dividemix_empty_unlabelled_mixes_labelled_rows_only():
    labels = np.arange(40) % 3
    m = _method(DivideMix, labels, batch_size=16, warmup_epochs=1, ref_epochs=4)
    m.epoch = 1
    rows: list[int] = []
    m.nets["net1"].register_forward_hook(lambda mod, inp, out: rows.append(len(inp[0])))
    all_clean = split_by_threshold(np.full(40, 0.9), 0.5)
    m.co_divide = lambda epoch: m.splits.update(net1=all_clean, net2=all_clean)
    stats, diag = _run_epoch(m, 1)
    assert all(float(s["lu"]) == 0.0 for s in stats)
    assert diag["fallbacks"] == ["net1: empty_unlabelled", "net2: empty_unlabelled"]
    # net 1's phase: labelled batches of 16, 16, 8; co-refinement forwards x1 and x2 one call
    # each, then the mixed batch holds [x1; x2] only, no unlabelled rows
    assert rows == [16, 16, 32, 16, 16, 32, 8, 8, 16]


def _one_mixmatch_step(forwards: str):
    """A DivideMix in its semi-supervised phase and one MixMatch step of net 1 (peer net 2), with
    every forward's input recorded: returns (method, net-1 state before, calls), calls =
    [(net name, train mode, input)] in call order."""
    import copy

    labels = np.arange(48) % 3
    m = _method(DivideMix, labels, batch_size=8, warmup_epochs=1, ref_epochs=4, forwards=forwards)
    m.epoch = 1
    half = np.arange(48) < 24
    division = Split(half, np.where(half, 0.9, 0.1))
    m.co_divide = lambda epoch: m.splits.update(net1=division, net2=division)
    m.train_mode()
    m.on_epoch_start(1)
    batches = m.epoch_batches(1)
    idx = next(batches)
    before = copy.deepcopy(m.nets["net1"])
    calls: list[tuple[str, bool, torch.Tensor]] = []
    for name, net in m.nets.items():
        net.register_forward_pre_hook(
            lambda mod, inp, name=name: calls.append((name, mod.training, inp[0].detach().clone()))
        )
    views = {k: m.ctx.train.view(idx, k) for k in m.views}
    m.train_step(Batch(idx, m.ctx.train.noisy_labels[idx], views))
    return m, before, calls


def test_dividemix_forwards_are_separate_as_in_the_original():
    """Train_cifar.py: net(u1), net(u2), peer(u1), peer(u2) (peer in eval mode), net(x1),
    net(x2), each its own forward, then net(mixed); BatchNorm running statistics after the step
    equal those of hand-written separate forwards of the same inputs."""
    m, before, calls = _one_mixmatch_step("separate")
    order = [(name, training, len(x)) for name, training, x in calls]
    assert order == [
        ("net1", True, 8),  # u1
        ("net1", True, 8),  # u2
        ("net2", False, 8),  # u1 through the frozen peer
        ("net2", False, 8),  # u2
        ("net1", True, 8),  # x1
        ("net1", True, 8),  # x2
        ("net1", True, 32),  # mixed [x1; x2; u1; u2]
    ]
    u1, u2, x1, x2 = calls[0][2], calls[1][2], calls[4][2], calls[5][2]
    torch.testing.assert_close(calls[2][2], u1)
    torch.testing.assert_close(calls[3][2], u2)
    assert not torch.equal(x1, x2) and not torch.equal(u1, u2)  # genuinely random views
    hand = before.train()
    with torch.no_grad():
        for x in (u1, u2, x1, x2, calls[6][2]):
            hand(x)
    trained = dict(m.nets["net1"].named_buffers())
    for name, buf in hand.named_buffers():
        torch.testing.assert_close(trained[name], buf, msg=f"BatchNorm buffer {name}")
    # the concatenated form groups the views and so ends with different running statistics
    m_cat, _, calls_cat = _one_mixmatch_step("concatenated")
    assert [len(x) for name, _, x in calls_cat if name == "net1"] == [16, 16, 32]
    bn = next(k for k in trained if k.endswith("running_mean"))
    assert not torch.allclose(dict(m_cat.nets["net1"].named_buffers())[bn], trained[bn])


def test_dividemix_bad_hparams_are_clear():
    with pytest.raises(ConfigError, match="known: soft_ce, sce_argmax"):
        resolve_config({"method": "dividemix", "hparams": {"lx_loss": "focal"}})
    with pytest.raises(ConfigError, match="p_threshold"):
        resolve_config({"method": "dividemix", "hparams": {"p_threshold": 1.5}})


# --------------------------------------------------------------------------------------------------
# DISC
# --------------------------------------------------------------------------------------------------

# hand-made end-of-epoch state, C = 3 (see test_disc_sets_on_hand_made_state)
LABELS = torch.tensor([0, 1, 2, 0, 1])
C_WEAK = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.2])
C_STRONG = torch.tensor([0.3, 0.5, 0.5, 0.6, 0.2])
P_WEAK = torch.tensor(
    [[0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.9, 0.05, 0.05], [0.4, 0.6, 0.0], [0.6, 0.1, 0.3]]
)
P_STRONG = torch.tensor(
    [[0.35, 0.65, 0.0], [0.5, 0.5, 0.0], [0.95, 0.03, 0.02], [0.7, 0.3, 0.0], [0.5, 0.2, 0.3]]
)


def test_disc_sets_on_hand_made_state():
    sets, c_w, c_s = update_sets(
        P_WEAK, P_STRONG, LABELS, C_WEAK, C_STRONG, sigma=0.5, cap=0.9, momentum=0.5
    )
    # i0: both views above their thresholds -> C. i1: strong 0.5 is not > 0.5 (strict) -> H_w.
    # i2: unselected, p̄ max 0.925 > min(0.5 + 0.5, 0.9) -> P with ŷ = 0. i3: strong only -> H_s.
    # i4: strong 0.2 is not > 0.2; p̄ max 0.55 < 0.7 -> nothing.
    assert sets.clean.tolist() == [True, False, False, False, False]
    assert sets.selected.tolist() == [True, True, False, True, False]
    assert sets.hard.tolist() == [False, True, False, True, False]
    assert sets.hard_weak.tolist() == [False, True, False, False, False]
    assert sets.hard_strong.tolist() == [False, False, False, True, False]
    assert sets.purified.tolist() == [False, False, True, False, False]
    assert sets.mix.tolist() == [True, True, True, True, False]
    assert sets.targets.tolist() == [0, 1, 0, 0, 1]
    torch.testing.assert_close(sets.score, torch.tensor([0.05, 0.0, -0.48, -0.1, -0.1]))
    # thresholds move only after the sets: c ← 0.5·c + 0.5·max_c P. With the updated c_s of i0
    # (0.475 > 0.35) i0 would not have been clean.
    torch.testing.assert_close(c_w, torch.tensor([0.6, 0.55, 0.7, 0.55, 0.4]))
    torch.testing.assert_close(c_s, torch.tensor([0.475, 0.5, 0.725, 0.65, 0.35]))
    assert float(c_s[0]) > float(P_STRONG[0, 0])


def test_disc_correction_cap_099_blocks_the_correction():
    sets, _, _ = update_sets(
        P_WEAK, P_STRONG, LABELS, C_WEAK, C_STRONG, sigma=0.5, cap=0.99, momentum=0.5
    )
    assert not sets.purified.any() and sets.targets.tolist() == LABELS.tolist()


def test_gce_and_noise_switches():
    logits = torch.tensor([[0.0, LN2, 0.0]])  # p_1 = 0.5
    expected = (1 - 0.5**0.7) / 0.7
    assert float(gce_loss(logits, torch.tensor([1]), 0.7)) == pytest.approx(expected)
    assert is_high_noise(0.8) and is_high_noise(0.6) and not is_high_noise(0.5)
    assert not is_high_noise(None)
    labels = np.arange(12) % 3
    assert _method(DISC, labels).ema_momentum == 0.99  # noise rate 0.4
    scaled = _method(DISC, labels, ema_epochs=8)  # the run has 4 epochs
    assert scaled.ema_momentum == pytest.approx(0.99**2)
    with pytest.raises(ConfigError, match="ema_epochs"):
        resolve_config({"method": "disc", "hparams": {"ema_epochs": 0}})
    assert _method(DISC, labels, lambda_h=0.3).lambda_h == 0.3


def test_disc_training_epoch_visits_every_sample_and_updates_state():
    labels = np.arange(33) % 3  # 33 = 16 + 17: the last sample joins the second batch
    m = _method(DISC, labels, batch_size=16, warmup_epochs=1, ref_epochs=4)
    stats, diag = _run_epoch(m, 0)
    assert len(stats) == 2
    assert torch.all(m.p_weak.sum(1) > 0.99) and torch.all(m.p_strong.sum(1) > 0.99)
    assert diag["set_sizes"]["selected"] == int(m.sets.selected.sum())
    # thresholds were 1/N and moved towards the max confidence: m·(1/N) + (1 − m)·max P
    expected = 0.99 / 33 + 0.01 * m.p_weak.max(1).values
    torch.testing.assert_close(m.c_weak, expected)
    stats, _ = _run_epoch(m, 1)  # a selection epoch runs on the sets of epoch 0
    assert all(math.isfinite(float(s["loss"])) for s in stats)


# --------------------------------------------------------------------------------------------------
# end to end through run_one, and exact resume
# --------------------------------------------------------------------------------------------------


def _cfg(small_npz: Path, method: str, epochs: int = 3, **hparams):
    hparams = {"warmup_epochs": 1, "ref_epochs": epochs, **hparams}
    return run_config(small_npz, method, epochs, **hparams)


def test_dividemix_end_to_end_diagnostics(small_npz, tmp_path):
    cfg = _cfg(small_npz, "dividemix")
    summary = run_one(cfg, tmp_path)
    rows = RunFolder(tmp_path / cfg.run_name()).read_metrics()
    phases = [r["diagnostics"]["phase"] for r in rows]
    assert phases == ["warmup", "semi-supervised", "semi-supervised"]
    assert set(rows[0]["test_acc"]) == {"net1", "net2", "ensemble"}
    assert summary["headline"]["head"] == "ensemble"
    assert "selection/net1" not in rows[0]["diagnostics"]
    for r in rows[1:]:
        d = r["diagnostics"]
        for name in ("net1", "net2"):
            sel = d[f"selection/{name}"]
            assert sel["n_selected"] == d["division"][name]["n_labelled"]
            assert 0.0 <= sel["detection_auroc"] <= 1.0
        assert "purified_ratio" in d and 0.0 <= d["label_recovery"] <= 1.0
        assert {"lx", "lu", "reg", "lambda_u"} <= set(r["train"])
    # the final epoch's per-sample decisions (saved by the engine)
    with np.load(tmp_path / cfg.run_name() / "selection.npz") as sel:
        last = rows[-1]["diagnostics"]
        for name in ("net1", "net2"):
            assert int(sel[f"selected_{name}"].sum()) == last["division"][name]["n_labelled"]
            assert sel[f"score_{name}"].shape == (240,)
        assert int(sel["corrected"].sum()) == last["n_corrected"]


def test_disc_end_to_end_diagnostics(small_npz, tmp_path):
    cfg = _cfg(small_npz, "disc")
    run_one(cfg, tmp_path)
    rows = RunFolder(tmp_path / cfg.run_name()).read_metrics()
    assert [r["diagnostics"]["phase"] for r in rows] == ["warmup", "selection", "selection"]
    for r in rows:
        d = r["diagnostics"]
        assert d["selection/clean"]["n_selected"] == d["set_sizes"]["clean"]
        assert d["n_corrected"] == d["set_sizes"]["purified"]
        assert r["time"]["train_samples"] == 240  # every sample visited each epoch
        # the fast preset's m = 0.99 over DISC's own 200 epochs, in a 3-epoch run
        assert d["ema_momentum"] == pytest.approx(0.99 ** (200 / 3)) and d["lambda_h"] == 1.0
    with np.load(tmp_path / cfg.run_name() / "selection.npz") as sel:
        sizes = rows[-1]["diagnostics"]["set_sizes"]
        assert int(sel["selected_clean"].sum()) == sizes["clean"]
        assert int(sel["corrected"].sum()) == sizes["purified"]


def test_generic_linear_decay_schedule_and_disc_above_06(small_npz, tmp_path):
    """schedule: linear_decay = constant, then linear from the first milestone (scaled), Adam's
    β₁ 0.9 -> 0.1 there; DISC at symmetric 0.8 in the fast preset runs on it."""
    net = nn.Linear(2, 2)
    hp = DISC.Hparams(optimizer="adam", lr=1e-3, schedule="linear_decay", milestones=(30,))
    opt = make_optimizer(net.parameters(), hp)
    sched = make_scheduler(opt, hp, epochs=40)  # e_d = 30 of 50 -> 24 of 40
    lrs, betas = [], []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        sched.step()
    assert lrs[:24] == [1e-3] * 24 and betas[:24] == [0.9] * 24
    assert lrs[24] == pytest.approx(1e-3) and lrs[39] == pytest.approx(1e-3 / 16)
    assert lrs[30] == pytest.approx(1e-3 * 10 / 16) and set(betas[24:]) == {0.1}
    with pytest.raises(ConfigError, match="linear_decay needs milestones"):
        make_scheduler(opt, DISC.Hparams(schedule="linear_decay", milestones=()), 40)

    user = {"method": "disc", "dataset": str(small_npz), "epochs": 3, "noise": {"rate": 0.8}}
    cfg = resolve_config({**user, "hparams": {"warmup_epochs": 1}, "progress": False})
    run_one(cfg, tmp_path)
    rows = RunFolder(tmp_path / cfg.run_name()).read_metrics()
    # e_d = round(30·3/50) = 2: lr 1e-3, 1e-3, then (3 − 2)/(3 − 2)·1e-3 -> all 1e-3 at 3 epochs
    assert [r["lr"] for r in rows] == pytest.approx([1e-3] * 3)
    assert rows[1]["diagnostics"]["lambda_h"] == 0.2  # the Ref's high-noise switches still apply


@pytest.mark.parametrize(
    ("cls", "hparams"),
    [
        (DivideMix, {"history": 2}),
        (DISC, {"ema_momentum": 0.5}),
        (DISC, {"optimizer": "adam", "lr": 1e-3, "schedule": "linear_decay", "milestones": [1]}),
    ],
)
def test_resume_equals_uninterrupted(small_npz, tmp_path, monkeypatch, cls, hparams):
    cfg = _cfg(small_npz, cls.name, epochs=3, **hparams)
    full = run_one(cfg, tmp_path / "a")
    rows_full = RunFolder(tmp_path / "a" / cfg.run_name()).read_metrics()

    # in the middle of epoch 2, after the checkpoint of epoch 1
    calls = interrupt_train_step(monkeypatch, cls, 2, when=lambda m: m.epoch == 2)
    with pytest.raises(Interrupt):
        run_one(cfg, tmp_path / "b")
    folder = RunFolder(tmp_path / "b" / cfg.run_name())
    assert [r["epoch"] for r in folder.read_metrics()] == [0, 1]
    calls["restore"]()
    resumed = run_one(cfg, tmp_path / "b")
    rows_resumed = folder.read_metrics()
    assert [r["epoch"] for r in rows_resumed] == [0, 1, 2]
    assert any(k.startswith("selection/") for k in rows_resumed[2]["diagnostics"])
    for a, b in zip(rows_full, rows_resumed, strict=True):
        assert a["test_acc"] == b["test_acc"]
        assert a["train"] == b["train"]
        assert a["diagnostics"] == b["diagnostics"]
    assert resumed["headline"]["value"] == full["headline"]["value"]
    assert json.dumps(full["diagnostics_final"], sort_keys=True) == json.dumps(
        resumed["diagnostics_final"], sort_keys=True
    )
