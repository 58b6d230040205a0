"""A small, fast CNN for CPU runs at 28-64 px."""

from __future__ import annotations

import torch
from torch import nn

from lnmbench.models.registry import register_model


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Three conv stages (width w, 2w, 4w) with max-pooling, global average pool, linear head.

    Input (B, in_chans, H, W) float; output logits (B, num_classes).
    """

    def __init__(self, num_classes: int, in_chans: int = 3, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(in_chans, width),
            nn.MaxPool2d(2),
            _block(width, 2 * width),
            nn.MaxPool2d(2),
            _block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@register_model("cnn", "small 3-stage CNN, width 16 (73 k parameters), fast on CPU", "28-64 px")
def build_cnn(num_classes: int, in_chans: int) -> nn.Module:
    return SmallCNN(num_classes, in_chans, width=16)


@register_model("cnn-wide", "3-stage CNN, width 32 (0.29 M parameters)", "28-64 px")
def build_cnn_wide(num_classes: int, in_chans: int) -> nn.Module:
    return SmallCNN(num_classes, in_chans, width=32)


@register_model("cnn-tiny", "tiny CNN (width 8) for tests", "28-64 px")
def build_cnn_tiny(num_classes: int, in_chans: int) -> nn.Module:
    return SmallCNN(num_classes, in_chans, width=8)
