"""Tests for lnmbench.metrics: clinical metrics (§7) and LNL diagnostics (§6)."""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from lnmbench.errors import ConfigError
from lnmbench.metrics import (
    accuracy,
    balanced_accuracy,
    classification_report,
    confusion_matrix,
    empirical_transition_matrix,
    expected_calibration_error,
    fpr_at_95_tpr,
    fpr_at_tpr_binary,
    label_recovery_accuracy,
    macro_auc_ovr,
    macro_f1,
    noise_detection_auroc,
    purified_ratio,
    quadratic_weighted_kappa,
    selection_stats,
    sensitivity_specificity,
    transition_estimation_error,
)

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _random_case(seed: int, c: int, n: int = 200, absent: bool = False, ties: bool = False):
    """y_true (maybe missing one class), y_prob (N, C) with optional ties, and argmax y_pred."""
    rng = np.random.default_rng(seed)
    classes = np.arange(c)
    if absent:
        classes = np.delete(classes, rng.integers(c))
    y_true = rng.choice(classes, size=n)
    logits = rng.integers(0, 3, size=(n, c)).astype(float) if ties else rng.normal(size=(n, c))
    logits[np.arange(n), y_true] += 1.0  # informative but imperfect
    y_prob = _softmax(logits)
    return y_true, y_prob, y_prob.argmax(axis=1)


def _ref_fpr_at_tpr(pos: np.ndarray, neg: np.ndarray, tpr: float = 0.95) -> float:
    """Literal §7 rule: the largest candidate threshold keeping >= tpr of the positives."""
    best = max(t for t in np.unique(pos) if np.mean(pos >= t) >= tpr - 1e-12)
    return float(np.mean(neg >= best))


def _ref_ece(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 15) -> float:
    conf = y_prob.max(axis=1)
    correct = y_prob.argmax(axis=1) == y_true
    total = 0.0
    for m in range(1, n_bins + 1):
        in_bin = (conf > (m - 1) / n_bins) & (conf <= m / n_bins)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


CASES = [(seed, c, absent) for seed in range(3) for c in (2, 3, 5, 8) for absent in (False, True)]
CASES = [case for case in CASES if not (case[1] == 2 and case[2])]  # C=2 minus one is degenerate


# --------------------------------------------------------------------------------------------------
# clinical metrics vs scikit-learn
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "c", "absent"), CASES)
def test_label_metrics_match_sklearn(seed: int, c: int, absent: bool) -> None:
    y_true, _, _ = _random_case(seed, c, absent=absent)
    rng = np.random.default_rng(seed + 100)
    # random predictions over all C classes, so the absent class is predicted too
    y_pred = np.where(rng.random(y_true.size) < 0.5, y_true, rng.integers(0, c, y_true.size))
    present = np.unique(y_true)

    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about predicted-only classes
        ref_bacc = skm.balanced_accuracy_score(y_true, y_pred)
    assert balanced_accuracy(y_true, y_pred, c) == pytest.approx(ref_bacc, abs=1e-12)
    assert balanced_accuracy(y_true, y_pred) == pytest.approx(ref_bacc, abs=1e-12)

    ref_f1 = skm.f1_score(y_true, y_pred, labels=present, average=None, zero_division=0).mean()
    assert macro_f1(y_true, y_pred, c) == pytest.approx(ref_f1, abs=1e-12)

    cm = confusion_matrix(y_true, y_pred, c)
    assert cm.dtype == np.int64 and cm.shape == (c, c)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=np.arange(c)))

    sens, spec = sensitivity_specificity(y_true, y_pred, c)
    for k in range(c):
        t, p = y_true == k, y_pred == k
        if t.any():
            assert sens[k] == pytest.approx(skm.recall_score(t, p))
        else:
            assert np.isnan(sens[k])
        assert spec[k] == pytest.approx(skm.recall_score(~t, ~p))

    ref_qwk = skm.cohen_kappa_score(y_true, y_pred, weights="quadratic", labels=np.arange(c))
    assert quadratic_weighted_kappa(y_true, y_pred, c) == pytest.approx(ref_qwk, abs=1e-12)


def test_macro_f1_excludes_predicted_only_classes() -> None:
    # class 2 is only predicted: sklearn's default label set would average over 3 classes
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 2, 1, 1])
    # F1_0 = 2/3 (TP 1, FN 1), F1_1 = 1
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((2 / 3 + 1) / 2)
    assert macro_f1(y_true, y_pred) != pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))


