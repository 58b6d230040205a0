"""``python -m lnmbench.cli ...`` is ``lnmbench ...``."""

from lnmbench.cli import app

app()
