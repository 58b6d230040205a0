"""Configuration variants of one method: runs of the same (method, dataset, noise, rate, seed)
whose resolved configurations differ (an ablation beside the preset run, a hand-tuned rerun) are
different experiments and must not be averaged into one number.

:func:`split_variants` gives each such run a method label that names what differs, e.g.
``coteaching [forget_ramp_epochs=10]``; the run matching the preset's resolved configuration (or,
when that cannot be resolved, the most common value) keeps the plain method name.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lnmbench.errors import LnmbenchError
from lnmbench.experiment.config import NON_SEMANTIC, resolve_config
from lnmbench.report.load import has_folder

GROUP = ["method", "dataset", "noise", "rate_key", "seed"]
# keys that place a run in its cell (not a configuration of the method)
CELL_KEYS = {
    "method",
    "dataset",
    "dataset_digest",
    "noise.name",
    "noise.rate",
    "noise.seed",
    "seed",
}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"hparams": {"lr": 0.1}} -> {"hparams.lr": 0.1}; lists become tuples (hashable)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def _semantic(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if k not in CELL_KEYS and k not in NON_SEMANTIC}


def _config(folder: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A run folder's config.yaml, and its flattened form without the cell and non-semantic keys."""
    try:
        data = yaml.safe_load((Path(folder) / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    return data, _semantic(flatten(data))


@cache
def _preset_config(
    method: str, dataset: str, noise: str, rate: float | None, preset: str | None
) -> dict[str, Any] | None:
    """The flattened configuration ``preset`` resolves to for a cell; None when it cannot."""
    user: dict[str, Any] = {"method": method, "dataset": dataset, "noise": {"name": noise}}
    if rate is not None:
        user["noise"]["rate"] = rate
    if preset is not None:
        user["preset"] = preset
    try:
        resolved = resolve_config(user).model_dump(mode="json")
    except (LnmbenchError, ValueError, TypeError):
        return None
    return _semantic(flatten(resolved))


def _short(key: str) -> str:
    return key.removeprefix("hparams.")


def _value(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ",".join(_value(x) for x in v) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def split_variants(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``df`` (with the report's keys) with variant runs relabelled, and one message per method.

    A method is split when two finished runs of one (method, dataset, noise, rate, seed) have
    different config hashes. The differing keys are those that differ inside such a group; a run
    is labelled by the keys where it departs from its preset's resolved config for its cell.
    """
    done = df[(df["status"] == "done") & df["config_hash"].notna()]
    n_hash = done.groupby(GROUP, dropna=False)["config_hash"].nunique()
    clashing = n_hash[n_hash > 1]
    if clashing.empty:
        return df, []
    out = df.copy()
    messages = []
    for method in sorted({k[0] for k in clashing.index}):
        rows = out[out["method"] == method]
        raw: dict[int, dict[str, Any]] = {}
        configs: dict[int, dict[str, Any]] = {}
        for i, folder in rows["run_folder"].items():
            read = _config(folder) if has_folder(folder) else None
            if read is not None:
                raw[i], configs[i] = read
        keys: set[str] = set()
        for key in clashing.index:
            if key[0] != method:
                continue
            in_group = (rows[GROUP[1:]] == pd.Series(key[1:], index=GROUP[1:])).all(axis=1)
            cfgs = [configs[i] for i in rows.index[in_group] if i in configs]
            keys |= {k for k in set().union(*cfgs) if len({c.get(k) for c in cfgs}) > 1}
        if not configs:  # rows of a results table: no config.yaml to tell what differs
            n = sum(1 for k in clashing.index if k[0] == method)
            messages.append(
                f"{method}: {n} (cell, seed) group(s) hold runs with different config hashes "
                "and no run folder to tell what differs; their runs are averaged as one seed "
                "(report the run folders, or filter the table, to keep variants apart)"
            )
            continue
        if not keys:
            continue
        common = {k: Counter(c.get(k) for c in configs.values()).most_common(1)[0][0] for k in keys}
        labels = {}
        for i, cfg in configs.items():
            noise = raw[i].get("noise") or {}
            ref = _preset_config(
                method,
                str(raw[i].get("dataset")),
                str(noise.get("name")),
                noise.get("rate"),
                raw[i].get("preset"),
            )
            ref = {k: (ref if ref is not None and k in ref else common)[k] for k in keys}
            diff = [k for k in sorted(keys) if cfg.get(k) != ref[k]]
            if diff:
                labels[i] = (
                    f"{method} ["
                    + ", ".join(f"{_short(k)}={_value(cfg.get(k))}" for k in diff)
                    + "]"
                )
        out.loc[list(labels), "method"] = pd.Series(labels)
        names = sorted(set(labels.values()))
        messages.append(
            f"{method}: runs of the same cell and seed differ in "
            f"{', '.join(_short(k) for k in sorted(keys))}; not averaged, shown as separate "
            f"methods: {method} (its preset's configuration), {', '.join(names)}"
        )
    return out, messages
