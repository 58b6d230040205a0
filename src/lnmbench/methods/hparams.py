"""Hyperparameters as data: the training settings every method shares, and their resolution."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field, TypeAdapter, ValidationError

from lnmbench.errors import ConfigError
from lnmbench.methods.common.forget_schedule import LinearDecayBeta1Schedule

# constrained field types of hyperparameter dataclasses (validated by resolve_hparams)
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
UnitFloat = Annotated[float, Field(ge=0, lt=1)]  # in [0, 1)
Probability = Annotated[float, Field(ge=0, le=1)]  # in [0, 1]


@dataclass
class TrainHparams:
    """Settings shared by all methods; each method subclasses this with its own fields.

    Milestones and other epoch counts in the schedule are given at the reference length
    ``ref_epochs`` (the paper's 50) and scaled to the run's epoch budget.
    """

    batch_size: PositiveInt = 128
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: PositiveFloat = 0.01
    momentum: UnitFloat = 0.9
    nesterov: bool = False
    weight_decay: NonNegativeFloat = 0.0
    betas: tuple[UnitFloat, UnitFloat] = (0.9, 0.999)
    # linear_decay: constant, then linear to 1/(E − e_d) from e_d = the first milestone, Adam's
    # β₁ 0.9 -> 0.1 from e_d (the Co-teaching family's schedule; DISC's above 0.6 noise)
    schedule: Literal["multistep", "constant", "cosine", "linear_decay"] = "multistep"
    milestones: tuple[NonNegativeInt, ...] = (10, 20)
    gamma: PositiveFloat = 0.1
    ref_epochs: PositiveInt = 50
    grad_clip: PositiveFloat | None = None  # global L2 gradient-norm bound

    def __post_init__(self) -> None:
        """Checks beyond the declared types and ranges (subclasses extend it)."""


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    """The pydantic validator derived from a hyperparameter dataclass (its types, the
    ``Field`` constraints of its annotations, then its ``__post_init__`` checks)."""
    return TypeAdapter(cls)


def _field_type(cls: type, key: str) -> Any:
    """The declared type of field ``key`` with its ``Annotated`` extras (``X | None`` -> X)."""
    t = typing.get_type_hints(cls, include_extras=True).get(key)
    args = [a for a in typing.get_args(t) if a is not type(None)]
    if typing.get_origin(t) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return t


def _bounds(t: Any) -> str:
    """The declared range of an ``Annotated`` type as text: "in [0, 1)", "> 0", ">= 1" or ""."""
    lo = hi = None
    for meta in getattr(t, "__metadata__", ()):
        for c in getattr(meta, "metadata", [meta]):  # a pydantic Field holds annotated_types
            if isinstance(c, Gt):
                lo = ("(", c.gt)
            elif isinstance(c, Ge):
                lo = ("[", c.ge)
            elif isinstance(c, Lt):
                hi = (")", c.lt)
            elif isinstance(c, Le):
                hi = ("]", c.le)
    if lo and hi:
        return f"in {lo[0]}{lo[1]:g}, {hi[1]:g}{hi[0]}"
    if lo:
        return f"{'>' if lo[0] == '(' else '>='} {lo[1]:g}"
    if hi:
        return f"{'<' if hi[0] == ')' else '<='} {hi[1]:g}"
    return ""


def _expected(cls: type, err: Any) -> str:
    """A pydantic error of one field as "expected ..." text."""
    kind = err["type"]
    loc = err["loc"]
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        t = _field_type(cls, str(loc[0]))
        where = ""
        if len(loc) > 1 and isinstance(loc[1], int):  # an element of a tuple
            args = typing.get_args(t)
            t = args[0] if len(args) == 2 and args[1] is Ellipsis else args[loc[1]]
            where = f"element {loc[1]}: "
        base = typing.get_args(t)[0] if typing.get_args(t) else t
        number = "an integer" if base is int else "a number"
        bounds = _bounds(t)
        return f"{where}expected {number} {bounds}" if bounds else where + err["msg"].lower()
    if kind in ("float_parsing", "float_type"):
        return "expected a number"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "expected an integer"
    if kind in ("bool_parsing", "bool_type"):
        return "expected true or false"
    if kind in ("tuple_type", "list_type", "too_short", "too_long"):
        return f"expected a list such as [10,20] ({err['msg'].lower()})"
    if kind == "literal_error":
        known = err["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"unknown value; known: {known}"
    if kind == "value_error":
        return err["msg"].removeprefix("Value error, ")
    return err["msg"].lower()


def resolve_hparams(cls: type, overrides: dict[str, Any] | None, where: str) -> Any:
    """Build ``cls`` (a hyperparameter dataclass) from its defaults and ``overrides``.

    Values are coerced to the declared types (``"1e-3"`` for a float, ``[5, 10]`` for a tuple)
    and checked against the declared ranges by a pydantic validator derived from the dataclass;
    unknown keys and bad values raise a one-line ConfigError, e.g.
    ``command line: method 'ce': lr=-1: expected a number > 0``.
    """
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown hyperparameter(s) {unknown}; known: {', '.join(sorted(names))}"
        )
    try:
        return _adapter(cls).validate_python(overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if err["loc"]:
                key = str(err["loc"][0])
                value = overrides.get(key, err.get("input"))
                problems.append(f"{key}={value}: {_expected(cls, err)}")
            else:  # a check of the dataclass's __post_init__
                problems.append(_expected(cls, err))
        raise ConfigError(f"{where}: {'; '.join(problems)}") from None


def hparams_dict(hp: Any) -> dict[str, Any]:
    """A JSON/YAML-friendly dict of a hyperparameter dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(hp).items()}


def scaled_epoch(e: int | float, hp: TrainHparams, epochs: int) -> int:
    """An epoch count given at ``hp.ref_epochs`` scaled to a run of ``epochs`` epochs."""
    return max(0, round(e * epochs / hp.ref_epochs))


def make_optimizer(params, hp: TrainHparams, **override: Any) -> torch.optim.Optimizer:
    """The optimiser ``hp`` describes (weight decay coupled, as in the reference code)."""
    name = override.get("optimizer", hp.optimizer)
    lr = override.get("lr", hp.lr)
    wd = override.get("weight_decay", hp.weight_decay)
    if name == "sgd":
        momentum = override.get("momentum", hp.momentum)
        nesterov = override.get("nesterov", hp.nesterov) and momentum > 0
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(
            params, lr=lr, betas=override.get("betas", hp.betas), weight_decay=wd
        )
    raise ConfigError(f"unknown optimizer {name!r}; known: adam, sgd")


def make_scheduler(opt: torch.optim.Optimizer, hp: TrainHparams, epochs: int) -> Any:
    """Per-epoch LR schedule (stepped after each epoch; ``state_dict`` for resume)."""
    if hp.schedule == "multistep":
        milestones = sorted({scaled_epoch(m, hp, epochs) for m in hp.milestones})
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=hp.gamma)
    if hp.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    if hp.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    if hp.schedule == "linear_decay":
        if not hp.milestones:
            raise ConfigError("schedule linear_decay needs milestones: [e_d] (its decay start)")
        return LinearDecayBeta1Schedule(opt, epochs, scaled_epoch(min(hp.milestones), hp, epochs))
    raise ConfigError(
        f"unknown schedule {hp.schedule!r}; known: constant, cosine, linear_decay, multistep"
    )


def default_field(value: Any) -> Any:
    """``field(default_factory=...)`` for mutable defaults in hyperparameter dataclasses."""
    return field(default_factory=lambda: value)
