"""The method contract: hooks the engine calls, and the registry of methods.

A method receives (views of x, noisy labels, sample index) and nothing else; clean labels are seen
only by the engine's diagnostics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lnmbench.errors import ConfigError
from lnmbench.methods.hparams import TrainHparams, make_optimizer, make_scheduler
from lnmbench.registry import Registry


@dataclass
class Batch:
    """One training batch.

    ``index`` (B,) long: positions in the training split; ``labels`` (B,) long: noisy labels;
    ``views``: augmented float images (B, C, H, W) by view kind ("train", "weak", "strong", ...).
    """

    index: torch.Tensor
    labels: torch.Tensor
    views: dict[str, torch.Tensor]

    @property
    def x(self) -> torch.Tensor:
        """The first view (single-view methods)."""
        return next(iter(self.views.values()))

    def __len__(self) -> int:
        return len(self.index)


@dataclass
class Selection:
    """A method's selected ("probably clean") set over the training split, for diagnostics.

    ``selected`` and ``seen`` are (N,) bool; ``score`` (N,) float is a clean-ness score (higher =
    more likely clean) for noise-detection AUROC, or None.
    """

    selected: np.ndarray
    seen: np.ndarray | None = None
    score: np.ndarray | None = None


class TrainAccess(Protocol):
    """What a method may read of the training split (the engine's ``TrainView``)."""

    num_samples: int
    noisy_labels: torch.Tensor  # (N,) long on the device

    def view(self, index: torch.Tensor, kind: str) -> torch.Tensor: ...

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass
class RunContext:
    """Everything a method may know about its run (never the clean labels)."""

    num_classes: int
    in_chans: int
    device: torch.device
    epochs: int
    seed: int
    model_name: str
    pretrained: bool
    noise_rate: float | None  # nominal rate, or the assumed rate on real-world data
    noise_rate_source: str  # "nominal" | "assumed" | "none"
    class_counts: np.ndarray  # (C,) counts of the noisy training labels
    generator: torch.Generator  # CPU generator for the method's own random draws
    train: TrainAccess
    amp: bool = False
    channels_last: bool = False
    noise_name: str | None = None  # the run's noise generator ("symmetric", "realworld", ...)
    logs: dict[str, Any] = field(default_factory=dict)

    def make_model(self) -> nn.Module:
        from lnmbench import models

        net = models.create(
            self.model_name, self.num_classes, self.in_chans, pretrained=self.pretrained
        )
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on CUDA when AMP is on; a no-op otherwise."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)


class Method:
    """Base class: one network trained with a loss on the noisy labels.

    Subclasses override ``loss`` (single net) or ``setup``/``train_step`` (everything else).
    """

    name: ClassVar[str] = ""
    Hparams: ClassVar[type[TrainHparams]] = TrainHparams
    views: ClassVar[tuple[str, ...]] = ("train",)
    headline: ClassVar[str] = "net"  # a head name, or "mean" (metric averaged over mean_heads)
    mean_heads: ClassVar[tuple[str, ...]] = ()
    val_head: ClassVar[str] = "net"  # head whose noisy-validation accuracy selects epochs
    uses_noise_rate: ClassVar[bool] = False
    description: ClassVar[str] = ""
    # training cost per sample-epoch relative to one forward + backward of one image (the grid's
    # time estimate): two-network methods train two nets, DISC two views, DivideMix two nets on
    # two views of labelled and unlabelled data plus co-guessing and a per-epoch GMM pass
    cost_factor: ClassVar[float] = 1.0

    def __init__(self, hp: TrainHparams, ctx: RunContext) -> None:
        self.hp = hp
        self.ctx = ctx
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.epoch = 0

    # ----- construction -------------------------------------------------------------------
    def add_net(self, name: str) -> nn.Module:
        net = self.ctx.make_model()
        self.nets[name] = net
        return net

    def add_optimizer(self, name: str, params, with_scheduler: bool = True, **override: Any):
        opt = make_optimizer(params, self.hp, **override)
        self.optimizers[name] = opt
        if with_scheduler:
            self.schedulers[name] = make_scheduler(opt, self.hp, self.ctx.epochs)
        return opt

    # ----- the noise rate -------------------------------------------------------------------
    @classmethod
    def needs_noise_rate(cls, hp: TrainHparams) -> bool:
        """Whether the method reads the run's noise rate with these hyperparameters (the run
        refuses to start without one, before its folder is made)."""
        return cls.uses_noise_rate

    noise_rate_alternative: ClassVar[str] = ""  # e.g. ", or the hyperparameter forget_rate"

    @classmethod
    def missing_noise_rate(cls) -> ConfigError:
        """The error for a run without a noise rate (real-world data) that needs one."""
        return ConfigError(
            f"method {cls.name!r} needs a noise rate, and real-world data has none: set "
            f"assumed_noise_rate (e.g. --assumed-noise-rate 0.3){cls.noise_rate_alternative}"
        )

    def noise_rate(self) -> float:
        """The run's noise rate (nominal, or assumed on real-world data)."""
        if self.ctx.noise_rate is None:
            raise self.missing_noise_rate()
        return self.ctx.noise_rate

    def setup(self) -> None:
        """Build networks and optimisers (default: one net ``net``, one optimiser)."""
        self.net = self.add_net("net")
        self.add_optimizer("net", self.net.parameters())

    # ----- training hooks -----------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_batches(self, epoch: int) -> Iterator[torch.Tensor]:
        """Index batches of one epoch: a seeded shuffle of all N samples, every sample visited."""
        n = self.ctx.train.num_samples
        order = torch.randperm(n, generator=self.ctx.generator)
        bs = self.hp.batch_size
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            if (
                len(idx) < 2 and start > 0
            ):  # a batch of one breaks BatchNorm; it joins the next epoch
                continue
            yield idx

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Loss of a single-net method: logits (B, C), labels (B,) -> scalar."""
        return F.cross_entropy(logits, labels)

    def forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``net(x)`` under the run's autocast, as float32 logits (B, C)."""
        with self.ctx.autocast():
            return net(x).float()

    @torch.no_grad()
    def train_set_logits(self, nets: Sequence[nn.Module], batch_size: int) -> list[torch.Tensor]:
        """One pass over the training set: logits (N, C) float32 of every sample, in order, for
        each of ``nets`` (eval transform, no augmentation, on the device; the caller sets the
        nets' train/eval mode)."""
        chunks: list[list[torch.Tensor]] = [[] for _ in nets]
        for _, x in self.ctx.train.eval_batches(batch_size):
            for out, net in zip(chunks, nets, strict=True):
                out.append(self.forward(net, x))
        return [torch.cat(c) for c in chunks]

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step; returns scalar statistics (the engine averages them per epoch)."""
        logits = self.forward(self.net, batch.x)
        loss = self.loss(logits, batch.labels, batch)
        self.backward_step("net", loss, self.net)
        acc = (logits.argmax(1) == batch.labels).float().mean()
        return {"loss": loss.detach(), "acc_noisy": acc}

    def backward_step(
        self, opt_names: str | Sequence[str], loss: torch.Tensor, net: nn.Module | None = None
    ) -> None:
        """zero_grad, backward, optional gradient masking / clipping of ``net``, then a step of
        each named optimiser in order (e.g. VolMinNet's network and transition optimisers)."""
        names = [opt_names] if isinstance(opt_names, str) else list(opt_names)
        opts = [self.optimizers[n] for n in names]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if net is not None:
            self.after_backward(net)
            if self.hp.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), self.hp.grad_clip)
        for opt in opts:
            opt.step()

    def after_backward(self, net: nn.Module) -> None:
        """Hook between backward() and the optimiser step (CDR's gradient masking)."""

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        """Step the per-epoch schedules; return diagnostics to log for this epoch."""
        for sched in self.schedulers.values():
            sched.step()
        return {}

    def after_evaluation(self, epoch: int, val_acc: dict[str, float]) -> dict[str, Any]:
        """Called after the epoch's evaluation with noisy-validation accuracy per head.

        Methods that keep best-epoch weights (T-Revision) use it; returns diagnostics to log.
        """
        return {}

    # ----- prediction ---------------------------------------------------------------------
    def train_mode(self) -> None:
        for net in self.nets.values():
            net.train()

    def eval_mode(self) -> None:
        for net in self.nets.values():
            net.eval()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits (B, C) per head for eval-transformed x (B, C, H, W)."""
        return {"net": self.forward(self.net, x)}

    # ----- diagnostics (optional) ---------------------------------------------------------
    def selection(self) -> dict[str, Selection] | None:
        """Selected sets of the last epoch, by name (e.g. per network)."""
        return None

    def corrected_labels(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(corrected mask (N,) bool, current training targets (N,) int), or None."""
        return None

    def corrected_labels_by_net(self) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
        """Per-network (corrected mask, targets) for two-net methods (DivideMix), or None."""
        return None

    def train_predictions(self) -> np.ndarray | None:
        """Current predicted class of every training sample (N,) (DISC), or None."""
        return None

    def transition_matrix(self) -> np.ndarray | None:
        """Current estimate of T (C, C), rows = clean class, or None."""
        return None

    def summary_start_epoch(self) -> int:
        """First epoch the run summaries use (T-Revision: its revision stage); 0 = all."""
        return 0

    def lr(self) -> float:
        opt = next(iter(self.optimizers.values()), None)
        return float(opt.param_groups[0]["lr"]) if opt is not None else float("nan")

    # ----- checkpointing ------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Method-specific state (tensors, arrays, numbers) to checkpoint."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "extra": self.extra_state(),
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state["nets"].items():
            self.nets[k].load_state_dict(v)
        for k, v in state["optimizers"].items():
            self.optimizers[k].load_state_dict(v)
        for k, v in state["schedulers"].items():
            self.schedulers[k].load_state_dict(v)
        self.epoch = state["epoch"]
        self.load_extra_state(state["extra"])


METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str):
    """Class decorator: register a Method subclass under ``name``."""
    return METHODS.register_named(name)
