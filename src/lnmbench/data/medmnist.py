"""MedMNIST+ 2D subsets (Yang et al., 2023) at 28/64/128/224 px, downloaded with MD5 checks."""

from __future__ import annotations

import contextlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pooch
import torch

from lnmbench.data.catalog import DATASETS, DatasetEntry
from lnmbench.data.splits import (
    SPLITS,
    ArraySplit,
    Dataset,
    DatasetInfo,
    images_to_nchw,
    labels_to_vector,
)
from lnmbench.errors import DatasetError

MIRROR_ENV = "LNMBENCH_MEDMNIST_MIRROR"
OFFICIAL_BASE = "https://zenodo.org/records/10519652/files"
SIZES = (28, 64, 128, 224)


def _records() -> dict:
    text = resources.files("lnmbench.data").joinpath("medmnist_records.json").read_text()
    return json.loads(text)


def file_name(name: str, size: int) -> str:
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def file_url(record: dict, size: int) -> str:
    """Official URL, or the same file name under ``$LNMBENCH_MEDMNIST_MIRROR`` when set."""
    url = record["files"][str(size)]["url"]
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        url = mirror.rstrip("/") + "/" + url.split("/files/", 1)[1]
    return url


def verify_md5(path: Path, expected: str) -> None:
    """Check ``path`` against ``expected``; the result is remembered in ``<file>.md5ok``."""
    stamp = path.with_name(path.name + ".md5ok")
    st = path.stat()
    key = f"{expected} {st.st_size} {st.st_mtime_ns}"
    if stamp.exists() and stamp.read_text().strip() == key:
        return
    got = pooch.file_hash(str(path), alg="md5")
    if got != expected:
        raise DatasetError(
            f"checksum mismatch for {path}: expected MD5 {expected}, got {got}. The file is "
            "corrupt or incomplete: delete it and run again to re-download it. (A deliberately "
            "modified copy can be used as a user file: --dataset path/to/file.npz)"
        )
    with contextlib.suppress(OSError):  # read-only data folder: verify again next time
        stamp.write_text(key + "\n")


def fetch(name: str, size: int, data_dir: Path, download: bool = True) -> Path:
    """Return the local path of ``name`` at ``size`` px, downloading (MD5-checked) if missing."""
    record = _records()[name]
    expected = record["files"][str(size)]["md5"]
    path = Path(data_dir) / file_name(name, size)
    if path.exists():
        verify_md5(path, expected)
        return path
    url = file_url(record, size)
    how = (
        f"Download it from {url} (MD5 {expected}) and save it as {path}, "
        f"or point --data-dir / $LNMBENCH_DATA to a folder that holds it."
    )
    if not download:
        raise DatasetError(f"{name} ({size} px) is not at {path}. {how}")
    import pooch

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(
            url, known_hash=f"md5:{expected}", fname=path.name, path=path.parent, progressbar=False
        )
    except ValueError as exc:  # pooch: hash mismatch of the downloaded file
        raise DatasetError(f"checksum mismatch downloading {url} to {path}: {exc}") from None
    except Exception as exc:  # network errors of every kind
        raise DatasetError(
            f"could not download {name} ({size} px): {type(exc).__name__}: {exc}. {how}"
        ) from None
    return path


def check_label_range(splits: dict[str, ArraySplit], num_classes: int, where: str) -> None:
    """Refuse labels outside [0, C): names the split, the label value and how many rows hold it."""
    for s, part in splits.items():
        values, counts = np.unique(part.labels.numpy(), return_counts=True)
        bad = [(int(v), int(n)) for v, n in zip(values, counts, strict=True) if v >= num_classes]
        if bad:
            listed = ", ".join(f"label {v} in {n} row(s)" for v, n in bad)
            raise DatasetError(
                f"{where}: {s}_labels holds {listed}, outside the {num_classes} classes "
                f"0..{num_classes - 1}"
            )


def load_npz_splits(path: Path) -> tuple[dict[str, ArraySplit], int]:
    """Read a MedMNIST-layout .npz into splits; returns (splits, number of classes inferred)."""
    try:
        data = np.load(path)
        arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise DatasetError(
            f"cannot read {path} as a MedMNIST-layout .npz ({type(exc).__name__}: {exc}); "
            "the file is corrupt or not an .npz: delete it and download it again"
        ) from None
    missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in arrays]
    if missing:
        raise DatasetError(
            f"{path} lacks the arrays {', '.join(missing)}; the MedMNIST layout needs "
            "train_images, train_labels, val_images, val_labels, test_images, test_labels"
        )
    splits, labels = {}, {}
    for s in SPLITS:
        labels[s] = labels_to_vector(arrays[f"{s}_labels"], f"{path}: {s}_labels")
        images = images_to_nchw(arrays[f"{s}_images"], f"{path}: {s}_images")
        if len(images) != len(labels[s]):
            raise DatasetError(f"{path}: {s} has {len(images)} images but {len(labels[s])} labels")
        splits[s] = ArraySplit(images, torch.from_numpy(labels[s]))
    empty = [s for s in SPLITS if len(labels[s]) == 0]
    if empty:
        raise DatasetError(
            f"{path}: the {', '.join(empty)} split(s) have no rows; every split (train, val, "
            "test) needs at least one image"
        )
    num_classes = int(max(v.max() for v in labels.values() if v.size)) + 1
    shapes = {s: tuple(splits[s].images.shape[1:]) for s in SPLITS}
    if len(set(shapes.values())) != 1:
        raise DatasetError(f"{path}: splits have different image shapes {shapes}")
    return splits, num_classes


def _make_entry(name: str, record: dict) -> DatasetEntry:
    info = DatasetInfo(
        name=name,
        modality=record["modality"],
        class_names=tuple(record["classes"]),
        in_chans=record["channels"],
        ordinal=record["task"] == "ordinal-regression",
        source="MedMNIST v2/+ (Yang et al., Scientific Data 2023)",
        license=record["license"],
    )
    n = record["n_samples"]

    def load(data_dir: Path, size: int, download: bool = True) -> Dataset:
        if size not in SIZES:
            raise DatasetError(f"{name} exists at sizes {SIZES}, not {size}")
        path = fetch(name, size, data_dir, download)
        splits, inferred = load_npz_splits(path)
        if inferred > info.num_classes:
            check_label_range(splits, info.num_classes, f"{path} ({name})")
        return Dataset(info, splits, {"path": str(path)})

    def local_path(data_dir: Path, size: int) -> Path:
        return Path(data_dir) / file_name(name, size)

    return DatasetEntry(
        info, (n["train"], n["val"], n["test"]), SIZES, load, local_path, downloadable=True
    )


def register_all() -> None:
    for name, record in _records().items():
        if record["task"].startswith("multi-label"):
            continue  # ChestMNIST is multi-label; LNL here is single-label classification
        DATASETS.register(name)(_make_entry(name, record))


register_all()
