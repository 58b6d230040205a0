"""The real-world-noise datasets (DRTiD, KaggleDR+, CheXpert): layouts, readers and registry.

Their images cannot be redistributed: users bring the files and run ``lnmbench prepare NAME
--root PATH --size S`` once; the registered dataset entries then open the prepared cache
``<data_dir>/prepared/<name>/<S>px`` (see :mod:`lnmbench.data.prepared_cache`). Layouts are
described in ``LAYOUT`` of each preset and in docs/real_world_datasets.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from lnmbench.data import chexpert
from lnmbench.data.catalog import DATASETS, DatasetEntry
from lnmbench.data.csv_dataset import read_spec_source
from lnmbench.data.csv_spec import CsvDatasetSpec, SplitSource
from lnmbench.data.label_tables import DatasetSource
from lnmbench.data.prepared_cache import MANIFEST, open_prepared, prepared_dir
from lnmbench.data.splits import Dataset, DatasetInfo
from lnmbench.errors import ConfigError, DatasetError
from lnmbench.registry import Registry

DR_GRADES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative DR")
PAPER_SIZES = (224, 512)


@dataclass(frozen=True)
class RealWorldPreset:
    """A real-world-noise dataset: metadata, expected layout, options and its CSV reader."""

    info: DatasetInfo
    layout: str
    options: type[BaseModel]
    read: Callable[[Path, Any], DatasetSource]
    assumed_noise_rate: float  # the Ref value (methods.md §4.7)
    paper_size: int


PRESETS: Registry[RealWorldPreset] = Registry("real-world dataset preset")


def parse_options(preset: RealWorldPreset, values: dict[str, Any]) -> BaseModel:
    """Validate ``--set`` options of a preset; unknown keys list the accepted ones."""
    try:
        return preset.options.model_validate(values)
    except ValidationError as exc:
        accepted = ", ".join(preset.options.model_fields)
        lines = [f"invalid options for {preset.info.name} (accepted: {accepted}):"]
        for err in exc.errors():
            lines.append(f"  {'.'.join(map(str, err['loc']))}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def check_layout(root: Path, required: dict[str, list[str]], images: Path, layout: str) -> None:
    """One DatasetError naming every missing file, column and the image folder, if any."""
    problems = []
    if not root.is_dir():
        raise DatasetError(f"root folder {root} does not exist. Expected layout: {layout}")
    for name, cols in required.items():
        path = root / name
        if not path.is_file():
            problems.append(f"file {path} is missing")
            continue
        header = [str(c).strip() for c in pd.read_csv(path, nrows=0, dtype=str).columns]
        missing = [c for c in cols if c not in header]
        if missing:
            problems.append(
                f"{path} lacks column(s) {', '.join(map(repr, missing))} (has {header})"
            )
    if not images.is_dir():
        problems.append(f"image folder {images} is missing")
    if problems:
        raise DatasetError("; ".join(problems) + f". Expected layout: {layout}")


def _header(path: Path) -> list[str]:
    return [str(c).strip() for c in pd.read_csv(path, nrows=0, dtype=str).columns]


class ImageFolderOptions(BaseModel):
    """Where the images are, relative to the root, and the file suffix added to the CSV name."""

    model_config = ConfigDict(extra="forbid")

    image_dir: str = "images"
    image_suffix: str = ".jpg"


# --------------------------------------------------------------------------- DRTiD

DRTID_LAYOUT = (
    "ROOT/train.csv (image_name, Grade = screening grade, Grade_gt = expert grade), "
    "ROOT/val.csv (image_name, Grade; Grade_gt optional), ROOT/test.csv (image_name and "
    "Grade_gt or Grade) and ROOT/images/<image_name>.jpg; grades 0-4"
)


def read_drtid(root: Path, opts: ImageFolderOptions) -> DatasetSource:
    """DRTiD: noisy = ``Grade`` (screening), clean = ``Grade_gt`` (expert); val noisy ``Grade``
    (clean ``Grade_gt`` when present); test label ``Grade_gt`` if present else ``Grade``, its
    provenance recorded as ambiguous (methods.md §4.7)."""
    root = Path(root)
    need = {
        "train.csv": ["image_name", "Grade", "Grade_gt"],
        "val.csv": ["image_name", "Grade"],
        "test.csv": ["image_name"],
    }
    check_layout(root, need, root / opts.image_dir, DRTID_LAYOUT)
    test_cols = _header(root / "test.csv")
    test_col = next((c for c in ("Grade_gt", "Grade") if c in test_cols), None)
    if test_col is None:
        raise DatasetError(
            f"{root / 'test.csv'} needs a label column Grade_gt or Grade (has {test_cols}). "
            f"Expected layout: {DRTID_LAYOUT}"
        )
    val_ref = "Grade_gt" if "Grade_gt" in _header(root / "val.csv") else None
    spec = CsvDatasetSpec(
        name="drtid",
        modality="fundus photography",
        class_names=list(DR_GRADES),
        ordinal=True,
        in_chans=3,
        image_column="image_name",
        image_root=opts.image_dir,
        image_suffix=opts.image_suffix,
        splits={
            "train": SplitSource(csv="train.csv", noisy="Grade", reference="Grade_gt"),
            "val": SplitSource(csv="val.csv", noisy="Grade", reference=val_ref),
            "test": SplitSource(csv="test.csv", reference=test_col),
        },
    )
    src = read_spec_source(spec, root)
    src.info = DRTID_INFO
    src.settings = {"preset": "drtid", "options": opts.model_dump()}
    src.notes = {
        "test_label_column": test_col,
        "test_label_provenance": "ambiguous: the DRTiD test file's grade is not documented "
        "as the screening or the expert grade",
        "assumed_noise_rate_ref": 0.4,
    }
    return src


DRTID_INFO = DatasetInfo(
    name="drtid",
    modality="fundus photography",
    class_names=DR_GRADES,
    in_chans=3,
    ordinal=True,
    noise="real-world",
    source="DRTiD (Hou et al., MICCAI 2022), user-provided files",
    license="DRTiD data use terms (no redistribution)",
)


# --------------------------------------------------------------------------- KaggleDR+

KAGGLEDR_LAYOUT = (
    "ROOT/labels.csv with columns image, level (original Kaggle grade), vote (re-annotation) "
    "and split (train / val / test; test = the re-annotated gold subset), or ROOT/train.csv, "
    "ROOT/val.csv, ROOT/test.csv with columns image, level, vote (test: image, vote); images "
    "ROOT/images/<image>.jpeg; grades 0-4"
)


class KaggleDROptions(ImageFolderOptions):
    image_suffix: str = ".jpeg"


def read_kaggledr_plus(root: Path, opts: KaggleDROptions) -> DatasetSource:
    """KaggleDR+: noisy = ``level`` (original Kaggle grade), clean = ``vote`` (re-annotation);
    the test split's label is ``vote``."""
    root = Path(root)
    one_file = (root / "labels.csv").is_file()
    if one_file:
        need = {"labels.csv": ["image", "level", "vote", "split"]}
    else:
        need = {
            "train.csv": ["image", "level", "vote"],
            "val.csv": ["image", "level", "vote"],
            "test.csv": ["image", "vote"],
        }
    check_layout(root, need, root / opts.image_dir, KAGGLEDR_LAYOUT)

    def split(name: str, noisy: str | None) -> SplitSource:
        csv = "labels.csv" if one_file else f"{name}.csv"
        return SplitSource(
            csv=csv, split_value=name if one_file else None, noisy=noisy, reference="vote"
        )

    spec = CsvDatasetSpec(
        name="kaggledr+",
        class_names=list(DR_GRADES),
        ordinal=True,
        image_column="image",
        image_root=opts.image_dir,
        image_suffix=opts.image_suffix,
        split_column="split" if one_file else None,
        splits={
            "train": split("train", "level"),
            "val": split("val", "level"),
            "test": split("test", None),
        },
    )
    src = read_spec_source(spec, root)
    src.info = KAGGLEDR_INFO
    src.settings = {"preset": "kaggledr+", "options": opts.model_dump()}
    src.notes = {
        "test_set": "re-annotated gold subset (label: vote)",
        "assumed_noise_rate_ref": 0.3,
    }
    return src


