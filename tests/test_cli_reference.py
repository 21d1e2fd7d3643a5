"""README's CLI reference is the --help of every subcommand: every option listed, every default shown.

The subcommands are read from :func:`hwgen.cli.build_parser`, so a command
added later is covered the day it is registered.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from hwgen.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def visible_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


def reference_rows() -> dict[str, str]:
    """README's CLI reference: command name -> the text of its row(s)."""
    text = README.read_text()
    section = text.split("## CLI reference", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`hwgen ([a-z][a-z0-9-]*)", line)
        if m:
            rows[m.group(1)] = rows.get(m.group(1), "") + line
    return rows


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_is_in_the_readme(name: str) -> None:
    rows = reference_rows()
    assert name in rows, f"README's CLI reference has no row for `hwgen {name}`"
    row = rows[name]
    missing = [a.option_strings for a in visible_options(subcommands()[name])
               if not any(re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", row) for s in a.option_strings)]
    assert not missing, f"`hwgen {name}` options missing from README's CLI reference: {missing}"


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_default_is_shown(name: str) -> None:
    silent = [a.option_strings[0] for a in visible_options(subcommands()[name])
              if not (a.default is None or a.default is False or a.default == argparse.SUPPRESS)
              and "default" not in (a.help or "")]
    assert not silent, f"`hwgen {name} --help` does not show the default of {silent}"


def test_the_check_catches_a_missing_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliberately broken README (one option removed) fails the check."""
    rows = reference_rows()
    monkeypatch.setattr(__import__(__name__), "reference_rows",
                        lambda: {**rows, "eval": rows["eval"].replace("--batch-size", "")})
    with pytest.raises(AssertionError, match="--batch-size"):
        test_every_option_is_in_the_readme("eval")
