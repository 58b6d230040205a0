"""The one shape of progress bar (rich): a title, the bar, done/total, a status, elapsed, ETA."""

from __future__ import annotations

from typing import Any


def eta_progress(title: str, status: str) -> Any:
    """A transient ``rich.progress.Progress``; ``title`` and ``status`` are column templates
    (e.g. ``"[bold]{task.description}"``, ``"epoch {task.fields[epoch]}"``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(status),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=True,
    )
