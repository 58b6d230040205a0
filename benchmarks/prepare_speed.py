"""Preparation throughput and training-loop data rate of a prepared (memory-mapped) cache.

Generates ``--n`` JPEGs of varied sizes (sides in [--min-side, --max-side]) in the KaggleDR+
layout in a temporary folder, then measures

1. preparation: images/s of ``prepare_source`` (decode + resize + write) with ``--workers``
   threads and JPEG DCT-scaled decoding, plus a 1-worker and an exact-decode run on a subset;
2. the training-loop data rate: gather + augment ("dr", the reference DR/CheXpert training
   augmentation) of random index batches through ``TrainView``, from the memory-mapped cache
   (cold: its pages evicted with ``posix_fadvise(DONTNEED)``; warm: in the page cache) versus
   from an in-memory copy of the same images.

    python benchmarks/prepare_speed.py [--n 5000] [--size 224] [--workers 16] [--device auto]
    python benchmarks/prepare_speed.py --quick      # 300 images: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def fundus_like(seed: int, min_side: int, max_side: int) -> Image.Image:
    """A smooth colour photograph-like JPEG source: low-frequency noise, a bright disc, vessels."""
    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(min_side, max_side + 1, 2))
    coarse = rng.integers(0, 256, (max(2, h // 32), max(2, w // 32), 3), dtype=np.uint8)
    img = Image.fromarray(coarse, "RGB").resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    r = min(w, h) // 6
    cx, cy = int(rng.integers(r, w - r)), int(rng.integers(r, h - r))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(250, 220, 160))
    for _ in range(6):
        pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(4)]
        draw.line(pts, fill=(120, 20, 20), width=max(1, min(w, h) // 150))
    return img


def generate(root: Path, n: int, min_side: int, max_side: int, workers: int) -> float:
    """Write ``n`` JPEGs + labels.csv (KaggleDR+ layout); returns seconds."""
    t0 = time.perf_counter()
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    vote = rng.integers(0, 5, n)
    level = np.where(rng.random(n) < 0.1, (vote + 1) % 5, vote)
    split = np.where(
        np.arange(n) % 10 == 8, "val", np.where(np.arange(n) % 10 == 9, "test", "train")
    )

    def one(i: int) -> None:
        fundus_like(i, min_side, max_side).save(root / "images" / f"{i}_left.jpeg", quality=90)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))
    lines = ["image,level,vote,split"] + [
        f"{i}_left,{level[i]},{vote[i]},{split[i]}" for i in range(n)
    ]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return time.perf_counter() - t0


def evict(paths: list[Path]) -> bool:
    """Drop the files' clean pages from the page cache (no root needed); False if unsupported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def data_rate(images: torch.Tensor, device: torch.device, batch: int, steps: int) -> float:
    """Images/s of gather + "dr" augmentation through TrainView (random batches)."""
    from lnmbench.engine.image_transform import ImageTransform
    from lnmbench.engine.train_view import TrainView

    n = len(images)
    view = TrainView(
        images,
        torch.zeros(n, dtype=torch.long, device=device),
        transform=ImageTransform.of([0.5] * images.shape[1], [0.25] * images.shape[1]),
        train_augment="dr",
        generator=torch.Generator(device=device).manual_seed(0),
        device=device,
    )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    idx = [order[(k * batch) % n :][:batch] for k in range(steps + 2)]
    for i in idx[:2]:  # warm-up (kernels, allocator)
        view.view(i.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    seen = 0
    for i in idx[2:]:
        seen += len(view.view(i.to(device)))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="images to generate (default 5000)")
    ap.add_argument("--size", type=int, default=224, help="cache image side in px")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--min-side", type=int, default=400)
    ap.add_argument("--max-side", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="timed batches per data-rate setting")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="300 images, 6 steps (smoke test)")
    ap.add_argument("--workdir", default=None, help="folder for the images and cache (kept)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args()
    if args.quick:
        args.n, args.steps = 300, 6
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )

    from lnmbench.data.prepare import prepare_source
    from lnmbench.data.prepared_cache import open_prepared
    from lnmbench.data.real_world import KAGGLEDR_PLUS, KaggleDROptions

    work = Path(args.workdir or tempfile.mkdtemp(prefix="lnmbench_prepare_speed_"))
    try:
        src_root = work / "source"
        gen_s = generate(src_root, args.n, args.min_side, args.max_side, args.workers)
        n_bytes = sum(p.stat().st_size for p in (src_root / "images").iterdir())
        print(f"generated {args.n} JPEGs ({n_bytes / 2**20:.0f} MiB) in {gen_s:.1f} s")
        source = KAGGLEDR_PLUS.read(src_root, KaggleDROptions())
        results: dict[str, float | int | str] = {
            "n": args.n,
            "size": args.size,
            "workers": args.workers,
            "device": str(device),
            "source_mib": round(n_bytes / 2**20, 1),
        }
        cache = work / "cache"
        t0 = time.perf_counter()
        m = prepare_source(source, cache, size=args.size, workers=args.workers, force=True)
        results["prepare_img_s"] = round(args.n / (time.perf_counter() - t0), 1)
        results["prepare_decode_img_s"] = m["images_per_second"]

        # the same on a subset: 1 worker (scaling) and exact (full-resolution) decoding
        sub_n = min(args.n, 300)
        sub = KAGGLEDR_PLUS.read(src_root, KaggleDROptions())
        for split, t in sub.tables.items():
            sub.tables[split] = t.take(np.arange(min(len(t), max(1, sub_n * len(t) // args.n))))
        n_sub = sum(len(t) for t in sub.tables.values())
        for label, kw in (
            ("prepare_1_worker_img_s", {"workers": 1}),
            ("prepare_exact_decode_img_s", {"workers": args.workers, "fast_decode": False}),
        ):
            t0 = time.perf_counter()
            prepare_source(sub, work / "cache_sub", size=args.size, force=True, **kw)
            results[label] = round(n_sub / (time.perf_counter() - t0), 1)

        t0 = time.perf_counter()
        ds = open_prepared(cache)
        results["open_ms"] = round(1000 * (time.perf_counter() - t0), 2)
        mapped = ds["train"].images
        in_memory = mapped.clone()
        files = [cache / f"{s}_images.npy" for s in ("train", "val", "test")]
        cold_ok = evict(files)
        results["data_memmap_cold_img_s"] = (
            round(data_rate(mapped, device, args.batch, args.steps), 1) if cold_ok else "n/a"
        )
        results["data_memmap_warm_img_s"] = round(
            data_rate(mapped, device, args.batch, args.steps), 1
        )
        results["data_in_memory_img_s"] = round(
            data_rate(in_memory, device, args.batch, args.steps), 1
        )
        if device.type == "cuda":
            results["data_on_device_img_s"] = round(
                data_rate(in_memory.to(device), device, args.batch, args.steps), 1
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    width = max(map(len, results))
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
