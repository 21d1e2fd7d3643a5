"""A sweep as typed data: foldings x seeds x clocks on one model and target, and the hash of each point.

A :class:`Folding` is what ``hwgen build`` is asked for (``--pe N``,
``--fps F``, or ``--fit``: the fastest balanced folding that fits the target). A :class:`Point` is one synthesis run: a folding, a placer seed
and a clock (nextpnr's ``--freq``; with ``--fps`` also the build's ``--clock``,
since the folding that reaches F frames/s depends on it). A folding is built
once per clock that changes it (:meth:`Folding.build_clock`): ``--pe`` and
``--fit`` build once (at the first clock), ``--fps`` once per clock.

:func:`point_key` hashes everything a point's result depends on (the model
file's SHA-256, the folding, the target, the seed, the clock and the hwgen
version): a point folder holding a result under the same key is finished.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass

from hwgen import __version__
from hwgen.errors import ConfigError

__all__ = ["Folding", "FoldingKind", "Point", "SweepSpec", "build_key", "parse_list", "point_key"]


class FoldingKind(enum.Enum):
    """The ``hwgen build`` option a folding is given by."""

    PE = "pe"
    FPS = "fps"
    FIT = "fit"  #: no value: the fastest balanced folding that fits the target (``hwgen build --fit``)


@dataclass(frozen=True)
class Folding:
    """One folding request: ``--pe N``, ``--fps F`` or ``--fit`` (no ``value``)."""

    kind: FoldingKind
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind is FoldingKind.FIT:
            if self.value is not None:
                raise ConfigError(f"--fit takes no value, not {self.value!r}")
            return
        if self.value is None:
            raise ConfigError(f"--{self.kind.value} needs a value")
        if not (math.isfinite(self.value) and self.value > 0):
            raise ConfigError(f"--{self.kind.value} values must be positive numbers, not {self.value!r}")
        if self.kind is FoldingKind.PE and self.value != int(self.value):
            raise ConfigError(f"--pe values must be integers, not {self.value!r}")

    @property
    def option(self) -> str:
        """The build option, e.g. ``--pe 16``, ``--fps 100000`` or ``--fit``."""
        if self.kind is FoldingKind.FIT:
            return "--fit"
        return f"--{self.kind.value} {self.value:g}"

    @property
    def label(self) -> str:
        """A short name for folders and charts, e.g. ``pe16``, ``fps100000``, ``fit``."""
        if self.kind is FoldingKind.FIT:
            return "fit"
        return f"{self.kind.value}{self.value:g}"

    def build_clock(self, freq_mhz: float, first_freq_mhz: float) -> float:
        """The ``--clock`` the folding is built at for a point at ``freq_mhz``."""
        return freq_mhz if self.kind is FoldingKind.FPS else first_freq_mhz

    def build_options(self, *, target: str, clock_mhz: float):
        """The :class:`~hwgen.hw.builder.BuildOptions` of this folding."""
        from hwgen.hw.builder import BuildOptions

        if self.kind is FoldingKind.PE:
            return BuildOptions(pe=int(self.value), target=target, clock_mhz=clock_mhz)
        if self.kind is FoldingKind.FIT:
            return BuildOptions(fit=True, target=target, clock_mhz=clock_mhz)
        return BuildOptions(fps=float(self.value), target=target, clock_mhz=clock_mhz)


@dataclass(frozen=True)
class Point:
    """One synthesis run of the sweep."""

    folding: Folding
    seed: int
    freq_mhz: float
    build_clock_mhz: float

    @property
    def name(self) -> str:
        """The point's folder name, e.g. ``pe16-seed2-100MHz``."""
        return f"{self.folding.label}-seed{self.seed}-{self.freq_mhz:g}MHz"

    @property
    def build_name(self) -> str:
        """The folder name of its build, e.g. ``pe16-100MHz``."""
        return f"{self.folding.label}-{self.build_clock_mhz:g}MHz"


@dataclass(frozen=True)
class SweepSpec:
    """What ``hwgen explore`` was asked for; :meth:`points` in folding, clock, seed order."""

    model: str
    target: str
    foldings: tuple[Folding, ...]
    seeds: tuple[int, ...] = (1,)
    freqs_mhz: tuple[float, ...] = (100.0,)

    def __post_init__(self) -> None:
        from hwgen.hw.targets import get_target

        get_target(self.target)
        for what, values in (("folding", self.foldings), ("--seeds", self.seeds), ("--clock", self.freqs_mhz)):
            if not values:
                raise ConfigError(f"a sweep needs at least one {what}")
            if len(set(values)) != len(values):
                raise ConfigError(f"{what} lists a value twice: {', '.join(map(str, values))}")
        for seed in self.seeds:
            if not isinstance(seed, int) or seed < 0:
                raise ConfigError(f"--seeds must be integers >= 0, not {seed!r}")
        for freq in self.freqs_mhz:
            if not (math.isfinite(freq) and freq > 0):
                raise ConfigError(f"--clock values must be positive numbers of MHz, not {freq!r}")

    def points(self) -> list[Point]:
        first = self.freqs_mhz[0]
        return [Point(f, seed, freq, f.build_clock(freq, first))
                for f in self.foldings for freq in self.freqs_mhz for seed in self.seeds]


def _digest(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def build_key(model_sha256: str, point: Point, target: str) -> str:
    """Hash of a build's inputs: model, folding, target, build clock, hwgen version."""
    return _digest({"model": model_sha256, "folding": point.folding.option, "target": target,
                    "clock_mhz": point.build_clock_mhz, "hwgen": __version__})


def point_key(model_sha256: str, point: Point, target: str) -> str:
    """Hash of a point's inputs: model, folding (and its build clock), target, seed, clock, hwgen version."""
    return _digest({"build": build_key(model_sha256, point, target), "seed": point.seed,
                    "freq_mhz": point.freq_mhz})


def parse_list(text: str, what: str, kind: type = float) -> tuple:
    """``"1,2,3"`` -> (1, 2, 3) of ``kind``; ConfigError naming ``what`` for anything else."""
    items = [t.strip() for t in str(text).split(",")]
    try:
        if not all(items):
            raise ValueError
        return tuple(kind(t) for t in items)
    except ValueError:
        noun = "integers" if kind is int else "numbers"
        raise ConfigError(f"{what} takes comma-separated {noun} (e.g. 1,2,4), not {text!r}") from None
