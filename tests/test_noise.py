"""Tests of the label-noise layer (methods.md §4)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math

import numpy as np
import pytest
import torch
from rich.console import Console
from scipy import stats

from lnmbench.errors import ConfigError, UnknownNameError
from lnmbench.noise import (
    NOISE,
    NoisyLabels,
    check_transition_matrix,
    cross_fit,
    make_noisy_labels,
    plot_transition,
    reference_logits,
    report_table,
    truncnorm_flip_rates,
)
from lnmbench.noise import classifier as clf_mod

N = 5000
C = 7


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return np.random.default_rng(123).integers(0, C, N).astype(np.int64)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (N, 1, 4, 4), dtype=np.uint8)


@pytest.fixture(scope="module")
def logits() -> np.ndarray:
    return np.random.default_rng(9).normal(0.0, 3.0, (N, C)).astype(np.float32)


def _truncnorm_mean(n: float, sigma: float = 0.1) -> float:
    a0, b0 = -n / sigma, (1 - n) / sigma
    phi, cdf = stats.norm.pdf, stats.norm.cdf
    return n + sigma * (phi(a0) - phi(b0)) / (cdf(b0) - cdf(a0))


def _ref_multiclass_noisify(y: np.ndarray, t: np.ndarray, seed: int) -> np.ndarray:
    """The reference code's draw (Co-teaching ``multiclass_noisify``)."""
    flipper = np.random.RandomState(seed)
    new_y = y.copy()
    for idx in np.arange(y.shape[0]):
        flipped = flipper.multinomial(1, t[y[idx], :], 1)[0]
        new_y[idx] = np.where(flipped == 1)[0][0]
    return new_y


def _gen_kwargs(name: str, images: np.ndarray, logits: np.ndarray) -> dict:
    if name == "instance":
        return {"images": images}
    if name == "instance-classifier":
        return {"params": {"logits": logits}}
    if name == "transition":
        t = np.full((C, C), 0.5 / (C - 1))
        np.fill_diagonal(t, 0.5)
        return {"params": {"matrix": t.tolist()}}
    return {}


# --------------------------------------------------------------------------- realised rates


@pytest.mark.parametrize(
    ("name", "rate", "expected"),
    [
        ("symmetric", 0.8, lambda n: n),
        ("symmetric_inclusive", 0.8, lambda n: n * (C - 1) / C),
        ("pairflip", 0.4, lambda n: n),
        ("adjacent", 0.6, lambda n: n),
        ("transition", 0.5, lambda n: n),
        ("instance", 0.9, _truncnorm_mean),
        ("instance-classifier", 0.9, _truncnorm_mean),
    ],
)
def test_realised_rate_matches_expectation(name, rate, expected, clean, images, logits):
    nl = make_noisy_labels(name, clean, C, rate, seed=0, **_gen_kwargs(name, images, logits))
    exp = expected(rate)
    tol = 4 * math.sqrt(exp * (1 - exp) / N)
    assert abs(nl.realised_rate - exp) < tol, (name, nl.realised_rate, exp)
    assert nl.noisy.dtype == np.int64 and nl.noisy.shape == (N,)
    if name.startswith("instance"):  # the E[q] formula, not the nominal rate
        assert abs(nl.extra["expected_rate"] - _truncnorm_mean(rate)) < 1e-12
        assert abs(_truncnorm_mean(rate) - rate) > tol


def test_symmetric_inclusive_resamples_floor_nN(clean):
    nl = make_noisy_labels("symmetric_inclusive", clean[:100], C, 0.29, seed=3)
    assert nl.extra["num_resampled"] == 29
    same = make_noisy_labels("symmetric", clean, C, 0.5, 3, params={"inclusive": True})
    assert np.array_equal(
        same.noisy, make_noisy_labels("symmetric_inclusive", clean, C, 0.5, 3).noisy
    )
    assert same.extra["convention"] == "inclusive"


# --------------------------------------------------------------------------- where labels go


def test_symmetric_never_maps_to_itself(clean):
    # exclusive convention: at n = 0.99 about 99 % change (inclusive would keep 1/C of them)
    nl = make_noisy_labels("symmetric", clean, C, 0.99, seed=1)
    assert nl.realised_rate > 0.98
    assert np.all(nl.transition_matrix[~np.eye(C, dtype=bool)] > 0)  # every other class reached
    assert nl.extra["convention"] == "exclusive"
    half = make_noisy_labels("symmetric", clean, C, 0.5, seed=1).transition_matrix
    np.testing.assert_allclose(np.diag(half), 0.5, atol=0.06)
    np.testing.assert_allclose(half[~np.eye(C, dtype=bool)], 0.5 / (C - 1), atol=0.04)


