"""Folding: how many lanes (PE x SIMD) each engine gets (DESIGN.md section 3).

An engine computing a ConvLayer with C_out output channels, fan-in
F = C_in * KH * KW and P = H_out * W_out output positions, with PE output
channels and SIMD input bits per cycle, takes

    cycles per frame = (C_out / PE) * (F / SIMD) * P

Legal values: PE divides C_out; SIMD divides C_in for a sliding-window layer
(a SIMD word never straddles two taps of the window) and divides F for a
whole-map layer (a fully connected layer, whose input vector is the flattened
map). Layers run concurrently in a streaming pipeline, so the frame rate is
set by the slowest stage: ``fps = clock / max cycles``. Two stages have
cycles no folding changes (:func:`fixed_stages`): the input stream
(:func:`input_cycles`), the bottleneck of small networks folded wide, and
the score unit (:func:`hwgen.hw.engines.scores.frame_interval`, 2C + 9 for
C classes), the bottleneck of a network with few pixels and many classes.
No layer needs to be faster than either.

Input width (``hwgen build --in-width W``, :data:`IN_WIDTHS`): ``s_axis``
carries P = W / 8 uint8 pixel channels per beat, the first on bits 7..0
(AXI4-Stream byte order), and P must divide the frame's C*H*W bytes
(:func:`check_in_width`; no partial beats). The first engine reads
B = :func:`input_stream_bits` bits per cycle of that stream:

* a whole-map first layer (an MLP's): B = W; its width converter gathers
  or splits beats, so its SIMD must be a multiple or a divisor of P
  (:attr:`LayerShape.feed_elements`), or the converter would run at
  gcd(W, 8 * SIMD) bits per cycle;
* a sliding-window first layer: B = gcd(W, 8 * C), the widest beat that
  divides both a pixel's 8 * C bits (the SWU's input width must) and W
  (a converter splits each beat); 8 for RGB and grey images.

An input table (QONNX imports) rewrites B / 8 bytes per cycle in front of
the first engine, so it changes nothing here.

So the input-bound cycles per frame are ``ceil(8 * C*H*W / B)``.

Solvers:

* ``pe=N`` (``hwgen build --pe N``): the heaviest layer (most MACs) gets PE = N
  and SIMD = the largest legal value <= ``simd`` (default 64); every other
  layer gets the fewest lanes (PE * SIMD) whose cycles do not exceed the
  heaviest layer's, or the slower fixed stage's when that is slower (ties:
  larger SIMD, i.e. fewer accumulators and comparators), so the pipeline is balanced.
* ``fps=F`` at ``clock_hz``: every layer gets the fewest lanes that reach
  ``cycles <= clock_hz / F``; BuildError when no folding does
  (:func:`fastest_cycles`: a fixed stage or a layer fully unrolled is slower).
* ``overrides``: fixed (PE, SIMD) per layer name, validated.

The tie rule above costs nothing to apply but is not the cheapest: ``hwgen build``
then chooses each layer's (PE, SIMD) again among its equal-lane foldings
(:func:`equal_lane_foldings`: same cycles) by the cost model
(:func:`hwgen.hw.fit.cheapest_ties`), keeping the layers the user fixed.

Impossible requests raise BuildError naming the layer and the nearest legal values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwgen.compile.ir import ConvLayer, Network
from hwgen.errors import BuildError
from hwgen.hw.engines.scores import frame_interval

DEFAULT_SIMD = 64
#: The bottleneck's name when the input stream is slower than every engine.
INPUT_STAGE = "input stream"
#: The bottleneck's name when the score unit's frame interval is the slowest stage.
SCORE_STAGE = "score unit"

#: Bits of one uint8 pixel channel, the unit of the input stream.
PIXEL_BITS = 8
#: ``s_axis_tdata`` widths ``hwgen build --in-width`` offers (8: one pixel per beat, the default).
IN_WIDTHS = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class LayerShape:
    """What folding needs to know about one ConvLayer."""

    name: str
    c_out: int
    c_in: int
    fan_in: int
    positions: int
    whole_map: bool
    #: Elements per beat of the stream a whole-map layer's width converter reads, when SIMD must be a
    #: multiple or a divisor of it (the first layer at ``--in-width`` > 8: pixels per beat); 1: any SIMD.
    feed_elements: int = 1

    @property
    def macs(self) -> int:
        return self.c_out * self.fan_in * self.positions

    def legal_pe(self) -> list[int]:
        return divisors(self.c_out)

    def legal_simd(self) -> list[int]:
        p = self.feed_elements
        return [d for d in divisors(self.fan_in if self.whole_map else self.c_in) if d % p == 0 or p % d == 0]

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


def is_whole_map(layer: ConvLayer) -> bool:
    """A fully connected layer: the kernel covers the whole unpadded input map."""
    return layer.padding == 0 and layer.kernel == tuple(layer.in_shape[1:])


def layer_shapes(net: Network, in_width: int = PIXEL_BITS) -> list[LayerShape]:
    """One LayerShape per ConvLayer; the first one's legal SIMD follows the input stream (module docstring)."""
    shapes = []
    feed = input_stream_bits(net, in_width) // PIXEL_BITS
    for layer in net.layers:
        if isinstance(layer, ConvLayer):
            c_out, h, w = layer.out_shape
            whole = is_whole_map(layer)
            first = not shapes and layer is net.layers[0]
            shapes.append(LayerShape(name=layer.name, c_out=c_out, c_in=layer.in_shape[0], fan_in=layer.fan_in,
                                     positions=h * w, whole_map=whole,
                                     feed_elements=feed if first and whole and layer.input_kind == "uint8" else 1))
    return shapes


