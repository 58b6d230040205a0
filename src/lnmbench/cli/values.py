"""Parsing of repeated ``--set KEY=VALUE`` / ``--param KEY=VALUE`` command-line values."""

from __future__ import annotations

from typing import Any

import yaml

from lnmbench.errors import LnmbenchError


def parse_set(values: list[str] | None) -> dict[str, Any]:
    """``["lr=0.1", "milestones=[5,10]"]`` -> {"lr": 0.1, "milestones": [5, 10]} (YAML values)."""
    out: dict[str, Any] = {}
    for item in values or []:
        if "=" not in item:
            raise LnmbenchError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
