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
