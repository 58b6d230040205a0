"""DivideMix (Li et al., 2020): GMM co-divide + MixMatch with co-refinement and co-guessing.

methods.md §3.11. Two networks. Warm-up: each net on its own shuffle with mean CE (batch 2B).
Afterwards, at the start of every epoch both nets' per-sample losses (eval mode, un-augmented
images) are modelled by a 2-component GMM (co-divide); net 1 is then trained on net 2's division
and net 2 on net 1's (with the already updated net 1 as frozen peer), one MixMatch step per
labelled batch. Test prediction: argmax(f₁ + f₂).

The pieces a variant (``medssl``, §8) changes are separate methods: :meth:`clean_probability`
and :meth:`split` (co-divide), :meth:`begin_phase` (called when a net's batches start, with the
division it trains on), :meth:`labelled_order` (the labelled loader's order), :meth:`labelled_loss`,
:meth:`prior` (regulariser target) and :meth:`train_logits` (every training-time softmax goes
through it). DivideMix's own versions change nothing.

Length conventions (stated choices): warm-up ``warmup_epochs`` and the λ_u ramp
``rampup_epochs`` are given at ``ref_epochs`` (50) and scaled to the run's epochs (warm-up
rounded, at least 1 when > 0; ramp as a real number), so a 50-epoch run is the Ref exactly and a
20-epoch run keeps the same shape (warm-up 2, ramp 6.4 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Batch, Method, Selection, register_method
from lnmbench.methods.common.gmm_divide import (
    LossHistory,
    Split,
    fit_clean_posterior,
    gmm_random_state,
    normalise_losses,
    split_by_threshold,
)
from lnmbench.methods.common.index_batches import UnlabelledCycle, covering_batches
from lnmbench.methods.common.mixup import mix, sample_mixup_lambda
from lnmbench.methods.common.ramps import linear_rampup, scaled_warmup
from lnmbench.methods.common.soft_targets import one_hot, sharpen, soft_cross_entropy
from lnmbench.methods.hparams import TrainHparams
from lnmbench.methods.sce import sce_loss

NETS = ("net1", "net2")
PEER = {"net1": "net2", "net2": "net1"}
SYMMETRIC_NOISE = ("symmetric", "symmetric_inclusive")
LX_LOSSES = ("soft_ce", "sce_argmax")
CONF_PENALTY = ("auto", "on", "off")
FORWARDS = ("separate", "concatenated")


@dataclass
class DivideMixHparams(TrainHparams):
    """Ref: batch 128, SGD lr 0.02 m 0.9 wd 5e-4, constant LR, warm-up 5 of 50 epochs."""

    method_label: ClassVar[str] = "dividemix"  # the method named in error messages
    lx_losses: ClassVar[tuple[str, ...]] = LX_LOSSES  # the values ``lx_loss`` may take

    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "constant"
    warmup_epochs: int = 5  # e_wu at ref_epochs; scaled to the run (>= 1 when > 0)
    p_threshold: float = 0.5  # τ: labelled set {w > τ}
    temperature: float = 0.5  # T of the sharpening
    alpha: float = 4.0  # mixup Beta(α, α)
    lambda_u: float = 25.0  # weight of the unlabelled MSE after the ramp
    rampup_epochs: float = 16.0  # linear ramp of λ_u at ref_epochs; scaled to the run
    conf_penalty: str = "auto"  # warm-up −entropy penalty: auto (on for non-symmetric
    #                             synthetic noise) | on | off
    history: int | None = None  # epochs of normalised losses averaged; None: 5 if n >= 0.9 else 1
    lx_loss: str = "soft_ce"  # soft_ce | sce_argmax (Ref DR sets: SCE α=β=1 on argmax Y')
    min_labelled_fraction: float = 0.01  # empty-L fallback: top ⌈fraction·N⌉ by w
    divide_batch_size: int = 1024  # batch of the co-divide inference pass (no effect on results)
    forwards: str = "separate"  # co-guess / co-refine forwards: separate (Train_cifar.py: u₁, u₂
    #                             through net and peer, then x₁, x₂ through net, one call each) |
    #                             concatenated (one call over [u₁; u₂] per net, one over [x₁; x₂])

    def __post_init__(self) -> None:
        where = self.method_label
        if not 0.0 <= self.p_threshold < 1.0:
            raise ConfigError(f"{where}: p_threshold must be in [0, 1), got {self.p_threshold}")
        if self.temperature <= 0:
            raise ConfigError(f"{where}: temperature must be > 0, got {self.temperature}")
        if self.alpha < 0:
            raise ConfigError(f"{where}: alpha must be >= 0, got {self.alpha}")
        if self.lambda_u < 0 or self.rampup_epochs < 0 or self.warmup_epochs < 0:
            raise ConfigError(
                f"{where}: lambda_u, rampup_epochs and warmup_epochs must be >= 0, got "
                f"{self.lambda_u}, {self.rampup_epochs}, {self.warmup_epochs}"
            )
        if self.conf_penalty not in CONF_PENALTY:
            raise ConfigError(
                f"{where}: unknown conf_penalty {self.conf_penalty!r}; known: "
                + ", ".join(CONF_PENALTY)
            )
        if self.history is not None and self.history < 1:
            raise ConfigError(f"{where}: history must be >= 1 or null (auto), got {self.history}")
        if self.lx_loss not in self.lx_losses:
            raise ConfigError(
                f"{where}: unknown lx_loss {self.lx_loss!r}; known: {', '.join(self.lx_losses)}"
            )
        if self.forwards not in FORWARDS:
            raise ConfigError(
                f"{where}: unknown forwards {self.forwards!r}; known: {', '.join(FORWARDS)}"
            )
        if not 0.0 < self.min_labelled_fraction <= 1.0:
            raise ConfigError(
                f"{where}: min_labelled_fraction must be in (0, 1], got "
                f"{self.min_labelled_fraction}"
            )


def unlabelled_mse(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_u = mean over rows and classes of (softmax z − Y')²; logits, targets (m, C) -> scalar."""
    return (logits.softmax(dim=1) - targets).pow(2).mean()


