"""Per engine kind, everything the engine bench needs to know about it: one class each, registered in :data:`ENGINES`.

A kind (:class:`EngineKind`) holds, for its engine:

* :meth:`~EngineKind.make_dut`: the Amaranth engine for an IR layer and a
  fold dict (the construction :mod:`hwgen.hw.stages` uses);
* :meth:`~EngineKind.figures`, :meth:`~EngineKind.cycles_per_frame`: what the
  bench reads from the DUT (widths, latency, the documented throughput);
* :meth:`~EngineKind.expected`: the golden model's output maps of a case;
* :meth:`~EngineKind.stimulus`: the input beats, one ``(port, beats)`` per
  input stream (:attr:`~EngineKind.inputs`);
* :meth:`~EngineKind.beats_per_frame`, :meth:`~EngineKind.decode`: the
  output stream (:attr:`~EngineKind.output`) back into maps.

Beat formats are those of :mod:`hwgen.sim.formats`. Numpy only: the pytest
side (:mod:`cases`) and the cocotb side (:mod:`engine_bench`) share it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hwgen.compile.golden import apply_threshold, conv_accumulate, join_bits, max_pool_bits
from hwgen.compile.ir import ConvLayer, JoinLayer, MaxPoolLayer, ScoreOutput, ThresholdOutput
from hwgen.compile.kinds.conv import stream_weights
from hwgen.sim.formats import (
    beats_to_map,
    decode_fold_beats,
    map_beats,
    pack_lanes,
    vector_beats,
    window_vectors,
)

if TYPE_CHECKING:
    from cases import Case

__all__ = ["ENGINES", "EngineKind", "JoinBench", "MacBench", "MvtuBench", "PoolBench", "SwuBench", "engine_kind"]

Shape = tuple[int, int, int]


class EngineKind:
    """One engine kind's bench: DUT, figures, golden model, input beats and output decoding.

    ``name``: the ``engine`` of a case; ``inputs``: the DUT's input stream
    ports, in :meth:`stimulus` order; ``output``: its output stream port;
    ``input_dtype``: what ``inputs.npy`` of a case holds.
    """

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ("i",)
    output: ClassVar[str] = "o"
    input_dtype: ClassVar[type] = np.uint8

    def make_dut(self, layer, fold: dict):
        """The Amaranth engine for ``layer`` with ``fold``."""
        raise NotImplementedError

    def figures(self, dut) -> dict:
        """What a bench needs to know about the DUT: its stream widths and timing figures."""
        raise NotImplementedError

    def cycles_per_frame(self, dut, layer) -> int:
        """The DUT's documented cycles per frame, unstalled."""
        return dut.cycles_per_frame

    def expected(self, case: Case) -> np.ndarray:
        """The golden model's output maps (N, C, H, W) for the case's inputs."""
        raise NotImplementedError

    def stimulus(self, case: Case) -> list[tuple[str, list[int]]]:
        """The input beats, one ``(port, beats)`` per input stream."""
        raise NotImplementedError

    def beats_per_frame(self, case: Case, shape: Shape) -> int:
        """Output beats per frame, for output maps of ``shape`` (C, H, W) (that of :meth:`expected`)."""
        raise NotImplementedError

    def decode(self, case: Case, beats: list[int], shape: Shape) -> np.ndarray:
        """Output beats (whole frames only) -> maps (N, C, H, W) in the layout of :meth:`expected`."""
        raise NotImplementedError


