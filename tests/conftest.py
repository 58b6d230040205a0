"""Shared fixtures: the real MedMNIST files in ../shared/data (tests skip clearly without them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lnmbench.cli.console import console

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(1)
console.width = 200  # the one CLI console: wide tables, no line wrapped in captured output


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def import_benchmark(name: str):
    """A script of benchmarks/ as a module (e.g. ``validity``), imported with that folder on
    sys.path only for the import (its helper ``result_table`` stays in sys.modules)."""
    import importlib
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with bloodmnist.npz, retinamnist.npz, breastmnist.npz; skip when absent."""
    if not (SHARED_DATA / "bloodmnist.npz").exists():
        pytest.skip(
            f"real MedMNIST files not found in {SHARED_DATA} (the project's ../shared/data)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_npz(tmp_path_factory) -> Path:
    """240/80/80 images of the bundled demo set (BloodMNIST subset), in the MedMNIST layout."""
    import numpy as np

    from lnmbench.data import load_dataset

    ds = load_dataset("demo")
    out = {}
    for split, n in (("train", 240), ("val", 80), ("test", 80)):
        out[f"{split}_images"] = ds[split].images[:n].permute(0, 2, 3, 1).numpy()
        out[f"{split}_labels"] = ds[split].labels[:n].numpy()[:, None]
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, **out)
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: LNMBENCH_DATA points to a per-session temp folder."""
    monkeypatch.setenv("LNMBENCH_DATA", str(tmp_path_factory.getbasetemp() / "lnmbench-cache"))


# --------------------------------------------------------------------------- shared helpers
# (imported by the test modules: ``from conftest import Interrupt, run_config, ...``)


class Interrupt(Exception):
    """Raised by a patched ``train_step`` to stand for a kill in the middle of a run."""


def run_config(
    dataset: Path | str,
    method: str = "ce",
    epochs: int = 4,
    noise: str = "symmetric",
    rate: float = 0.4,
    seed: int = 0,
    **hparams,
):
    """The resolved config of a small CPU run (cnn-tiny, no progress bar, batch size 32 unless
    ``batch_size`` is given) of ``method`` on ``dataset``."""
    from lnmbench.experiment.config import resolve_config

    return resolve_config(
        {
            "method": method,
            "dataset": str(dataset),
            "model": "cnn-tiny",
            "epochs": epochs,
            "progress": False,
            "noise": {"name": noise, "rate": rate},
            "seed": seed,
            "hparams": {"batch_size": 32, **hparams},
        }
    )


def interrupt_train_step(monkeypatch, cls, die_at: int, when=None) -> dict:
    """Patch ``cls.train_step`` to raise :class:`Interrupt` at its ``die_at``-th call (counting
    only calls where ``when(method)`` holds, when given). Returns the counter ``{"n", "die_at"}``
    (change ``die_at`` to die again later) and restores the original when the test ends."""
    original = cls.train_step
    calls = {"n": 0, "die_at": die_at}

    def dying_step(self, batch):
        if when is None or when(self):
            calls["n"] += 1
            if calls["n"] == calls["die_at"]:
                raise Interrupt
        return original(self, batch)

    monkeypatch.setattr(cls, "train_step", dying_step)
    calls["restore"] = lambda: monkeypatch.setattr(cls, "train_step", original)
    return calls


def method_context(
    train,
    num_classes: int,
    *,
    epochs: int = 4,
    noise_rate: float | None = 0.4,
    class_counts=None,
    generator_seed: int = 2,
):
    """A CPU :class:`RunContext` (cnn-tiny, seed 0, nominal noise rate) around ``train``."""
    import numpy as np

    from lnmbench.methods import RunContext

    return RunContext(
        num_classes=num_classes,
        in_chans=3,
        device=torch.device("cpu"),
        epochs=epochs,
        seed=0,
        model_name="cnn-tiny",
        pretrained=False,
        noise_rate=noise_rate,
        noise_rate_source="nominal",
        class_counts=np.ones(num_classes, dtype=np.int64) if class_counts is None else class_counts,
        generator=torch.Generator().manual_seed(generator_seed),
        train=train,
    )


def tiny_method(cls, labels, num_classes: int = 3, epochs: int = 4, **hparams):
    """A set-up method on random 28 px images with the given noisy labels (cnn-tiny, CPU)."""
    import numpy as np

    from lnmbench.engine.image_transform import ImageTransform
    from lnmbench.engine.train_view import TrainView
    from lnmbench.methods.hparams import resolve_hparams

    n = len(labels)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8, generator=g)
    view = TrainView(
        images,
        torch.as_tensor(labels, dtype=torch.long),
        transform=ImageTransform.of([0.5] * 3, [0.25] * 3),
        train_augment="standard",
        generator=torch.Generator().manual_seed(1),
    )
    counts = np.bincount(labels, minlength=num_classes)
    ctx = method_context(view, num_classes, epochs=epochs, class_counts=counts)
    hp = resolve_hparams(cls.Hparams, hparams, "test")
    torch.manual_seed(0)
    method = cls(hp, ctx)
    method.setup()
    return method
