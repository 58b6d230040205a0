"""The evaluation image transform of a run, shared by the training view and evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lnmbench.data.augment import to_float_normalised


@dataclass(frozen=True)
class ImageTransform:
    """uint8 (B, C, H, W) -> float (B, C, S, S): scaled to [0, 1], normalised by the per-channel
    ``mean`` / ``std``, resized to ``out_size`` (None: kept), in channels-last memory layout when
    ``channels_last`` (CUDA)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    out_size: int | None = None
    channels_last: bool = False

    @classmethod
    def of(
        cls,
        mean: Sequence[float],
        std: Sequence[float],
        out_size: int | None = None,
        channels_last: bool = False,
    ) -> ImageTransform:
        return cls(
            tuple(float(m) for m in mean), tuple(float(s) for s in std), out_size, channels_last
        )

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, S, S) in the memory layout the networks expect."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.layout(to_float_normalised(x, list(self.mean), list(self.std), self.out_size))
