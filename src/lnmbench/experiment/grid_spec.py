"""The grid spec (YAML, pydantic-validated): blocks of axes, overrides, include/exclude, cost.

A grid is a list of ``blocks``; each block is the product methods × datasets × noise settings ×
rates × seeds, so different parts of the benchmark can have different axes (synthetic-noise
MedMNIST sets with a rate grid; real-world sets with the noise ``realworld`` and no rate). Axes
given at the top level are defaults that every block inherits; a spec without ``blocks`` is one
block. ``exclude`` patterns remove cells of the blocks; ``include`` adds explicit cells.
:mod:`lnmbench.experiment.grid` expands a spec into runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lnmbench.errors import ConfigError
from lnmbench.experiment.config import (
    RunConfig,
    format_validation_error,
    preset_names,
    read_yaml_mapping,
)
from lnmbench.experiment.grid_cost import CostSettings

if TYPE_CHECKING:
    from lnmbench.experiment.grid import GridCell

# RunConfig fields set by the grid axes (or by hparams:); overrides may not set them
AXIS_FIELDS = ("method", "dataset", "seed", "noise", "hparams")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
