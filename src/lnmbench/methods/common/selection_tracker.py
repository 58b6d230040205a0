"""Per-epoch bookkeeping of which training samples each net selected (for the LNL diagnostics)."""

from __future__ import annotations

import numpy as np
import torch

from lnmbench.methods.base import Selection


# ----- per-epoch selection bookkeeping -------------------------------------------------------
class SelectionTracker:
    """Selected sets S (one per name) and the seen set over N samples for the current epoch.

    Sets are (N,) bool on the device, reset at each epoch start; scores (N,) float keep each
    sample's latest training-time clean-ness score (so that a sample left out of an epoch still
    has a finite score) and are checkpointed.
    """

    def __init__(self, names: tuple[str, ...], num_samples: int, device: torch.device) -> None:
        self.names = names
        self.seen = torch.zeros(num_samples, dtype=torch.bool, device=device)
        self.selected = {k: torch.zeros_like(self.seen) for k in names}
        self.scores = {k: torch.zeros(num_samples, device=device) for k in names}

    def start_epoch(self) -> None:
        self.seen.zero_()
        for sel in self.selected.values():
            sel.zero_()

    def record(self, index: torch.Tensor, selected: dict[str, torch.Tensor]) -> None:
        """Mark ``index`` (B,) seen and ``index[selected[name]]`` selected for each name."""
        self.seen[index] = True
        for name, positions in selected.items():
            self.selected[name][index[positions]] = True

    def record_scores(self, index: torch.Tensor, scores: dict[str, torch.Tensor]) -> None:
        """Store clean-ness scores (B,) (higher = more likely clean) of the samples ``index``."""
        for name, s in scores.items():
            self.scores[name][index] = s.detach().float()

    def selections(self) -> dict[str, Selection]:
        seen = self.seen.cpu().numpy()
        return {
            k: Selection(
                selected=self.selected[k].cpu().numpy(),
                seen=seen,
                score=self.scores[k].cpu().numpy().astype(np.float64),
            )
            for k in self.names
        }

    def sizes(self) -> dict[str, int]:
        """|S| per name."""
        return {k: int(v.sum()) for k, v in self.selected.items()}

    def sizes_per_class(self, noisy_labels: torch.Tensor, num_classes: int) -> dict[str, list[int]]:
        """|S ∩ {ỹ = c}| per name, a list of C counts; noisy_labels (N,) long."""
        return {
            k: torch.bincount(noisy_labels[v], minlength=num_classes).tolist()
            for k, v in self.selected.items()
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in self.scores.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.scores[k].copy_(v.to(self.scores[k].device))
