"""Benchmark grids: a YAML spec of blocks (each a product of axes) -> resolved, deduped RunConfigs.

A grid is a list of ``blocks``; each block is the product methods × datasets × noise settings ×
rates × seeds, so different parts of the benchmark can have different axes (synthetic-noise
MedMNIST sets with a rate grid; real-world sets with the noise ``realworld`` and no rate). Axes
given at the top level are defaults that every block inherits; a spec without ``blocks`` is one
block. ``exclude`` patterns remove cells of the blocks; ``include`` adds explicit cells. Every cell
is resolved with :func:`lnmbench.experiment.config.resolve_config` and deduplicated by its config
hash (= its run folder). Cells naming something that is not registered are reported, not raised,
so a dry run can show them; a real run refuses them unless told to skip them.
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lnmbench.errors import ConfigError, LnmbenchError, UnknownNameError
from lnmbench.experiment.config import (
    RunConfig,
    deep_merge,
    format_validation_error,
    preset_names,
    read_yaml_mapping,
    resolve_config,
)

# RunConfig fields set by the grid axes (or by hparams:); overrides may not set them
AXIS_FIELDS = ("method", "dataset", "seed", "noise", "hparams")

# Relative training cost per sample-epoch (forward + backward of one image = 1), by method.
# Two-network methods train two nets; DISC trains on two views; DivideMix trains two nets on two
# views of labelled and unlabelled data plus co-guessing forwards and a per-epoch GMM pass;
# T-Revision trains its reweighting and revision stages for E epochs each plus a short estimation.
DEFAULT_METHOD_FACTORS: dict[str, float] = {
    "ce": 1.0,
    "ce-ls": 1.0,
    "sce": 1.0,
    "cdr": 1.1,
    "volminnet": 1.1,
    "t-revision": 2.2,
    "coteaching": 2.0,
    "coteaching-plus": 2.0,
    "codis": 2.0,
    "jocor": 2.0,
    "disc": 2.0,
    "dividemix": 8.0,
    "medssl": 8.0,  # DivideMix plus per-class GMM fits: the same cost
}


# --------------------------------------------------------------------------- the spec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoiseSetting(_Strict):
    """One noise axis value: a generator name, its parameters, optionally its own rates."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None  # noise seed; default: the run seed
    rates: list[float] | None = None  # replaces the block's rates for this noise

    @field_validator("rates")
    @classmethod
    def _rates_in_range(cls, v: list[float] | None) -> list[float] | None:
        return _check_rates(v)


def _check_rates(v: list[float] | None) -> list[float] | None:
    for r in v or []:
        if not 0.0 <= r < 1.0:
            raise ValueError(f"noise rate must be in [0, 1), got {r}")
    return v


def _noise_list(v: Any) -> Any:
    """Accept ``symmetric`` or ``[symmetric, {name: instance, params: {...}}]``."""
    if v is None:
        return v
    if isinstance(v, str | dict):
        v = [v]
    return [{"name": x} if isinstance(x, str) else x for x in v]


def _str_list(v: Any) -> Any:
    return [v] if isinstance(v, str | int | float) else v


class GridAxes(_Strict):
    """The axes of a product; unset axes are inherited from the spec's top level."""

    methods: list[str] | None = None
    datasets: list[str] | None = None
    noise: list[NoiseSetting] | None = None
    rates: list[float] | None = None
    seeds: list[int] | None = None

    @field_validator("methods", "datasets", "seeds", "rates", mode="before")
    @classmethod
    def _scalar_to_list(cls, v: Any) -> Any:
        return _str_list(v)

    @field_validator("noise", mode="before")
    @classmethod
    def _noise_forms(cls, v: Any) -> Any:
        return _noise_list(v)

    @field_validator("rates")
    @classmethod
    def _rates_in_range(cls, v: list[float] | None) -> list[float] | None:
        return _check_rates(v)


def _check_overrides(v: dict[str, Any], where: str = "overrides") -> dict[str, Any]:
    for key in v:
        if key in AXIS_FIELDS:
            hint = "hparams:" if key == "hparams" else f"the {key} axis"
            raise ValueError(f"{where} may not set {key!r}; set it through {hint}")
        if key not in RunConfig.model_fields:
            known = ", ".join(k for k in RunConfig.model_fields if k not in AXIS_FIELDS)
            raise ValueError(f"unknown run setting {key!r} in {where}; known: {known}")
    return v


