"""Decoding of source images for ``lnmbench prepare``: open, 8-bit, resize to a square (crop, pad
or stretch; JPEG DCT-scaled draft decoding), in a bounded thread pool, with a progress bar.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

from lnmbench.progress import eta_progress

RESIZE_MODES = ("crop", "pad", "stretch")

ResizeMode = Literal["crop", "pad", "stretch"]


def _to_8bit(im: Image.Image) -> Image.Image:
    """16/32-bit integer greyscale -> 8 bit (high byte); other modes unchanged."""
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im).astype(np.int64)
        shift = 8 if arr.max(initial=0) > 255 else 0
        return Image.fromarray((np.clip(arr, 0, 65535) >> shift).astype(np.uint8), mode="L")
    return im


def _draft_request(w: int, h: int, size: int, resize: ResizeMode) -> tuple[int, int]:
    """The smallest decode size (w', h') whose scale still gives ``size`` px where it matters."""
    if resize == "stretch":
        return size, size
    side = min(w, h) if resize == "crop" else max(w, h)
    return max(1, -(-w * size // side)), max(1, -(-h * size // side))


def decode_image_bytes(
    data: bytes,
    size: int,
    in_chans: int,
    resize: ResizeMode = "crop",
    fast_decode: bool = True,
) -> np.ndarray:
    """Encoded image bytes -> uint8 (in_chans, size, size) (see the module docstring)."""
    mode = "RGB" if in_chans == 3 else "L"
    with Image.open(io.BytesIO(data)) as im:
        if fast_decode and im.format == "JPEG":
            im.draft(im.mode, _draft_request(*im.size, size, resize))
        im.load()
        img = _to_8bit(im).convert(mode)
    target = (size, size)
    if resize == "crop":
        img = ImageOps.fit(img, target, method=Image.Resampling.BILINEAR)
    elif resize == "pad":
        img = ImageOps.pad(img, target, method=Image.Resampling.BILINEAR, color=0)
    else:
        img = img.resize(target, Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def decode_image(
    path: str | Path,
    size: int,
    in_chans: int,
    resize: ResizeMode = "crop",
    fast_decode: bool = True,
) -> np.ndarray:
    """Image file -> uint8 (in_chans, size, size), exactly as stored in a prepared cache."""
    return decode_image_bytes(Path(path).read_bytes(), size, in_chans, resize, fast_decode)


@dataclass(frozen=True)
class DecodeJob:
    size: int
    in_chans: int
    resize: ResizeMode
    fast_decode: bool
    hash_images: bool

    def __call__(self, paths: list[Path]) -> list[tuple[np.ndarray | None, str | None, str]]:
        """For each path: (image (C, S, S) or None, error or None, sha256 or "")."""
        out: list[tuple[np.ndarray | None, str | None, str]] = []
        for p in paths:
            try:
                data = p.read_bytes()
            except OSError as exc:
                out.append((None, f"unreadable: {exc.strerror or exc}", ""))
                continue
            sha = hashlib.sha256(data).hexdigest() if self.hash_images else ""
            try:
                img = decode_image_bytes(
                    data, self.size, self.in_chans, self.resize, self.fast_decode
                )
            except Exception as exc:  # Pillow raises many types for corrupt files
                out.append((None, f"corrupt: {type(exc).__name__}: {exc}", sha))
                continue
            out.append((img, None, sha))
        return out


def bounded_map(
    pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Iterable[Any], window: int
) -> Iterator[Any]:
    """``pool.map`` in order, with at most ``window`` tasks in flight (bounded memory)."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    """A rich progress bar (images, rate, ETA); a no-op callable when disabled."""
    if not enabled:
        yield lambda n, split: None
        return
    bar = eta_progress("[bold]decoding {task.fields[split]}", "{task.fields[rate]}")
    task = bar.add_task("decode", total=total, split="", rate="")
    t0 = time.perf_counter()
    done = 0

    def advance(n: int, split: str) -> None:
        nonlocal done
        done += n
        rate = f"{done / max(time.perf_counter() - t0, 1e-9):.0f} img/s"
        bar.update(task, advance=n, split=split, rate=rate)

    with bar:
        yield advance
