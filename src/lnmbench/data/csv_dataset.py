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

from pathlib import Path

import numpy as np
import pandas as pd

from lnmbench.data.csv_spec import (
    CsvDatasetSpec,
)
from lnmbench.data.label_tables import (
    DatasetSource,
    LabelTable,
    apply_policy,
    carve_validation,
    class_encoding,
    drop_missing,
    read_csv_checked,
)
from lnmbench.data.splits import SPLITS, DatasetInfo
from lnmbench.errors import DatasetError


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
