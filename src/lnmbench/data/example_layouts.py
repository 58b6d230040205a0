"""Small generated datasets in the real on-disk layouts of DRTiD, KaggleDR+ and CheXpert.

For trying ``lnmbench prepare`` without the real files, and for tests and benchmarks. Images are
synthetic (a class-dependent colour or brightness plus noise and a disc), of varied sizes and
aspect ratios; noisy labels are the clean grade moved to a neighbouring grade with probability
``noise`` (ordinal-style noise), drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lnmbench.data.chexpert import FINDINGS

CHEXPERT_COLUMNS = (
    "Path",
    "Sex",
    "Age",
    "Frontal/Lateral",
    "AP/PA",
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)


def synthetic_image(
    rng: np.random.Generator, label: int, num_classes: int, size: tuple[int, int], grey: bool
) -> Image.Image:
    """A (w, h) image whose mean colour/brightness depends on ``label``, plus noise and a disc."""
    w, h = size
    t = label / max(num_classes - 1, 1)
    base = np.array([40 + 180 * t, 200 - 150 * t, 90 + 60 * np.sin(3 * t)])
    arr = base[None, None, :] + rng.normal(0, 25, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    r = int(rng.integers(min(w, h) // 6, min(w, h) // 3 + 1))
    cx, cy = int(rng.integers(r, w - r + 1)), int(rng.integers(r, h - r + 1))
    ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=(230, 230, 230))
    return img.convert("L") if grey else img


def _sizes(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[tuple[int, int]]:
    return [(int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))) for _ in range(n)]


def _neighbour_noise(rng: np.random.Generator, clean: np.ndarray, noise: float, c: int):
    flip = rng.random(len(clean)) < noise
    step = np.where(rng.random(len(clean)) < 0.5, -1, 1)
    moved = clean + step
    moved = np.where(moved < 0, 1, np.where(moved >= c, c - 2, moved))
    return np.where(flip, moved, clean)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _split_sizes(n_train: int, n_val: int, n_test: int) -> dict[str, int]:
    return {"train": n_train, "val": n_val, "test": n_test}


def write_kaggledr_plus(
    root: str | Path,
    n_train: int = 40,
    n_val: int = 10,
    n_test: int = 10,
    *,
    per_split_files: bool = False,
    noise: float = 0.2,
    seed: int = 0,
    min_side: int = 24,
    max_side: int = 40,
) -> Path:
    """KaggleDR+ layout: ``labels.csv`` (image, level, vote, split) or one CSV per split, and
    ``images/<image>.jpeg``. ``vote`` is the clean grade, ``level`` the noisy one."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows_by_split: dict[str, list[list]] = {}
    k = 0
    for split, n in _split_sizes(n_train, n_val, n_test).items():
        clean = rng.integers(0, 5, n)
        noisy = _neighbour_noise(rng, clean, noise, 5)
        rows = []
        for v, lv, sz in zip(clean, noisy, _sizes(rng, n, min_side, max_side), strict=True):
            name = f"{10 + k // 2}_{'left' if k % 2 == 0 else 'right'}"
            k += 1
            synthetic_image(rng, int(v), 5, sz, False).save(root / "images" / f"{name}.jpeg")
            rows.append([name, int(lv), int(v)])
        rows_by_split[split] = rows
    if per_split_files:
        for split, rows in rows_by_split.items():
            _write_csv(root / f"{split}.csv", ["image", "level", "vote"], rows)
    else:
        all_rows = [[*r, s] for s, rows in rows_by_split.items() for r in rows]
        _write_csv(root / "labels.csv", ["image", "level", "vote", "split"], all_rows)
    return root


