"""CDR: robust early-learning by gradient masking of non-critical weights (Xia et al., 2021).

After each backward pass only the top ⌊clip_e·|P|⌋ weights of P (every weight tensor with 2 or 4
dimensions, one global pool) ranked by |g·θ| keep their gradient, scaled by clip_e; the others get
a zero gradient and, through the optimiser's coupled weight decay, only shrink. Biases and
BatchNorm parameters are never masked. methods.md §3.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Method, register_method
from lnmbench.methods.hparams import TrainHparams, scaled_epoch

CLIP_SCHEDULES = ("constant", "ramp")


@dataclass
class CDRHparams(TrainHparams):
    """Ref: batch 128, SGD lr 0.01 m 0.9 wd 1e-3 (coupled), MultiStep [20, 40]; ramp T_k = 10.

    ``ramp_epochs`` (T_k) is an epoch count at ``ref_epochs`` and is scaled to the run's length
    like the milestones (T_k = 10 at 50 epochs becomes 4 at 20 epochs).
    """

    weight_decay: float = 1e-3
    milestones: tuple[int, ...] = (20, 40)
    clip_schedule: str = "ramp"  # ramp | constant (the original code's effective behaviour)
    ramp_epochs: int = 10

    def __post_init__(self) -> None:
        if self.clip_schedule not in CLIP_SCHEDULES:
            raise ConfigError(
                f"cdr: unknown clip_schedule {self.clip_schedule!r}; "
                f"known: {', '.join(CLIP_SCHEDULES)}"
            )
        if self.ramp_epochs < 1:
            raise ConfigError(f"cdr: ramp_epochs must be >= 1, got {self.ramp_epochs}")


def clip_rate(epoch: int, noise_rate: float, schedule: str, ramp_epochs: int) -> float:
    """Fraction of weights that keep their gradient at ``epoch`` (0-based).

    ``ramp``: 1 − n·min(e/(T_k − 1), 1), from 1 at epoch 0 to 1 − n at epoch T_k − 1 (T_k = 1
    gives 1 − n from the start); ``constant``: 1 − n.
    """
    if not 0.0 <= noise_rate < 1.0:
        raise ConfigError(f"cdr: noise rate must be in [0, 1), got {noise_rate}")
    if schedule == "constant":
        return 1.0 - noise_rate
    if schedule == "ramp":
        progress = 1.0 if ramp_epochs <= 1 else min(epoch / (ramp_epochs - 1), 1.0)
        return 1.0 - noise_rate * progress
    raise ConfigError(
        f"cdr: unknown clip_schedule {schedule!r}; known: {', '.join(CLIP_SCHEDULES)}"
    )


def maskable_weights(net: nn.Module) -> list[nn.Parameter]:
    """The pool P: every parameter with 2 (linear) or 4 (convolution) dimensions and a gradient."""
    return [p for p in net.parameters() if p.dim() in (2, 4) and p.grad is not None]


def kth_largest(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th largest entry (0-d) of the 1-D float32 tensor ``values``, 1 <= k <= len(values).

    CPU: ``kthvalue`` (selection, O(N)); CUDA: ``topk(sorted=False)`` (multi-block radix select;
    ``kthvalue`` runs one block per slice and has no CUDA half kernel). Same value either way.
    """
    if values.is_cuda:
        return torch.topk(values, k, sorted=False).values.min()
    return torch.kthvalue(values, values.numel() - k + 1).values


@torch.no_grad()
def mask_gradients(weights: list[torch.Tensor], clip: float) -> int:
    """Keep the gradients of the top ⌊clip·|P|⌋ entries of P by s = |g·θ|, scaled by ``clip``.

    ``weights``: the tensors of P, each with ``.grad`` of its own shape. Threshold t = the k-th
    largest score over the concatenated pool; mask m = 1[s ≥ t] (methods.md §3.5), so with ties at
    t more than k entries may be kept. Gradients become clip·m·g in place. k = 0 zeroes every
    gradient of P. Scores are compared in float32 on the weights' device (CPU or CUDA).
    Returns the number of entries kept.
    """
    if not weights:
        return 0
    if not 0.0 <= clip <= 1.0:
        raise ConfigError(f"cdr: clip rate must be in [0, 1], got {clip}")
    scores = [(w.grad.float() * w.float()).abs() for w in weights]
    flat = torch.cat([s.flatten() for s in scores])
    k = math.floor(clip * flat.numel())
    if k == 0:
        for w in weights:
            w.grad.zero_()
        return 0
    threshold = kth_largest(flat, k)
    kept = 0
    for w, s in zip(weights, scores, strict=True):
        keep = s >= threshold
        kept += int(keep.sum())
        w.grad.mul_(keep.to(w.grad.dtype) * clip)
    return kept


@register_method("cdr")
class CDR(Method):
    """Mean CE on ỹ; gradients of non-critical weights masked between backward and the step."""

    Hparams = CDRHparams
    cost_factor = 1.1
    uses_noise_rate = True
    description = "robust early-learning: gradient masking of non-critical weights (needs rate)"

    hp: CDRHparams

    def setup(self) -> None:
        super().setup()
        self.ramp_epochs = max(1, scaled_epoch(self.hp.ramp_epochs, self.hp, self.ctx.epochs))
        self.clip = 1.0
        self._kept = 0
        self._pool = 0

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self.clip = clip_rate(epoch, self.noise_rate(), self.hp.clip_schedule, self.ramp_epochs)
        self._kept = self._pool = 0

    def after_backward(self, net: nn.Module) -> None:
        weights = maskable_weights(net)
        self._kept += mask_gradients(weights, self.clip)
        self._pool += sum(w.numel() for w in weights)

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        out = super().on_epoch_end(epoch)
        out["cdr_clip"] = self.clip
        out["cdr_kept_fraction"] = self._kept / self._pool if self._pool else float("nan")
        return out
