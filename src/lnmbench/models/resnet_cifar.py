"""CIFAR-style ResNets (3x3 stem, no max-pool) for 28-64 px inputs (He et al., 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lnmbench.models.registry import register_model


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet with a 3x3 stride-1 stem: (B, in_chans, H, W) -> logits (B, num_classes).

    ``stem="imagenet"``: the ImageNet stem instead (7x7 stride-2 conv, 3x3 stride-2 max-pool),
    which divides the feature maps by 4 before the first stage (for 112-224 px inputs).
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: list[int],
        num_classes: int,
        in_chans: int = 3,
        stem: str = "cifar",
    ) -> None:
        super().__init__()
        self.cin = 64
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
            self.pool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
            self.pool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(64)
        stages = []
        for i, (planes, n) in enumerate(zip([64, 128, 256, 512], layers, strict=True)):
            strides = [1 if i == 0 else 2] + [1] * (n - 1)
            blocks = []
            for s in strides:
                blocks.append(block(self.cin, planes, s))
                self.cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(self.cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(F.relu(self.bn1(self.conv1(x))))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


@register_model("resnet18", "CIFAR-style ResNet-18 (11 M parameters)", "28-64 px")
def resnet18(num_classes: int, in_chans: int) -> nn.Module:
    return CifarResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_chans)


@register_model(
    "resnet18-imagenet",
    "ResNet-18 with the ImageNet stem (7x7/2 conv + max-pool; 11 M parameters), random init, "
    "no timm needed",
    "112-224 px",
)
def resnet18_imagenet(num_classes: int, in_chans: int) -> nn.Module:
    return CifarResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_chans, stem="imagenet")


@register_model("resnet34", "CIFAR-style ResNet-34 (21 M parameters)", "28-64 px")
def resnet34(num_classes: int, in_chans: int) -> nn.Module:
    return CifarResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_chans)


@register_model("resnet50", "CIFAR-style ResNet-50 (24 M parameters)", "28-64 px")
def resnet50(num_classes: int, in_chans: int) -> nn.Module:
    return CifarResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_chans)
