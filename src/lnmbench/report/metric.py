"""Which number the report ranks: a test metric under one of the run summaries."""

from __future__ import annotations

from dataclasses import dataclass

from lnmbench.errors import ConfigError
from lnmbench.experiment.summary import SCALAR_METRICS

SUMMARIES = {
    "last5": "mean of the last 5 epochs",
    "best_val": "at the best noisy-validation epoch",
    "final": "at the final epoch",
}
LOWER_IS_BETTER = frozenset({"fpr95", "ece"})
LABELS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro-F1",
    "macro_auc": "macro AUC",
    "fpr95": "FPR at 95% TPR",
    "ece": "ECE",
    "qwk": "quadratic weighted kappa",
}


@dataclass(frozen=True)
class Metric:
    """A metric name and summary; ``column`` is its column in the results table."""

    name: str = "accuracy"
    summary: str = "last5"

    def __post_init__(self) -> None:
        if self.name not in SCALAR_METRICS:
            raise ConfigError(f"unknown metric {self.name!r}; known: {', '.join(SCALAR_METRICS)}")
        if self.summary not in SUMMARIES:
            raise ConfigError(f"unknown summary {self.summary!r}; known: {', '.join(SUMMARIES)}")

    @property
    def column(self) -> str:
        return f"{self.name}_{self.summary}"

    @property
    def higher_is_better(self) -> bool:
        return self.name not in LOWER_IS_BETTER

    @property
    def label(self) -> str:
        """e.g. "test accuracy (%), mean of the last 5 epochs"."""
        unit = "" if self.name == "qwk" else " (%)"
        return f"test {LABELS[self.name]}{unit}, {SUMMARIES[self.summary]}"

    @property
    def short(self) -> str:
        """e.g. "test accuracy (%)" (axis labels)."""
        return f"test {LABELS[self.name]}" + ("" if self.name == "qwk" else " (%)")

    def scale(self) -> float:
        """Display factor: fractions are shown as percentages (kappa as is)."""
        return 1.0 if self.name == "qwk" else 100.0