def test_zero_diagonal_matrix_changes_every_label(clean):
    t = np.full((C, C), 1 / (C - 1))
    np.fill_diagonal(t, 0.0)
    nl = make_noisy_labels("transition", clean, C, None, seed=2, params={"matrix": t})
    assert np.all(nl.noisy != clean)


def test_pairflip_only_to_next_class(clean):
    nl = make_noisy_labels("pairflip", clean, C, 0.45, seed=4)
    flipped = nl.noisy != clean
    assert flipped.any()
    assert np.all(nl.noisy[flipped] == (clean[flipped] + 1) % C)


def test_adjacent_only_to_neighbours(clean):
    nl = make_noisy_labels("adjacent", clean, C, 0.6, seed=5)
    assert np.all(np.abs(nl.noisy - clean) <= 1)
    t = nl.transition_matrix
    assert t[0, 1] == pytest.approx(0.6, abs=0.06) and t[C - 1, C - 2] == pytest.approx(
        0.6, abs=0.06
    )
    assert t[3, 2] == pytest.approx(0.3, abs=0.06) and t[3, 4] == pytest.approx(0.3, abs=0.06)


# --------------------------------------------------------------------------- exact reference draw


@pytest.mark.parametrize("name", ["symmetric", "pairflip"])
def test_reproduces_reference_draw(name):
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 3, 2, 1, 0] * 7, dtype=np.int64)
    c, n, seed = 5, 0.4, 11
    if name == "symmetric":
        t = np.ones((c, c)) * n / (c - 1)
        for i in range(c):
            t[i, i] = 1 - n
    else:
        t = np.eye(c) * (1 - n)
        for i in range(c):
            t[i, (i + 1) % c] = n
    expected = _ref_multiclass_noisify(y, t, seed)
    got = make_noisy_labels(name, y, c, n, seed).noisy
    assert np.array_equal(got, expected)
    assert not np.array_equal(got, y)


def test_pdn_reproduces_per_sample_reference_loop():
    rng = np.random.default_rng(0)
    c, n, sigma, seed = 4, 0.6, 0.1, 3
    y = rng.integers(0, c, 300)
    x = rng.integers(0, 256, (300, 1, 3, 3), dtype=np.uint8)
    # the authors' generator, one sample at a time, in float64
    rs = np.random.RandomState(seed)
    q = stats.truncnorm(-n / sigma, (1 - n) / sigma, loc=n, scale=sigma).rvs(300, random_state=rs)
    w = rs.randn(c, 9, c)
    expected = np.empty(300, dtype=np.int64)
    for i in range(300):
        a = x[i].reshape(-1).astype(np.float64) @ w[y[i]]
        a[y[i]] = -np.inf
        b = np.exp(a - a.max())
        b /= b.sum()
        p = q[i] * b
        p[y[i]] += 1 - q[i]
        expected[i] = rs.choice(c, p=p)
    got = make_noisy_labels("instance", y, c, n, seed, images=x).noisy
    assert np.array_equal(got, expected)


# --------------------------------------------------------------------------- PDN flip rates


