"""Run one configuration end to end: data, noise, method, engine, run folder, summary."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lnmbench.data import Dataset, default_data_dir, load_dataset
from lnmbench.engine.loop import EvalSplit, LoopSettings, fit
from lnmbench.engine.run_folder import RunFolder
from lnmbench.engine.train_view import TrainView
from lnmbench.errors import ConfigError
from lnmbench.experiment.config import RunConfig
from lnmbench.experiment.summary import summarize
from lnmbench.methods import METHODS, RunContext
from lnmbench.methods.hparams import resolve_hparams
from lnmbench.noise import NoisyLabels, noise_splits

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return dev


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def split_noise(cfg: RunConfig, ds: Dataset, data_dir: Path) -> dict[str, NoisyLabels]:
    """Noisy labels of the train and val splits of ``cfg`` (see :func:`noise_splits`)."""
    return noise_splits(
        ds,
        cfg.noise.name,
        cfg.noise.rate,
        cfg.noise.seed if cfg.noise.seed is not None else cfg.seed,
        cfg.noise.params,
        cache_dir=data_dir / "noise_cache",
        cache_key={"dataset": ds.info.name, "size": cfg.size},
        what=cfg.dataset,
    )


def normalisation(cfg: RunConfig, ds: Dataset) -> tuple[list[float], list[float]]:
    c = ds.info.in_chans
    if cfg.normalize == "imagenet":
        if c == 3:
            return IMAGENET_MEAN, IMAGENET_STD
        return [float(np.mean(IMAGENET_MEAN))] * c, [float(np.mean(IMAGENET_STD))] * c
    if cfg.normalize == "half":
        return [0.5] * c, [0.5] * c
    return ds.channel_stats()


def noise_rate_for_methods(cfg: RunConfig, ds: Dataset) -> tuple[float | None, str]:
    """The noise rate given to methods and its source: the assumed rate when set ("assumed"),
    else the nominal rate of synthetic noise ("nominal"); real-world noise has none ("none")."""
    if cfg.assumed_noise_rate is not None:
        return cfg.assumed_noise_rate, "assumed"
    if ds.info.noise == "real-world" or cfg.noise.name == "realworld":
        return None, "none"
    return cfg.noise.rate, "nominal"


def generating_matrix(noisy: NoisyLabels) -> np.ndarray | None:
    """The matrix a class-conditional generator drew from (None for instance / real noise)."""
    gen = noisy.extra.get("generating_matrix")
    return None if gen is None else np.asarray(gen, dtype=np.float64)


def images_storage(ds: Dataset, device: torch.device) -> torch.device:
    """Where the uint8 images live during training: on the training device, unless the dataset
    is a memory-mapped cache (``ds.extra["memmap"]``), which stays on the CPU and is streamed."""
    return torch.device("cpu") if ds.extra.get("memmap") else device


def run_one(cfg: RunConfig, out_root: str | Path = "runs") -> dict[str, Any]:
    """Train ``cfg`` (resolved) into ``out_root/<run name>``; resume or skip when already there."""
    folder = RunFolder(Path(out_root) / cfg.run_name())
    if folder.is_done():
        import json

        return json.loads(folder.summary.read_text())
    t_start = time.perf_counter()
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.failed.unlink(missing_ok=True)
    folder.write_config(cfg.model_dump(mode="json"))
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed, cfg.deterministic)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    ds = load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir)
    c = ds.info.num_classes
    noise = split_noise(cfg, ds, data_dir)
    folder.write_json("noise.json", {s: n.report() for s, n in noise.items()})

    cls = METHODS.get(cfg.method)
    hp = resolve_hparams(cls.Hparams, cfg.hparams, f"method {cfg.method!r}")
    rate, source = noise_rate_for_methods(cfg, ds)
    if cls.needs_noise_rate(hp) and rate is None:
        raise cls.missing_noise_rate()

    mean, std = normalisation(cfg, ds)
    channels_last = device.type == "cuda"
    image_size = ds["train"].images.shape[-1]
    out_size = None if image_size == cfg.size else cfg.size
    noisy_train = torch.from_numpy(noise["train"].noisy).to(device)
    data_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    method_gen = torch.Generator().manual_seed(cfg.seed + 2)
    storage = images_storage(ds, device)
    train_view = TrainView(
        ds["train"].images.to(storage),
        noisy_train,
        mean=mean,
        std=std,
        train_augment=cfg.augment,
        generator=data_gen,
        out_size=out_size,
        channels_last=channels_last,
        device=device,
    )
    ctx = RunContext(
        num_classes=c,
        in_chans=ds.info.in_chans,
        device=device,
        epochs=cfg.epochs,
        seed=cfg.seed,
        model_name=cfg.model,
        pretrained=cfg.pretrained,
        noise_rate=rate,
        noise_rate_source=source,
        class_counts=np.bincount(noise["train"].noisy, minlength=c),
        generator=method_gen,
        train=train_view,
        amp=cfg.amp and device.type == "cuda",
        channels_last=channels_last,
        noise_name=cfg.noise.name,
    )
    torch.manual_seed(cfg.seed)  # network initialisation depends on the seed only
    method = cls(hp, ctx)
    method.setup()

    settings = LoopSettings(
        epochs=cfg.epochs,
        num_classes=c,
        ordinal=ds.info.ordinal,
        eval_batch_size=cfg.eval_batch_size,
        mean=mean,
        std=std,
        out_size=out_size,
        channels_last=channels_last,
        keep_checkpoint=cfg.keep_checkpoint,
    )
    val = EvalSplit(ds["val"].images.to(storage), noise["val"].noisy)
    test = EvalSplit(ds["test"].images.to(storage), ds["test"].labels.numpy())
    progress = _progress(cfg, method, train_view.num_samples) if cfg.progress else None
    try:
        rows = fit(
            method,
            train_view,
            val,
            test,
            folder,
            settings,
            clean_train=noise["train"].clean,
            generating_matrix=generating_matrix(noise["train"]),
            generators={"data": data_gen, "method": method_gen},
            on_step=progress.step if progress else None,
        )
    finally:
        if progress:
            progress.close()
    summary = summarize(rows, cls.headline, start_epoch=method.summary_start_epoch())
    summary.update(
        {
            "run": folder.path.name,
            "config_hash": cfg.config_hash(),
            "method": cfg.method,
            "dataset": ds.info.name,
            "noise": cfg.noise.name,
            "rate": cfg.noise.rate,
            "seed": cfg.seed,
            "model": cfg.model,
            "preset": cfg.preset,
            "protocol": cfg.protocol,
            "device": str(device),
            "noise_rate_used": {"value": rate, "source": source},
            "realised_noise_rate": {s: n.realised_rate for s, n in noise.items()},
            "wall_s": time.perf_counter() - t_start,
        }
    )
    t_hat = method.transition_matrix()
    if t_hat is not None:
        np.save(folder.path / "transition_estimate.npy", np.asarray(t_hat))
    folder.write_summary(summary)
    if not cfg.keep_checkpoint:
        folder.checkpoint.unlink(missing_ok=True)
    return summary


class _progress:
    """A rich progress bar over all steps of the run, with ETA."""

    def __init__(self, cfg: RunConfig, method: Any, n: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.steps_per_epoch = max(1, -(-n // method.hp.batch_size))
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(
            f"{cfg.method} on {cfg.dataset}", total=cfg.epochs * self.steps_per_epoch, epoch=0
        )

    def step(self, epoch: int, step: int) -> None:
        self.bar.update(self.task, completed=epoch * self.steps_per_epoch + step, epoch=epoch)

    def close(self) -> None:
        self.bar.stop()
