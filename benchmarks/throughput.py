"""Training throughput: a reference-style input pipeline against the lnmbench engine's.

Same model, batch size, optimiser (SGD, lr 0.01, momentum 0.9) and step (forward, cross-entropy,
backward, step) in one process; only the input pipeline differs:

(a) **reference style**, as the LNMBench reference code feeds its models: a torch ``Dataset`` that
    turns each uint8 sample into a PIL image and applies per-sample transforms (resize to
    ``--size``, random horizontal flip, to-tensor, normalise), a ``DataLoader`` with 4 workers
    and pinned memory, and a host-to-device copy per batch (written here, not in the package);
(b) **lnmbench**: the uint8 training images live on the device as one tensor; a batch is
    gathered by index and resized / flipped / normalised in one batched device-side call
    (:class:`lnmbench.data.augment.DeviceAugment`), then the same step.

For each (model, size): training images/s of each pipeline, their ratio, and the share of a step
spent on data (waiting for the loader + the copy in (a); gather + augmentation in (b)), after
``--warmup`` untimed steps. Random initialisation; the images are the bundled demo set
(BloodMNIST, 28 px), resized on the fly.

    python benchmarks/throughput.py       # cnn@28, resnet18@28, resnet18-imagenet@224
    python benchmarks/throughput.py --model cnn --size 28 --device cuda --steps 200
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lnmbench import models
from lnmbench.data import load_dataset
from lnmbench.data.augment import AugmentSpec, DeviceAugment

# ResNet-18 at 224 px has the ImageNet stem (the CIFAR stem keeps 224x224 maps at 64 channels:
# >23 GB of activations for a batch of 128, and not what anyone trains at 224 px)
PAIRS = (("cnn", 28), ("resnet18", 28), ("resnet18-imagenet", 224))


class PILDataset(torch.utils.data.Dataset):
    """Per-sample PIL pipeline of the reference code: resize, random flip, to-tensor, normalise.

    ``images`` (N, H, W, C) uint8, ``labels`` (N,) int; item -> ((C, S, S) float32, label).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, size: int, mean, std) -> None:
        self.images, self.labels, self.size = images, labels, size
        self.mean = np.asarray(mean, np.float32)[:, None, None]
        self.std = np.asarray(std, np.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(
            self.images[i].squeeze(-1) if self.images.shape[-1] == 1 else self.images[i]
        )
        img = img.resize((self.size, self.size), Image.BILINEAR)
        if np.random.rand() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = np.asarray(img, np.float32) / 255.0
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        return torch.from_numpy((x - self.mean) / self.std), int(self.labels[i])


@dataclass
class Measured:
    images_per_s: float
    data_share: float


def train_loop(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    step: Callable[[torch.Tensor, torch.Tensor], None],
    steps: int,
    warmup: int,
    batch_size: int,
    device: torch.device,
) -> Measured:
    """Time ``steps`` steps after ``warmup``: data = time to get the next batch on the device."""
    data_s = compute_s = 0.0
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        x, y = next(batches)
        sync(device)
        t1 = time.perf_counter()
        step(x, y)
        sync(device)
        t2 = time.perf_counter()
        if i >= warmup:
            data_s += t1 - t0
            compute_s += t2 - t1
    return Measured(steps * batch_size / (data_s + compute_s), data_s / (data_s + compute_s))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(net: torch.nn.Module, device: torch.device) -> Callable:
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    amp = device.type == "cuda"

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def reference_batches(
    images: np.ndarray, labels: np.ndarray, size: int, mean, std, bs: int, device, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    loader = torch.utils.data.DataLoader(
        PILDataset(images, labels, size, mean, std),
        batch_size=bs,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=workers > 0,
    )
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def engine_batches(
    images: torch.Tensor, labels: torch.Tensor, size: int, mean, std, bs: int, device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator(device=device).manual_seed(0)
    out_size = None if images.shape[-1] == size else size
    augment = DeviceAugment(AugmentSpec(hflip=True), mean, std, out_size)
    channels_last = device.type == "cuda"
    while True:
        order = torch.randperm(len(labels), device=device, generator=gen)
        for start in range(0, len(order) - bs + 1, bs):
            idx = order[start : start + bs]
            x = augment(images[idx], gen)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, labels[idx]


def measure(model: str, size: int, args: argparse.Namespace) -> dict[str, float | str]:
    device = torch.device(args.device)
    ds = load_dataset("demo")
    train = ds["train"]
    mean, std = ds.channel_stats()
    c = ds.info.num_classes
    results: dict[str, Measured] = {}
    for name in ("reference", "lnmbench"):
        torch.manual_seed(0)
        net = models.create(model, c, ds.info.in_chans).to(device)
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        net.train()
        if name == "reference":
            batches = reference_batches(
                train.images.permute(0, 2, 3, 1).numpy(),
                train.labels.numpy(),
                size,
                mean,
                std,
                args.batch_size,
                device,
                args.workers,
            )
        else:
            batches = engine_batches(
                train.images.to(device),
                train.labels.to(device),
                size,
                mean,
                std,
                args.batch_size,
                device,
            )
        steps = args.steps if size <= 64 else max(3, args.steps // 10)
        results[name] = train_loop(
            batches, make_step(net, device), steps, args.warmup, args.batch_size, device
        )
        del batches
    ref, ours = results["reference"], results["lnmbench"]
    return {
        "model": model,
        "size": size,
        "device": str(device),
        "reference_img_s": ref.images_per_s,
        "lnmbench_img_s": ours.images_per_s,
        "ratio": ours.images_per_s / ref.images_per_s,
        "reference_data_share": ref.data_share,
        "lnmbench_data_share": ours.data_share,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="one model (default: the three pairs)")
    ap.add_argument("--size", type=int, default=None, help="with --model: image size")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40, help="timed steps (a tenth at 224 px)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers of (a)")
    args = ap.parse_args(argv)
    pairs = [(args.model, args.size or 28)] if args.model else list(PAIRS)
    print(
        "| model | size | device | reference img/s | lnmbench img/s | ratio "
        "| data share (reference) | data share (lnmbench) |\n|---|---|---|---|---|---|---|---|"
    )
    for model, size in pairs:
        r = measure(model, size, args)
        print(
            f"| {r['model']} | {r['size']} | {r['device']} | {r['reference_img_s']:.0f} "
            f"| {r['lnmbench_img_s']:.0f} | {r['ratio']:.2f}× "
            f"| {100 * r['reference_data_share']:.1f} % | {100 * r['lnmbench_data_share']:.1f} % |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
