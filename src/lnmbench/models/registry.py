"""The model registry and the metadata kept next to each model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from lnmbench.registry import Registry


@dataclass(frozen=True)
class ModelInfo:
    """How to build a backbone, and what it is meant for.

    ``build(num_classes, in_chans)``, plus ``pretrained=`` when ``has_pretrained``.
    """

    build: Callable[..., nn.Module]
    description: str
    input_sizes: str  # human hint, e.g. "28-64 px"
    needs_timm: bool = False
    has_pretrained: bool = False


MODELS: Registry[ModelInfo] = Registry("model")


def register_model(
    name: str,
    description: str,
    input_sizes: str,
    needs_timm: bool = False,
    has_pretrained: bool = False,
):
    """Decorator for a builder ``fn(num_classes, in_chans[, pretrained]) -> nn.Module``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.register(name)(ModelInfo(fn, description, input_sizes, needs_timm, has_pretrained))
        return fn

    return deco
