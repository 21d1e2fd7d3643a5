"""User-facing errors.

Anything the user can fix (a missing file, a bad option, an incompatible
checkpoint) raises :class:`HwgenError` with a message that names the problem.
The CLI prints the message and exits with status 2, without a traceback.
Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import enum
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)


class HwgenError(Exception):
    """An error caused by user input; the message is shown as-is."""


class DatasetError(HwgenError):
    """A dataset is missing or malformed."""


class CheckpointError(HwgenError):
    """A checkpoint is missing, truncated, tampered with or incompatible."""


class ConfigError(HwgenError):
    """An invalid model or training option."""


class CompileError(HwgenError):
    """A checkpoint the compiler cannot lower, or a malformed IR file."""


class BuildError(HwgenError):
    """A hardware build request that cannot be met (folding, memory budget)."""


class SynthError(HwgenError):
    """Synthesis, place-and-route or packing failed: no design, does not fit, misses timing, a tool failed."""


class SimError(HwgenError):
    """An RTL simulation that cannot run: a missing or malformed build folder, a failed Verilator build."""


class BoardError(HwgenError):
    """A board wrapper that cannot be generated, or a host link that fails: no port, no reply, a wrong image."""


def coerce_enum(enum_cls: type[E], value: object, what: str) -> E:
    """``enum_cls(value)``, or ConfigError "WHAT must be one of A, B, not VALUE"."""
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in enum_cls)
        raise ConfigError(f"{what} must be one of {choices}, not {value!r}") from None
