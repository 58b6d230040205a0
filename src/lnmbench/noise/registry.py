"""The noise-generator registry: each entry is a generator function plus how
:func:`lnmbench.noise.make.make_noisy_labels` treats it (its metadata, next to it)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lnmbench.errors import ConfigError
from lnmbench.registry import Registry

# gen(clean, num_classes, rate, seed, *, images=None, **params) -> (noisy (N,) int64, extra dict)
NoiseGenerator = Callable[..., tuple[np.ndarray, dict]]


# keyword-only arguments of a generator that are supplied by make_noisy_labels, not by params
RESERVED_KWARGS = ("images", "cache_dir")


# split_params(images, labels, num_classes, val_images, params, seed, cache_dir) ->
#   {"train": params, "val": params}: a generator whose parameters differ per split (e.g. a
#   reference classifier fitted on train, applied to val) works them out once for both splits
SplitParams = Callable[..., dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class NoiseEntry:
    """A registered generator and how ``make_noisy_labels`` treats it.

    rate: "required" (a float in [0, 1)), "optional" (may be None) or "ignored" (forced to None).
    uses_images: the images/features enter the draw, so their hash enters the cache key.
    needs_clean: clean labels are required (only real-world noise may lack them).
    cacheable: labels are written to / read from ``cache_dir``.
    takes_cache_dir: the generator receives ``cache_dir=`` for its own intermediate caches.
    split_params: see :data:`SplitParams`; None: both splits use the given parameters.
    """

    generate: NoiseGenerator
    rate: Literal["required", "optional", "ignored"] = "required"
    uses_images: bool = False
    needs_clean: bool = True
    cacheable: bool = True
    takes_cache_dir: bool = False
    split_params: SplitParams | None = None


NOISE: Registry[NoiseEntry] = Registry("noise generator")


def register_noise(name: str, **info: Any) -> Callable[[NoiseGenerator], NoiseGenerator]:
    """Decorator: register a generator in ``NOISE`` with its metadata (:class:`NoiseEntry`)."""

    def deco(fn: NoiseGenerator) -> NoiseGenerator:
        NOISE.register(name)(NoiseEntry(fn, **info))
        return fn

    return deco


def accepted_params(name: str) -> dict[str, Any]:
    """The parameters generator ``name`` accepts, with their defaults."""
    sig = inspect.signature(NOISE.get(name).generate)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in RESERVED_KWARGS
    }


def resolve_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The generator's defaults updated with ``params``; unknown parameter names are refused."""
    defaults = accepted_params(name)
    given = dict(params or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise ConfigError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for noise generator "
            f"{name!r}; accepted: {known}"
        )
    return {**defaults, **given}