KAGGLEDR_INFO = DatasetInfo(
    name="kaggledr+",
    modality="fundus photography",
    class_names=DR_GRADES,
    in_chans=3,
    ordinal=True,
    noise="real-world",
    source="Kaggle Diabetic Retinopathy Detection (EyePACS, 2015) with the KaggleDR+ "
    "re-annotation, user-provided files",
    license="Kaggle competition data terms (no redistribution)",
)


# --------------------------------------------------------------------------- registry


def _register(preset: RealWorldPreset) -> None:
    name = preset.info.name
    PRESETS.register(name)(preset)

    def local_path(data_dir: Path, size: int) -> Path:
        return prepared_dir(data_dir, name, size) / MANIFEST

    def load(data_dir: Path, size: int, download: bool = True) -> Dataset:
        path = local_path(data_dir, size)
        if not path.exists():
            base = Path(data_dir) / "prepared" / name
            have = sorted(p.parent.name for p in base.glob(f"*px/{MANIFEST}"))
            other = f" Prepared sizes there: {', '.join(have)}." if have else ""
            raise DatasetError(
                f"{name} at {size} px is not prepared ({path} not found).{other} Its images "
                f"cannot be downloaded automatically; get the files, then run once:\n"
                f"  lnmbench prepare {name} --root /path/to/{name} --size {size} "
                f"--data-dir {data_dir}\n"
                f"Expected layout: {preset.layout}"
            )
        return open_prepared(path.parent)

    DATASETS.register(name)(DatasetEntry(preset.info, (0, 0, 0), PAPER_SIZES, load, local_path))


DRTID = RealWorldPreset(DRTID_INFO, DRTID_LAYOUT, ImageFolderOptions, read_drtid, 0.4, 512)
KAGGLEDR_PLUS = RealWorldPreset(
    KAGGLEDR_INFO, KAGGLEDR_LAYOUT, KaggleDROptions, read_kaggledr_plus, 0.3, 512
)
CHEXPERT = RealWorldPreset(
    chexpert.INFO, chexpert.LAYOUT, chexpert.ChexpertOptions, chexpert.read_chexpert, 0.4, 224
)
for _preset in (DRTID, KAGGLEDR_PLUS, CHEXPERT):
    _register(_preset)
