"""Grid expansion: a grid spec (:mod:`lnmbench.experiment.grid_spec`) -> resolved, deduped runs.

Every cell of the spec's blocks (less the excluded, plus the included ones) is resolved with
:func:`lnmbench.experiment.config.resolve_config` and deduplicated by its config hash (= its run
folder). Cells naming something that is not registered are reported, not raised, so a dry run can
show them; a real run refuses them unless told to skip them.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from lnmbench.errors import ConfigError, LnmbenchError
from lnmbench.experiment.config import RunConfig, deep_merge, resolve_config
from lnmbench.experiment.grid_cost import CostSettings, run_cost
from lnmbench.experiment.grid_spec import GridBlock, GridSpec, NoiseSetting


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
SKIPPABLE: tuple[ProblemKind, ...] = tuple(k for k in get_args(ProblemKind) if k != "invalid")


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
    from lnmbench.noise import NOISE

    return NOISE.get(name) if name in NOISE else None


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
    if entry.downloadable:
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
