"""What every command prints through: the one console, the error exit, the percent formatter."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def fail(exc: Exception | str) -> NoReturn:
    """Print ``error: <message>`` (one line per message line, no traceback) and exit with 2."""
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(2)


def pct(
    x: float | None,
    digits: int = 2,
    missing: str = "n/a",
    std: float | None = None,
    unit: str = "",
) -> str:
    """A fraction as a percentage (``0.8602`` -> ``86.02`` + ``unit``); NaN/None -> ``missing``;
    with ``std``, ``mean ± std`` (the std left out when it is NaN)."""
    if x is None or x != x:
        return missing
    text = f"{100 * x:.{digits}f}"
    if std is not None and std == std:
        text += f" ± {100 * std:.{digits}f}"
    return text + unit
