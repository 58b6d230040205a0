"""Run one configuration end to end: data, noise, method, engine, run folder, summary."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lnmbench.data import Dataset, default_data_dir, load_dataset
from lnmbench.data.digest import dataset_digest
from lnmbench.engine.checkpoint import numerics
from lnmbench.engine.image_transform import ImageTransform
from lnmbench.engine.loop import EvalSplit, LoopSettings, fit
from lnmbench.engine.run_folder import RunFolder
from lnmbench.engine.run_status import is_locked, lock_holder, run_lock, worker_label
from lnmbench.engine.train_view import TrainView
from lnmbench.errors import ConfigError, LnmbenchError, RunBusyError, RunFailedError
from lnmbench.experiment.config import RunConfig
from lnmbench.experiment.summary import summarize
from lnmbench.methods import METHODS, Method, RunContext
from lnmbench.methods.hparams import resolve_hparams
from lnmbench.noise import NoisyLabels, noise_splits
from lnmbench.progress import eta_progress

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; a device
    that is not there is refused with a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N (or mps on Apple silicon)"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} requested but CUDA is not available; use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} requested but there are {torch.cuda.device_count()} CUDA "
                "device(s)"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device type {dev.type!r} is not supported; use cpu, cuda or mps")
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


def noise_cache_key(name: str, size: int, digest: str | None) -> dict[str, Any]:
    """What identifies a dataset in the noise cache: its name and size, and the content digest
    of a dataset given by path (a replaced file gets new noisy labels)."""
    key: dict[str, Any] = {"dataset": name, "size": size}
    if digest is not None:
        key["content"] = digest
    return key


def split_noise(cfg: RunConfig, ds: Dataset, data_dir: Path) -> dict[str, NoisyLabels]:
    """Noisy labels of the train and val splits of ``cfg`` (see :func:`noise_splits`)."""
    return noise_splits(
        ds,
        cfg.noise.name,
        cfg.noise.rate,
        cfg.noise.seed if cfg.noise.seed is not None else cfg.seed,
        cfg.noise.params,
        cache_dir=data_dir / "noise_cache",
        cache_key=noise_cache_key(ds.info.name, cfg.size, cfg.dataset_digest),
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


@dataclass
class PreparedRun:
    """Everything a run needs, built and validated before its folder is made."""

    cfg: RunConfig
    ds: Dataset
    noise: dict[str, NoisyLabels]
    method: Method
    train_view: TrainView
    settings: LoopSettings
    val: EvalSplit
    test: EvalSplit
    generators: dict[str, torch.Generator]
    device: torch.device
    rate: float | None
    source: str
    t_start: float


def prepare_run(cfg: RunConfig) -> PreparedRun:
    """Load the data, noise it, build the method: every check that can fail on bad input runs
    here, before anything is written into the run folder."""
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed, cfg.deterministic)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    if cfg.dataset_digest is not None and dataset_digest(cfg.dataset, data_dir) != (
        cfg.dataset_digest
    ):
        raise ConfigError(
            f"{cfg.dataset} changed since this run was configured (its content digest differs); "
            "resolve the run again (a new run folder)"
        )
    ds = load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir)
    c = ds.info.num_classes
    noise = split_noise(cfg, ds, data_dir)

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
    transform = ImageTransform.of(mean, std, out_size, channels_last)
    train_view = TrainView(
        ds["train"].images.to(storage),
        noisy_train,
        transform=transform,
        train_augment=cfg.augment,
        generator=data_gen,
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
        transform=transform,
        keep_checkpoint=cfg.keep_checkpoint,
    )
    val = EvalSplit(ds["val"].images.to(storage), noise["val"].noisy)
    test = EvalSplit(ds["test"].images.to(storage), ds["test"].labels.numpy())
    generators = {"data": data_gen, "method": method_gen}
    return PreparedRun(
        cfg,
        ds,
        noise,
        method,
        train_view,
        settings,
        val,
        test,
        generators,
        device,
        rate,
        source,
        t_start,
    )


def finished_summary(folder: RunFolder) -> dict[str, Any]:
    """The summary of a finished run; leftovers of killed writers and a checkpoint that was not
    to be kept are removed."""
    summary = json.loads(folder.summary.read_text())
    keep = summary.get("keep_checkpoint", folder.read_config().get("keep_checkpoint", False))
    folder.remove_leftovers(keep_checkpoint=bool(keep))
    return summary


def run_one(cfg: RunConfig, out_root: str | Path = "runs") -> dict[str, Any]:
    """Train ``cfg`` (resolved) into ``out_root/<run name>``; resume or skip when already there.

    The caller holds the run lock when other processes may run the same config
    (:func:`run_exclusive`, or the grid worker).
    """
    folder = RunFolder(Path(out_root) / cfg.run_name())
    if folder.is_done():
        return finished_summary(folder)
    return train_prepared(prepare_run(cfg), folder)


def run_exclusive(cfg: RunConfig, out_root: str | Path = "runs", wait: bool = False) -> dict:
    """``lnmbench run``: :func:`run_one` under the run lock. Another process running the same
    config makes it raise :class:`RunBusyError` (or wait for it with ``wait``); bad input is
    refused before the run folder exists; a failure after that leaves ``failed.txt``."""
    folder = RunFolder(Path(out_root) / cfg.run_name())
    if folder.is_done():
        return finished_summary(folder)
    if not wait and is_locked(folder.path):
        raise RunBusyError(busy_message(folder.path))
    prepared = prepare_run(cfg)
    with run_lock(folder.path, wait=wait) as mine:
        if not mine:
            raise RunBusyError(busy_message(folder.path))
        if folder.is_done():  # finished by the process we waited for
            return finished_summary(folder)
        try:
            return train_prepared(prepared, folder)
        except Exception as exc:
            with contextlib.suppress(OSError):  # e.g. the disk is full
                folder.write_failure(traceback.format_exc(), worker_label())
            if isinstance(exc, OSError | LnmbenchError):
                raise
            raise RunFailedError(
                f"run {folder.path.name} failed: {type(exc).__name__}: {exc} (traceback in "
                f"{folder.failed})"
            ) from exc


def busy_message(folder: Path) -> str:
    holder = lock_holder(folder) or "another process"
    return (
        f"run folder {folder} is busy: {holder} is running this run now; wait for it with "
        "--wait, or watch its metrics.jsonl"
    )


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def run_environment(device: torch.device) -> dict[str, Any]:
    """What CPU/GPU results depend on: torch threads and versions, the device's name and, on
    CPU, the vector instruction set torch's kernels use (``AVX2``, ``AVX512``, ...): the same
    run gives other numbers on a CPU with another one."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device_name": name,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def train_prepared(run: PreparedRun, folder: RunFolder) -> dict[str, Any]:
    """Create the run folder, train (resuming from a checkpoint), write summary.json last."""
    cfg = run.cfg
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.remove_leftovers(keep_checkpoint=True)
    folder.failed.unlink(missing_ok=True)
    folder.write_config(cfg.model_dump(mode="json"))
    folder.write_json("noise.json", {s: n.report() for s, n in run.noise.items()})
    method = run.method
    progress = _progress(cfg, method, run.train_view.num_samples) if cfg.progress else None
    try:
        rows = fit(
            method,
            run.train_view,
            run.val,
            run.test,
            folder,
            run.settings,
            clean_train=run.noise["train"].clean,
            generating_matrix=generating_matrix(run.noise["train"]),
            generators=run.generators,
            on_step=progress.step if progress else None,
        )
    finally:
        if progress:
            progress.close()
    summary = summarize(rows, type(method).headline, start_epoch=method.summary_start_epoch())
    summary.update(
        {
            "run": folder.path.name,
            "config_hash": cfg.config_hash(),
            "method": cfg.method,
            "dataset": run.ds.info.name,
            "noise": cfg.noise.name,
            "rate": cfg.noise.rate,
            "seed": cfg.seed,
            "model": cfg.model,
            "preset": cfg.preset,
            "protocol": cfg.protocol,
            "device": str(run.device),
            "numerics": numerics(method),
            "environment": run_environment(run.device),
            "keep_checkpoint": cfg.keep_checkpoint,
            "noise_rate_used": {"value": run.rate, "source": run.source},
            "realised_noise_rate": {s: n.realised_rate for s, n in run.noise.items()},
            "wall_s": time.perf_counter() - run.t_start,
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
        self.steps_per_epoch = max(1, -(-n // method.hp.batch_size))
        self.bar = eta_progress("[bold]{task.description}", "epoch {task.fields[epoch]}")
        self.bar.start()
        self.task = self.bar.add_task(
            f"{cfg.method} on {cfg.dataset}", total=cfg.epochs * self.steps_per_epoch, epoch=0
        )

    def step(self, epoch: int, step: int) -> None:
        self.bar.update(self.task, completed=epoch * self.steps_per_epoch + step, epoch=epoch)

    def close(self) -> None:
        self.bar.stop()
