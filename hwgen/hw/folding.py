"""Folding: how many lanes (PE x SIMD) each engine gets (DESIGN.md section 3).

An engine computing a ConvLayer with C_out output channels, fan-in
F = C_in * KH * KW and P = H_out * W_out output positions, with PE output
channels and SIMD input bits per cycle, takes

    cycles per frame = (C_out / PE) * (F / SIMD) * P

Legal values: PE divides C_out; SIMD divides C_in for a sliding-window layer
(a SIMD word never straddles two taps of the window) and divides F for a
whole-map layer (a fully connected layer, whose input vector is the flattened
map). Layers run concurrently in a streaming pipeline, so the frame rate is
set by the slowest engine: ``fps = clock / max cycles``. The input stream
(one uint8 pixel channel per cycle, C*H*W beats per frame, :func:`input_cycles`)
is a stage too: no layer needs to be faster than it, and it is the bottleneck
of small networks folded wide.

Solvers:

* ``pe=N`` (``hwgen build --pe N``): the heaviest layer (most MACs) gets PE = N
  and SIMD = the largest legal value <= ``simd`` (default 64); every other
  layer gets the fewest lanes (PE * SIMD) whose cycles do not exceed the
  heaviest layer's, or than the input stream's when that is slower (ties:
  larger SIMD, i.e. fewer accumulators and comparators), so the pipeline is balanced.
* ``fps=F`` at ``clock_hz``: every layer gets the fewest lanes that reach
  ``cycles <= clock_hz / F``; BuildError when no folding does
  (:func:`fastest_cycles`: the input stream or a layer fully unrolled is slower).
* ``overrides``: fixed (PE, SIMD) per layer name, validated.

Impossible requests raise BuildError naming the layer and the nearest legal values.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwgen.compile.ir import ConvLayer, Network
from hwgen.errors import BuildError

DEFAULT_SIMD = 64
#: The bottleneck's name when the input stream is slower than every engine.
INPUT_STAGE = "input stream"


@dataclass(frozen=True)
class LayerShape:
    """What folding needs to know about one ConvLayer."""

    name: str
    c_out: int
    c_in: int
    fan_in: int
    positions: int
    whole_map: bool

    @property
    def macs(self) -> int:
        return self.c_out * self.fan_in * self.positions

    def legal_pe(self) -> list[int]:
        return divisors(self.c_out)

    def legal_simd(self) -> list[int]:
        return divisors(self.fan_in if self.whole_map else self.c_in)

    def cycles(self, pe: int, simd: int) -> int:
        return (self.c_out // pe) * (self.fan_in // simd) * self.positions


@dataclass(frozen=True)
class LayerFold:
    """The folding chosen for one layer."""

    layer: LayerShape
    pe: int
    simd: int

    @property
    def lanes(self) -> int:
        return self.pe * self.simd

    @property
    def cycles(self) -> int:
        return self.layer.cycles(self.pe, self.simd)


def divisors(n: int) -> list[int]:
    """All positive divisors of n, ascending."""
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def layer_shapes(net: Network) -> list[LayerShape]:
    shapes = []
    for layer in net.layers:
        if isinstance(layer, ConvLayer):
            c_out, h, w = layer.out_shape
            whole = layer.padding == 0 and layer.kernel == tuple(layer.in_shape[1:])
            shapes.append(LayerShape(name=layer.name, c_out=c_out, c_in=layer.in_shape[0], fan_in=layer.fan_in,
                                     positions=h * w, whole_map=whole))
    return shapes


def input_cycles(net: Network) -> int:
    """Cycles the AXI4-Stream input takes per frame: one byte (pixel channel) per cycle, C*H*W."""
    c, h, w = net.input_shape
    return c * h * w


def fastest_cycles(net: Network) -> tuple[int, str]:
    """(cycles per frame, stage) of the fastest pipeline ``net`` can have: the slowest stage when every layer
    is fully unrolled (C_out PEs, the largest legal SIMD) and the input stream (:func:`input_cycles`, one call)."""
    stages = [(input_cycles(net), INPUT_STAGE)]
    stages += [(s.cycles(s.c_out, max(s.legal_simd())), s.name) for s in layer_shapes(net)]
    return max(stages)


def _nearest(value: int, legal: list[int]) -> str:
    below = [d for d in legal if d < value]
    above = [d for d in legal if d > value]
    return ", ".join(str(d) for d in (below[-1:] + above[:1]))


def _check(layer: LayerShape, pe: int, simd: int) -> None:
    if pe not in layer.legal_pe():
        raise BuildError(f"layer {layer.name}: PE must divide C_out ({layer.c_out}), not {pe}; "
                         f"nearest legal PE: {_nearest(pe, layer.legal_pe())}")
    if simd not in layer.legal_simd():
        what = f"the fan-in ({layer.fan_in})" if layer.whole_map else f"C_in ({layer.c_in})"
        raise BuildError(f"layer {layer.name}: SIMD must divide {what}, not {simd}; "
                         f"nearest legal SIMD: {_nearest(simd, layer.legal_simd())}")


def fewest_lanes(layer: LayerShape, max_cycles: int) -> tuple[int, int]:
    """(PE, SIMD) with the fewest lanes and cycles <= max_cycles; the fastest folding if none reaches it."""
    options = [(pe * simd, -simd, pe) for pe in layer.legal_pe() for simd in layer.legal_simd()
               if layer.cycles(pe, simd) <= max_cycles]
    if not options:
        return layer.c_out, max(layer.legal_simd())
    _, neg_simd, pe = min(options)
    return pe, -neg_simd


def check_overrides(shapes: list[LayerShape], overrides: dict[str, tuple[int, int]]) -> None:
    """BuildError unless every override names a layer and gives it a legal (PE, SIMD)."""
    unknown = set(overrides) - {s.name for s in shapes}
    if unknown:
        raise BuildError(f"folding overrides name unknown layers: {', '.join(sorted(unknown))} "
                         f"(layers: {', '.join(s.name for s in shapes)})")
    for layer in shapes:
        if layer.name in overrides:
            _check(layer, *overrides[layer.name])


def solve_folding(net: Network, *, pe: int | None = None, simd: int | None = None, fps: float | None = None,
                  clock_hz: float = 100e6, overrides: dict[str, tuple[int, int]] | None = None) -> list[LayerFold]:
    """Choose (PE, SIMD) per layer; exactly one of ``pe`` and ``fps`` must be given."""
    if (pe is None) == (fps is None):
        raise BuildError("give exactly one of --pe and --fps")
    shapes = layer_shapes(net)
    overrides = dict(overrides or {})
    check_overrides(shapes, overrides)
    if fps is not None:
        if fps <= 0:
            raise BuildError(f"--fps must be positive, not {fps}")
        target = int(clock_hz // fps)
        floor, stage = fastest_cycles(net)
        if target < floor:
            raise BuildError(f"--fps {fps:g} cannot be reached at {clock_hz / 1e6:g} MHz: it needs <= {target:,} "
                             f"cycles per frame, but the {stage} takes {floor:,} even at the fastest folding "
                             f"(at most {clock_hz / floor:,.0f} frames/s; a higher --clock, or --fit for the "
                             f"fastest folding that fits the target)")
        fixed: dict[str, tuple[int, int]] = {}
    else:
        heaviest = max(shapes, key=lambda s: s.macs)
        wanted_simd = simd or DEFAULT_SIMD
        heavy_simd = simd if simd is not None else max(d for d in heaviest.legal_simd() if d <= wanted_simd)
        fixed = {heaviest.name: overrides.get(heaviest.name, (pe, heavy_simd))}
        _check(heaviest, *fixed[heaviest.name])
        target = max(heaviest.cycles(*fixed[heaviest.name]), input_cycles(net))
    folds = []
    for layer in shapes:
        choice = overrides.get(layer.name) or fixed.get(layer.name) or fewest_lanes(layer, target)
        folds.append(LayerFold(layer=layer, pe=choice[0], simd=choice[1]))
    return folds


@dataclass(frozen=True)
class FoldingSummary:
    """Pipeline figures of a folding: bottleneck, frame rate, ideal cycles and balance.

    ``cycles_per_frame`` = the slowest stage's cycles (an engine or the input
    stream); ``ideal_cycles`` = total MACs / total lanes; ``balance`` = ideal / actual.
    """

    bottleneck: str
    cycles_per_frame: int
    ideal_cycles: float  # total MACs / total lanes: a perfectly balanced pipeline with the same lanes
    total_lanes: int

    @property
    def balance(self) -> float:
        return self.ideal_cycles / self.cycles_per_frame

    def fps(self, clock_hz: float) -> float:
        return clock_hz / self.cycles_per_frame


def summarize(folds: list[LayerFold], input_cycles: int = 0) -> FoldingSummary:
    """The pipeline's figures; ``input_cycles``: the input stream's cycles per frame (:func:`input_cycles`)."""
    slowest = max(folds, key=lambda f: f.cycles)
    lanes = sum(f.lanes for f in folds)
    name, cycles = slowest.layer.name, slowest.cycles
    if input_cycles > cycles:
        name, cycles = INPUT_STAGE, input_cycles
    return FoldingSummary(bottleneck=name, cycles_per_frame=cycles,
                          ideal_cycles=sum(f.layer.macs for f in folds) / lanes, total_lanes=lanes)
