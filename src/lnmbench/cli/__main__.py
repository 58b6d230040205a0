"""``python -m lnmbench.cli ...`` is ``lnmbench ...``."""

from lnmbench.cli import app

if __name__ == "__main__":  # not when a spawned worker process imports this module
    app()
