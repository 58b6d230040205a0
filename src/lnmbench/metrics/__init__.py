"""Clinical (§7) and LNL-diagnostic (§6) metrics: pure functions on numpy arrays / torch tensors."""

from lnmbench.metrics.clinical import (
    accuracy,
    balanced_accuracy,
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    fpr_at_95_tpr,
    fpr_at_tpr_binary,
    macro_auc_ovr,
    macro_f1,
    quadratic_weighted_kappa,
    sensitivity_specificity,
)
from lnmbench.metrics.diagnostics import (
    empirical_transition_matrix,
    label_recovery_accuracy,
    noise_detection_auroc,
    purified_ratio,
    selection_stats,
    transition_estimation_error,
)

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "classification_report",
    "confusion_matrix",
    "empirical_transition_matrix",
    "expected_calibration_error",
    "fpr_at_95_tpr",
    "fpr_at_tpr_binary",
    "label_recovery_accuracy",
    "macro_auc_ovr",
    "macro_f1",
    "noise_detection_auroc",
    "purified_ratio",
    "quadratic_weighted_kappa",
    "selection_stats",
    "sensitivity_specificity",
    "transition_estimation_error",
]
