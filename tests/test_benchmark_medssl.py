"""benchmarks/medssl.py's decision: the reading without cells whose realised noise makes a class
unlearnable, and the noise check it rests on (the noisy labels the cell's runs trained on)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import import_benchmark


@pytest.fixture(scope="module")
def medssl():
    return import_benchmark("medssl")


def _table(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for variant, accs in values.items():
        for seed, acc in enumerate(accs):
            rows.append(
                {
                    "dataset": "retinamnist",
                    "noise": "instance",
                    "rate": 0.5,
                    "seed": seed,
                    "variant": variant,
                    "bal_acc": acc,
                    "acc": acc,
                }
            )
    return pd.DataFrame(rows)


def test_decision_reads_without_the_cells_with_unlearnable_classes(medssl):
    dmx = [0.40, 0.30, 0.35, 0.50, 0.45, 0.38]
    disc = [0.42, 0.28, 0.36, 0.44, 0.47, 0.30]
    ours = [0.10, 0.33, 0.40, 0.49, 0.50, 0.41]
    table = _table({"dividemix": dmx, "disc": disc, "medssl": ours})
    unlearnable = {
        ("retinamnist", "instance", 0.5, s): ([2, 3] if s == 0 else []) for s in range(6)
    }
    text = medssl.decision(table, unlearnable)
    best = np.maximum(dmx, disc)
    all_cells = 100 * np.mean(np.array(ours) - best)
    clean = 100 * np.mean(np.array(ours[1:]) - best[1:])
    assert f"| medssl − max(dividemix, disc) | 6 | {all_cells:+.2f} |" in text
    assert f"every class is learnable (post hoc, for reading) | 5 | {clean:+.2f} |" in text
    assert "retinamnist instance 0.5 seed 0 (class 2, 3)" in text
    # without the map (or when no cell is marked) the decision is unchanged and has no such line
    assert "every class is learnable" not in medssl.decision(table)
    none_marked = {k: [] for k in unlearnable}
    assert medssl.decision(table, none_marked) == medssl.decision(table)


def test_unlearnable_classes_are_those_of_the_cells_training_noise(medssl):
    # symmetric noise over 8 classes: 0.9 leaves P(keep) = 0.1 < 0.9 / 7 for every class,
    # 0.2 leaves every class learnable; the variant does not matter (one entry per cell)
    cells = pd.DataFrame(
        {
            "dataset": ["demo", "demo", "demo"],
            "noise": ["symmetric"] * 3,
            "rate": [0.9, 0.9, 0.2],
            "seed": [0, 0, 0],
            "variant": ["ce", "medssl", "ce"],
        }
    )
    found = medssl.unlearnable_by_cell(cells, lambda *c: medssl.config(*c, "ce", False))
    assert found == {
        ("demo", "symmetric", 0.2, 0): [],
        ("demo", "symmetric", 0.9, 0): list(range(8)),
    }