def test_qwk_equals_sklearn_default_when_all_classes_appear() -> None:
    rng = np.random.default_rng(7)
    y_true = np.tile(np.arange(5), 40)
    y_pred = np.clip(y_true + rng.integers(-1, 2, y_true.size), 0, 4)
    ref = skm.cohen_kappa_score(y_true, y_pred, weights="quadratic")
    assert quadratic_weighted_kappa(y_true, y_pred, 5) == pytest.approx(ref, abs=1e-12)
    assert quadratic_weighted_kappa(y_true, y_true, 5) == pytest.approx(1.0)
    assert math.isnan(quadratic_weighted_kappa([1, 1, 1], [1, 1, 1], 3))  # Σ w E = 0


@pytest.mark.parametrize(("seed", "c", "absent"), CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_macro_auc_matches_sklearn(seed: int, c: int, absent: bool, ties: bool) -> None:
    y_true, y_prob, _ = _random_case(seed, c, absent=absent, ties=ties)
    ref = np.mean([skm.roc_auc_score(y_true == k, y_prob[:, k]) for k in np.unique(y_true)])
    assert macro_auc_ovr(y_true, y_prob) == pytest.approx(ref, abs=1e-12)


def test_macro_auc_single_class_is_nan() -> None:
    y_prob = np.array([[0.7, 0.3], [0.4, 0.6]])
    assert math.isnan(macro_auc_ovr([0, 0], y_prob))


# --------------------------------------------------------------------------------------------------
# FPR at 95 % TPR
# --------------------------------------------------------------------------------------------------


def test_fpr_binary_hand_cases() -> None:
    # 10 positives 1..10: ceil(0.95·10) = 10 must be kept, so t = 1; negatives >= 1: 4 of 5
    pos = np.arange(1.0, 11.0)
    neg = np.array([0.5, 1.0, 1.5, 3.0, 11.0])
    is_pos = np.r_[np.ones(10, bool), np.zeros(5, bool)]
    assert fpr_at_tpr_binary(is_pos, np.r_[pos, neg]) == pytest.approx(0.8)
    # 20 positives 1..20: 19 kept, t = 2 (ties at t count as >=); negatives >= 2: 2 of 4
    pos = np.arange(1.0, 21.0)
    neg = np.array([1.0, 1.5, 2.0, 2.5])
    is_pos = np.r_[np.ones(20, bool), np.zeros(4, bool)]
    assert fpr_at_tpr_binary(is_pos, np.r_[pos, neg]) == pytest.approx(0.5)
    # another TPR: 0.5 of 20 → t = 11th largest = 10; no negative reaches it
    assert fpr_at_tpr_binary(is_pos, np.r_[pos, neg], tpr=0.5) == 0.0
    # undefined without negatives or without positives
    assert math.isnan(fpr_at_tpr_binary(np.ones(3, bool), [0.1, 0.2, 0.3]))
    assert math.isnan(fpr_at_tpr_binary(np.zeros(3, bool), [0.1, 0.2, 0.3]))


def test_fpr95_multiclass_hand_case_with_absent_class() -> None:
    y_true = np.array([0, 0, 0, 1, 1])
    p0 = np.array([0.9, 0.6, 0.4, 0.5, 0.2])
    y_prob = np.stack([p0, 1 - p0, np.zeros(5)], axis=1)  # class 2 absent: skipped
    # class 0: positives {.9,.6,.4}, keep 3 → t=.4, negatives {.5,.2} → 1/2
    # class 1: positives {.5,.8}, keep 2 → t=.5, negatives {.1,.4,.6} → 1/3
    assert fpr_at_95_tpr(y_true, y_prob) == pytest.approx((1 / 2 + 1 / 3) / 2)


@pytest.mark.parametrize(("seed", "c", "absent"), CASES)
def test_fpr95_matches_literal_rule(seed: int, c: int, absent: bool) -> None:
    y_true, y_prob, _ = _random_case(seed, c, n=120, absent=absent, ties=seed == 1)
    ref = np.mean(
        [_ref_fpr_at_tpr(y_prob[y_true == k, k], y_prob[y_true != k, k]) for k in np.unique(y_true)]
    )
    assert fpr_at_95_tpr(y_true, y_prob) == pytest.approx(ref, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# ECE
# --------------------------------------------------------------------------------------------------


def test_ece_hand_case() -> None:
    y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.25, 0.75], [0.3, 0.7]])
    y_true = np.array([0, 0, 0, 1])
    # conf .9 → bin 14 (correct); .8 = 12/15 → bin 12 (right-closed, correct);
    # .75 → bin 12 (wrong); .7 → bin 11 (correct)
    # bin 12: acc 1/2, conf .775 → 2/4·.275; bin 14: 1/4·.1; bin 11: 1/4·.3
    expected = 2 / 4 * 0.275 + 0.1 / 4 + 0.3 / 4
    assert expected == pytest.approx(0.2375)
    assert expected_calibration_error(y_true, y_prob) == pytest.approx(expected)


