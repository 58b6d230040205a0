"""Label tables read from CSV files: image paths + label vectors per split, class encoding, label
policies applied to rater columns, a validation part carved from train, rows with blank labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from lnmbench.data.csv_spec import LabelPolicy
from lnmbench.data.splits import DatasetInfo
from lnmbench.errors import DatasetError

MISSING = -1  # encoded value of a blank label cell
_INT_LIKE = re.compile(r"^[+-]?\d+(\.0*)?$")


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
