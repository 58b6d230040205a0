"""Noisy-label container, the noise-generator registry and the cached entry point (§4, §4.9)."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lnmbench.atomic_files import atomic_write
from lnmbench.errors import ConfigError
from lnmbench.metrics.diagnostics import empirical_transition_matrix
from lnmbench.registry import Registry

# gen(clean, num_classes, rate, seed, *, images=None, **params) -> (noisy (N,) int64, extra dict)
NoiseGenerator = Callable[..., tuple[np.ndarray, dict]]

NOISE: Registry[NoiseGenerator] = Registry("noise generator")

# keyword-only arguments of a generator that are supplied by make_noisy_labels, not by params
RESERVED_KWARGS = ("images", "cache_dir")
CACHE_VERSION = 1
_INLINE_ARRAY_MAX = 1024  # arrays up to this size are written into params as lists, else a digest


@dataclass(frozen=True)
class GeneratorInfo:
    """How ``make_noisy_labels`` treats a generator.

    rate: "required" (a float in [0, 1)), "optional" (may be None) or "ignored" (forced to None).
    uses_images: the images/features enter the draw, so their hash enters the cache key.
    needs_clean: clean labels are required (only real-world noise may lack them).
    cacheable: labels are written to / read from ``cache_dir``.
    takes_cache_dir: the generator receives ``cache_dir=`` for its own intermediate caches.
    """

    rate: Literal["required", "optional", "ignored"] = "required"
    uses_images: bool = False
    needs_clean: bool = True
    cacheable: bool = True
    takes_cache_dir: bool = False


GENERATOR_INFO: dict[str, GeneratorInfo] = {}


def register_noise(name: str, **info: Any) -> Callable[[NoiseGenerator], NoiseGenerator]:
    """Decorator: register a generator in ``NOISE`` with its :class:`GeneratorInfo`."""

    def deco(fn: NoiseGenerator) -> NoiseGenerator:
        NOISE.register(name)(fn)
        GENERATOR_INFO[name] = GeneratorInfo(**info)
        return fn

    return deco


# --------------------------------------------------------------------------- hashing / JSON


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and little-endian C-order bytes (machine independent)."""
    a = np.asarray(arr)
    if a.dtype.kind in "iubf":
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def labels_sha256(labels: np.ndarray) -> str:
    """SHA-256 hex of a label vector as int64 little-endian bytes (the §4.9 label hash)."""
    a = np.ascontiguousarray(np.asarray(labels, dtype="<i8"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def json_for_cache_key(value: Any) -> Any:
    """Convert params/extra to JSON types for cache keys and cache files: numpy scalars to
    Python, small arrays to lists, large arrays to ``{"sha256", "shape", "dtype"}``; non-finite
    floats to None."""
    if isinstance(value, Mapping):
        return {str(k): json_for_cache_key(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.size <= _INLINE_ARRAY_MAX:
            return json_for_cache_key(value.tolist())
        return {
            "sha256": array_sha256(value),
            "shape": list(value.shape),
            "dtype": str(value.dtype),
        }
    if isinstance(value, list | tuple):
        return [json_for_cache_key(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _canonical_json(obj: Any) -> str:
    return json.dumps(
        json_for_cache_key(obj), sort_keys=True, separators=(",", ":"), allow_nan=False
    )


# --------------------------------------------------------------------------- validation


def check_labels(labels: Any, num_classes: int, what: str) -> np.ndarray:
    """Validate a label vector: 1-D, integer-valued, non-empty, in [0, C). Returns (N,) int64."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ConfigError(f"{what} labels must be a 1-D vector, got shape {arr.shape}")
    if arr.size == 0:
        raise ConfigError(f"{what} labels are empty")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ConfigError(f"{what} labels must be integers, got non-integer floats")
    elif arr.dtype.kind not in "iub":
        raise ConfigError(f"{what} labels must be integers, got dtype {arr.dtype}")
    bad = np.flatnonzero((arr < 0) | (arr >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise ConfigError(
            f"{what} labels outside [0, {num_classes}): {bad.size} value(s), "
            f"first {arr[i].item()!r} at index {i}"
        )
    return arr.astype(np.int64)


def check_transition_matrix(matrix: Any, num_classes: int) -> np.ndarray:
    """Validate a transition matrix: (C, C), finite, non-negative, rows sum to 1 within 1e-6.

    Returns the (C, C) float64 matrix. Errors name the offending entry or row and its sum.
    """
    try:
        t = np.array(matrix, dtype=np.float64)  # a copy: callers may renormalise it
    except (TypeError, ValueError):
        raise ConfigError("transition matrix must be a (C, C) array of numbers") from None
    if t.shape != (num_classes, num_classes):
        raise ConfigError(
            f"transition matrix must have shape ({num_classes}, {num_classes}), got {t.shape}"
        )
    if not np.all(np.isfinite(t)):
        i, j = np.argwhere(~np.isfinite(t))[0]
        raise ConfigError(f"transition matrix entry [{i}, {j}] is not finite: {t[i, j]}")
    if np.any(t < 0):
        i, j = np.argwhere(t < 0)[0]
        raise ConfigError(f"transition matrix entry [{i}, {j}] is negative: {t[i, j]}")
    sums = t.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        i = int(bad[0])
        raise ConfigError(
            f"transition matrix row {i} sums to {sums[i]:.8g}, not 1 (tolerance 1e-6)"
        )
    return t


def _check_rate(rate: Any) -> float:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ConfigError(f"noise rate must be a number in [0, 1), got {rate!r}") from None
    if not (math.isfinite(r) and 0.0 <= r < 1.0):
        raise ConfigError(f"noise rate must be in [0, 1), got {rate!r}")
    return r


def accepted_params(name: str) -> dict[str, Any]:
    """The parameters generator ``name`` accepts, with their defaults."""
    sig = inspect.signature(NOISE.get(name))
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in RESERVED_KWARGS
    }


def _resolve_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- container


@dataclass
class NoisyLabels:
    """Noisy labels of one split plus everything §4.9 asks to report.

    noisy, clean: (N,) int64 (clean None when unknown); params and extra are JSON-able.
    """

    noisy: np.ndarray
    clean: np.ndarray | None
    num_classes: int
    generator: str
    rate: float | None
    seed: int
    params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    cache_key: str | None = None  # SHA-256 of the canonical cache-key JSON

    @property
    def realised_rate(self) -> float:
        """mean(ỹ ≠ y); nan when clean labels are unknown."""
        if self.clean is None:
            return math.nan
        return float(np.mean(self.noisy != self.clean))

    @property
    def transition_counts(self) -> np.ndarray | None:
        """(C, C) int64 counts #{y = i, ỹ = j}; rows = clean class. None without clean labels."""
        if self.clean is None:
            return None
        return empirical_transition_matrix(self.clean, self.noisy, self.num_classes)[1]

    @property
    def transition_matrix(self) -> np.ndarray | None:
        """(C, C) float64 row-normalised T̃; rows of absent classes all nan. None without clean."""
        if self.clean is None:
            return None
        return empirical_transition_matrix(self.clean, self.noisy, self.num_classes)[0]

    @property
    def per_class_flip_rate(self) -> np.ndarray | None:
        """(C,) 1 − T̃_ii (nan for absent classes). None without clean labels."""
        t = self.transition_matrix
        return None if t is None else 1.0 - np.diag(t)

    @property
    def unlearnable_classes(self) -> list[int] | None:
        """Present classes whose row has T̃_ii ≤ max_{j≠i} T̃_ij. None without clean labels."""
        t = self.transition_matrix
        if t is None:
            return None
        off = np.where(np.eye(self.num_classes, dtype=bool), -np.inf, t)
        present = ~np.isnan(t).all(axis=1)
        return [int(i) for i in np.flatnonzero(present & (np.diag(t) <= off.max(axis=1)))]

    @property
    def sha256(self) -> str:
        """SHA-256 hex of the noisy label vector (int64 little-endian bytes)."""
        return labels_sha256(self.noisy)

    def report(self) -> dict:
        """JSON-serialisable §4.9 report (nan -> None; clean-label items None when unknown)."""
        c = self.num_classes
        counts = self.transition_counts
        flip = self.per_class_flip_rate
        t = self.transition_matrix
        return json_for_cache_key(
            {
                "generator": self.generator,
                "rate": self.rate,
                "params": self.params,
                "seed": self.seed,
                "num_classes": c,
                "num_samples": int(self.noisy.size),
                "cache_key": self.cache_key,
                "realised_rate": self.realised_rate,
                "per_class_flip_rate": None if flip is None else flip.tolist(),
                "transition_matrix": None if t is None else t.tolist(),
                "transition_counts": None if counts is None else counts.tolist(),
                "clean_class_counts": None
                if self.clean is None
                else np.bincount(self.clean, minlength=c).tolist(),
                "noisy_class_counts": np.bincount(self.noisy, minlength=c).tolist(),
                "unlearnable_classes": self.unlearnable_classes,
                "sha256": self.sha256,
                "extra": self.extra,
            }
        )


# --------------------------------------------------------------------------- cache


def _cache_load(path: Path, key_json: str, num_classes: int, n: int) -> tuple[np.ndarray, dict]:
    """Read a cached (noisy, extra); raises OSError/ValueError/KeyError on a bad file."""
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != key_json:
            raise ValueError("cache key mismatch")
        noisy = np.asarray(z["noisy"], dtype=np.int64)
        extra = json.loads(str(z["extra"]))
    if noisy.shape != (n,) or noisy.min() < 0 or noisy.max() >= num_classes:
        raise ValueError("cached labels do not fit the split")
    return noisy, extra


def save_npz_atomic(path: Path, **arrays: Any) -> None:
    """Write an .npz atomically (:func:`lnmbench.atomic_files.atomic_write`)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(path, write)


# --------------------------------------------------------------------------- entry point


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
    gen = NOISE.get(name)
    info = GENERATOR_INFO[name]
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
        rate = _check_rate(rate)
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
    resolved = _resolve_params(name, params)
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
    key_json = _canonical_json(key)
    key_hash = hashlib.sha256(key_json.encode()).hexdigest()

    path = None
    if cache_dir is not None and info.cacheable and clean_arr is not None:
        path = Path(cache_dir) / f"{name}-{key_hash[:16]}.npz"
        if path.exists():
            try:
                noisy, extra = _cache_load(path, key_json, num_classes, clean_arr.size)
            except (OSError, ValueError, KeyError):
                pass  # unreadable or stale: regenerate and overwrite
            else:
                return NoisyLabels(
                    noisy, clean_arr, num_classes, name, rate, seed, json_params, extra, key_hash
                )

    kwargs = dict(resolved)
    if info.takes_cache_dir:
        kwargs["cache_dir"] = None if cache_dir is None else Path(cache_dir)
    noisy, extra = gen(clean_arr, num_classes, rate, seed, images=images, **kwargs)
    noisy = check_labels(noisy, num_classes, "generated noisy")
    extra = json_for_cache_key(extra)
    if path is not None:
        save_npz_atomic(path, noisy=noisy, extra=np.str_(_canonical_json(extra)), key=key_json)
    return NoisyLabels(
        noisy, clean_arr, num_classes, name, rate, seed, json_params, extra, key_hash
    )