@pytest.mark.parametrize("name", ["instance", "instance-classifier"])
def test_instance_flip_rates_follow_truncnorm(name, clean, images, logits):
    n, sigma, seed = 0.7, 0.1, 8
    q = truncnorm_flip_rates(n, sigma, N, np.random.RandomState(seed))
    a0, b0 = -n / sigma, (1 - n) / sigma
    assert q.min() >= 0 and q.max() <= 1
    assert abs(q.mean() - stats.truncnorm.mean(a0, b0, loc=n, scale=sigma)) < 0.005
    assert abs(q.std() - stats.truncnorm.std(a0, b0, loc=n, scale=sigma)) < 0.005
    assert stats.kstest(q, stats.truncnorm(a0, b0, loc=n, scale=sigma).cdf).pvalue > 0.01

    nl = make_noisy_labels(name, clean, C, n, seed, **_gen_kwargs(name, images, logits))
    assert nl.extra["q"]["mean"] == pytest.approx(q.mean(), abs=1e-12)  # the q actually used
    assert nl.extra["q"]["quantiles"]["50"] == pytest.approx(np.median(q), abs=1e-12)
    # b_{y_i} = 0, so sample i flips with probability exactly q_i: check it per q-quartile group
    flipped = nl.noisy != clean
    edges = np.quantile(q, [0.0, 0.25, 0.5, 0.75, 1.0])
    group = np.clip(np.searchsorted(edges, q, side="right") - 1, 0, 3)
    for g in range(4):
        m = group == g
        expected = q[m].mean()
        tol = 4 * math.sqrt(expected * (1 - expected) / m.sum())
        assert abs(flipped[m].mean() - expected) < tol, (g, flipped[m].mean(), expected)
    assert flipped[group == 3].mean() > flipped[group == 0].mean() + 0.1


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "name",
    [
        "symmetric",
        "symmetric_inclusive",
        "pairflip",
        "adjacent",
        "transition",
        "instance",
        "instance-classifier",
    ],
)
def test_same_seed_same_labels_different_seed_different(name, clean, images, logits):
    kw = _gen_kwargs(name, images, logits)
    a = make_noisy_labels(name, clean, C, 0.5, 0, **kw)
    b = make_noisy_labels(name, clean, C, 0.5, 0, **kw)
    d = make_noisy_labels(name, clean, C, 0.5, 5, **kw)
    assert np.array_equal(a.noisy, b.noisy) and a.sha256 == b.sha256
    assert not np.array_equal(a.noisy, d.noisy) and a.sha256 != d.sha256


# --------------------------------------------------------------------------- empirical T


def test_empirical_transition_on_hand_case():
    clean = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2], dtype=np.int64)
    noisy = np.array([0, 0, 1, 2, 0, 0, 2, 2, 1, 1], dtype=np.int64)
    nl = NoisyLabels(noisy, clean, 4, "manual", None, 0, {}, {})
    np.testing.assert_array_equal(
        nl.transition_counts, [[2, 1, 1, 0], [2, 0, 0, 0], [0, 2, 2, 0], [0, 0, 0, 0]]
    )
    t = nl.transition_matrix
    np.testing.assert_allclose(t[:3], [[0.5, 0.25, 0.25, 0], [1, 0, 0, 0], [0, 0.5, 0.5, 0]])
    assert np.isnan(t[3]).all()
    np.testing.assert_allclose(nl.per_class_flip_rate[:3], [0.5, 1.0, 0.5])
    assert np.isnan(nl.per_class_flip_rate[3])
    assert nl.realised_rate == pytest.approx(0.6)
    # class 1: T_11 = 0 < T_10; class 2: a tie T_22 = T_21 is unlearnable too; absent 3 is not
    assert nl.unlearnable_classes == [1, 2]
    # columns: label 0 is 2 true 0 + 2 true 1 (a tie: not dominated), label 1 is no true 1,
    # label 2 is 2 of 3 right, label 3 is given to no sample
    np.testing.assert_allclose(nl.label_precision[:3], [0.5, 0.0, 2 / 3])
    assert np.isnan(nl.label_precision[3])
    assert nl.dominated_labels == [1]
    rep = nl.report()
    assert rep["dominated_labels"] == [1] and rep["label_precision"][3] is None
    assert nl.sha256 == NoisyLabels(noisy.copy(), None, 4, "x", None, 1, {}, {}).sha256
    assert nl.sha256 == hashlib.sha256(noisy.astype("<i8").tobytes()).hexdigest()


def _exact_symmetric(c: int, per_class: int, stay: int) -> NoisyLabels:
    """Labels whose empirical T is exactly symmetric: ``stay`` of ``per_class`` keep the label."""
    move = (per_class - stay) // (c - 1)
    clean, noisy = [], []
    for i in range(c):
        clean += [i] * per_class
        noisy += [i] * stay + [j for j in range(c) if j != i for _ in range(move)]
    return NoisyLabels(np.array(noisy), np.array(clean), c, "manual", 0.9, 0, {}, {})


