"""The dataset registry: name -> entry with its metadata, where its file lives, how to load it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lnmbench.data.splits import Dataset, DatasetInfo
from lnmbench.registry import Registry


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    ``load(data_dir, size, download)`` returns the Dataset; ``local_path(data_dir, size)`` says
    where its file is expected (None when bundled); ``split_sizes`` gives (train, val, test);
    ``downloadable``: fetched on first use (MedMNIST), else bundled or prepared by the user.
    """

    info: DatasetInfo
    split_sizes: tuple[int, int, int]
    sizes: tuple[int, ...]
    load: Callable[[Path, int, bool], Dataset]
    local_path: Callable[[Path, int], Path | None]
    downloadable: bool = False


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def default_data_dir() -> Path:
    """``$LNMBENCH_DATA`` or the per-user cache folder (``~/.cache/lnmbench`` on Linux)."""
    env = os.environ.get("LNMBENCH_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lnmbench"


def is_present(entry: DatasetEntry, data_dir: Path, size: int) -> bool:
    path = entry.local_path(data_dir, size)
    return path is None or path.exists()
