"""Build the bundled ``demo`` dataset: a stratified subset of the official BloodMNIST (28 px).

Usage: python tools/make_demo_dataset.py ../shared/data/bloodmnist.npz
Writes src/lnmbench/datasets_bundled/demo.npz (3000 train / 400 val / 1000 test, seed 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

SIZES = {"train": 3000, "val": 400, "test": 1000}


def main(src: str) -> None:
    data = np.load(src)
    out = {}
    for split, n in SIZES.items():
        labels = data[f"{split}_labels"][:, 0]
        idx, _ = train_test_split(
            np.arange(len(labels)), train_size=n, stratify=labels, random_state=0
        )
        idx = np.sort(idx)
        out[f"{split}_images"] = data[f"{split}_images"][idx]
        out[f"{split}_labels"] = data[f"{split}_labels"][idx]
    dest = Path(__file__).resolve().parents[1] / "src/lnmbench/datasets_bundled/demo.npz"
    np.savez_compressed(dest, **out)
    print(f"wrote {dest} ({dest.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/bloodmnist.npz")
