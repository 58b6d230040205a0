"""CheXpert (Irvin et al., AAAI 2019) as a 5-class single-label task with real label noise.

Construction (documented in docs/real_world_datasets.md):

1. Read the official CSVs: ``train.csv`` (labels from the automatic report labeler: the noisy
   labels, clean unknown) and the radiologist-labelled test file (``valid.csv`` by default, or the
   CheXpert test release's ``test_labels.csv`` via ``test_csv``): the clean test labels.
2. Keep frontal images (``Frontal/Lateral`` == ``Frontal``; without that column, file names
   containing ``frontal``) unless ``frontal_only`` is false.
3. For the five competition findings (Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural
   Effusion) read 1 / 0 / -1 / blank; blank is 0 (not mentioned). The uncertain policy maps -1:
   ``u-ones`` -> 1, ``u-zeros`` -> 0, ``u-ignore`` (default) -> the image is dropped when any of
   the five is uncertain (its label set is unknown).
4. Keep images with exactly one positive among the five; its index is the class. Images with no
   positive or with several are dropped. Every drop is counted by reason in the manifest.
5. Validation: a patient-grouped ``val_fraction`` of the kept ``train.csv`` rows (seeded with
   ``split_seed``), noisy like train. Train and val have ``clean_known`` False.

Image paths in the CSVs start with the dataset folder (``CheXpert-v1.0-small/train/...``); a
leading component starting with ``CheXpert`` is replaced by the folder holding the CSVs, so a
renamed folder works.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from lnmbench.data.label_tables import DatasetSource, LabelTable, carve_validation
from lnmbench.data.splits import DatasetInfo
from lnmbench.errors import DatasetError

FINDINGS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
FOLDER_NAMES = ("CheXpert-v1.0-small", "CheXpert-v1.0")
LAYOUT = (
    "ROOT/CheXpert-v1.0-small/ (or CheXpert-v1.0/, or ROOT itself) holding train.csv and "
    "valid.csv (official columns: Path, Frontal/Lateral, and the observation columns including "
    + ", ".join(FINDINGS)
    + ") and the train/ and valid/ image folders the Path column points to"
)
DROP_REASONS = (
    "lateral view",
    "uncertain finding (u-ignore)",
    "no positive finding",
    "several positive findings",
)

INFO = DatasetInfo(
    name="chexpert",
    modality="chest X-ray",
    class_names=FINDINGS,
    in_chans=1,
    ordinal=False,
    noise="real-world",
    source="CheXpert v1.0 (Irvin et al., AAAI 2019), user-provided files",
    license="Stanford CheXpert Dataset Research Use Agreement (no redistribution)",
)


class ChexpertOptions(BaseModel):
    """Options of the CheXpert construction (``lnmbench prepare chexpert --set key=value``)."""

    model_config = ConfigDict(extra="forbid")

    uncertain: Literal["u-ones", "u-zeros", "u-ignore"] = "u-ignore"
    frontal_only: bool = True
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    split_seed: int = 0
    test_csv: str = "valid.csv"


def finding_values(frame: pd.DataFrame, where: str) -> np.ndarray:
    """The five finding columns as int8 (N, 5) in {1, 0, -1}; blank cells are 0."""
    out = np.zeros((len(frame), len(FINDINGS)), dtype=np.int8)
    for j, col in enumerate(FINDINGS):
        cells = frame[col].str.strip().to_numpy(dtype=str)
        for value, code in (("1", 1), ("0", 0), ("-1", -1)):
            out[np.isin(cells, [value, value + ".0"]), j] = code
        unknown = ~np.isin(cells, ["", "1", "1.0", "0", "0.0", "-1", "-1.0"])
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise DatasetError(
                f"{where}: column {col!r} must hold 1, 0, -1 or blank; line {i + 2} has "
                f"{str(cells[i])!r}"
            )
    return out


def single_label(
    findings: np.ndarray, uncertain: Literal["u-ones", "u-zeros", "u-ignore"]
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 5) findings -> (label (N,) int64, -1 where dropped; reason (N,) str, "" where kept)."""
    f = findings.copy()
    reason = np.full(len(f), "", dtype=object)
    if uncertain == "u-ignore":
        reason[(f == -1).any(axis=1)] = DROP_REASONS[1]
    f[f == -1] = 1 if uncertain == "u-ones" else 0
    positives = (f == 1).sum(axis=1)
    undecided = reason == ""
    reason[undecided & (positives == 0)] = DROP_REASONS[2]
    reason[undecided & (positives > 1)] = DROP_REASONS[3]
    label = np.where(reason == "", (f == 1).argmax(axis=1), -1).astype(np.int64)
    return label, reason.astype(str)


