"""Hyperparameters as data: the training settings every method shares, and their resolution."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from lnmbench.errors import ConfigError


@dataclass
class TrainHparams:
    """Settings shared by all methods; each method subclasses this with its own fields.

    Milestones and other epoch counts in the schedule are given at the reference length
    ``ref_epochs`` (the paper's 50) and scaled to the run's epoch budget.
    """

    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "multistep"  # multistep | constant | cosine
    milestones: tuple[int, ...] = (10, 20)
    gamma: float = 0.1
    ref_epochs: int = 50
    grad_clip: float | None = None  # global L2 gradient-norm bound


def resolve_hparams(cls: type, overrides: dict[str, Any] | None, where: str) -> Any:
    """Build ``cls`` (a dataclass) from its defaults and ``overrides``; unknown keys are refused."""
    overrides = dict(overrides or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: unknown hyperparameter(s) {unknown}; known: {', '.join(sorted(names))}"
        )
    values = {}
    for key, value in overrides.items():
        default = getattr(cls, key, None) if names[key].default is not dataclasses.MISSING else None
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def hparams_dict(hp: Any) -> dict[str, Any]:
    """A JSON/YAML-friendly dict of a hyperparameter dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(hp).items()}


def scaled_epoch(e: int | float, hp: TrainHparams, epochs: int) -> int:
    """An epoch count given at ``hp.ref_epochs`` scaled to a run of ``epochs`` epochs."""
    return max(0, round(e * epochs / hp.ref_epochs))


def make_optimizer(params, hp: TrainHparams, **override: Any) -> torch.optim.Optimizer:
    """The optimiser ``hp`` describes (weight decay coupled, as in the reference code)."""
    name = override.get("optimizer", hp.optimizer)
    lr = override.get("lr", hp.lr)
    wd = override.get("weight_decay", hp.weight_decay)
    if name == "sgd":
        momentum = override.get("momentum", hp.momentum)
        nesterov = override.get("nesterov", hp.nesterov) and momentum > 0
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(
            params, lr=lr, betas=override.get("betas", hp.betas), weight_decay=wd
        )
    raise ConfigError(f"unknown optimizer {name!r}; known: adam, sgd")


def make_scheduler(
    opt: torch.optim.Optimizer, hp: TrainHparams, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch LR schedule (stepped after each epoch)."""
    if hp.schedule == "multistep":
        milestones = sorted({scaled_epoch(m, hp, epochs) for m in hp.milestones})
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=hp.gamma)
    if hp.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    if hp.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    raise ConfigError(f"unknown schedule {hp.schedule!r}; known: constant, cosine, multistep")


def default_field(value: Any) -> Any:
    """``field(default_factory=...)`` for mutable defaults in hyperparameter dataclasses."""
    return field(default_factory=lambda: value)