def test_unlearnable_flags():
    assert _exact_symmetric(8, 70, 7).unlearnable_classes == list(range(8))  # 0.1 vs 9/70
    assert _exact_symmetric(11, 100, 10).unlearnable_classes == []  # 0.1 vs 0.09
    y8 = np.tile(np.arange(8), 5000)
    assert make_noisy_labels("symmetric", y8, 8, 0.9, 0).unlearnable_classes == list(range(8))
    y11 = np.tile(np.arange(11), 60000)
    assert make_noisy_labels("symmetric", y11, 11, 0.9, 0).unlearnable_classes == []


# --------------------------------------------------------------------------- validation


def test_transition_matrix_validation(clean):
    good = np.eye(3) * 0.7 + 0.1
    check_transition_matrix(good, 3)
    bad_sum = good.copy()
    bad_sum[1, 1] = 0.75
    with pytest.raises(ConfigError, match=r"row 1 sums to 0\.95"):
        check_transition_matrix(bad_sum, 3)
    neg = good.copy()
    neg[2, 0], neg[2, 2] = -0.1, 0.9
    with pytest.raises(ConfigError, match=r"\[2, 0\] is negative"):
        check_transition_matrix(neg, 3)
    with pytest.raises(ConfigError, match=r"shape \(3, 3\)"):
        check_transition_matrix(np.eye(2), 3)
    with pytest.raises(ConfigError, match="row 1 sums to"):
        make_noisy_labels("transition", clean % 3, 3, None, 0, params={"matrix": bad_sum.tolist()})
    with pytest.raises(ConfigError, match=r"params\.matrix"):
        make_noisy_labels("transition", clean % 3, 3, None, 0)
    within = good.copy()
    within[0, 0] += 5e-7  # inside the 1e-6 tolerance: accepted and drawn
    make_noisy_labels("transition", clean % 3, 3, None, 0, params={"matrix": within})


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "high"])
def test_rate_out_of_range(rate, clean):
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        make_noisy_labels("symmetric", clean, C, rate, 0)


def test_other_input_errors(clean, images):
    with pytest.raises(UnknownNameError, match="known: adjacent, instance, instance-classifier"):
        make_noisy_labels("gaussian", clean, C, 0.2, 0)
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) 'sigma'.*accepted: inclusive"):
        make_noisy_labels("symmetric", clean, C, 0.2, 0, params={"sigma": 0.1})
    with pytest.raises(ConfigError, match="accepted: pdn_input, sigma"):
        make_noisy_labels("instance", clean, C, 0.2, 0, images=images, params={"bad": 1})
    with pytest.raises(ConfigError, match="num_classes must be >= 2"):
        make_noisy_labels("symmetric", clean * 0, 1, 0.2, 0)
    with pytest.raises(ConfigError, match=r"clean labels outside \[0, 7\).*first 7 at index 2"):
        make_noisy_labels("symmetric", np.array([0, 1, 7, 9]), C, 0.2, 0)
    with pytest.raises(ConfigError, match="noise seed"):
        make_noisy_labels("symmetric", clean, C, 0.2, -1)
    with pytest.raises(ConfigError, match="needs a rate"):
        make_noisy_labels("symmetric", clean, C, None, 0)
    with pytest.raises(ConfigError, match="needs the images"):
        make_noisy_labels("instance", clean, C, 0.2, 0)
    with pytest.raises(ConfigError, match="pdn_input"):
        make_noisy_labels("instance", clean, C, 0.2, 0, images=images, params={"pdn_input": "x"})
    with pytest.raises(ConfigError, match="logits must have shape"):
        make_noisy_labels("instance-classifier", clean, C, 0.2, 0, params={"logits": np.zeros(3)})


def test_realworld_with_and_without_clean(clean):
    noisy = (clean + (np.arange(N) % 10 == 0)) % C
    nl = make_noisy_labels("realworld", clean, C, 0.4, 0, params={"noisy": noisy})
    assert nl.rate is None
    assert nl.realised_rate == pytest.approx(0.1)
    blind = make_noisy_labels("realworld", None, C, None, 0, params={"noisy": noisy})
    assert np.array_equal(blind.noisy, noisy)
    assert math.isnan(blind.realised_rate)
    assert blind.transition_matrix is None and blind.unlearnable_classes is None
    rep = json.loads(json.dumps(blind.report()))
    assert rep["realised_rate"] is None and rep["transition_matrix"] is None
    assert rep["params"]["noisy"]["shape"] == [N]  # a digest, not the whole column
    with pytest.raises(ConfigError, match="noisy labels outside"):
        make_noisy_labels("realworld", None, C, None, 0, params={"noisy": noisy + C})


