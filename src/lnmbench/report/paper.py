"""The paper's published per-method pattern averages (packaged data file with its source)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class PaperAverages:
    """Published averages (percent) by the paper's method name, and where they come from."""

    rows: dict[str, dict[str, Any]]
    source: dict[str, str]
    datasets: tuple[str, ...]

    def for_methods(self, methods: list[str]) -> dict[str, dict[str, Any]]:
        """Paper row per method of ours; a paper method listing several names of ours (CE:
        ce-ls, then ce) goes to the first one present."""
        out: dict[str, dict[str, Any]] = {}
        for row in self.rows.values():
            for name in row["methods"]:
                if name in methods:
                    out[name] = row
                    break
        return out


@cache
def paper_averages() -> PaperAverages:
    raw = json.loads(
        resources.files("lnmbench.report").joinpath("data/lnmbench_paper.json").read_text()
    )
    rows = {r["paper_name"]: r for r in raw["methods"]}
    source = {k: v for k, v in raw.items() if isinstance(v, str)}
    return PaperAverages(rows, source, tuple(raw["datasets"]))
