"""Pre-activation ResNet-18 (He et al., 2016b), the DivideMix/DISC CIFAR backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lnmbench.models.registry import register_model


class PreActBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != planes:
            self.shortcut = nn.Conv2d(cin, planes, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """Input (B, in_chans, H, W) float; output logits (B, num_classes)."""

    def __init__(self, num_classes: int, in_chans: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
        cin, stages = 64, []
        for i, planes in enumerate([64, 128, 256, 512]):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(PreActBlock(cin, planes, stride), PreActBlock(planes, planes))
            )
            cin = planes
        self.layers = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(512)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.conv1(x))
        out = F.relu(self.bn(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model(
    "preact_resnet18", "pre-activation ResNet-18 (DivideMix / DISC backbone)", "28-64 px"
)
def preact_resnet18(num_classes: int, in_chans: int) -> nn.Module:
    return PreActResNet18(num_classes, in_chans)