def write_drtid(
    root: str | Path,
    n_train: int = 40,
    n_val: int = 10,
    n_test: int = 10,
    *,
    noise: float = 0.4,
    seed: int = 0,
    min_side: int = 24,
    max_side: int = 40,
) -> Path:
    """DRTiD layout: ``train.csv`` / ``val.csv`` (image_name, Grade, Grade_gt), ``test.csv``
    (image_name, Grade_gt) and ``images/<image_name>.jpg``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    k = 0
    for split, n in _split_sizes(n_train, n_val, n_test).items():
        clean = rng.integers(0, 5, n)
        noisy = _neighbour_noise(rng, clean, noise, 5)
        rows = []
        for v, g, sz in zip(clean, noisy, _sizes(rng, n, min_side, max_side), strict=True):
            name = f"{k // 2 + 1:04d}_{'macula' if k % 2 == 0 else 'disc'}"
            k += 1
            synthetic_image(rng, int(v), 5, sz, False).save(root / "images" / f"{name}.jpg")
            rows.append([name, int(g), int(v)] if split != "test" else [name, int(v)])
        header = (
            ["image_name", "Grade", "Grade_gt"] if split != "test" else ["image_name", "Grade_gt"]
        )
        _write_csv(root / f"{split}.csv", header, rows)
    return root


def _chexpert_row(rng: np.random.Generator, label: int, uncertain_p: float) -> list[str]:
    """Observation cells (blank or 0 by default); the five findings one-hot at ``label`` (two
    positives when ``label`` is -1), and one other finding -1 with probability ``uncertain_p``."""
    cells = {c: str(rng.choice(["", "0.0"])) for c in CHEXPERT_COLUMNS[5:]}
    if label >= 0:
        cells[FINDINGS[label]] = "1.0"
    else:
        for j in rng.choice(len(FINDINGS), 2, replace=False):
            cells[FINDINGS[j]] = "1.0"
    if rng.random() < uncertain_p:
        free = [f for f in FINDINGS if cells[f] != "1.0"]
        cells[str(rng.choice(free))] = "-1.0"
    return list(cells.values())


def write_chexpert(
    root: str | Path,
    n_train_patients: int = 30,
    n_valid: int = 12,
    *,
    seed: int = 0,
    uncertain_p: float = 0.2,
    min_side: int = 24,
    max_side: int = 40,
) -> Path:
    """Official CheXpert layout under ``root/CheXpert-v1.0-small``: ``train.csv`` (1-2 studies per
    patient, a frontal and sometimes a lateral view; some rows with two positives or uncertain
    findings), ``valid.csv`` (radiologist labels: 0/1 only) and the JPEG folders."""
    base = Path(root) / "CheXpert-v1.0-small"
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(1, n_train_patients + 1):
        for study in range(1, int(rng.integers(1, 3)) + 1):
            views = ["frontal"] + (["lateral"] if rng.random() < 0.3 else [])
            label = int(rng.integers(0, 5)) if rng.random() < 0.85 else -1
            for v, view in enumerate(views, start=1):
                rel = f"train/patient{p:05d}/study{study}/view{v}_{view}.jpg"
                _save(base / rel, rng, max(label, 0), min_side, max_side)
                obs = _chexpert_row(rng, label, uncertain_p)
                fl = "Frontal" if view == "frontal" else "Lateral"
                rows.append([f"CheXpert-v1.0-small/{rel}", "Female", "60", fl, "AP", *obs])
    _write_csv(base / "train.csv", list(CHEXPERT_COLUMNS), rows)
    rows = []
    for p in range(n_valid):
        label = p % 5
        rel = f"valid/patient{64541 + p:05d}/study1/view1_frontal.jpg"
        _save(base / rel, rng, label, min_side, max_side)
        obs = [("1.0" if c == FINDINGS[label] else "0.0") for c in CHEXPERT_COLUMNS[5:]]
        rows.append([f"CheXpert-v1.0-small/{rel}", "Male", "50", "Frontal", "PA", *obs])
    _write_csv(base / "valid.csv", list(CHEXPERT_COLUMNS), rows)
    return Path(root)


def _save(path: Path, rng: np.random.Generator, label: int, lo: int, hi: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_image(rng, label, 5, _sizes(rng, 1, lo, hi)[0], True).save(path)
