"""Noise the train and validation splits of a dataset (independent draws; test is never noised)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lnmbench.data import Dataset
from lnmbench.errors import ConfigError
from lnmbench.noise.labels import NoisyLabels
from lnmbench.noise.make import make_noisy_labels
from lnmbench.noise.registry import NOISE

NOISED_SPLITS = ("train", "val")


def noise_splits(
    ds: Dataset,
    name: str,
    rate: float | None,
    seed: int,
    params: dict[str, Any] | None = None,
    *,
    cache_dir: Path | None = None,
    cache_key: dict[str, Any] | None = None,
    what: str | None = None,
) -> dict[str, NoisyLabels]:
    """Noisy labels of the train and val splits of ``ds`` with generator ``name``.

    Real-world datasets bring their own noisy column (generator ``realworld``); synthetic
    generators draw, cached in ``cache_dir`` under ``cache_key`` (e.g. dataset and size) plus
    the split. A generator with ``split_params`` (instance-classifier) works out the parameters
    of both splits at once. ``what`` names the dataset in errors.
    """
    what = what or ds.info.name
    c = ds.info.num_classes
    params = dict(params or {})
    real = ds["train"].noisy_labels is not None
    if real and name != "realworld":
        raise ConfigError(
            f"dataset {what!r} carries real-world noisy labels; use --noise realworld"
        )
    if not real and name == "realworld":
        raise ConfigError(
            f"dataset {what!r} has no real-world noisy labels; choose a synthetic noise "
            "generator (lnmbench noise --list)"
        )
    if real:
        clean_known = ds.extra.get("clean_known", {})
        return {
            split: make_noisy_labels(
                "realworld",
                ds[split].labels.numpy() if clean_known.get(split, True) else None,
                c,
                None,
                seed,
                params={"noisy": ds[split].noisy_labels.numpy()},
            )
            for split in NOISED_SPLITS
        }
    entry = NOISE.get(name)
    per_split = {s: params for s in NOISED_SPLITS}
    if entry.split_params is not None:
        per_split = entry.split_params(
            ds["train"].images.numpy(),
            ds["train"].labels.numpy(),
            c,
            ds["val"].images.numpy(),
            params,
            seed,
            cache_dir,
        )
    return {
        split: make_noisy_labels(
            name,
            ds[split].labels.numpy(),
            c,
            rate,
            seed,
            images=ds[split].images.numpy(),
            params=per_split[split],
            cache_dir=cache_dir,
            cache_key={**(cache_key or {}), "split": split},
        )
        for split in NOISED_SPLITS
    }
