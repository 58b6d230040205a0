"""Checkpoint and resume: method state plus every random-number generator the run uses."""

from __future__ import annotations

import os
import random
import warnings
from typing import Any

import numpy as np
import torch

from lnmbench.atomic_files import atomic_write
from lnmbench.engine.run_folder import RunFolder
from lnmbench.errors import ConfigError
from lnmbench.methods.base import Method


class CorruptCheckpointWarning(UserWarning):
    """A run's checkpoint could not be read; the run restarts from epoch 0."""


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


def numerics(method: Method) -> str:
    """What the run computes with: ``"cpu/fp32"``, ``"cuda/bf16"`` (AMP) or ``"cuda/fp32"``.
    The config hash leaves the device out (one config, one cell), so a checkpoint records this
    and a resume on other numerics is refused rather than mixed into one run."""
    return f"{method.ctx.device.type}/{'bf16' if method.ctx.amp else 'fp32'}"


def save_checkpoint(
    folder: RunFolder, epoch: int, method: Method, generators: dict[str, torch.Generator]
) -> None:
    """Atomically save the state after finishing ``epoch``."""
    state = {
        "epoch": epoch,
        "method": method.state_dict(),
        "rng": rng_state(generators),
        "numerics": numerics(method),
    }
    atomic_write(folder.checkpoint, lambda tmp: torch.save(state, tmp))


def load_checkpoint(
    folder: RunFolder, method: Method, generators: dict[str, torch.Generator]
) -> int:
    """Restore the run from its checkpoint; returns the next epoch to train (0 if none).

    A checkpoint that cannot be read (cut short, corrupted) is moved aside to
    ``checkpoint.pt.corrupt`` with a warning, and the run restarts from epoch 0. One written on
    other numerics (:func:`numerics`, e.g. bf16 on a GPU, resumed on a CPU) raises
    :class:`ConfigError` and is left in place.
    """
    if not folder.checkpoint.exists():
        return 0
    try:
        state = torch.load(folder.checkpoint, map_location="cpu", weights_only=False)
        if not isinstance(state, dict) or not {"epoch", "method", "rng"} <= set(state):
            raise ValueError("not an lnmbench checkpoint")
    except Exception as exc:
        aside = folder.checkpoint.with_name(folder.checkpoint.name + ".corrupt")
        os.replace(folder.checkpoint, aside)
        warnings.warn(
            f"{folder.checkpoint} is unreadable ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); moved to {aside.name}, the run restarts "
            "from epoch 0",
            CorruptCheckpointWarning,
            stacklevel=2,
        )
        return 0
    written = state.get("numerics")  # absent in checkpoints older than this check
    if written is not None and written != numerics(method):
        raise ConfigError(
            f"{folder.checkpoint} was written on {written} and this process runs on "
            f"{numerics(method)}: resuming would mix two numerics in one run. Resume it on a "
            f"{written.split('/')[0]} device (same --device / amp), or delete the checkpoint to "
            "restart the run from epoch 0"
        )
    method.load_state_dict(state["method"])
    set_rng_state(state["rng"], generators)
    return int(state["epoch"]) + 1
