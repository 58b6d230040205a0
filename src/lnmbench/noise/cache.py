"""The noise cache: canonical JSON and SHA-256 keys of generator inputs, the cached .npz."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lnmbench.atomic_files import atomic_write

CACHE_VERSION = 1


_INLINE_ARRAY_MAX = 1024  # arrays up to this size are written into params as lists, else a digest


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


def canonical_json(obj: Any) -> str:
    return json.dumps(
        json_for_cache_key(obj), sort_keys=True, separators=(",", ":"), allow_nan=False
    )


def cache_load(path: Path, key_json: str, num_classes: int, n: int) -> tuple[np.ndarray, dict]:
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
