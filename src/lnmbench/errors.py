"""User-facing errors: each carries a message that says what is wrong and how to fix it."""


class LnmbenchError(Exception):
    """Base class for errors caused by bad input; the CLI prints the message without a traceback."""


class UnknownNameError(LnmbenchError, KeyError):
    """A name that is not in a registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetError(LnmbenchError):
    """A dataset file is missing, corrupt or malformed."""


class ConfigError(LnmbenchError, ValueError):
    """A configuration value is invalid."""


class RunFailedError(LnmbenchError):
    """A run failed after its folder was made; the traceback is in its ``failed.txt``."""


class RunBusyError(LnmbenchError):
    """Another process holds the run lock of the run folder (it is training that run now)."""
