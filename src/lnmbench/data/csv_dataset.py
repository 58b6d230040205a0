"""Image datasets described by CSV files: image path column + label columns + a label policy.

A :class:`CsvDatasetSpec` (pydantic, YAML-loadable) says where each split's rows come from (one CSV
per split, or one CSV with a split column, or a validation part carved from train), which column
holds the image path, and how the *noisy* (training, observed) label and the *reference* (clean,
expert / consensus) label of a row are chosen by a :class:`LabelPolicy`:

- ``column``: a named column;
- ``rater``: one named rater out of ``raters`` (a column per rater);
- ``random_rater``: per row, one of the raters that labelled it, uniformly at random from
  ``numpy.random.default_rng(seed)`` (one generator per split, rows in CSV order);
- ``majority``: the most frequent label among the raters that labelled the row; ties are broken by
  ``tie_break``: ``lowest`` (smallest class index, the default; for ordinal grades the milder one),
  ``highest``, or ``random`` (uniform among the tied classes, seeded as above).

Blank cells are "not labelled": raters skip them; a blank chosen label is an error unless
``missing_labels: drop`` (then the row is dropped and counted). Label values are integer class
indices or class names; names map through ``class_mapping`` / ``class_names`` or, when neither is
given, to the sorted (Python string order) distinct names of all label columns used. Indices
outside [0, C) are refused.

:func:`read_spec_source` turns a spec plus a root folder into a :class:`DatasetSource`: one
:class:`LabelTable` per split (image paths and label vectors), ready for ``prepare``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lnmbench.data.splits import SPLITS, DatasetInfo
from lnmbench.errors import ConfigError, DatasetError

MISSING = -1  # encoded value of a blank label cell
_INT_LIKE = re.compile(r"^[+-]?\d+(\.0*)?$")


# --------------------------------------------------------------------------- spec


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


# --------------------------------------------------------------------------- tables


@dataclass
class LabelTable:
    """One split as read from its CSV: N image paths and label vectors.

    ``noisy`` / ``reference`` are (N,) int64 or None; ``lines`` (N,) the CSV line numbers (header
    = line 1); ``groups`` (N,) optional group ids for carving a validation split.
    """

    csv: str
    images: list[Path]
    names: list[str]
    lines: np.ndarray
    noisy: np.ndarray | None
    reference: np.ndarray | None
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def take(self, keep: np.ndarray) -> LabelTable:
        """The rows where ``keep`` (N,) bool is true (or the rows of an index array)."""
        idx = np.flatnonzero(keep) if keep.dtype == bool else np.asarray(keep)

        def sub(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return replace(
            self,
            images=[self.images[i] for i in idx],
            names=[self.names[i] for i in idx],
            lines=self.lines[idx],
            noisy=sub(self.noisy),
            reference=sub(self.reference),
            groups=sub(self.groups),
        )


@dataclass
class DatasetSource:
    """A dataset as read from its files, before decoding: metadata and one table per split.

    ``labels`` describes per split where the noisy / reference labels come from; ``settings`` is
    everything that defines the prepared cache besides the files (spec or preset options).
    """

    info: DatasetInfo
    root: Path
    tables: dict[str, LabelTable]
    csv_files: list[Path]
    labels: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    class_mapping: dict[str, int] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_csv_checked(path: Path, columns: Iterable[str], layout_hint: str = "") -> pd.DataFrame:
    """Read ``path`` with every cell as text (blank = ""); missing file or columns are one clear
    error that names them and the columns present."""
    hint = f" Expected layout: {layout_hint}" if layout_hint else ""
    if not path.is_file():
        raise DatasetError(f"CSV file {path} not found.{hint}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:
        raise DatasetError(f"cannot read {path} as CSV: {type(exc).__name__}: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path} lacks the column(s) {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, frame.columns))}.{hint}"
        )
    return frame


def is_int_like(text: str) -> bool:
    return bool(_INT_LIKE.match(text))


@dataclass(frozen=True)
class ClassEncoding:
    """Label text -> class index. ``names`` are the C class names in index order."""

    names: tuple[str, ...]
    mapping: dict[str, int]  # explicit text -> index (class names included)
    inferred_from_names: bool  # names were inferred from the data (sorted distinct values)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def encode(self, values: Sequence[str], where: str, lines: np.ndarray) -> np.ndarray:
        """Text cells (N,) -> int64 (N,), blank -> MISSING; unknown or out-of-range is an error."""
        out = np.full(len(values), MISSING, dtype=np.int64)
        bad: list[str] = []
        for i, raw in enumerate(values):
            v = raw.strip()
            if v == "":
                continue
            if v in self.mapping:
                out[i] = self.mapping[v]
            elif is_int_like(v):
                out[i] = int(float(v))
            else:
                bad.append(f"line {lines[i]}: {v!r} is not a class (known: {list(self.mapping)})")
                continue
            if not 0 <= out[i] < self.num_classes:
                bad.append(
                    f"line {lines[i]}: label {v!r} is outside the {self.num_classes} classes "
                    f"[0, {self.num_classes - 1}]"
                )
        if bad:
            shown = "; ".join(bad[:10]) + (f"; ... {len(bad) - 10} more" if len(bad) > 10 else "")
            raise DatasetError(f"{where}: {len(bad)} bad label value(s): {shown}")
        return out


def class_encoding(
    spec_names: Sequence[str] | None,
    spec_mapping: dict[str, int] | None,
    num_classes: int | None,
    values: Iterable[str],
) -> ClassEncoding:
    """Decide the class names and text -> index mapping from the spec and all label cells used.

    Integer cells are class indices. Name cells map through ``spec_mapping`` then ``spec_names``
    (position = index); with neither given, the distinct names sorted as strings become the
    classes. Without names, C is ``num_classes`` or the largest index + 1.
    """
    cells = {v.strip() for v in values} - {""}
    mapping = dict(spec_mapping or {})
    for i, name in enumerate(spec_names or []):
        mapping.setdefault(name, i)
    names_in_data = sorted(v for v in cells if v not in mapping and not is_int_like(v))
    inferred = False
    if names_in_data:
        if spec_names or spec_mapping:
            raise DatasetError(
                f"label value(s) {names_in_data[:10]} are neither class indices nor known class "
                f"names; known: {sorted(mapping)}"
            )
        ints = sorted(v for v in cells if is_int_like(v))
        if ints:
            raise DatasetError(
                f"label columns mix class indices {ints[:5]} and class names {names_in_data[:5]}; "
                "give 'class_names' or 'class_mapping' in the spec"
            )
        mapping = {n: i for i, n in enumerate(names_in_data)}
        inferred = True
    if spec_names:
        names = tuple(spec_names)
    elif mapping and not any(is_int_like(v) for v in cells - set(mapping)):
        c = num_classes or max(mapping.values()) + 1
        by_index: dict[int, str] = {}
        for n, i in mapping.items():
            by_index.setdefault(i, n)
        names = tuple(by_index.get(i, str(i)) for i in range(c))
    else:
        top = max([int(float(v)) for v in cells if is_int_like(v)] + list(mapping.values()) + [0])
        names = tuple(str(i) for i in range(num_classes or top + 1))
    if num_classes is not None and num_classes != len(names):
        raise DatasetError(f"num_classes {num_classes} but {len(names)} class names {names}")
    bad_map = {k: v for k, v in mapping.items() if not 0 <= v < len(names)}
    if bad_map:
        raise DatasetError(f"class_mapping sends {bad_map} outside the {len(names)} classes")
    return ClassEncoding(names, mapping, inferred)


def apply_policy(
    policy: LabelPolicy, encoded: dict[str, np.ndarray], num_classes: int
) -> np.ndarray:
    """The chosen label (N,) int64 (MISSING where no rater labelled the row).

    ``encoded`` maps each column of ``policy.columns()`` to its encoded (N,) vector.
    """
    if policy.policy == "column":
        return encoded[policy.column].copy()
    if policy.policy == "rater":
        return encoded[policy.rater].copy()
    votes = np.stack([encoded[c] for c in policy.raters], axis=1)  # (N, R)
    present = votes != MISSING
    n_present = present.sum(axis=1)
    out = np.full(len(votes), MISSING, dtype=np.int64)
    rng = np.random.default_rng(policy.seed)
    if policy.policy == "random_rater":
        u = rng.random(len(votes))
        pick = np.minimum((u * n_present).astype(np.int64), np.maximum(n_present - 1, 0))
        # position of the pick-th present rater in each row
        rank = np.cumsum(present, axis=1) - 1
        hit = present & (rank == pick[:, None])
        rows = np.flatnonzero(n_present > 0)
        out[rows] = votes[rows, hit[rows].argmax(axis=1)]
        return out
    counts = np.zeros((len(votes), num_classes), dtype=np.int64)
    for r in range(votes.shape[1]):
        ok = present[:, r]
        np.add.at(counts, (np.flatnonzero(ok), votes[ok, r]), 1)
    best = counts.max(axis=1, keepdims=True)
    tied = (counts == best) & (best > 0)
    if policy.tie_break == "lowest":
        choice = tied.argmax(axis=1)
    elif policy.tie_break == "highest":
        choice = num_classes - 1 - tied[:, ::-1].argmax(axis=1)
    else:
        u = rng.random(len(votes))
        n_tied = tied.sum(axis=1)
        pick = np.minimum((u * n_tied).astype(np.int64), np.maximum(n_tied - 1, 0))
        rank = np.cumsum(tied, axis=1) - 1
        choice = (tied & (rank == pick[:, None])).argmax(axis=1)
    rows = np.flatnonzero(n_present > 0)
    out[rows] = choice[rows]
    return out


def carve_validation(
    table: LabelTable, fraction: float, seed: int
) -> tuple[LabelTable, LabelTable]:
    """Split ``table`` into (train, val): a permutation of the distinct groups (or rows) from
    ``default_rng(seed)``; the first ceil(fraction * groups) groups form val."""
    groups = table.groups if table.groups is not None else np.arange(len(table))
    uniq, inverse = np.unique(groups, return_inverse=True)
    if len(uniq) < 2:
        raise DatasetError(f"{table.csv}: cannot carve a validation split from {len(uniq)} group")
    order = np.random.default_rng(seed).permutation(len(uniq))
    n_val = min(max(1, int(np.ceil(fraction * len(uniq)))), len(uniq) - 1)
    in_val = np.zeros(len(uniq), dtype=bool)
    in_val[order[:n_val]] = True
    val_rows = in_val[inverse]
    return table.take(~val_rows), table.take(val_rows)


def drop_missing(
    table: LabelTable, policy: Literal["error", "drop"], counts: dict[str, int]
) -> LabelTable:
    """Rows whose chosen noisy or reference label is blank: one error, or dropped and counted."""
    miss = np.zeros(len(table), dtype=bool)
    for arr in (table.noisy, table.reference):
        if arr is not None:
            miss |= arr == MISSING
    if not miss.any():
        return table
    if policy == "error":
        lines = table.lines[miss].tolist()
        shown = ", ".join(map(str, lines[:20])) + (" ..." if len(lines) > 20 else "")
        raise DatasetError(
            f"{table.csv}: {len(lines)} row(s) have no label under the chosen policy (blank "
            f"cells), lines {shown}; fill them or set 'missing_labels: drop' to drop and count them"
        )
    counts["missing label"] = counts.get("missing label", 0) + int(miss.sum())
    return table.take(~miss)


def read_spec_source(spec: CsvDatasetSpec, root: str | Path) -> DatasetSource:
    """Read every CSV of ``spec`` under ``root`` into label tables (no image is opened)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"root folder {root} does not exist")
    frames: dict[str, pd.DataFrame] = {}
    for s, src in spec.splits.items():
        cols = [spec.image_column]
        cols += [c for p in (src.noisy, src.reference) if p for c in p.columns()]
        if src.split_value is not None:
            cols.append(spec.split_column)
        if s == "train" and spec.val_from_train and spec.val_from_train.group_column:
            cols.append(spec.val_from_train.group_column)
        frame = read_csv_checked(root / src.csv, cols)
        if src.split_value is not None:
            keep = frame[spec.split_column].str.strip() == src.split_value
            frame = frame[keep.to_numpy()]
            if frame.empty:
                raise DatasetError(
                    f"{root / src.csv}: no row has {spec.split_column} == {src.split_value!r} "
                    f"(split {s})"
                )
        frames[s] = frame
    used = [
        v
        for s, src in spec.splits.items()
        for p in (src.noisy, src.reference)
        if p
        for c in p.columns()
        for v in frames[s][c].tolist()
    ]
    enc = class_encoding(spec.class_names, spec.class_mapping, spec.num_classes, used)
    c = enc.num_classes
    tables: dict[str, LabelTable] = {}
    dropped: dict[str, dict[str, int]] = {}
    for s, src in spec.splits.items():
        frame = frames[s]
        where = str(root / src.csv)
        lines = frame.index.to_numpy() + 2
        labels: dict[str, np.ndarray | None] = {}
        for kind, pol in (("noisy", src.noisy), ("reference", src.reference)):
            if pol is None:
                labels[kind] = None
                continue
            encoded = {
                col: enc.encode(frame[col].tolist(), f"{where} column {col!r}", lines)
                for col in pol.columns()
            }
            labels[kind] = apply_policy(pol, encoded, c)
        names = [v.strip() for v in frame[spec.image_column].tolist()]
        empty = [int(ln) for ln, v in zip(lines, names, strict=True) if not v]
        if empty:
            raise DatasetError(f"{where}: empty {spec.image_column!r} at lines {empty[:20]}")
        names = [v + spec.image_suffix for v in names]
        groups = None
        if s == "train" and spec.val_from_train and spec.val_from_train.group_column:
            groups = frame[spec.val_from_train.group_column].to_numpy(dtype=str)
        table = LabelTable(
            csv=where,
            images=[root / spec.image_root / v for v in names],
            names=names,
            lines=lines,
            noisy=labels["noisy"],
            reference=labels["reference"],
            groups=groups,
        )
        dropped[s] = {}
        tables[s] = drop_missing(table, spec.missing_labels, dropped[s])
    if spec.val_from_train is not None:
        vt = spec.val_from_train
        tables["train"], tables["val"] = carve_validation(tables["train"], vt.fraction, vt.seed)
        dropped["val"] = {}
    describe = {
        s: {
            "csv": src.csv,
            "split_value": src.split_value,
            "noisy": src.noisy.describe() if src.noisy else None,
            "reference": src.reference.describe() if src.reference else None,
        }
        for s, src in spec.splits.items()
    }
    if spec.val_from_train is not None:
        describe["val"] = {
            **describe["train"],
            "carved_from_train": spec.val_from_train.model_dump(),
        }
    real = tables["train"].noisy is not None
    info = DatasetInfo(
        name=spec.name,
        modality=spec.modality,
        class_names=enc.names,
        in_chans=spec.in_chans,
        ordinal=spec.ordinal,
        noise="real-world" if real else "synthetic",
        source=spec.source or f"CSV dataset spec, root {root}",
        license=spec.license,
    )
    csvs = list(dict.fromkeys(root / src.csv for src in spec.splits.values()))
    return DatasetSource(
        info=info,
        root=root,
        tables={s: tables[s] for s in SPLITS},
        csv_files=csvs,
        labels=describe,
        settings={"spec": spec.model_dump(mode="json")},
        class_mapping=enc.mapping or None,
        dropped=dropped,
    )
