"""The ``lnmbench`` command line (typer): one module per command, registered in :data:`COMMANDS`.

Adding a command = one new module in this package with a plain typer-annotated function, plus
one line in :data:`COMMANDS`. Commands print through :mod:`lnmbench.cli.console` (one console,
``fail`` for a one-line error and exit code 2, ``pct`` for percentages).
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from lnmbench.cli import audit, catalog, grid, noise, prepare, report, results, run
from lnmbench.cli.console import console
from lnmbench.cli.values import parse_set

COMMANDS: dict[str, Callable[..., None]] = {
    "run": run.run,
    "datasets": catalog.datasets,
    "methods": catalog.methods,
    "models": catalog.models,
    "noise": noise.noise,
    "prepare": prepare.prepare,
    "grid": grid.grid,
    "results": results.results,
    "report": report.report,
    "audit": audit.audit,
}

app = typer.Typer(
    help="lnmbench: benchmark learning-with-noisy-labels methods on medical images.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)

__all__ = ["COMMANDS", "app", "console", "parse_set"]
