"""Shared fixtures: the real MedMNIST files in ../shared/data (tests skip clearly without them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with bloodmnist.npz, retinamnist.npz, breastmnist.npz; skip when absent."""
    if not (SHARED_DATA / "bloodmnist.npz").exists():
        pytest.skip(
            f"real MedMNIST files not found in {SHARED_DATA} (the project's ../shared/data)"
        )
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: LNMBENCH_DATA points to a per-session temp folder."""
    monkeypatch.setenv("LNMBENCH_DATA", str(tmp_path_factory.getbasetemp() / "lnmbench-cache"))