# --------------------------------------------------------------------------- cache


def test_cache_hit_and_misses(tmp_path, monkeypatch, clean):
    key = {"dataset": "demo", "split": "train"}
    first = make_noisy_labels("symmetric", clean, C, 0.5, 0, cache_dir=tmp_path, cache_key=key)
    files = list(tmp_path.glob("symmetric-*.npz"))
    assert len(files) == 1 and len(files[0].stem.split("-")[1]) == 16
    assert not list(tmp_path.glob("*.tmp"))

    original = NOISE.get("symmetric")

    @functools.wraps(original.generate)
    def boom(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setitem(NOISE._items, "symmetric", dataclasses.replace(original, generate=boom))
    hit = make_noisy_labels("symmetric", clean, C, 0.5, 0, cache_dir=tmp_path, cache_key=key)
    assert np.array_equal(hit.noisy, first.noisy) and hit.extra == first.extra
    assert hit.cache_key == first.cache_key
    # default params written explicitly resolve to the same key
    make_noisy_labels(
        "symmetric",
        clean,
        C,
        0.5,
        0,
        cache_dir=tmp_path,
        cache_key=key,
        params={"inclusive": False},
    )
    for change in (
        {"seed": 1},
        {"rate": 0.4},
        {"cache_key": {"dataset": "demo", "split": "val"}},
        {"params": {"inclusive": True}},
        {"clean": np.roll(clean, 1)},
    ):
        kw = {"clean": clean, "rate": 0.5, "seed": 0, "cache_key": key, **change}
        with pytest.raises(AssertionError, match="recomputed"):
            make_noisy_labels(
                "symmetric",
                kw["clean"],
                C,
                kw["rate"],
                kw["seed"],
                cache_dir=tmp_path,
                cache_key=kw["cache_key"],
                params=kw.get("params"),
            )


def test_cache_includes_images_hash(tmp_path, clean, images):
    a = make_noisy_labels("instance", clean, C, 0.5, 0, images=images, cache_dir=tmp_path)
    b = make_noisy_labels("instance", clean, C, 0.5, 0, images=255 - images, cache_dir=tmp_path)
    assert a.cache_key != b.cache_key and not np.array_equal(a.noisy, b.noisy)
    assert len(list(tmp_path.glob("instance-*.npz"))) == 2


# --------------------------------------------------------------------------- reference classifier


def _tiny_image_set(n: int = 200, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 8, 8) uint8 images whose class is encoded in the pixel intensity."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(c), n // c)
    x = 30 + 60 * y[:, None, None, None] + rng.integers(0, 20, (n, 1, 8, 8))
    return x.astype(np.uint8), y.astype(np.int64)


def test_cross_fit_fold_bookkeeping(monkeypatch):
    x, y = _tiny_image_set()
    trained: dict[int, np.ndarray] = {}
    predicted: list[tuple[int, np.ndarray]] = []
    orig_train, orig_predict = clf_mod._train_fold, clf_mod._predict_logits

    def spy_train(images, labels, train_idx, num_classes, **kw):
        net = orig_train(images, labels, train_idx, num_classes, **kw)
        trained[id(net)] = np.asarray(train_idx).copy()
        return net

    def spy_predict(net, images, idx, batch_size):
        out = orig_predict(net, images, idx, batch_size)
        predicted.append((id(net), np.asarray(idx).copy()))
        out[:] = len(predicted)  # tag each row with the model call that produced it
        return out

    monkeypatch.setattr(clf_mod, "_train_fold", spy_train)
    monkeypatch.setattr(clf_mod, "_predict_logits", spy_predict)
    oof, acc, conf = reference_logits(
        x, y, 4, seed=0, folds=2, model="cnn-tiny", epochs=2, batch_size=32
    )
    assert oof.shape == (200, 4) and oof.dtype == np.float32
    assert len(trained) == 2 and len(predicted) == 2
    seen = np.concatenate([idx for _, idx in predicted])
    assert np.array_equal(np.sort(seen), np.arange(200))  # every sample scored exactly once
    for k, (net_id, idx) in enumerate(predicted, start=1):
        assert np.intersect1d(idx, trained[net_id]).size == 0  # never by a model trained on it
        assert np.union1d(idx, trained[net_id]).size == 200
        assert np.all(oof[idx] == k)
        np.testing.assert_array_equal(np.bincount(y[idx], minlength=4), [25] * 4)  # stratified
    assert conf.sum() == 200 and acc == pytest.approx(np.trace(conf) / 200)


def test_instance_classifier_end_to_end_and_logits_cache(tmp_path, monkeypatch):
    x, y = _tiny_image_set()
    torch_state = torch.random.get_rng_state()
    params = {"model": "cnn-tiny", "epochs": 2, "folds": 2, "batch_size": 32}
    nl = make_noisy_labels(
        "instance-classifier", y, 4, 0.5, 0, images=x, params=params, cache_dir=tmp_path
    )
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # caller's RNG untouched
    ref = nl.extra["reference"]
    assert ref["source"].startswith("cross-fit") and ref["model"] == "cnn-tiny"
    assert 0.0 <= ref["accuracy"] <= 1.0 and np.sum(ref["confusion"]) == 200
    assert abs(nl.realised_rate - 0.5) < 0.15
    assert len(list(tmp_path.glob("reference-logits-*.npz"))) == 1
    json.dumps(nl.report())

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the logits are cached")

    monkeypatch.setattr(clf_mod, "_train_fold", no_training)
    fit = cross_fit(
        x, y, 4, seed=0, folds=2, model="cnn-tiny", epochs=2, batch_size=32, cache_dir=tmp_path
    )
    assert fit.oof_logits.shape == (200, 4)
    # new noise seed, same classifier seed: labels recomputed from the cached logits
    again = make_noisy_labels(
        "instance-classifier",
        y,
        4,
        0.5,
        1,
        images=x,
        cache_dir=tmp_path,
        params={**params, "classifier_seed": 0},
    )
    assert again.extra["reference"]["logits_sha256"] == ref["logits_sha256"]
    with pytest.raises(AssertionError, match="retrained"):
        cross_fit(
            x, y, 4, seed=0, folds=2, model="cnn-tiny", epochs=3, batch_size=32, cache_dir=tmp_path
        )


# --------------------------------------------------------------------------- reports


def test_report_json_table_and_plot(tmp_path, clean):
    nl = make_noisy_labels("symmetric", clean, C, 0.9, 0)
    rep = nl.report()
    back = json.loads(json.dumps(rep, allow_nan=False))
    assert back["generator"] == "symmetric" and back["rate"] == 0.9 and back["seed"] == 0
    assert back["sha256"] == nl.sha256 and back["params"] == {"inclusive": False}
    assert len(back["transition_matrix"]) == C and back["unlearnable_classes"] == list(range(C))
    assert sum(back["clean_class_counts"]) == N == sum(back["noisy_class_counts"])
    assert back["realised_rate"] == pytest.approx(nl.realised_rate)

    absent = NoisyLabels(np.array([0, 1, 1]), np.array([0, 0, 1]), 3, "manual", None, 0, {}, {})
    assert (
        json.loads(json.dumps(absent.report(), allow_nan=False))["transition_matrix"][2]
        == [None] * 3
    )

    console = Console(record=True, width=140)
    console.print(report_table(nl))
    text = console.export_text()
    assert "symmetric" in text and "no" in text
    # a label that is mostly another class is listed in the caption and its precision shown
    hand = NoisyLabels(
        np.array([0, 0, 1, 2, 0, 0, 2, 2, 1, 1]),
        np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2]),
        4,
        "manual",
        None,
        0,
        {},
        {},
    )
    console = Console(record=True, width=160)
    console.print(report_table(hand))
    text = console.export_text()
    assert "P(y=c | ỹ=c)" in text and "66.67%" in text
    assert "labels mostly another class (red): 1" in text
    # quantiles in numeric order even when the report comes back with string-sorted keys
    hand.extra = {"q": {"mean": 0.5, "quantiles": {"25": 0.4, "5": 0.3, "50": 0.5}}}
    console = Console(record=True, width=200)
    console.print(report_table(hand))
    assert "(5%: 0.300, 25%: 0.400, 50%: 0.500)" in " ".join(console.export_text().split())

    path = plot_transition(nl.transition_matrix, tmp_path / "t.png", "symmetric 0.9")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    both = plot_transition(
        absent.transition_matrix, tmp_path / "sub" / "e.png", "t", estimate=np.full((3, 3), 1 / 3)
    )
    assert both.stat().st_size > path.stat().st_size / 2