class GridBlock(GridAxes):
    """One product of axes, with its own run overrides and per-method hyperparameters."""

    name: str | None = None
    preset: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    dataset_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    hparams: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_overrides(v)

    @field_validator("dataset_overrides")
    @classmethod
    def _dataset_overrides(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for ds, over in v.items():
            _check_overrides(over, f"dataset_overrides[{ds}]")
        return v


class CellPattern(_Strict):
    """Matches grid cells: each given field equals (one of) the value(s); unset fields match all."""

    method: list[str] | None = None
    dataset: list[str] | None = None
    noise: list[str] | None = None
    rate: list[float] | None = None
    seed: list[int] | None = None

    @field_validator("method", "dataset", "noise", "rate", "seed", mode="before")
    @classmethod
    def _scalar_to_list(cls, v: Any) -> Any:
        return _str_list(v)

    def matches(self, cell: GridCell) -> bool:
        checks = (
            (self.method, cell.method),
            (self.dataset, cell.dataset),
            (self.noise, cell.noise.name),
            (self.seed, cell.seed),
        )
        if any(allowed is not None and value not in allowed for allowed, value in checks):
            return False
        return self.rate is None or any(abs(cell.rate - r) < 1e-9 for r in self.rate)


class IncludeCell(_Strict):
    """One explicit cell, added after the blocks and the exclusions."""

    method: str
    dataset: str
    noise: NoiseSetting
    rate: float = 0.0
    seed: int = 0
    preset: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    hparams: dict[str, Any] = Field(default_factory=dict)

    @field_validator("noise", mode="before")
    @classmethod
    def _noise(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_overrides(v)


class CostSettings(_Strict):
    """Cost model: image-passes per run turned into time with an images/s throughput.

    cost = N_train × epochs × method factor + (N_val + N_test) × epochs × eval_factor, with split
    sizes from the dataset registry. ``images_per_s`` is the training throughput of one worker for
    a factor-1 method (forward + backward of one image); measured values from finished runs in the
    result root replace it (see :func:`measured_images_per_s`).
    """

    images_per_s: float = Field(400.0, gt=0)
    eval_factor: float = Field(1 / 3, ge=0)  # a forward-only pass costs about a third of a step
    method_factors: dict[str, float] = Field(default_factory=dict)
    # (train, val, test) sizes of datasets whose registry entry does not know them
    split_sizes: dict[str, tuple[int, int, int]] = Field(default_factory=dict)

    def factor(self, method: str) -> float:
        if method in self.method_factors:
            return self.method_factors[method]
        try:
            from lnmbench.methods import METHODS

            declared = getattr(METHODS.get(method), "cost_factor", None)
        except UnknownNameError:
            declared = None
        if declared is not None:
            return float(declared)
        return DEFAULT_METHOD_FACTORS.get(method, 1.0)


class GridSpec(GridAxes):
    """A benchmark grid (YAML). See ``grids/lnmbench.yaml`` and docs/running_the_benchmark.md."""

    name: str = "grid"
    description: str = ""
    preset: str = "fast"
    out: str | None = None  # default result root
    overrides: dict[str, Any] = Field(default_factory=dict)
    hparams: dict[str, dict[str, Any]] = Field(default_factory=dict)
    blocks: list[GridBlock] = Field(default_factory=list)
    include: list[IncludeCell] = Field(default_factory=list)
    exclude: list[CellPattern] = Field(default_factory=list)
    cost: CostSettings = Field(default_factory=CostSettings)

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_overrides(v)

    @model_validator(mode="after")
    def _check(self) -> GridSpec:
        known = preset_names()
        for p in [self.preset, *(b.preset for b in self.blocks), *(c.preset for c in self.include)]:
            if p is not None and p not in known:
                raise ValueError(f"unknown preset {p!r}; known: {', '.join(known)}")
        blocks = self.effective_blocks()
        for i, b in enumerate(blocks):
            label = b.name or f"#{i + 1}"
            for axis in ("methods", "datasets", "noise", "seeds"):
                if not getattr(b, axis):
                    raise ValueError(
                        f"block {label}: no {axis} (set {axis}: in the block or at the top level)"
                    )
            for ds in b.dataset_overrides:
                if ds not in (b.datasets or []):
                    raise ValueError(
                        f"block {label}: dataset_overrides for {ds!r}, which is not one of its "
                        f"datasets ({', '.join(b.datasets or [])})"
                    )
        in_grid = {m for b in blocks for m in b.methods or []} | {c.method for c in self.include}
        for where, hp in [("hparams", self.hparams)] + [
            (f"block {b.name or i + 1} hparams", b.hparams) for i, b in enumerate(blocks)
        ]:
            stray = sorted(set(hp) - in_grid - {"all"})
            if stray:
                raise ValueError(
                    f"{where}: {', '.join(stray)} not in the grid; keys are 'all' or methods of "
                    f"the grid ({', '.join(sorted(in_grid))})"
                )
        return self

    def effective_blocks(self) -> list[GridBlock]:
        """The blocks with the top-level axes filled in (one block when none are given)."""
        blocks = self.blocks or [GridBlock()]
        axes = ("methods", "datasets", "noise", "rates", "seeds")
        return [
            b.model_copy(
                update={a: getattr(self, a) for a in axes if getattr(b, a) is None},
            )
            for b in blocks
        ]


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid YAML; every error names the file and the bad field."""
    data = read_yaml_mapping(path, "grid spec")
    return parse_grid_spec(data, where=str(path))


def parse_grid_spec(data: dict[str, Any], where: str = "grid spec") -> GridSpec:
    try:
        return GridSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


# --------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class GridCell:
    """One point of the grid before resolution."""

    method: str
    dataset: str
    noise: NoiseSetting
    rate: float
    seed: int
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    block: str = ""

    def label(self) -> str:
        return (
            f"{self.method} / {self.dataset} / {self.noise.name} {self.rate:g} / seed {self.seed}"
        )

    def user_config(self) -> dict[str, Any]:
        """The user-level dict handed to ``resolve_config`` (progress off: the driver reports)."""
        noise: dict[str, Any] = {"name": self.noise.name, "rate": self.rate}
        if self.noise.params:
            noise["params"] = dict(self.noise.params)
        if self.noise.seed is not None:
            noise["seed"] = self.noise.seed
        return {
            **self.overrides,
            "preset": self.preset,
            "method": self.method,
            "dataset": self.dataset,
            "noise": noise,
            "seed": self.seed,
            "hparams": dict(self.hparams),
            "progress": False,
        }


ProblemKind = Literal[
    "unknown method",
    "unknown dataset",
    "unknown noise",
    "unknown model",
    "missing file",
    "missing data",
    "invalid",
]
# unregistered names and absent data: --skip-unknown leaves these cells out; "invalid" never
SKIPPABLE: tuple[ProblemKind, ...] = (
    "unknown method",
    "unknown dataset",
    "unknown noise",
    "unknown model",
    "missing file",
    "missing data",
)


@dataclass(frozen=True)
class CellProblem:
    """A cell that cannot run: an unregistered name, a missing file, or an invalid setting."""

    cell: GridCell
    kind: ProblemKind
    name: str
    message: str


@dataclass(frozen=True)
class PlannedRun:
    """A resolved run of the grid and its estimated cost in image-passes."""

    config: RunConfig
    cost: float
    block: str

    @property
    def name(self) -> str:
        return self.config.run_name()


@dataclass
class GridPlan:
    """The expansion of a spec: runs (unique by hash), problem cells, notes."""

    spec: GridSpec
    runs: list[PlannedRun]
    problems: list[CellProblem]
    duplicates: int = 0
    excluded: int = 0
    notes: list[str] = field(default_factory=list)

    def problem_summary(self) -> list[str]:
        """One line per (kind, name): how many cells, and the registered alternatives."""
        lines = []
        by_key: dict[tuple[str, str], list[CellProblem]] = {}
        for p in self.problems:
            by_key.setdefault((p.kind, p.name), []).append(p)
        for (kind, name), probs in sorted(by_key.items()):
            lines.append(f"{kind} {name!r} ({len(probs)} cells): {probs[0].message}")
        return lines

    def check(self, skip_unknown: bool) -> None:
        """Raise ConfigError when a problem cell would be left out silently."""
        fatal = [p for p in self.problems if not skip_unknown or p.kind not in SKIPPABLE]
        if not fatal:
            return
        kinds = {p.kind for p in fatal}
        lines = [f"{len(fatal)} cells of grid {self.spec.name!r} cannot run:"]
        lines += [f"  {x}" for x in GridPlan(self.spec, [], fatal).problem_summary()]
        if kinds & set(SKIPPABLE):
            lines.append(
                "  use --skip-unknown to run the other cells (or remove these names from the spec)"
            )
        raise ConfigError("\n".join(lines))


def _merge_all(*dicts: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        out = deep_merge(out, d or {})
    return out


def _noise_info(name: str) -> Any:
    from lnmbench.noise.base import GENERATOR_INFO

    return GENERATOR_INFO.get(name)


def _noise_rates(noise: NoiseSetting, block: GridBlock, label: str) -> list[float]:
    """The rates of a noise setting in a block: its own, else the block's; one cell (rate 0) for
    generators that ignore the rate; rate 0 when an optional rate (or an unregistered generator,
    reported later) has none."""
    info = _noise_info(noise.name)
    if info is not None and info.rate == "ignored":
        return [0.0]
    rates = noise.rates if noise.rates is not None else block.rates
    if rates:
        return rates
    if info is None or info.rate == "optional":
        return [0.0]
    raise ConfigError(
        f"block {label}: noise {noise.name!r} needs rates (set rates: in the block, at the top "
        "level, or in the noise setting)"
    )


def block_cells(spec: GridSpec, block: GridBlock, label: str) -> list[GridCell]:
    """The product of a block's axes, in order methods > datasets > noise > rates > seeds."""
    cells = []
    for method in block.methods or []:
        hp = _merge_all(
            spec.hparams.get("all"),
            spec.hparams.get(method),
            block.hparams.get("all"),
            block.hparams.get(method),
        )
        for dataset in block.datasets or []:
            over = _merge_all(spec.overrides, block.overrides, block.dataset_overrides.get(dataset))
            for noise in block.noise or []:
                rates = _noise_rates(noise, block, label)
                for rate in rates:
                    for seed in block.seeds or []:
                        cells.append(
                            GridCell(
                                method,
                                dataset,
                                noise,
                                float(rate),
                                seed,
                                block.preset or spec.preset,
                                over,
                                hp,
                                label,
                            )
                        )
    return cells


def grid_cells(spec: GridSpec) -> tuple[list[GridCell], int]:
    """Every cell of the spec (blocks minus exclusions, then includes); and the excluded count."""
    cells: list[GridCell] = []
    for i, block in enumerate(spec.effective_blocks()):
        cells += block_cells(spec, block, block.name or f"#{i + 1}")
    kept = [c for c in cells if not any(p.matches(c) for p in spec.exclude)]
    excluded = len(cells) - len(kept)
    for inc in spec.include:
        kept.append(
            GridCell(
                inc.method,
                inc.dataset,
                inc.noise,
                inc.rate,
                inc.seed,
                inc.preset or spec.preset,
                _merge_all(spec.overrides, inc.overrides),
                _merge_all(spec.hparams.get("all"), spec.hparams.get(inc.method), inc.hparams),
                "include",
            )
        )
    return kept, excluded


def _dataset_problem(cell: GridCell) -> CellProblem | None:
    from lnmbench.data import DATASETS, is_path_like

    if is_path_like(cell.dataset):
        if not Path(cell.dataset).exists():
            return CellProblem(cell, "missing file", cell.dataset, "file not found")
        return None
    if cell.dataset not in DATASETS:
        known = ", ".join(DATASETS.names())
        return CellProblem(
            cell, "unknown dataset", cell.dataset, f"not registered; registered: {known}"
        )
    return None


def cell_problem(cell: GridCell) -> CellProblem | None:
    """What prevents ``cell`` from being resolved, checked before resolution (cheap names first)."""
    from lnmbench.methods import METHODS
    from lnmbench.noise import NOISE

    if cell.method not in METHODS:
        known = ", ".join(METHODS.names())
        return CellProblem(
            cell, "unknown method", cell.method, f"not registered; registered: {known}"
        )
    if cell.noise.name not in NOISE:
        known = ", ".join(NOISE.names())
        return CellProblem(
            cell, "unknown noise", cell.noise.name, f"not registered; registered: {known}"
        )
    return _dataset_problem(cell)


def expand_grid(spec: GridSpec) -> GridPlan:
    """Resolve every cell; dedupe by config hash (first wins); collect problem cells."""
    cells, excluded = grid_cells(spec)
    runs: dict[str, PlannedRun] = {}
    problems: list[CellProblem] = []
    duplicates = 0
    notes: set[str] = set()
    for cell in cells:
        problem = cell_problem(cell)
        if problem is None:
            try:
                cfg = resolve_config(cell.user_config(), where=f"grid cell {cell.label()}")
            except LnmbenchError as exc:
                problem = CellProblem(cell, "invalid", cell.label(), str(exc))
            else:
                problem = resolved_problem(cell, cfg, notes)
        if problem is not None:
            problems.append(problem)
            continue
        h = cfg.config_hash()
        if h in runs:
            duplicates += 1
            continue
        runs[h] = PlannedRun(cfg, _cost_or_note(cfg, spec.cost, notes), cell.block)
    return GridPlan(spec, list(runs.values()), problems, duplicates, excluded, sorted(notes))


def is_downloadable(entry: Any) -> bool:
    """Whether a registered dataset is fetched on first use (MedMNIST) or must be prepared by the
    user (the real-world sets). Entries may say so with ``downloadable``; by default real-world-
    noise datasets are user-provided."""
    flag = getattr(entry, "downloadable", None)
    return bool(flag) if flag is not None else entry.info.noise != "real-world"


def resolved_problem(cell: GridCell, cfg: RunConfig, notes: set[str]) -> CellProblem | None:
    """Checks that need the resolved config: the model, the dataset at the run's image size, and
    whether its files are here (or downloadable). Adds non-fatal remarks to ``notes``."""
    import importlib.util

    from lnmbench.data import DATASETS, default_data_dir, is_path_like, is_present
    from lnmbench.models import MODELS

    if cfg.model not in MODELS:
        known = ", ".join(MODELS.names())
        return CellProblem(cell, "unknown model", cfg.model, f"not registered; registered: {known}")
    if MODELS.get(cfg.model).needs_timm and importlib.util.find_spec("timm") is None:
        notes.add(f"model {cfg.model} needs timm: pip install 'lnmbench[timm]'")
    if is_path_like(cfg.dataset):
        return None
    entry = DATASETS.get(cfg.dataset)
    if cfg.size not in entry.sizes:
        sizes = ", ".join(map(str, entry.sizes))
        return CellProblem(
            cell, "invalid", cfg.dataset, f"not available at {cfg.size} px (sizes: {sizes})"
        )
    root = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    if is_present(entry, root, cfg.size):
        return None
    if is_downloadable(entry):
        notes.add(
            f"dataset {cfg.dataset} ({cfg.size} px) is not in {root}; the first run fetches it"
        )
        return None
    return CellProblem(
        cell,
        "missing data",
        f"{cfg.dataset} ({cfg.size} px)",
        f"not prepared in {root} and not downloadable; bring its files and run "
        f"`lnmbench prepare {cfg.dataset} --root PATH --size {cfg.size}`",
    )


def _cost_or_note(cfg: RunConfig, cost: CostSettings, notes: set[str]) -> float:
    """The run's cost, or 0 with a note when the split sizes cannot be known."""
    try:
        value = run_cost(cfg, cost)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        # the run itself will report the unreadable file; the estimate just leaves it out
        notes.add(f"cost of runs on {cfg.dataset} unknown (cannot read its split sizes: {exc})")
        return 0.0
    if value == 0.0:
        notes.add(
            f"split sizes of {cfg.dataset} unknown: its runs are left out of the time "
            "estimate (set cost.split_sizes in the spec)"
        )
    return value


# --------------------------------------------------------------------------- cost model


@functools.lru_cache(maxsize=256)
def split_sizes(dataset: str) -> tuple[int, int, int]:
    """(train, val, test) sizes: from the dataset registry, or read from a user .npz."""
    from lnmbench.data import DATASETS, is_path_like

    if is_path_like(dataset):
        with np.load(dataset, mmap_mode="r") as f:
            return tuple(int(f[f"{s}_labels"].shape[0]) for s in ("train", "val", "test"))
    return DATASETS.get(dataset).split_sizes


def run_cost(cfg: RunConfig, cost: CostSettings) -> float:
    """Estimated image-passes of a run: N_train·E·factor + (N_val + N_test)·E·eval_factor.

    0 when the split sizes are unknown (a registry entry with sizes 0 and no ``cost.split_sizes``).
    """
    if cfg.dataset in cost.split_sizes:
        n_train, n_val, n_test = cost.split_sizes[cfg.dataset]
    else:
        n_train, n_val, n_test = split_sizes(cfg.dataset)
    return cfg.epochs * (n_train * cost.factor(cfg.method) + (n_val + n_test) * cost.eval_factor)


def throughput_key(cfg: RunConfig) -> str:
    """Runs sharing a key share a throughput: same backbone at the same image size."""
    return f"{cfg.model}@{cfg.size}"


def measured_images_per_s(plan: GridPlan, done_wall_s: dict[str, float]) -> dict[str, float]:
    """Throughput (image-passes/s) by :func:`throughput_key`, the median over finished runs.

    ``done_wall_s`` maps run names of finished runs to their wall time (``summary.json`` wall_s).
    """
    by_key: dict[str, list[float]] = {}
    for run in plan.runs:
        wall = done_wall_s.get(run.name)
        if wall and wall > 0:
            by_key.setdefault(throughput_key(run.config), []).append(run.cost / wall)
    return {k: float(np.median(v)) for k, v in by_key.items()}


def estimate_seconds(
    runs: list[PlannedRun], cost: CostSettings, measured: dict[str, float] | None = None
) -> float:
    """Sequential time of ``runs`` on one worker (divide by the parallel workers for wall time)."""
    measured = measured or {}
    return sum(r.cost / measured.get(throughput_key(r.config), cost.images_per_s) for r in runs)
