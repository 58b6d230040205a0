"""The grid cost model: image-passes per run, turned into time with a throughput."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lnmbench.experiment.config import RunConfig

if TYPE_CHECKING:
    from lnmbench.experiment.grid import GridPlan, PlannedRun


class CostSettings(BaseModel):
    """Cost model: image-passes per run turned into time with an images/s throughput.

    cost = N_train × epochs × method factor + (N_val + N_test) × epochs × eval_factor, with split
    sizes from the dataset registry. ``images_per_s`` is the training throughput of one worker for
    a factor-1 method (forward + backward of one image); measured values from finished runs in the
    result root replace it (see :func:`measured_images_per_s`).
    """

    model_config = ConfigDict(extra="forbid")

    images_per_s: float = Field(400.0, gt=0)
    eval_factor: float = Field(1 / 3, ge=0)  # a forward-only pass costs about a third of a step
    method_factors: dict[str, float] = Field(default_factory=dict)
    # (train, val, test) sizes of datasets whose registry entry does not know them
    split_sizes: dict[str, tuple[int, int, int]] = Field(default_factory=dict)

    def factor(self, method: str) -> float:
        if method in self.method_factors:
            return self.method_factors[method]
        from lnmbench.methods import METHODS

        return float(METHODS.get(method).cost_factor) if method in METHODS else 1.0


@functools.lru_cache(maxsize=256)
def split_sizes(dataset: str) -> tuple[int, int, int]:
    """(train, val, test) sizes: from the dataset registry, or read from a user .npz."""
    from lnmbench.data import DATASETS, is_path_like

    if is_path_like(dataset):
        with np.load(dataset, mmap_mode="r") as f:
            return tuple(int(f[f"{s}_labels"].shape[0]) for s in ("train", "val", "test"))
    return DATASETS.get(dataset).split_sizes


def run_cost(cfg: RunConfig, cost: CostSettings) -> float:
    """Estimated image-passes of a run: N_train·E·factor + (N_val + N_test)·E·eval_factor.

    0 when the split sizes are unknown (a registry entry with sizes 0 and no ``cost.split_sizes``).
    """
    if cfg.dataset in cost.split_sizes:
        n_train, n_val, n_test = cost.split_sizes[cfg.dataset]
    else:
        n_train, n_val, n_test = split_sizes(cfg.dataset)
    return cfg.epochs * (n_train * cost.factor(cfg.method) + (n_val + n_test) * cost.eval_factor)


def throughput_key(cfg: RunConfig) -> str:
    """Runs sharing a key share a throughput: same backbone at the same image size."""
    return f"{cfg.model}@{cfg.size}"


def measured_images_per_s(plan: GridPlan, done_wall_s: dict[str, float]) -> dict[str, float]:
    """Throughput (image-passes/s) by :func:`throughput_key`, the median over finished runs.

    ``done_wall_s`` maps run names of finished runs to their wall time (``summary.json`` wall_s).
    """
    by_key: dict[str, list[float]] = {}
    for run in plan.runs:
        wall = done_wall_s.get(run.name)
        if wall and wall > 0:
            by_key.setdefault(throughput_key(run.config), []).append(run.cost / wall)
    return {k: float(np.median(v)) for k, v in by_key.items()}


def estimate_seconds(
    runs: list[PlannedRun], cost: CostSettings, measured: dict[str, float] | None = None
) -> float:
    """Sequential time of ``runs`` on one worker (divide by the parallel workers for wall time)."""
    measured = measured or {}
    return sum(r.cost / measured.get(throughput_key(r.config), cost.images_per_s) for r in runs)