def prior_penalty(probs: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Σ_c π_c log(π_c / p̄_c), p̄ = mean of ``probs`` (M, C) over rows; prior π (C,)."""
    p_mean = probs.mean(dim=0)
    return (prior * torch.log(prior / p_mean)).sum()


@dataclass
class _Phase:
    """Which net the current batches train, on which division (labelled weights w), and the
    unlabelled batch source."""

    net: str
    peer: str
    weights: torch.Tensor | None = None  # (N,) w of the division trained on, on the device
    iterations: int = 1  # ⌊|L|/B⌋ + 1, the ramp's per-epoch denominator (as the original)
    unlabelled: UnlabelledCycle | None = None
    iteration: int = 0


@register_method("dividemix")
class DivideMix(Method):
    """GMM co-divide, MixMatch with co-refinement / co-guessing, ensemble test prediction."""

    Hparams = DivideMixHparams
    cost_factor = 8.0
    views: ClassVar[tuple[str, ...]] = ("weak",)
    headline = "ensemble"
    val_head = "ensemble"
    description = "two nets, GMM co-divide of per-sample losses + MixMatch (semi-supervised)"
    hp: DivideMixHparams

    # ----- construction -------------------------------------------------------------------
    def setup(self) -> None:
        for name in NETS:
            net = self.add_net(name)
            self.add_optimizer(name, net.parameters())
        ctx, hp = self.ctx, self.hp
        self.noisy = ctx.train.noisy_labels
        self.noisy_np = self.noisy.cpu().numpy()
        self.warmup_epochs = scaled_warmup(hp.warmup_epochs, hp, ctx.epochs)
        self.rampup_length = hp.rampup_epochs * ctx.epochs / hp.ref_epochs
        self.history_length = hp.history or (
            5 if ctx.noise_rate is not None and ctx.noise_rate >= 0.9 - 1e-9 else 1
        )
        self.use_conf_penalty = self._resolve_conf_penalty()
        self.histories = {name: LossHistory(self.history_length) for name in NETS}
        self.splits: dict[str, Split] = {}  # net k's own division (L^k, w^k)
        self.gmm_means: dict[str, list[float]] = {}
        self.divide_probs: dict[str, np.ndarray] = {}  # p_k(x_i) (N, C) of the co-divide pass
        self._phase: _Phase | None = None
        self._loss_sums: dict[str, list[float]] = {}

    def _resolve_conf_penalty(self) -> bool:
        if self.hp.conf_penalty != "auto":
            return self.hp.conf_penalty == "on"
        noise = self.ctx.noise_name
        return noise is not None and noise not in (*SYMMETRIC_NOISE, "realworld")

    def in_warmup(self, epoch: int | None = None) -> bool:
        return (self.epoch if epoch is None else epoch) < self.warmup_epochs

    # ----- co-divide ----------------------------------------------------------------------
    @torch.no_grad()
    def divide_pass(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-sample CE (N,) and softmax (N, C) of every net, eval mode, un-augmented images."""
        self.eval_mode()
        nets = [self.nets[n] for n in NETS]
        logits = dict(
            zip(NETS, self.train_set_logits(nets, self.hp.divide_batch_size), strict=True)
        )
        self.train_mode()
        y = self.noisy.to(next(iter(logits.values())).device)
        losses = {n: F.cross_entropy(z, y, reduction="none") for n, z in logits.items()}
        return (
            {n: v.cpu().double().numpy() for n, v in losses.items()},
            {n: z.softmax(dim=1).cpu().float().numpy() for n, z in logits.items()},
        )

    def clean_probability(self, name: str, losses: np.ndarray, epoch: int) -> np.ndarray:
        """w (N,) of net ``name`` from its normalised (history-averaged) losses (N,)."""
        k = NETS.index(name)
        post = fit_clean_posterior(losses, gmm_random_state(self.ctx.seed, epoch, k))
        self.gmm_means[name] = [float(m) for m in post.means]
        return post.prob

    def split(self, name: str, w: np.ndarray) -> Split:
        """Labelled / unlabelled division of net ``name`` from its clean probabilities w (N,)."""
        return split_by_threshold(w, self.hp.p_threshold, self.hp.min_labelled_fraction)

    def co_divide(self, epoch: int) -> None:
        """Divide the training set once per net with its current weights (§3.11 step 2)."""
        losses, probs = self.divide_pass()
        self.divide_probs = probs
        for name in NETS:
            normalised = normalise_losses(losses[name], f"dividemix co-divide ({name})")
            averaged = self.histories[name].push(normalised)
            w = self.clean_probability(name, averaged, epoch)
            self.splits[name] = self.split(name, w)

    # ----- training hooks -----------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self._loss_sums = {name: [0.0, 0] for name in NETS}
        if not self.in_warmup(epoch):
            self.co_divide(epoch)

    def epoch_batches(self, epoch: int):
        """Net 1's batches, then net 2's; every batch is trained by ``self._phase.net``.

        Warm-up: a shuffle of all N per net, batch 2B. Later: the labelled set of the peer's
        division, shuffled, batch B (every labelled sample once).
        """
        n, bs, gen = self.ctx.train.num_samples, self.hp.batch_size, self.ctx.generator
        for name in NETS:
            peer = PEER[name]
            if self.in_warmup(epoch):
                self._phase = _Phase(name, peer)
                self.begin_phase(name, None)
                self.nets[name].train()
                yield from covering_batches(torch.randperm(n, generator=gen), 2 * bs)
                continue
            division = self.splits[peer]
            labelled = torch.from_numpy(np.flatnonzero(division.labelled))
            unlabelled = torch.from_numpy(np.flatnonzero(division.unlabelled))
            self._phase = _Phase(
                name,
                peer,
                weights=torch.from_numpy(division.clean_prob).float().to(self.ctx.device),
                iterations=len(labelled) // bs + 1,
            )
            self.begin_phase(name, division)
            batches = covering_batches(self.labelled_order(labelled), bs)
            if len(unlabelled):
                self._phase.unlabelled = UnlabelledCycle(unlabelled, bs, gen)
            self.nets[name].train()
            self.nets[peer].eval()
            for it, idx in enumerate(batches):
                self._phase.iteration = it
                yield idx

    def train_step(self, batch: Batch) -> dict[str, Any]:
        if self._phase is None:
            raise RuntimeError("dividemix: train_step called outside epoch_batches")
        if self.in_warmup():
            stats = self.warmup_step(batch, self._phase.net)
        else:
            stats = self.mixmatch_step(batch, self._phase)
        sums = self._loss_sums[self._phase.net]
        sums[0] += stats["loss"] * len(batch)
        sums[1] += len(batch)
        return stats

    def warmup_step(self, batch: Batch, name: str) -> dict[str, Any]:
        """Mean CE on all samples (+ the confidence penalty mean Σ p log p when on)."""
        net = self.nets[name]
        logits = self.forward(net, batch.x)
        loss = F.cross_entropy(self.train_logits(logits), batch.labels)
        if self.use_conf_penalty:
            log_p = F.log_softmax(self.train_logits(logits), dim=1)
            loss = loss + (log_p.exp() * log_p).sum(dim=1).mean()
        self.backward_step(name, loss, net)
        acc = (logits.argmax(1) == batch.labels).float().mean()
        return {"loss": loss.detach(), "acc_noisy": acc}

    def mixmatch_step(self, batch: Batch, phase: _Phase) -> dict[str, Any]:
        """One MixMatch step of net ``phase.net`` with frozen peer ``phase.peer`` (§3.11.4)."""
        net, peer = self.nets[phase.net], self.nets[phase.peer]
        train, gen, b = self.ctx.train, self.ctx.generator, len(batch)
        x1 = batch.views["weak"]
        x2 = train.view(batch.index, "weak")
        assert phase.weights is not None
        w = phase.weights[batch.index].unsqueeze(1)
        u_idx = phase.unlabelled.next() if phase.unlabelled is not None else None
        if u_idx is not None:
            u_idx = u_idx.to(self.ctx.device)
            u1, u2 = train.view(u_idx, "weak"), train.view(u_idx, "weak")
        with torch.no_grad():
            # the original's order: co-guessing (u) first, then co-refinement (x)
            targets_u = None if u_idx is None else self.co_guess(net, peer, u1, u2)
            targets_x = self.co_refine(net, x1, x2, batch.labels, w)
        inputs, targets = [x1, x2], [targets_x, targets_x]
        if targets_u is not None:
            inputs += [u1, u2]
            targets += [targets_u, targets_u]
        lam = sample_mixup_lambda(self.hp.alpha, gen)
        all_x, all_t = torch.cat(inputs), torch.cat(targets)
        perm = torch.randperm(len(all_x), generator=gen).to(all_x.device)
        mixed_x, mixed_t = mix(all_x, all_t, lam, perm)
        logits = self.forward(net, mixed_x)
        logits_t = self.train_logits(logits)
        lx = self.labelled_loss(logits_t[: 2 * b], mixed_t[: 2 * b])
        if u_idx is None:
            lu = logits.new_zeros(())
        else:
            lu = self.unlabelled_loss(logits_t[2 * b :], mixed_t[2 * b :])
        ramp = self.hp.lambda_u * linear_rampup(
            self.epoch + phase.iteration / phase.iterations,
            self.warmup_epochs,
            self.rampup_length,
        )
        reg = prior_penalty(logits_t.softmax(dim=1), self.prior(phase.net))
        loss = lx + ramp * lu + reg
        self.backward_step(phase.net, loss, net)
        return {
            "loss": loss.detach(),
            "lx": lx.detach(),
            "lu": lu.detach(),
            "reg": reg.detach(),
            "lambda_u": ramp,
            "lambda_mix": lam,
        }

    # ----- overridable pieces -------------------------------------------------------------
    def begin_phase(self, name: str, division: Split | None) -> None:
        """Net ``name`` is about to be trained on ``division`` (the peer's; None in warm-up)."""

    def labelled_order(self, labelled: torch.Tensor) -> torch.Tensor:
        """The labelled loader's order for one epoch: a seeded shuffle of ``labelled`` (M,)."""
        return labelled[torch.randperm(len(labelled), generator=self.ctx.generator)]

    def train_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) as every training-time softmax sees them (identity; medssl adjusts)."""
        return logits

    def co_refine(
        self,
        net: nn.Module,
        x1: torch.Tensor,
        x2: torch.Tensor,
        labels: torch.Tensor,
        w: torch.Tensor,
    ) -> torch.Tensor:
        """p_x = sharpen(w·e_ỹ + (1 − w)·½[p(x₁) + p(x₂)]); x1, x2 (b, ...), w (b, 1) -> (b, C).

        The net being trained is in train mode (as the original), so its BatchNorm batch and
        running statistics depend on how the views are grouped into forwards (``forwards``).
        """
        p1, p2 = (self.train_logits(z).softmax(dim=1) for z in self.forward_views(net, x1, x2))
        p_mean = (p1 + p2) / 2
        refined = w * one_hot(labels, self.ctx.num_classes) + (1 - w) * p_mean
        return sharpen(refined, self.hp.temperature)

    def co_guess(
        self, net: nn.Module, peer: nn.Module, u1: torch.Tensor, u2: torch.Tensor
    ) -> torch.Tensor:
        """q_u = sharpen(mean softmax of net and peer on u₁ and u₂); (b, ...) -> (b, C).

        Forwards in the original's order: net(u₁), net(u₂), peer(u₁), peer(u₂).
        """
        logits = [*self.forward_views(net, u1, u2), *self.forward_views(peer, u1, u2)]
        p = sum(self.train_logits(z).softmax(dim=1) for z in logits) / 4
        return sharpen(p, self.hp.temperature)

    def forward_views(
        self, net: nn.Module, v1: torch.Tensor, v2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Float logits (b, C) of two views (b, ...): one call per view (``forwards: separate``,
        the original) or one call over [v₁; v₂] (``concatenated``)."""
        with self.ctx.autocast():
            if self.hp.forwards == "separate":
                return net(v1).float(), net(v2).float()
            z = net(torch.cat([v1, v2])).float()
        return z[: len(v1)], z[len(v1) :]

    def labelled_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """L_x on the labelled mixed rows: soft CE (or Ref SCE α=β=1 on argmax Y')."""
        if self.hp.lx_loss == "sce_argmax":
            return sce_loss(logits, targets.argmax(dim=1), 1.0, 1.0, 1e-4)
        return soft_cross_entropy(logits, targets)

    def unlabelled_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """L_u on the unlabelled mixed rows (m, C): :func:`unlabelled_mse`."""
        return unlabelled_mse(logits, targets)

    def prior(self, name: str) -> torch.Tensor:
        """π (C,) of the regulariser Σ π log(π / p̄) for net ``name``: uniform."""
        c = self.ctx.num_classes
        return torch.full((c,), 1.0 / c, device=self.ctx.device)

    # ----- epoch end, prediction, diagnostics ---------------------------------------------
    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        out = super().on_epoch_end(epoch)
        out["phase"] = "warmup" if self.in_warmup(epoch) else "semi-supervised"
        out["train_loss_by_net"] = {
            name: float(s) / n if n else None for name, (s, n) in self._loss_sums.items()
        }
        if not self.in_warmup(epoch):
            out["division"] = {
                name: {
                    "n_labelled": int(split.labelled.sum()),
                    "n_unlabelled": int(split.unlabelled.sum()),
                    "fallback": split.fallback,
                    "gmm_means": self.gmm_means.get(name),
                }
                for name, split in self.splits.items()
            }
            out["fallbacks"] = [
                f"{name}: {split.fallback}" for name, split in self.splits.items() if split.fallback
            ]
        self._phase = None
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """net1, net2 and ensemble logits (B, C); the ensemble is (f₁ + f₂)/2, so its argmax is
        argmax(f₁ + f₂) and its softmax is softmax((f₁ + f₂)/2)."""
        f1, f2 = self.forward(self.nets["net1"], x), self.forward(self.nets["net2"], x)
        return {"net1": f1, "net2": f2, "ensemble": (f1 + f2) / 2}

    def selection(self) -> dict[str, Selection] | None:
        """L^k of each net's co-divide, score w^k; every sample is seen. None during warm-up."""
        if not self.splits:
            return None
        return {name: Selection(s.labelled, None, s.clean_prob) for name, s in self.splits.items()}

    def corrected_labels_by_net(self) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
        """§6.3 per net A, on the division (L, U, w) A is trained on (the peer's):
        r = argmax(w·e_ỹ + (1 − w)·p_A) on L, argmax of the two nets' mean softmax on U;
        corrected set P = {r ≠ ỹ}. Returns {net: (P (N,) bool, r (N,) int)}."""
        if not self.splits or not self.divide_probs:
            return None
        c = self.ctx.num_classes
        p_mean = (self.divide_probs["net1"] + self.divide_probs["net2"]) / 2
        out = {}
        for name in NETS:
            division = self.splits[PEER[name]]
            w = division.clean_prob[:, None]
            refined = w * np.eye(c)[self.noisy_np] + (1 - w) * self.divide_probs[name]
            r = np.where(division.labelled, refined.argmax(1), p_mean.argmax(1))
            out[name] = (r != self.noisy_np, r.astype(np.int64))
        return out

    def corrected_labels(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Net 1's §6.3 correction (the engine hook takes one; see corrected_labels_by_net)."""
        by_net = self.corrected_labels_by_net()
        return None if by_net is None else by_net["net1"]

    # ----- checkpointing ------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {
            "histories": {name: h.state_dict() for name, h in self.histories.items()},
            "splits": {
                name: {"labelled": s.labelled, "clean_prob": s.clean_prob, "fallback": s.fallback}
                for name, s in self.splits.items()
            },
            "gmm_means": dict(self.gmm_means),
            "divide_probs": dict(self.divide_probs),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, vectors in state["histories"].items():
            self.histories[name].load_state_dict(vectors)
        self.splits = {
            name: Split(np.asarray(s["labelled"]), np.asarray(s["clean_prob"]), s["fallback"])
            for name, s in state["splits"].items()
        }
        self.gmm_means = dict(state["gmm_means"])
        self.divide_probs = {k: np.asarray(v) for k, v in state["divide_probs"].items()}


__all__ = [
    "DivideMix",
    "DivideMixHparams",
    "prior_penalty",
    "unlabelled_mse",
]
