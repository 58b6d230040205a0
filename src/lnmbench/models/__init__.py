"""Backbones by name: ``create(name, num_classes, in_chans)`` over a decorator registry."""

from __future__ import annotations

from torch import nn

from lnmbench.errors import ConfigError
from lnmbench.models import cnn, preact_resnet, resnet_cifar, timm_models  # noqa: F401  (register)
from lnmbench.models.registry import MODELS, ModelInfo


def create(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    *,
    pretrained: bool = False,
    image_size: int | None = None,
) -> nn.Module:
    """Build backbone ``name``: float (B, in_chans, H, W) -> logits (B, num_classes)."""
    info: ModelInfo = MODELS.get(name)
    if info.has_pretrained:
        return info.build(num_classes=num_classes, in_chans=in_chans, pretrained=pretrained)
    if pretrained:
        peer = f"timm-{name}"
        hint = (
            f"use the ImageNet model {peer!r} (pip install 'lnmbench[timm]') or set "
            "pretrained: false"
            if peer in MODELS
            else "set pretrained: false"
        )
        raise ConfigError(f"model {name!r} has no pretrained weights; {hint}")
    return info.build(num_classes=num_classes, in_chans=in_chans)


def names() -> list[str]:
    return MODELS.names()


__all__ = ["MODELS", "ModelInfo", "create", "names"]
