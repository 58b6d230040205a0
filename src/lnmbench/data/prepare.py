"""Prepare a CSV image dataset once into a memory-mapped uint8 cache; open it in milliseconds.

``prepare_source(source, out_dir, size=...)`` decodes every image of a :class:`DatasetSource` in a
thread pool (Pillow releases the GIL while decoding and resampling), resizes it to a square of
``size`` px and writes, per split, ``<split>_images.npy`` of shape (N, C, S, S) uint8, plus
``labels.npz`` (labels, noisy labels, image names and CSV line numbers per split),
``images_sha256.tsv`` (one hash per source image, when hashing is on) and ``manifest.json``,
written last: its presence means the cache is complete.

Aspect handling (``resize``): ``crop`` (default) scales the shorter side to S and keeps the centre
square (torchvision ``Resize(S)`` + ``CenterCrop(S)``; on fundus photographs it trims the black
side margins); ``pad`` scales the longer side to S and pads the rest with black (nothing is lost);
``stretch`` resizes to S x S ignoring the aspect ratio. Resampling is Pillow bilinear with
antialiasing (the torchvision ``Resize`` default). With ``fast_decode`` (default) JPEGs are decoded
at a reduced DCT scale (1/2, 1/4 or 1/8) that still leaves at least S px on the side that sets the
scale, which is several times faster for large photographs; ``fast_decode=False`` decodes at full
resolution (pixel-exact to ``ImageOps.fit(Image.open(p).convert(mode), (S, S), BILINEAR)``).
16-bit greyscale images are reduced to 8 bit by dropping the low byte.

Unreadable or missing images: without ``skip_bad`` all of them are listed in one DatasetError after
the pass (nothing is written); with it, they are skipped, counted and listed in the manifest.

:func:`open_prepared` maps the cache with ``np.load(mmap_mode="c")`` (copy-on-write, so the tensor
is writable without touching the file) and ``torch.from_numpy`` (no copy). ``extra["memmap"]`` is
True when the cache's images exceed :data:`MEMMAP_THRESHOLD_BYTES` (4 GiB): the engine then keeps
them on the CPU and streams batches to the device; smaller caches are copied to the device whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, ImageOps

from lnmbench.atomic_files import atomic_write_text
from lnmbench.data.csv_dataset import DatasetSource, LabelTable, sha256_file
from lnmbench.data.splits import SPLITS, ArraySplit, Dataset, DatasetInfo
from lnmbench.errors import ConfigError, DatasetError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RESIZE_MODES = ("crop", "pad", "stretch")
MEMMAP_THRESHOLD_BYTES = 4 * 1024**3
CHUNK = 16  # images per task handed to a worker thread
MAX_LISTED = 50  # bad images named in the error message; all are in bad_images.txt

ResizeMode = Literal["crop", "pad", "stretch"]


def prepared_dir(data_dir: str | Path, name: str, size: int) -> Path:
    """The cache folder of ``name`` at ``size`` px: ``<data_dir>/prepared/<name>/<size>px``."""
    return Path(data_dir) / "prepared" / name / f"{size}px"


# --------------------------------------------------------------------------- decoding


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
class _DecodeJob:
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


def _bounded_map(
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


# --------------------------------------------------------------------------- progress


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    """A rich progress bar (images, rate, ETA); a no-op callable when disabled."""
    if not enabled:
        yield lambda n, split: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]decoding {task.fields[split]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=True,
    )
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


# --------------------------------------------------------------------------- preparation


@dataclass
class _SplitResult:
    table: LabelTable
    bad: list[dict[str, Any]] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)


def _cache_key(source: DatasetSource, size: int, resize: str, fast_decode: bool) -> dict:
    return {
        "dataset": source.info.name,
        "size": size,
        "resize": resize,
        "resample": "bilinear",
        "fast_decode": fast_decode,
        "in_chans": source.info.in_chans,
        "settings": source.settings,
        "csv_sha256": {str(p.relative_to(source.root)): sha256_file(p) for p in source.csv_files},
    }


def _write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1))


def read_manifest(cache_dir: Path) -> dict | None:
    path = Path(cache_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"{path} is unreadable ({exc}); delete the folder and prepare again"
        ) from None


def _class_counts(labels: np.ndarray | None, c: int) -> list[int] | None:
    return None if labels is None else np.bincount(labels, minlength=c).tolist()


def _bad_error(bad: list[dict[str, Any]], out_dir: Path) -> DatasetError:
    lines = [f"{b['split']}\t{b['csv']}:{b['line']}\t{b['image']}\t{b['reason']}" for b in bad]
    listing = out_dir / "bad_images.txt"
    listing.write_text("split\tcsv:line\timage\treason\n" + "\n".join(lines) + "\n")
    shown = "\n  ".join(
        f"{b['image']} ({b['reason']}; {b['split']}, {Path(b['csv']).name} line {b['line']})"
        for b in bad[:MAX_LISTED]
    )
    more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return DatasetError(
        f"{len(bad)} image(s) are missing or unreadable:\n  {shown}{more}\n"
        f"(full list: {listing}). Fix or remove them, or pass --skip-bad to skip them "
        "(they are then counted and listed in the manifest)."
    )


def prepare_source(
    source: DatasetSource,
    out_dir: str | Path,
    *,
    size: int = 224,
    resize: ResizeMode = "crop",
    workers: int | None = None,
    skip_bad: bool = False,
    hash_images: bool = True,
    fast_decode: bool = True,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Decode, resize and cache every image of ``source`` under ``out_dir``; return the manifest.

    An up-to-date cache (same files, CSV checksums and settings) is reused; one prepared with
    different settings is refused unless ``force``.
    """
    if resize not in RESIZE_MODES:
        raise ConfigError(f"unknown resize mode {resize!r}; known: {', '.join(RESIZE_MODES)}")
    if size < 8:
        raise ConfigError(f"image size must be at least 8 px, got {size}")
    empty = [s for s in SPLITS if len(source.tables[s]) == 0]
    if empty:
        raise DatasetError(f"split(s) {', '.join(empty)} have no rows after reading the CSV files")
    out_dir = Path(out_dir)
    key = _cache_key(source, size, resize, fast_decode)
    old = read_manifest(out_dir)
    if old is not None and not force:
        if old.get("key") == key and old.get("format_version") == FORMAT_VERSION:
            return {**old, "reused": True}
        diff = sorted(k for k in key if old.get("key", {}).get(k) != key[k])
        raise DatasetError(
            f"{out_dir} holds a cache prepared with different settings or files (differs in: "
            f"{', '.join(diff) or 'format'}); pass --force to replace it, or choose another "
            "--data-dir / --out"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (MANIFEST, "bad_images.txt", "images_sha256.tsv", "labels.npz"):
        (out_dir / stale).unlink(missing_ok=True)

    info = source.info
    c_in = info.in_chans
    job = _DecodeJob(size, c_in, resize, fast_decode, hash_images)
    n_workers = max(1, workers or min(32, os.cpu_count() or 1))
    total = sum(len(t) for t in source.tables.values())
    t0 = time.perf_counter()
    results: dict[str, _SplitResult] = {}
    partial: dict[str, Path] = {}
    sums = np.zeros(c_in, np.float64)
    sq_sums = np.zeros(c_in, np.float64)
    n_px = 0
    try:
        with (
            _progress_bar(total, progress) as advance,
            ThreadPoolExecutor(n_workers, thread_name_prefix="lnmbench-decode") as pool,
        ):
            for split in SPLITS:
                table = source.tables[split]
                n = len(table)
                partial[split] = out_dir / f".{split}_images.npy.partial"
                mm = np.lib.format.open_memmap(
                    partial[split], mode="w+", dtype=np.uint8, shape=(n, c_in, size, size)
                )
                res = _SplitResult(table, hashes=[""] * n)
                present = [i for i in range(n) if table.images[i].is_file()]
                for i in sorted(set(range(n)) - set(present)):
                    res.bad.append(_bad_entry(split, table, i, "missing"))
                chunks = [present[k : k + CHUNK] for k in range(0, len(present), CHUNK)]
                decoded = _bounded_map(
                    pool, job, ([table.images[i] for i in ch] for ch in chunks), 4 * n_workers
                )
                for chunk, outs in zip(chunks, decoded, strict=True):
                    for i, (img, err, sha) in zip(chunk, outs, strict=True):
                        res.hashes[i] = sha
                        if err is not None:
                            res.bad.append(_bad_entry(split, table, i, err))
                            continue
                        mm[i] = img
                        if split == "train":
                            flat = img.reshape(c_in, -1)
                            sums += flat.sum(axis=1, dtype=np.float64)
                            sq_sums += np.einsum("cp,cp->c", flat, flat, dtype=np.float64)
                            n_px += flat.shape[1]
                    advance(len(chunk), split)
                advance(n - len(present), split)
                mm.flush()
                del mm
                res.bad.sort(key=lambda b: b["index"])
                results[split] = res
        decode_s = time.perf_counter() - t0
        bad = [b for r in results.values() for b in r.bad]
        if bad and not skip_bad:
            raise _bad_error(bad, out_dir)
        counts = {}
        for split, res in results.items():
            final = out_dir / f"{split}_images.npy"
            if res.bad:
                keep = np.ones(len(res.table), dtype=bool)
                keep[[b["index"] for b in res.bad]] = False
                _compact(partial[split], final, np.flatnonzero(keep))
                partial[split].unlink()
                res.table = res.table.take(keep)
                res.hashes = [h for h, k in zip(res.hashes, keep, strict=True) if k]
            else:
                os.replace(partial[split], final)
            counts[split] = len(res.table)
            if counts[split] == 0:
                raise DatasetError(f"split {split} has no usable image left")
    finally:
        for p in partial.values():
            p.unlink(missing_ok=True)

    c = info.num_classes
    arrays: dict[str, np.ndarray] = {}
    split_info: dict[str, Any] = {}
    for split, res in results.items():
        t = res.table
        labels = t.reference if t.reference is not None else t.noisy
        arrays[f"{split}_labels"] = labels
        if t.noisy is not None and split != "test":
            arrays[f"{split}_noisy"] = t.noisy
        arrays[f"{split}_names"] = np.asarray(t.names, dtype=str)
        arrays[f"{split}_lines"] = t.lines.astype(np.int64)
        both = t.noisy is not None and t.reference is not None
        split_info[split] = {
            "count": len(t),
            "csv": os.path.relpath(t.csv, source.root),
            "labels_from": source.labels.get(split, {}),
            "clean_known": t.reference is not None,
            "label_counts": _class_counts(labels, c),
            "noisy_counts": _class_counts(t.noisy, c) if split != "test" else None,
            "realised_noise_rate": float(np.mean(t.noisy != t.reference)) if both else None,
            "dropped_before_decoding": source.dropped.get(split, {}),
            "skipped_bad_images": len(res.bad),
            "images_sha256": hashlib.sha256("".join(res.hashes).encode()).hexdigest()
            if hash_images
            else None,
        }
    np.savez(out_dir / "labels.npz", **arrays)
    if hash_images:
        with open(out_dir / "images_sha256.tsv", "w") as fh:
            fh.write("split\timage\tsha256\n")
            for split, res in results.items():
                for name, h in zip(res.table.names, res.hashes, strict=True):
                    fh.write(f"{split}\t{name}\t{h}\n")
    mean = sums / max(n_px, 1) / 255.0
    var = sq_sums / max(n_px, 1) / 255.0**2 - mean**2
    std = np.sqrt(np.clip(var, 0.0, None)).clip(min=1e-3)
    image_bytes = sum(counts.values()) * c_in * size * size
    manifest = {
        "format_version": FORMAT_VERSION,
        "key": key,
        "info": {**asdict(info), "class_names": list(info.class_names)},
        "root": str(source.root.resolve()),
        "image_shape": [c_in, size, size],
        "image_bytes": image_bytes,
        "class_mapping": source.class_mapping,
        "splits": split_info,
        "skipped": [{k: v for k, v in b.items() if k != "index"} for b in bad],
        "split_overlap": _overlap({s: r.table.names for s, r in results.items()}),
        "channel_stats": {"mean": mean.tolist(), "std": std.tolist()},
        "notes": source.notes,
        "hash_images": hash_images,
        "workers": n_workers,
        "decode_seconds": round(decode_s, 3),
        "images_per_second": round(total / max(decode_s, 1e-9), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_json_atomic(out_dir / MANIFEST, manifest)
    return {**manifest, "reused": False}


def _bad_entry(split: str, table: LabelTable, i: int, reason: str) -> dict[str, Any]:
    return {
        "split": split,
        "index": i,
        "csv": table.csv,
        "line": int(table.lines[i]),
        "image": str(table.images[i]),
        "reason": reason,
    }


def _overlap(names: dict[str, list[str]]) -> dict[str, int]:
    """Images named in two splits (a leak between them), counted per pair; only non-zero pairs."""
    out = {}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        n = len(set(names[a]) & set(names[b]))
        if n:
            out[f"{a}/{b}"] = n
    return out


def _compact(src: Path, dst: Path, keep: np.ndarray, block: int = 256) -> None:
    """Copy rows ``keep`` of the .npy ``src`` into a new .npy ``dst`` (block by block)."""
    old = np.load(src, mmap_mode="r")
    new = np.lib.format.open_memmap(
        dst, mode="w+", dtype=old.dtype, shape=(len(keep), *old.shape[1:])
    )
    for k in range(0, len(keep), block):
        new[k : k + block] = old[keep[k : k + block]]
    new.flush()
    del new, old


# --------------------------------------------------------------------------- opening


@dataclass
class PreparedDataset(Dataset):
    """A dataset opened from a prepared cache; channel statistics come from the manifest."""

    stored_channel_stats: tuple[list[float], list[float]] | None = None

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of all training images in [0, 1] (computed when prepared)."""
        if self.stored_channel_stats is not None:
            return self.stored_channel_stats
        return super().channel_stats()


def open_prepared(cache_dir: str | Path, memmap: bool | None = None) -> PreparedDataset:
    """Open a prepared cache (a folder with ``manifest.json``, or that file) as a Dataset.

    ``memmap`` None: decided by size (:data:`MEMMAP_THRESHOLD_BYTES`), see the module docstring.
    Splits without clean labels carry their noisy labels as ``labels`` and
    ``extra["clean_known"][split]`` False.
    """
    cache_dir = Path(cache_dir)
    if cache_dir.name == MANIFEST:
        cache_dir = cache_dir.parent
    manifest = read_manifest(cache_dir)
    if manifest is None:
        raise DatasetError(f"{cache_dir} holds no prepared dataset ({MANIFEST} not found)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{cache_dir} was prepared by an incompatible version (format "
            f"{manifest.get('format_version')}, expected {FORMAT_VERSION}); prepare it again"
        )
    shape = tuple(manifest["image_shape"])
    try:
        labels = dict(np.load(cache_dir / "labels.npz"))
        splits = {}
        for s in SPLITS:
            images = np.load(cache_dir / f"{s}_images.npy", mmap_mode="c")
            n = manifest["splits"][s]["count"]
            if images.shape != (n, *shape) or images.dtype != np.uint8:
                raise ValueError(f"{s}_images.npy has {images.dtype} {images.shape}")
            noisy = labels.get(f"{s}_noisy")
            splits[s] = ArraySplit(
                torch.from_numpy(images),
                torch.from_numpy(labels[f"{s}_labels"].astype(np.int64)),
                None if noisy is None else torch.from_numpy(noisy.astype(np.int64)),
            )
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(
            f"the prepared cache {cache_dir} is incomplete or corrupt ({type(exc).__name__}: "
            f"{exc}); prepare it again with --force"
        ) from None
    info = DatasetInfo(
        **{**manifest["info"], "class_names": tuple(manifest["info"]["class_names"])}
    )
    big = manifest["image_bytes"] > MEMMAP_THRESHOLD_BYTES
    stats = manifest["channel_stats"]
    extra = {
        "path": str(cache_dir),
        "manifest": str(cache_dir / MANIFEST),
        "clean_known": {s: manifest["splits"][s]["clean_known"] for s in SPLITS},
        "memmap": big if memmap is None else memmap,
        "notes": manifest.get("notes", {}),
        "names": {s: labels[f"{s}_names"] for s in SPLITS},
    }
    return PreparedDataset(info, splits, extra, (stats["mean"], stats["std"]))
