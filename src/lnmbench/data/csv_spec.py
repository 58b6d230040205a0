"""The CSV dataset spec (pydantic, YAML-loadable): where each split's rows come from, which
columns hold the image path and the labels, and the :class:`LabelPolicy` that picks the noisy and
the reference label of a row. See :mod:`lnmbench.data.csv_dataset` for the policies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lnmbench.errors import ConfigError


class LabelPolicy(BaseModel):
    """How one label of a row is chosen; a bare string ``s`` in YAML means ``{column: s}``."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["column", "rater", "random_rater", "majority"] = "column"
    column: str | None = None  # policy "column"
    raters: list[str] = Field(default_factory=list)  # rater / random_rater / majority
    rater: str | None = None  # policy "rater": which of ``raters``
    seed: int = 0  # random_rater, and majority with tie_break "random"
    tie_break: Literal["lowest", "highest", "random"] = "lowest"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"policy": "column", "column": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check(self) -> LabelPolicy:
        if self.policy == "column" and not self.column:
            raise ValueError("policy 'column' needs 'column: <name>'")
        if self.policy != "column" and not self.raters:
            raise ValueError(f"policy {self.policy!r} needs 'raters: [<column>, ...]'")
        if self.policy == "rater" and self.rater not in self.raters:
            raise ValueError(f"policy 'rater' needs 'rater:' set to one of {self.raters}")
        return self

    def columns(self) -> list[str]:
        """The CSV columns this policy reads."""
        return [self.column] if self.policy == "column" else list(self.raters)

    def describe(self) -> str:
        if self.policy == "column":
            return f"column {self.column!r}"
        if self.policy == "rater":
            return f"rater {self.rater!r} of {self.raters}"
        if self.policy == "random_rater":
            return f"random rater per row of {self.raters} (seed {self.seed})"
        extra = f", seed {self.seed}" if self.tie_break == "random" else ""
        return f"majority vote of {self.raters} (ties: {self.tie_break}{extra})"


class SplitSource(BaseModel):
    """Where one split's rows come from and how its labels are chosen.

    ``noisy`` is the observed training label, ``reference`` the clean one (either may be absent;
    a test split needs one of them and uses ``reference`` when both are given).
    """

    model_config = ConfigDict(extra="forbid")

    csv: str  # relative to the root folder
    split_value: str | None = None  # rows whose spec.split_column equals this value
    noisy: LabelPolicy | None = None
    reference: LabelPolicy | None = None

    @model_validator(mode="after")
    def _check(self) -> SplitSource:
        if self.noisy is None and self.reference is None:
            raise ValueError("a split needs 'noisy:' and/or 'reference:' labels")
        return self


class ValidationCarve(BaseModel):
    """Carve the validation split out of train: whole groups (e.g. patients), seeded."""

    model_config = ConfigDict(extra="forbid")

    fraction: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = 0
    group_column: str | None = None  # rows of one group stay together; None: each row alone


class CsvDatasetSpec(BaseModel):
    """A user's dataset: CSV(s) with an image column and label columns (see module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    modality: str = "user data"
    class_names: list[str] | None = None
    num_classes: int | None = Field(None, ge=2)
    class_mapping: dict[str, int] | None = None  # label text -> class index
    ordinal: bool = False
    in_chans: Literal[1, 3] = 3
    image_column: str = "image"
    image_root: str = "."  # folder of the images, relative to the root folder
    image_suffix: str = ""  # appended to the image column's value (e.g. ".jpg")
    split_column: str | None = None
    splits: dict[Literal["train", "val", "test"], SplitSource]
    val_from_train: ValidationCarve | None = None
    missing_labels: Literal["error", "drop"] = "error"
    source: str = ""
    license: str = ""

    @model_validator(mode="after")
    def _check(self) -> CsvDatasetSpec:
        have = set(self.splits)
        if "train" not in have or "test" not in have:
            raise ValueError("'splits' needs at least 'train' and 'test'")
        if ("val" in have) == (self.val_from_train is not None):
            raise ValueError("give either a 'val' split or 'val_from_train', not both or neither")
        for s, src in self.splits.items():
            if src.split_value is not None and self.split_column is None:
                raise ValueError(f"split {s!r} has split_value but 'split_column' is not set")
        val = self.splits.get("val")
        if val is not None and (val.noisy is None) != (self.splits["train"].noisy is None):
            raise ValueError("train and val must both have 'noisy' labels, or neither")
        if self.class_names is not None:
            if len(set(self.class_names)) != len(self.class_names):
                raise ValueError("class_names must be distinct")
            if self.num_classes is not None and self.num_classes != len(self.class_names):
                raise ValueError(
                    f"num_classes {self.num_classes} != {len(self.class_names)} class_names"
                )
        return self


def load_spec(path: str | Path) -> CsvDatasetSpec:
    """Read a :class:`CsvDatasetSpec` from YAML; errors name the file and the bad fields."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"dataset spec {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        return CsvDatasetSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"invalid dataset spec {path}:"]
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(root)"
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
