"""Parsing of repeated ``--set KEY=VALUE`` / ``--param KEY=VALUE`` command-line values."""

from __future__ import annotations

from typing import Any

import yaml

from lnmbench.errors import LnmbenchError


def parse_set(values: list[str] | None, flag: str = "--set") -> dict[str, Any]:
    """``["lr=0.1", "milestones=[5,10]"]`` -> {"lr": 0.1, "milestones": [5, 10]} (YAML values).

    A value that is not valid YAML (``[1,``) stays a string, so that the validator of the
    setting names it with the type it expects.
    """
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LnmbenchError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out
