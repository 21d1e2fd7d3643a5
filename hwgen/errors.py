"""User-facing errors.

Anything the user can fix (a missing file, a bad option, an incompatible
checkpoint) raises :class:`HwgenError` with a message that names the problem.
The CLI prints the message and exits with status 2, without a traceback.
Everything else is a bug and keeps its traceback.
"""


class HwgenError(Exception):
    """An error caused by user input; the message is shown as-is."""


class DatasetError(HwgenError):
    """A dataset is missing or malformed."""


class CheckpointError(HwgenError):
    """A checkpoint is missing, truncated, tampered with or incompatible."""


class ConfigError(HwgenError):
    """An invalid model or training option."""
