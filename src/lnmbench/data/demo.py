"""The bundled ``demo`` dataset: a stratified 3000/400/1000 subset of BloodMNIST at 28 px."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from lnmbench.data.catalog import DATASETS, DatasetEntry
from lnmbench.data.medmnist import load_npz_splits
from lnmbench.data.splits import Dataset, DatasetInfo


def _path() -> Path:
    return Path(str(resources.files("lnmbench.datasets_bundled").joinpath("demo.npz")))


def _info() -> DatasetInfo:
    records = json.loads(
        resources.files("lnmbench.data").joinpath("medmnist_records.json").read_text()
    )
    return DatasetInfo(
        name="demo",
        modality=records["bloodmnist"]["modality"],
        class_names=tuple(records["bloodmnist"]["classes"]),
        in_chans=3,
        source="stratified subset of BloodMNIST (MedMNIST v2, CC BY 4.0), bundled",
        license="CC BY 4.0",
    )


def _load(data_dir: Path, size: int, download: bool = True) -> Dataset:
    from lnmbench.errors import DatasetError

    if size != 28:
        raise DatasetError("the bundled demo dataset exists at 28 px only (use --size 28)")
    splits, _ = load_npz_splits(_path())
    return Dataset(_info(), splits, {"path": str(_path())})


DATASETS.register("demo")(
    DatasetEntry(_info(), (3000, 400, 1000), (28,), _load, lambda data_dir, size: None)
)
