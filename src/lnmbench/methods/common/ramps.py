"""Epoch lengths given at the reference length, and the linear ramp of DivideMix's λ_u."""

from __future__ import annotations

from lnmbench.methods.hparams import TrainHparams, scaled_epoch

__all__ = ["linear_rampup", "scaled_warmup"]


def scaled_warmup(e_ref: int, hp: TrainHparams, epochs: int) -> int:
    """Warm-up epochs given at ``hp.ref_epochs`` scaled to a run of ``epochs`` (rounded): 0 stays
    0, anything else lies in [1, epochs]."""
    if e_ref <= 0:
        return 0
    return min(epochs, max(1, scaled_epoch(e_ref, hp, epochs)))


def linear_rampup(progress: float, start: float, length: float) -> float:
    """clip((progress − start) / length, 0, 1); a step at ``start`` when length is 0."""
    if length <= 0:
        return 1.0 if progress >= start else 0.0
    return float(min(max((progress - start) / length, 0.0), 1.0))
