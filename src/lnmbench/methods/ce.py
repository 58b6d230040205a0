"""Cross-entropy baselines: ``ce`` (plain) and ``ce-ls`` (label smoothing 0.1, the Ref "CE")."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lnmbench.methods.base import Batch, Method, register_method
from lnmbench.methods.hparams import TrainHparams


@dataclass
class CEHparams(TrainHparams):
    """Ref: batch 16, SGD lr 0.01 momentum 0.9 Nesterov, MultiStep [10, 20]."""

    nesterov: bool = True


@register_method("ce")
class CE(Method):
    """Empirical risk minimisation on the noisy labels: mean CE(f(x), ỹ)."""

    Hparams = CEHparams
    description = "plain cross-entropy on the noisy labels (baseline)"


@dataclass
class CELSHparams(CEHparams):
    smoothing: float = 0.1


@register_method("ce-ls")
class CELabelSmoothing(Method):
    """H((1-ε) e_ỹ + ε/C 1, p): the smoothing mass is spread over all C classes."""

    Hparams = CELSHparams
    description = "cross-entropy with label smoothing 0.1 (the LNMBench reference 'CE')"

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=self.hp.smoothing)