def check_in_width(net: Network, in_width: int) -> int:
    """``in_width``, or BuildError: one of :data:`IN_WIDTHS`, and its pixels per beat divide the frame's bytes."""
    if in_width not in IN_WIDTHS:
        raise BuildError(f"--in-width must be one of {', '.join(map(str, IN_WIDTHS))} bits, not {in_width}")
    c, h, w = net.input_shape
    per_beat = in_width // PIXEL_BITS
    if (c * h * w) % per_beat:
        raise BuildError(f"--in-width {in_width} carries {per_beat} pixel bytes per beat, which must divide a "
                         f"frame's {c * h * w:,} bytes ({c} x {h} x {w}); choose a narrower --in-width")
    return in_width


def input_stream_bits(net: Network, in_width: int = PIXEL_BITS) -> int:
    """B: bits per cycle the first engine reads from an ``in_width``-bit ``s_axis`` (module docstring)."""
    check_in_width(net, in_width)
    first = net.layers[0]
    if isinstance(first, ConvLayer) and is_whole_map(first):
        return in_width
    return math.gcd(in_width, PIXEL_BITS * net.input_shape[0])


def input_cycles(net: Network, in_width: int = PIXEL_BITS) -> int:
    """Input-bound cycles per frame at ``in_width`` bits of ``s_axis_tdata``: ceil(8 * C*H*W / B).

    B = :func:`input_stream_bits`; at the default 8 bits, C*H*W (one byte per cycle).
    """
    c, h, w = net.input_shape
    return -(-PIXEL_BITS * c * h * w // input_stream_bits(net, in_width))


def fixed_stages(net: Network, in_width: int = PIXEL_BITS) -> dict[str, int]:
    """Cycles per frame of the stages folding does not change, by name: the input stream
    (:func:`input_cycles`) and the score unit (``frame_interval(net.num_classes)``)."""
    return {INPUT_STAGE: input_cycles(net, in_width), SCORE_STAGE: frame_interval(net.num_classes)}


def fastest_cycles(net: Network, in_width: int = PIXEL_BITS) -> tuple[int, str]:
    """(cycles per frame, stage) of the fastest pipeline ``net`` can have at ``in_width`` bits of input: the
    slowest stage when every layer is fully unrolled (C_out PEs, the largest legal SIMD) and the fixed
    stages (:func:`fixed_stages`)."""
    stages = [(cycles, name) for name, cycles in fixed_stages(net, in_width).items()]
    stages += [(s.cycles(s.c_out, max(s.legal_simd())), s.name) for s in layer_shapes(net, in_width)]
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
        if layer.feed_elements > 1 and simd in divisors(layer.fan_in):
            what = (f"the fan-in ({layer.fan_in}) and be a multiple or a divisor of the input stream's "
                    f"{layer.feed_elements} pixels per beat (--in-width)")
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


def heaviest_layer(shapes: list[LayerShape]) -> LayerShape:
    """The layer with the most MACs (the first of equals): the one ``--pe`` and ``--simd`` fold."""
    return max(shapes, key=lambda s: s.macs)


def equal_lane_foldings(layer: LayerShape, lanes: int) -> list[tuple[int, int]]:
    """Every legal (PE, SIMD) of ``layer`` with PE * SIMD = ``lanes``, ascending PE: all take the same cycles
    (C_out * F * P / lanes), so any of them can replace another without changing the pipeline's rate."""
    return [(pe, lanes // pe) for pe in layer.legal_pe() if lanes % pe == 0 and lanes // pe in layer.legal_simd()]


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
                  clock_hz: float = 100e6, overrides: dict[str, tuple[int, int]] | None = None,
                  in_width: int = PIXEL_BITS) -> list[LayerFold]:
    """Choose (PE, SIMD) per layer; exactly one of ``pe`` and ``fps`` must be given; ``in_width``: s_axis bits."""
    if (pe is None) == (fps is None):
        raise BuildError("give exactly one of --pe and --fps")
    shapes = layer_shapes(net, in_width)
    overrides = dict(overrides or {})
    check_overrides(shapes, overrides)
    if fps is not None:
        if fps <= 0:
            raise BuildError(f"--fps must be positive, not {fps}")
        target = int(clock_hz // fps)
        floor, stage = fastest_cycles(net, in_width)
        if target < floor:
            raise BuildError(f"--fps {fps:g} cannot be reached at {clock_hz / 1e6:g} MHz: it needs <= {target:,} "
                             f"cycles per frame, but the {stage} takes {floor:,} even at the fastest folding "
                             f"(at most {clock_hz / floor:,.0f} frames/s; a higher --clock, a wider --in-width, or --fit for the "
                             f"fastest folding that fits the target)")
        fixed: dict[str, tuple[int, int]] = {}
    else:
        heaviest = heaviest_layer(shapes)
        wanted_simd = simd or DEFAULT_SIMD
        heavy_simd = simd if simd is not None else max(d for d in heaviest.legal_simd() if d <= wanted_simd)
        fixed = {heaviest.name: overrides.get(heaviest.name, (pe, heavy_simd))}
        _check(heaviest, *fixed[heaviest.name])
        target = max([heaviest.cycles(*fixed[heaviest.name])] + list(fixed_stages(net, in_width).values()))
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


def summarize(folds: list[LayerFold], fixed: dict[str, int] | None = None) -> FoldingSummary:
    """The pipeline's figures; ``fixed``: cycles per frame of the stages no folding changes, by name
    (:func:`fixed_stages`; None: the engines alone). An engine wins a tie, then the earlier stage."""
    slowest = max(folds, key=lambda f: f.cycles)
    lanes = sum(f.lanes for f in folds)
    name, cycles = slowest.layer.name, slowest.cycles
    for stage, stage_cycles in (fixed or {}).items():
        if stage_cycles > cycles:
            name, cycles = stage, stage_cycles
    return FoldingSummary(bottleneck=name, cycles_per_frame=cycles,
                          ideal_cycles=sum(f.layer.macs for f in folds) / lanes, total_lanes=lanes)
