"""Run configuration: pydantic-validated, YAML in and out, resolved against presets, hashed."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import operator
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lnmbench.errors import ConfigError

# fields that do not change results; they are left out of the run hash
NON_SEMANTIC = ("device", "data_dir", "keep_checkpoint", "progress")


class NoiseConfig(BaseModel):
    """Which label noise to put on the training and validation splits."""

    model_config = ConfigDict(extra="forbid")

    name: str = "symmetric"
    rate: float = 0.4
    seed: int | None = Field(None, ge=0, lt=2**32)  # noise seed; defaults to the run seed
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("rate")
    @classmethod
    def _rate_in_range(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError(f"noise rate must be in [0, 1), got {v}")
        return v


class RunConfig(BaseModel):
    """One training run. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    method: str = "ce"
    dataset: str = "demo"
    # sha256 of a dataset given by path (its .npz, or a prepared cache's manifest): set by
    # resolve_config, so that a file replaced at the same path gives a new run folder
    dataset_digest: str | None = None
    size: int = Field(28, ge=1)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    seed: int = Field(0, ge=0, lt=2**32)
    model: str = "cnn"
    pretrained: bool = False
    epochs: int = Field(20, ge=1)
    hparams: dict[str, Any] = Field(default_factory=dict)
    augment: str = "standard"
    normalize: Literal["dataset", "imagenet", "half"] = "dataset"
    assumed_noise_rate: float | None = None
    preset: str = "fast"
    protocol: Literal["reference", "uniform"] = "uniform"
    eval_batch_size: int = Field(1024, ge=1)
    amp: bool = True
    deterministic: bool = True
    device: str = "auto"
    data_dir: str | None = None
    keep_checkpoint: bool = False
    progress: bool = True

    @field_validator("assumed_noise_rate")
    @classmethod
    def _assumed_rate_in_range(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v < 1.0:
            raise ValueError(f"assumed noise rate must be in [0, 1), got {v}")
        return v

    def semantic_dict(self) -> dict[str, Any]:
        """The fields that define the result (for the hash); a registered dataset has no
        digest, and its hash is the one it had before digests existed."""
        exclude = set(NON_SEMANTIC) | ({"dataset_digest"} if self.dataset_digest is None else set())
        return self.model_dump(mode="json", exclude=exclude)

    def config_hash(self) -> str:
        text = json.dumps(self.semantic_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def run_name(self) -> str:
        """Folder name: readable prefix plus the hash of the resolved config."""
        if self.dataset.endswith(".npz"):
            ds = Path(self.dataset).stem
        elif "/" in self.dataset or "\\" in self.dataset:  # a prepared cache folder
            ds = "_".join(Path(self.dataset.removesuffix("manifest.json")).parts[-2:])
        else:
            ds = self.dataset
        noise = (
            "realworld"
            if self.noise.name == "realworld"
            else f"{self.noise.name}{self.noise.rate:g}"
        )
        return f"{self.method}_{ds}_{noise}_s{self.seed}_{self.config_hash()[:12]}"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: values in ``over`` win; nested dicts merge."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def preset_names() -> list[str]:
    files = resources.files("lnmbench.presets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".yaml"))


@functools.cache
def _preset_data(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(preset_names())}")
    text = resources.files("lnmbench.presets").joinpath(f"{name}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    base = data.pop("base", None)  # a preset may extend another one
    return deep_merge(_preset_data(base), data) if base else data


def load_preset(name: str) -> dict[str, Any]:
    """A preset's YAML: run-level defaults plus a ``methods:`` block of per-method hparams."""
    return copy.deepcopy(_preset_data(name))


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line: ``invalid configuration (WHERE): KEY=VALUE: problem; ...``."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        value = err.get("input")
        shown = f"={value}" if err["loc"] and not isinstance(value, dict | list) else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        problems.append(f"{loc}{shown}: {msg[:1].lower() + msg[1:]}")
    return f"invalid configuration ({where}): {'; '.join(problems)}"


def resolve_config(user: dict[str, Any], where: str = "command line") -> RunConfig:
    """Merge defaults < preset < user values; fill the method's hparams from its preset block.

    The returned config's ``hparams`` holds every hyperparameter of the method, so its hash
    changes with any of them.
    """
    from lnmbench.data import is_path_like
    from lnmbench.data.digest import dataset_digest
    from lnmbench.methods import METHODS
    from lnmbench.methods.hparams import hparams_dict, resolve_hparams

    preset_name = user.get("preset", RunConfig.model_fields["preset"].default)
    preset = load_preset(preset_name)
    method_blocks = preset.pop("methods", {}) or {}
    protocol_blocks = preset.pop("protocols", {}) or {}
    min_steps = preset.pop("min_steps", None)
    merged = deep_merge(preset, user)
    try:
        cfg = RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None
    cls = METHODS.get(cfg.method)
    hp_over: dict[str, Any] = {}
    hp_over = deep_merge(hp_over, method_blocks.get("all", {}) or {})
    hp_over = deep_merge(
        hp_over, method_block(method_blocks, cfg.method, run_noise_rate(cfg), preset_name)
    )
    hp_over = deep_merge(hp_over, protocol_blocks.get(cfg.protocol, {}) or {})
    hp_over = deep_merge(hp_over, cfg.hparams)
    hp = resolve_hparams(cls.Hparams, hp_over, f"{where}: method {cfg.method!r}")
    update: dict[str, Any] = {"hparams": hparams_dict(hp)}
    if min_steps and "epochs" not in user:
        update["epochs"] = epochs_for_min_steps(cfg, int(min_steps), hp.batch_size)
    if is_path_like(cfg.dataset):
        data_dir = Path(cfg.data_dir) if cfg.data_dir else None
        update["dataset_digest"] = dataset_digest(cfg.dataset, data_dir)
    return cfg.model_copy(update=update)


# in a preset's method block: {threshold: {hparam: value}}, merged into runs whose noise rate is
# strictly above / below the threshold; the bool: merge in decreasing threshold order (so that
# the tightest threshold, merged last, wins)
RATE_BLOCKS: dict[str, tuple[Callable[[float, float], bool], bool]] = {
    "rate_above": (operator.gt, False),
    "rate_below": (operator.lt, True),
}


def run_noise_rate(cfg: RunConfig) -> float | None:
    """The run's noise rate: nominal for synthetic noise, assumed on real-world data (or None)."""
    return cfg.assumed_noise_rate if cfg.noise.name == "realworld" else cfg.noise.rate


def method_block(
    blocks: dict[str, Any], method: str, rate: float | None, preset: str
) -> dict[str, Any]:
    """A method's block of a preset's ``methods:`` (``blocks``) as it applies at noise ``rate``:
    the block without its ``rate_above`` / ``rate_below`` entries, merged with those whose
    threshold ``rate`` passes (``rate_above`` first)."""
    block = dict(blocks.get(method, {}) or {})
    by_rate = {key: block.pop(key, None) for key in RATE_BLOCKS}
    for key, entries in by_rate.items():
        block = deep_merge(block, rate_overrides(entries, rate, preset, key))
    return block


def rate_overrides(
    by_rate: Any, rate: float | None, preset: str, key: str = "rate_above"
) -> dict[str, Any]:
    """The hparams of a method block's ``key`` entries (``rate_above``: the run's noise rate
    exceeds the threshold, strictly; ``rate_below``: it is strictly less), merged so that the
    tightest threshold wins (``rate_above`` in increasing, ``rate_below`` in decreasing order);
    {} without a rate.

    Method papers switch settings by noise rate (DISC's code: Adam instead of SGD above 0.6;
    DivideMix's paper: λ_u = 0 below 0.5), so a preset can say
    ``rate_above: {0.6: {optimizer: adam}}``; runs at other rates resolve to exactly the hparams
    (and config hash) they had without the entry.
    """
    if by_rate is None:
        return {}
    passes, descending = RATE_BLOCKS[key]
    where = f"preset {preset!r}: {key}"
    if not isinstance(by_rate, dict):
        raise ConfigError(f"{where} must map a noise rate to hparams, got {by_rate!r}")
    entries = []
    for threshold, over in by_rate.items():
        try:
            t = float(threshold)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: key {threshold!r} is not a noise rate") from None
        if not isinstance(over, dict):
            raise ConfigError(f"{where}: {threshold} must map to hparams, got {over!r}")
        entries.append((t, over))
    merged: dict[str, Any] = {}
    for t, over in sorted(entries, key=lambda e: e[0], reverse=descending):
        if rate is not None and passes(rate, t):
            merged = deep_merge(merged, over)
    return merged


def epochs_for_min_steps(cfg: RunConfig, min_steps: int, batch_size: int) -> int:
    """The preset's epochs, raised so that the run makes at least ``min_steps`` optimiser steps
    (``ceil(N / batch_size)`` per epoch) on a small training set; unchanged when N is unknown.

    A preset's run length is an epoch count for the data sets it was measured on and a step
    budget for smaller ones: without it a 546-image set gets 5 steps per epoch and its CE
    never memorises the noisy labels (the regime of methods.md §1a).
    """
    from lnmbench.data import train_split_size

    n = train_split_size(cfg.dataset, data_dir=cfg.data_dir)
    if not n:
        return cfg.epochs
    return max(cfg.epochs, math.ceil(min_steps / math.ceil(n / batch_size)))


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (``what`` names it in errors)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping ({what}), got {type(data).__name__}")
    return data


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A run.yaml: a mapping of run settings."""
    return read_yaml_mapping(path, "config file")