def _csv_dir(root: Path) -> Path:
    for d in (root / FOLDER_NAMES[0], root / FOLDER_NAMES[1], root):
        if (d / "train.csv").is_file():
            return d
    raise DatasetError(f"CheXpert train.csv not found under {root}. Expected layout: {LAYOUT}")


def _image_path(csv_dir: Path, value: str) -> Path:
    parts = PurePosixPath(value.strip().replace("\\", "/")).parts
    if parts and parts[0].lower().startswith("chexpert"):
        parts = parts[1:]
    return csv_dir.joinpath(*parts)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"CheXpert file {path} not found. Expected layout: {LAYOUT}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in ("Path", *FINDINGS) if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path} lacks the column(s) {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, frame.columns))}. Expected the official CheXpert CSV format"
        )
    return frame


def _table(
    path: Path, csv_dir: Path, opts: ChexpertOptions, noisy: bool
) -> tuple[LabelTable, dict]:
    frame = _read(path)
    where = str(path)
    lines = np.arange(len(frame)) + 2
    label, reason = single_label(finding_values(frame, where), opts.uncertain)
    if opts.frontal_only:
        if "Frontal/Lateral" in frame.columns:
            frontal = frame["Frontal/Lateral"].str.strip().str.lower().to_numpy() == "frontal"
        else:
            frontal = frame["Path"].str.lower().str.contains("frontal").to_numpy()
        reason = np.where(frontal, reason, DROP_REASONS[0])
        label = np.where(frontal, label, -1)
    keep = reason == ""
    dropped = {r: int((reason == r).sum()) for r in DROP_REASONS if (reason == r).any()}
    values = frame["Path"].tolist()
    patients = [m.group(0) if (m := re.search(r"patient\d+", v)) else v for v in values]
    table = LabelTable(
        csv=where,
        images=[_image_path(csv_dir, v) for v in values],
        names=[v.strip() for v in values],
        lines=lines,
        noisy=label if noisy else None,
        reference=None if noisy else label,
        groups=np.asarray(patients, dtype=str),
    ).take(keep)
    return table, dropped


def read_chexpert(root: str | Path, opts: ChexpertOptions) -> DatasetSource:
    """The CheXpert construction of the module docstring as label tables."""
    root = Path(root)
    csv_dir = _csv_dir(root)
    train_all, dropped_train = _table(csv_dir / "train.csv", csv_dir, opts, noisy=True)
    if len(train_all) == 0:
        raise DatasetError(f"{csv_dir / 'train.csv'}: no image is left after the construction")
    train, val = carve_validation(train_all, opts.val_fraction, opts.split_seed)
    test, dropped_test = _table(csv_dir / opts.test_csv, csv_dir, opts, noisy=False)
    labeler = f"automatic labeler (train.csv), single positive of {list(FINDINGS)}"
    return DatasetSource(
        info=INFO,
        root=root,
        tables={"train": train, "val": val, "test": test},
        csv_files=[csv_dir / "train.csv", csv_dir / opts.test_csv],
        labels={
            "train": {"noisy": labeler, "reference": None},
            "val": {
                "noisy": labeler,
                "reference": None,
                "carved_from_train": {
                    "fraction": opts.val_fraction,
                    "seed": opts.split_seed,
                    "group": "patient",
                },
            },
            "test": {"noisy": None, "reference": f"radiologists ({opts.test_csv})"},
        },
        settings={"preset": "chexpert", "options": opts.model_dump()},
        notes={
            "construction": "frontal images with exactly one positive among the five findings "
            "after the uncertain-label policy; see lnmbench.data.chexpert",
            "uncertain_policy": opts.uncertain,
            "train_csv_rows_dropped": dropped_train,
            "train_csv_rows_kept": len(train_all),
            "assumed_noise_rate_ref": 0.4,
        },
        dropped={"train": dropped_train, "val": {}, "test": dropped_test},
    )