class MvtuBench(EngineKind):
    """``mvtu``: a binary layer's MVTU, threshold mode or (a ScoreOutput layer) accumulator mode.

    Fold ``pe``, ``simd``. Input ``i``: the window vectors of the input maps
    (:func:`~hwgen.sim.formats.window_vectors`, padded taps masked), F / SIMD
    beats per output position of SIMD ``lane_bits``-wide lanes plus SIMD tap
    bits (:func:`~hwgen.sim.formats.vector_beats`). Output ``o``: NF beats per
    position, bit (or signed ``acc_width``-bit field) p of beat nf = channel
    ``nf * PE + p``. Golden: ``apply_threshold(conv_accumulate(layer, x))``, or
    ``conv_accumulate(layer, x)`` itself for the last layer. Unstalled: NF *
    SF * H_out * W_out cycles per frame.
    """

    name = "mvtu"

    def make_dut(self, layer: ConvLayer, fold: dict):
        from hwgen.hw.engines import MVTU

        return MVTU(weights=stream_weights(layer), pe=fold["pe"], simd=fold["simd"], thresholds=_thresholds(layer))

    def figures(self, dut) -> dict:
        return {"nf": dut.nf, "sf": dut.sf, "pe": dut.pe, "simd": dut.simd,
                "acc_width": dut.acc_width if dut.accumulator_mode else None,
                "lane_bits": len(dut.i.payload.data) // dut.simd, "latency": dut.latency,
                "cycles_per_vector": dut.cycles_per_vector}

    def cycles_per_frame(self, dut, layer: ConvLayer) -> int:
        _, ho, wo = layer.out_shape
        return dut.cycles_per_vector * ho * wo

    def expected(self, case: Case) -> np.ndarray:
        layer = case.layer
        acc = conv_accumulate(layer, case.inputs)
        if isinstance(layer.output, ScoreOutput):
            return acc.astype(np.int64)  # the last layer's engine emits the accumulator
        return apply_threshold(acc, layer.output)

    def stimulus(self, case: Case) -> list[tuple[str, list[int]]]:
        layer, p = case.layer, case.params
        data, valid = window_vectors(case.inputs, layer.kernel[0], layer.stride, layer.padding)
        return [("i", vector_beats(data, valid, p["simd"], p["lane_bits"]))]

    def beats_per_frame(self, case: Case, shape: Shape) -> int:
        _, h, w = shape
        return h * w * case.params["nf"]

    def decode(self, case: Case, beats: list[int], shape: Shape) -> np.ndarray:
        p = case.params
        c, h, w = shape
        vals = decode_fold_beats(beats, p["pe"], p["nf"], p["acc_width"])
        n = len(vals) // (h * w)
        return vals[:n * h * w].reshape(n, h, w, c).transpose(0, 3, 1, 2)


class MacBench(MvtuBench):
    """``mac``: the first (uint8) layer's MAC unit: as :class:`MvtuBench`, with uint8 pixel lanes.

    The pixels minus the layer's per-channel ``input_offset`` times k-bit weights.
    """

    name = "mac"

    def make_dut(self, layer: ConvLayer, fold: dict):
        from hwgen.hw.engines import MACUnit

        return MACUnit(weights=stream_weights(layer), input_offset=layer.input_offset, in_channels=layer.in_shape[0],
                       pe=fold["pe"], simd=fold["simd"], thresholds=_thresholds(layer))


