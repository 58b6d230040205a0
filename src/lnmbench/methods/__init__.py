"""LNL methods, one file each, registered by name in ``METHODS``."""

from __future__ import annotations

import importlib
import pkgutil

from lnmbench.methods.base import METHODS, Batch, Method, RunContext, Selection, register_method


def _import_all() -> None:
    """Import every method module in this package so that its decorator registers it."""
    skip = {"base", "hparams"}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in skip and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_import_all()

__all__ = ["METHODS", "Batch", "Method", "RunContext", "Selection", "register_method"]
