"""The cached entry point: noise one split with a registered generator (§4, §4.9)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lnmbench.errors import ConfigError
from lnmbench.noise.cache import (
    CACHE_VERSION,
    array_sha256,
    cache_load,
    canonical_json,
    json_for_cache_key,
    labels_sha256,
    save_npz_atomic,
)
from lnmbench.noise.labels import NoisyLabels, check_labels, check_rate
from lnmbench.noise.registry import NOISE, resolve_params


def make_noisy_labels(
    name: str,
    clean: np.ndarray | None,
    num_classes: int,
    rate: float | None,
    seed: int,
    *,
    images: np.ndarray | None = None,
    params: Mapping[str, Any] | None = None,
    cache_dir: Path | str | None = None,
    cache_key: Mapping[str, Any] | None = None,
) -> NoisyLabels:
    """Noise one split with generator ``name`` and return :class:`NoisyLabels`.

    clean: (N,) int labels in [0, C) (None only for real-world noise without a clean column).
    images: (N, ...) uint8 images or features for instance generators. With ``cache_dir`` the
    labels are cached under a hash of ``cache_key`` (caller: dataset and split) + generator, rate,
    seed, resolved params, clean-label hash and (instance generators) the input hash.
    """
    info = NOISE.get(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    num_classes = int(num_classes)
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    if info.rate == "ignored":
        rate = None
    elif rate is None:
        if info.rate == "required":
            raise ConfigError(f"noise generator {name!r} needs a rate in [0, 1)")
    else:
        rate = check_rate(rate)
    if clean is None:
        if info.needs_clean:
            raise ConfigError(f"noise generator {name!r} needs the clean labels")
        clean_arr = None
    else:
        clean_arr = check_labels(clean, num_classes, "clean")
    if images is not None and clean_arr is not None and len(images) != clean_arr.size:
        raise ConfigError(f"images have {len(images)} rows but there are {clean_arr.size} labels")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ConfigError(f"noise seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    resolved = resolve_params(name, params)
    json_params = json_for_cache_key(resolved)

    key = {
        "version": CACHE_VERSION,
        "key": dict(cache_key or {}),
        "generator": name,
        "num_classes": num_classes,
        "rate": rate,
        "seed": seed,
        "params": json_params,
        "clean_sha256": None if clean_arr is None else labels_sha256(clean_arr),
        "input_sha256": array_sha256(images) if info.uses_images and images is not None else None,
    }
    key_json = canonical_json(key)
    key_hash = hashlib.sha256(key_json.encode()).hexdigest()

    path = None
    if cache_dir is not None and info.cacheable and clean_arr is not None:
        path = Path(cache_dir) / f"{name}-{key_hash[:16]}.npz"
        if path.exists():
            try:
                noisy, extra = cache_load(path, key_json, num_classes, clean_arr.size)
            except (OSError, ValueError, KeyError):
                pass  # unreadable or stale: regenerate and overwrite
            else:
                return NoisyLabels(
                    noisy, clean_arr, num_classes, name, rate, seed, json_params, extra, key_hash
                )

    kwargs = dict(resolved)
    if info.takes_cache_dir:
        kwargs["cache_dir"] = None if cache_dir is None else Path(cache_dir)
    noisy, extra = info.generate(clean_arr, num_classes, rate, seed, images=images, **kwargs)
    noisy = check_labels(noisy, num_classes, "generated noisy")
    extra = json_for_cache_key(extra)
    if path is not None:
        save_npz_atomic(path, noisy=noisy, extra=np.str_(canonical_json(extra)), key=key_json)
    return NoisyLabels(
        noisy, clean_arr, num_classes, name, rate, seed, json_params, extra, key_hash
    )
