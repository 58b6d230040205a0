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
(:mod:`lnmbench.data.image_decode` decodes, :mod:`lnmbench.data.prepared_cache` opens the result.)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pooch

from lnmbench.atomic_files import atomic_write_text
from lnmbench.data.image_decode import (
    RESIZE_MODES,
    DecodeJob,
    ResizeMode,
    bounded_map,
    progress_bar,
)
from lnmbench.data.label_tables import DatasetSource, LabelTable
from lnmbench.data.prepared_cache import (
    FORMAT_VERSION,
    MANIFEST,
    read_manifest,
)
from lnmbench.data.splits import SPLITS
from lnmbench.errors import ConfigError, DatasetError

CHUNK = 16  # images per task handed to a worker thread
MAX_LISTED = 50  # bad images named in the error message; all are in bad_images.txt


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
        "csv_sha256": {
            str(p.relative_to(source.root)): pooch.file_hash(str(p), alg="sha256")
            for p in source.csv_files
        },
    }


def _write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1))


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
    job = DecodeJob(size, c_in, resize, fast_decode, hash_images)
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
            progress_bar(total, progress) as advance,
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
                decoded = bounded_map(
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