def test_ece_perfect_and_worst() -> None:
    onehot = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error([0, 1, 2, 1], onehot) == pytest.approx(0.0)
    assert expected_calibration_error([1, 2, 0, 0], onehot) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(4))
def test_ece_matches_loop_reference(seed: int) -> None:
    y_true, y_prob, _ = _random_case(seed, 5, n=300)
    assert expected_calibration_error(y_true, y_prob) == pytest.approx(
        _ref_ece(y_true, y_prob), abs=1e-12
    )
    assert expected_calibration_error(y_true, y_prob, n_bins=10) == pytest.approx(
        _ref_ece(y_true, y_prob, 10), abs=1e-12
    )


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def test_classification_report_consistent_and_serialisable() -> None:
    y_true, y_prob, y_pred = _random_case(3, 5, n=400, absent=True)
    rep = classification_report(y_true, y_prob, 5, ordinal=True)
    assert set(rep) == {
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "macro_auc",
        "fpr95",
        "ece",
        "per_class_sensitivity",
        "per_class_specificity",
        "qwk",
    }
    assert rep["accuracy"] == accuracy(y_true, y_pred)
    assert rep["balanced_accuracy"] == balanced_accuracy(y_true, y_pred, 5)
    assert rep["macro_f1"] == macro_f1(y_true, y_pred, 5)
    assert rep["macro_auc"] == macro_auc_ovr(y_true, y_prob)
    assert rep["fpr95"] == fpr_at_95_tpr(y_true, y_prob)
    assert rep["ece"] == expected_calibration_error(y_true, y_prob)
    assert rep["qwk"] == quadratic_weighted_kappa(y_true, y_pred, 5)
    sens, spec = sensitivity_specificity(y_true, y_pred, 5)
    np.testing.assert_array_equal(rep["per_class_sensitivity"], sens)  # nan for the absent class
    np.testing.assert_array_equal(rep["per_class_specificity"], spec)
    assert sum(math.isnan(v) for v in rep["per_class_sensitivity"]) == 1
    assert all(type(v) is float for k, v in rep.items() if not isinstance(v, list))
    json.loads(json.dumps(rep))
    assert "qwk" not in classification_report(y_true, y_prob, 5)


def test_classification_report_is_fast() -> None:
    y_true, y_prob, _ = _random_case(0, 8, n=3500)
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        classification_report(y_true, y_prob, 8, ordinal=True)
        timings.append(time.perf_counter() - t0)
    assert min(timings) < 0.05  # target ~20 ms; a per-sample Python loop is far slower


def test_accepts_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    y_true, y_prob, y_pred = _random_case(1, 4, n=100)
    rep_np = classification_report(y_true, y_prob, 4)
    rep_t = classification_report(torch.from_numpy(y_true), torch.from_numpy(y_prob).float(), 4)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc"):
        assert rep_t[key] == pytest.approx(rep_np[key], abs=1e-6)
    assert accuracy(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == rep_np["accuracy"]
    score = torch.linspace(0, 1, 10, requires_grad=True)
    assert noise_detection_auroc(score * 2, torch.arange(10) >= 5) == 1.0


# --------------------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------------------

#                  0  1  2  3  4  5  6  7  8  9
SEL_CLEAN = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
SEL_NOISY = np.array([0, 1, 0, 1, 2, 1, 2, 0, 2, 2])  # K = {0, 2, 3, 5, 6, 8, 9}
SEL_MASK = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1, 0], bool)  # S = {0, 1, 3, 6, 7, 8}


