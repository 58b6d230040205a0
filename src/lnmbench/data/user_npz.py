"""Users' own data: any .npz file in the MedMNIST layout, given by path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lnmbench.data.medmnist import check_label_range, load_npz_splits
from lnmbench.data.prepared_cache import MANIFEST
from lnmbench.data.splits import Dataset, DatasetInfo
from lnmbench.errors import DatasetError


def load_user_npz(path: Path, num_classes: int | None = None) -> Dataset:
    """Load ``path``; the class count is inferred (max label + 1) and checked.

    Every class in [0, C) must occur in the training split; ``num_classes``, when given, must agree.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(
            f"dataset file {path} does not exist; give the path of an .npz with train_images, "
            "train_labels, val_images, val_labels, test_images, test_labels"
        )
    if path.is_dir():
        raise DatasetError(
            f"{path} is a folder without {MANIFEST}: not a prepared cache (or its preparation "
            "did not finish: run `lnmbench prepare ... --force` again); --dataset takes a "
            "registered name, a MedMNIST-layout .npz or a prepared cache folder"
        )
    splits, inferred = load_npz_splits(path)
    # the classes are those of the training split: a label of val or test beyond them is an error
    c = num_classes or int(splits["train"].labels.max()) + 1
    if inferred > c:
        check_label_range(splits, c, str(path))
    train_counts = np.bincount(splits["train"].labels.numpy(), minlength=c)
    if c < 2:
        raise DatasetError(f"{path}: found {c} class; classification needs at least 2")
    absent = np.flatnonzero(train_counts == 0).tolist()
    if absent:
        raise DatasetError(
            f"{path}: classes {absent} of {c} never occur in train_labels; labels must be 0..C-1 "
            "with every class present in the training split"
        )
    in_chans = splits["train"].images.shape[1]
    info = DatasetInfo(
        name=path.stem,
        modality="user data",
        class_names=tuple(str(i) for i in range(c)),
        in_chans=in_chans,
        source=str(path),
    )
    return Dataset(info, splits, {"path": str(path)})
