"""Argument types and the parser of the ``hwgen`` command line: one wording for every bad value.

A type below rejects a value while the command line is parsed, before any
work starts; :class:`Parser` prints that (and every other parsing error) as
one line, ``hwgen: error: COMMAND: argument --x: must be ..., not 'v'``, and
exits with status 2, as :class:`~hwgen.errors.HwgenError` does.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

__all__ = ["Parser", "fraction", "non_negative_int", "positive_float", "positive_int"]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``hwgen: error: ...``; subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        where = f"{command}: " if command else ""
        print(f"hwgen: error: {where}{message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: images, epochs, batch size, jobs)."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (an offset, a count that may be zero)."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a rate, a clock, frames/s); nan and inf are refused."""
    value = _number(text, float, "a finite number > 0")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1) (a dropout or a per-cycle probability)."""
    value = _number(text, float, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), not {text!r}")
    return value