def test_selection_stats_hand_case() -> None:
    st = selection_stats(SEL_MASK, SEL_NOISY, SEL_CLEAN, 3)
    assert st["precision"] == pytest.approx(4 / 6)  # S ∩ K = {0, 3, 6, 8}
    assert st["recall"] == pytest.approx(4 / 7)
    assert st["n_selected"] == 6
    # indexed by noisy label: ỹ=0 {0,2,7}, ỹ=1 {1,3,5}, ỹ=2 {4,6,8,9}
    assert st["per_class_selected"] == [2, 2, 2]
    np.testing.assert_allclose(st["per_class_precision"], [1 / 2, 1 / 2, 1.0])
    np.testing.assert_allclose(st["per_class_recall"], [1 / 2, 1 / 2, 2 / 3])
    json.dumps(st)


def test_selection_stats_with_seen() -> None:
    seen = np.ones(10, bool)
    seen[[2, 9]] = False  # two clean, unselected samples were not seen this epoch
    st = selection_stats(SEL_MASK, SEL_NOISY, SEL_CLEAN, 3, seen=seen)
    assert st["precision"] == pytest.approx(4 / 6)
    assert st["recall"] == pytest.approx(4 / 5)  # K ∩ seen = {0, 3, 5, 6, 8}
    np.testing.assert_allclose(st["per_class_recall"], [1.0, 1 / 2, 1.0])
    with pytest.raises(ConfigError, match="not in seen"):
        selection_stats(SEL_MASK, SEL_NOISY, SEL_CLEAN, 3, seen=~SEL_MASK)


def test_selection_stats_empty_selection_is_nan() -> None:
    st = selection_stats(np.zeros(10, bool), SEL_NOISY, SEL_CLEAN, 4)
    assert math.isnan(st["precision"])
    assert st["recall"] == 0.0  # K is non-empty: coverage is a defined 0
    assert st["n_selected"] == 0
    assert all(math.isnan(v) for v in st["per_class_precision"])
    assert st["per_class_recall"][:3] == [0.0, 0.0, 0.0]
    assert math.isnan(st["per_class_recall"][3])  # no sample with ỹ = 3
    assert st["per_class_selected"] == [0, 0, 0, 0]
    # all labels noisy: K is empty, so recall is undefined too
    st = selection_stats(np.ones(3, bool), [1, 2, 0], [0, 1, 2], 3)
    assert st["precision"] == 0.0 and math.isnan(st["recall"])


@pytest.mark.parametrize("seed", range(4))
def test_noise_detection_auroc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    is_clean = rng.random(300) < 0.6
    score = np.round(rng.normal(size=300) + is_clean, 1)  # many ties
    assert len(np.unique(score)) < 300
    ref = skm.roc_auc_score(is_clean, score)
    assert noise_detection_auroc(score, is_clean) == pytest.approx(ref, abs=1e-12)


def test_noise_detection_auroc_ties_and_undefined() -> None:
    # one clean (0.5) vs noisy {0.5, 0.2}: 1/2·(1/2) + 1/2·1 = 0.75
    assert noise_detection_auroc([0.5, 0.5, 0.2], [True, False, False]) == pytest.approx(0.75)
    assert math.isnan(noise_detection_auroc([0.1, 0.2], [True, True]))
    assert math.isnan(noise_detection_auroc([0.1, 0.2], [False, False]))


def test_purified_ratio_and_recovery() -> None:
    mask = np.array([1, 1, 0, 1, 0], bool)
    r = np.array([2, 1, 0, 0, 1])
    y = np.array([2, 0, 0, 0, 1])
    # P = {0, 1, 3}: r == y at 0 and 3 (unselected 2 and 4 also match but do not count)
    assert purified_ratio(mask, r, y) == pytest.approx(2 / 3)
    assert math.isnan(purified_ratio(np.zeros(5, bool), r, y))
    assert label_recovery_accuracy(r, y) == pytest.approx(4 / 5)