class SwuBench(EngineKind):
    """``swu``: the sliding-window unit, checked on its window vectors.

    Fold ``in_width``, ``simd``. Input ``i``: the maps, ``in_width`` bits per
    beat (:func:`~hwgen.sim.formats.map_beats`). Output ``o``: per output
    position F / SIMD beats of SIMD data bits then SIMD tap-valid bits. Golden
    (and decoded) maps: the window data (N, F, H_out, W_out) and tap masks
    stacked as (N, 2F, H_out, W_out).
    """

    name = "swu"

    def make_dut(self, layer: ConvLayer, fold: dict):
        from hwgen.hw.engines import SlidingWindowUnit

        return SlidingWindowUnit(in_shape=layer.in_shape, kernel=layer.kernel[0], stride=layer.stride,
                                 padding=layer.padding, in_width=fold["in_width"], simd=fold["simd"])

    def figures(self, dut) -> dict:
        return {"in_width": dut.in_width, "simd": dut.simd, "latency": dut.latency,
                "cycles_per_frame": dut.cycles_per_frame, "beats_out": dut.beats_per_frame_out}

    def expected(self, case: Case) -> np.ndarray:
        layer = case.layer
        data, valid = window_vectors(case.inputs, layer.kernel[0], layer.stride, layer.padding)
        return np.concatenate([data, valid], axis=-1).transpose(0, 3, 1, 2)

    def stimulus(self, case: Case) -> list[tuple[str, list[int]]]:
        return [("i", map_beats(case.inputs, case.params["in_width"]))]

    def beats_per_frame(self, case: Case, shape: Shape) -> int:
        c, h, w = shape
        return (c // 2) * h * w // case.params["simd"]

    def decode(self, case: Case, beats: list[int], shape: Shape) -> np.ndarray:
        c, h, w = shape
        f, simd = c // 2, case.params["simd"]
        beats = _whole_frames(beats, self.beats_per_frame(case, shape))
        data = np.array([[(b >> k) & 1 for k in range(simd)] for b in beats], dtype=np.uint8)
        valid = np.array([[(b >> (simd + k)) & 1 for k in range(simd)] for b in beats], dtype=np.uint8)
        data, valid = data.reshape(-1, h, w, f), valid.reshape(-1, h, w, f)
        return np.concatenate([data, valid], axis=-1).transpose(0, 3, 1, 2)


class _BitMapOutput(EngineKind):
    """An engine whose output is a bit map, :meth:`out_width` bits per beat (:func:`~hwgen.sim.formats.map_beats`)."""

    def out_width(self, params: dict) -> int:
        raise NotImplementedError

    def beats_per_frame(self, case: Case, shape: Shape) -> int:
        c, h, w = shape
        return c * h * w // self.out_width(case.params)

    def decode(self, case: Case, beats: list[int], shape: Shape) -> np.ndarray:
        beats = _whole_frames(beats, self.beats_per_frame(case, shape))
        return beats_to_map(beats, shape, self.out_width(case.params))


class PoolBench(_BitMapOutput):
    """``pool``: the max-pool unit (per-channel OR / AND), ``width`` bits per beat in and out.

    Golden: ``max_pool_bits(x, layer)``.
    """

    name = "pool"

    def make_dut(self, layer: MaxPoolLayer, fold: dict):
        from hwgen.hw.engines import MaxPoolUnit

        return MaxPoolUnit(in_shape=layer.in_shape, kernel=layer.kernel, stride=layer.stride,
                           use_and=layer.use_and, width=fold["width"])

    def figures(self, dut) -> dict:
        return {"width": dut.width, "latency": dut.latency, "cycles_per_frame": dut.cycles_per_frame}

    def expected(self, case: Case) -> np.ndarray:
        return max_pool_bits(case.inputs, case.layer)

    def stimulus(self, case: Case) -> list[tuple[str, list[int]]]:
        return [("i", map_beats(case.inputs, case.params["width"]))]

    def out_width(self, params: dict) -> int:
        return params["width"]


class JoinBench(_BitMapOutput):
    """``join``: the residual join unit, two input streams.

    Fold ``pe`` and ``acc_range`` (lo, hi) (in the accelerator: the main
    branch's engine's). The case's ``inputs`` are int64 accumulators (N, C,
    H, W) within ``acc_range``, its ``shortcut`` bits of the same shape.
    Input ``main``: per position NF beats of PE signed ``acc_width``-bit
    lanes, lane p (bits ``p * acc_width ..``) = channel ``nf * PE + p``;
    input ``shortcut``: the bits in the same order, PE per beat. Output
    ``o``: PE bits per beat, same order. Golden: ``join_bits(acc, shortcut,
    layer)``. Unstalled: one beat per cycle, H * W * NF cycles per frame.
    """

    name = "join"
    inputs = ("main", "shortcut")
    input_dtype = np.int64

    def make_dut(self, layer: JoinLayer, fold: dict):
        from hwgen.hw.engines import JoinUnit

        return JoinUnit.for_layer(layer, pe=fold["pe"], acc_range=tuple(fold["acc_range"]))

    def figures(self, dut) -> dict:
        return {"pe": dut.pe, "nf": dut.nf, "acc_width": dut.acc_width, "threshold_width": dut.threshold_width,
                "positions": dut.positions, "latency": 1}

    def cycles_per_frame(self, dut, layer: JoinLayer) -> int:
        _, h, w = layer.in_shape
        return h * w * dut.nf

    def expected(self, case: Case) -> np.ndarray:
        return join_bits(case.inputs, self._shortcut(case), case.layer)

    def stimulus(self, case: Case) -> list[tuple[str, list[int]]]:
        pe, aw = case.params["pe"], case.params["acc_width"]
        lanes = case.inputs.transpose(0, 2, 3, 1).reshape(-1, pe) & ((1 << aw) - 1)  # two's complement
        return [("main", pack_lanes(lanes, aw)), ("shortcut", map_beats(self._shortcut(case), pe))]

    def out_width(self, params: dict) -> int:
        return params["pe"]

    @staticmethod
    def _shortcut(case: Case) -> np.ndarray:
        if case.shortcut is None:
            raise ValueError(f"join case {case.layer.name!r} has no shortcut bits (shortcut.npy)")
        return case.shortcut


#: The engine kinds by case ``engine`` name.
ENGINES: dict[str, EngineKind] = {kind.name: kind for kind in (MvtuBench(), MacBench(), SwuBench(), PoolBench(),
                                                              JoinBench())}


def engine_kind(name: str) -> EngineKind:
    """The kind called ``name``; a ValueError naming the known ones otherwise."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: one of {', '.join(ENGINES)}")
    return ENGINES[name]


def _thresholds(layer: ConvLayer) -> np.ndarray | None:
    """The folded engines' thresholds: the layer's, or None (accumulator mode)."""
    return layer.output.thresholds if isinstance(layer.output, ThresholdOutput) else None


def _whole_frames(beats: list[int], per_frame: int) -> list[int]:
    """``beats`` without a trailing incomplete frame."""
    return beats[:len(beats) // per_frame * per_frame]
