"""Checkpoint and resume: method state plus every random-number generator the run uses."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from lnmbench.atomic_files import atomic_write
from lnmbench.engine.run_folder import RunFolder
from lnmbench.methods.base import Method


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for k, g in generators.items():
        g.set_state(state["generators"][k])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: RunFolder, epoch: int, method: Method, generators: dict[str, torch.Generator]
) -> None:
    """Atomically save the state after finishing ``epoch``."""
    state = {"epoch": epoch, "method": method.state_dict(), "rng": rng_state(generators)}
    atomic_write(folder.checkpoint, lambda tmp: torch.save(state, tmp))


def load_checkpoint(
    folder: RunFolder, method: Method, generators: dict[str, torch.Generator]
) -> int:
    """Restore the run from its checkpoint; returns the next epoch to train (0 if none)."""
    if not folder.checkpoint.exists():
        return 0
    state = torch.load(folder.checkpoint, map_location="cpu", weights_only=False)
    method.load_state_dict(state["method"])
    set_rng_state(state["rng"], generators)
    return int(state["epoch"]) + 1