def test_empirical_transition_matrix_and_error_with_absent_class() -> None:
    clean = np.array([0, 0, 0, 0, 1, 1])
    noisy = np.array([0, 0, 1, 2, 1, 0])
    t, counts = empirical_transition_matrix(clean, noisy, 3)
    assert counts.dtype == np.int64 and t.dtype == np.float64
    np.testing.assert_array_equal(counts, [[2, 1, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(t[:2], [[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]])
    assert np.isnan(t[2]).all()

    est = np.array([[0.6, 0.2, 0.2], [0.5, 0.4, 0.1], [0.0, 0.0, 1.0]])
    # row 0: .1+.05+.05, row 1: 0+.1+.1, row 2 dropped; Σ|T̃| over kept rows = 2
    assert transition_estimation_error(est, t) == pytest.approx(0.4 / 2)
    # a sub-block is not row-stochastic: the denominator is Σ|T̃| = 1.75, not the row count
    err = transition_estimation_error(np.full((2, 2), 0.5), t[:2, :2])
    assert err == pytest.approx(0.25 / 1.75)
    est_nan_absent = est.copy()
    est_nan_absent[2] = np.nan  # the estimate of a dropped row may be anything
    assert transition_estimation_error(est_nan_absent, t) == pytest.approx(0.2)
    assert transition_estimation_error(np.eye(3), np.eye(3)) == 0.0


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------


def test_bad_inputs_raise_config_error() -> None:
    good_prob = np.array([[0.7, 0.3], [0.2, 0.8]])
    with pytest.raises(ConfigError, match="length mismatch"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ConfigError, match="length mismatch"):
        macro_auc_ovr([0, 1, 1], good_prob)
    with pytest.raises(ConfigError, match="length mismatch"):
        selection_stats([True, False], [0, 1], [0, 1, 1], 2)
    with pytest.raises(ConfigError, match=r"outside \[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ConfigError, match=r"outside \[0, 2\)"):
        macro_auc_ovr([0, 2], good_prob)
    with pytest.raises(ConfigError, match="< 0"):
        accuracy([0, -1], [0, 1])
    with pytest.raises(ConfigError, match=r"outside \[0, 3\)"):
        empirical_transition_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ConfigError, match=r"shape \(N, C\)"):
        macro_auc_ovr([0, 1], np.array([0.5, 0.5]))
    with pytest.raises(ConfigError, match="num_classes=3"):
        classification_report([0, 1], good_prob, 3)
    with pytest.raises(ConfigError, match="sum to 1"):
        fpr_at_95_tpr([0, 1], np.array([[0.7, 0.7], [0.2, 0.8]]))
    with pytest.raises(ConfigError, match="outside"):
        expected_calibration_error([0, 1], np.array([[2.0, -1.0], [0.2, 0.8]]))
    with pytest.raises(ConfigError, match="NaN"):
        macro_auc_ovr([0, 1], np.array([[np.nan, 0.3], [0.2, 0.8]]))
    with pytest.raises(ConfigError, match="NaN"):
        noise_detection_auroc([0.1, np.nan], [True, False])
    with pytest.raises(ConfigError, match="NaN"):
        accuracy(np.array([0.0, np.nan]), [0, 1])
    with pytest.raises(ConfigError, match="empty"):
        accuracy([], [])
    with pytest.raises(ConfigError, match="empty"):
        macro_auc_ovr(np.array([], int), np.zeros((0, 2)))
    with pytest.raises(ConfigError, match="1-D"):
        accuracy(np.zeros((2, 2), int), [0, 1])
    with pytest.raises(ConfigError, match="integer"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ConfigError, match="boolean mask"):
        selection_stats([0, 2], [0, 1], [0, 1], 2)
    with pytest.raises(ConfigError, match="tpr"):
        fpr_at_tpr_binary([True, False], [0.1, 0.2], tpr=1.5)
    with pytest.raises(ConfigError, match="n_bins"):
        expected_calibration_error([0, 1], good_prob, n_bins=0)
    with pytest.raises(ConfigError, match="num_classes"):
        quadratic_weighted_kappa([0, 1], [0, 1], 0)


def test_bad_transition_inputs() -> None:
    with pytest.raises(ConfigError, match="shape mismatch"):
        transition_estimation_error(np.eye(3), np.eye(2))
    with pytest.raises(ConfigError, match="square"):
        transition_estimation_error(np.ones((2, 3)), np.ones((2, 3)))
    partial = np.eye(2)
    partial[0, 1] = np.nan
    with pytest.raises(ConfigError, match="not entirely nan"):
        transition_estimation_error(np.eye(2), partial)
    with pytest.raises(ConfigError, match="estimate has NaN"):
        transition_estimation_error(np.full((2, 2), np.nan), np.eye(2))
