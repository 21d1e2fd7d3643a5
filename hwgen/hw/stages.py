"""One place per layer kind: the hardware stage of each IR node type.

The accelerator (:mod:`hwgen.hw.accelerator`) turns every IR node into a
*stage*, the class :data:`STAGE_KINDS` maps its type to. A stage kind holds
all that the back end knows of that kind:

* :meth:`Stage.build`: the engine (and input adapter) that computes the node,
  from the node, its folding and the streams it reads;
* :meth:`Stage.connect`: how the engine is fed from the streams of the nodes
  it reads (``inputs``, in the node's input order); ``engine.o`` is its output;
* :meth:`Stage.memory_bits`: weights, thresholds and buffers on chip;
* :meth:`Stage.lut4` and :meth:`Stage.bram_blocks`: the cost model's
  estimates on a target (:mod:`hwgen.hw.cost` has the folded engines' and
  memories' formulas);
* :meth:`Stage.report_fields`: the build report's columns for this kind;
* :meth:`Stage.rom_files`: the ROM contents ``hwgen build`` writes to ``mem/``.

The compile side of each kind (golden function, checks, ``.hwir`` entry,
flips, cost row) is its module in :mod:`hwgen.compile.kinds`, found through
the same node type; the folding shape is the convolutions' alone
(:mod:`hwgen.hw.folding`: pools, forks and joins run at one beat per cycle);
the accelerator's simulators check every kind the same way, at the top's
AXI4-Stream ports, and each engine has its bench class in ``sim/engine_kinds.py``.
Adding a kind is one class here, registered in :data:`STAGE_KINDS`, plus its
engine in :mod:`hwgen.hw.engines` and its compile-side module.

Kinds
-----
:class:`ConvStage` (:class:`~hwgen.compile.ir.ConvLayer`)
    A sliding-window layer: :class:`~hwgen.hw.engines.swu.SlidingWindowUnit`
    -> engine; a whole-map layer (fully connected): :class:`~hwgen.hw.engines.convert.WidthConverter`
    to SIMD elements per beat (-> a FIFO of one input vector when NF > 1) ->
    engine. The engine is an :class:`~hwgen.hw.engines.mvtu.MVTU` (binary
    inputs and weights) or a :class:`~hwgen.hw.engines.mac.MACUnit` (uint8
    pixels or k-bit weights); threshold mode, or accumulator mode for class
    scores and for a conv a join reads.
:class:`PoolStage` (:class:`~hwgen.compile.ir.MaxPoolLayer`)
    :class:`~hwgen.hw.engines.pool.MaxPoolUnit` at the width of the stream it reads.
:class:`JoinStage` (:class:`~hwgen.compile.ir.JoinLayer`)
    :class:`~hwgen.hw.engines.join.JoinUnit` reading the main branch's
    accumulators and the shortcut's bits (regrouped to the join's PE bits per
    beat by a width converter when the shortcut's producer has another width);
    its :class:`SkipBuffer` sits on the shortcut edge (:mod:`hwgen.hw.graph`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.hdl import Const, Module
from amaranth.lib import wiring

from hwgen.compile.ir import ConvLayer, JoinLayer, MaxPoolLayer, ThresholdOutput
from hwgen.compile.kinds.conv import stream_weights
from hwgen.errors import BuildError
from hwgen.hw import cost
from hwgen.hw.engines import MVTU, JoinUnit, MACUnit, MaxPoolUnit, SlidingWindowUnit
from hwgen.hw.engines.convert import WidthConverter
from hwgen.hw.engines.fifo import sliced_fifo
from hwgen.hw.engines.pipeline import FANOUT_GROUP_BITS
from hwgen.hw.engines.swu import OUTPUT_FIFO_DEPTH
from hwgen.hw.families import MemoryMap
from hwgen.hw.folding import PIXEL_BITS, LayerFold
from hwgen.hw.targets import Target

__all__ = ["STAGE_KINDS", "ConvStage", "JoinStage", "PoolStage", "SkipBuffer", "Stage", "StageContext", "link",
           "stage_kind"]



def link(m: Module, src, dst, payload) -> None:
    """valid / ready between two streams, and the given payload assignment(s)."""
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready)]
    m.d.comb += payload if isinstance(payload, list) else [payload]


@dataclass
class StageContext:
    """What building a stage needs beyond its node: the folding, the target's engines, what the inputs are."""

    folds: dict[str, LayerFold]
    ecp5_cells: bool
    match_count_model: bool           # simulation only (Accelerator)
    memory: MemoryMap | None
    input_offsets: np.ndarray | None  # the input table's offsets (QONNX imports), for the first layer
    widths: dict[str, int]            # bits per beat of each node's output stream (and the input's)
    stages: dict[str, "Stage"]        # the stages built so far, by node name


@dataclass
class SkipBuffer:
    """A join's skip buffer: a FIFO of ``depth`` beats of ``width`` bits on the edge ``fork`` -> ``consumer``
    (:mod:`hwgen.hw.graph`: the shortcut branch's first edge, its depth from the main branch's ``held`` frames)."""

    fork: str
    consumer: str
    width: int
    depth: int
    held: float

    @property
    def bits(self) -> int:
        return self.width * self.depth

    def lut4_and_blocks(self, target: Target) -> tuple[float, int]:
        """(logic, block RAMs): where Yosys puts a FIFO of this shape (:func:`~hwgen.hw.cost.ram_cost`)."""
        return cost.ram_cost(target, self.width, self.depth)


@dataclass
class Stage:
    """One IR node's hardware (see the module docstring); ``out_width``: bits per output beat."""

    node_type: ClassVar[type]

    layer_name: str
    engine: wiring.Component
    out_width: int
    in_bits_per_frame: int     # bits per frame of the (main) input map
    out_beats_per_frame: int   # beats the stage emits per frame

    @classmethod
    def build(cls, node, inputs: tuple[str, ...], ctx: StageContext) -> "Stage":
        """The stage of ``node``, which reads the nodes named ``inputs`` (resolved, in order)."""
        raise NotImplementedError

    def connect(self, m: Module, inputs: list) -> None:
        raise NotImplementedError

    @property
    def memory_bits(self) -> dict[str, int]:
        raise NotImplementedError

    def lut4(self, target: Target) -> int:
        raise NotImplementedError

    def bram_blocks(self, target: Target) -> int:
        raise NotImplementedError

    def dsp_blocks(self, target: Target) -> int:
        """DSP blocks (multipliers) the stage's engine takes on ``target``."""
        return 0

    def report_fields(self, fold: LayerFold | None) -> dict:
        raise NotImplementedError

    def rom_files(self) -> list[tuple[str, list[int], int]]:
        """(file suffix, words, bits per word) of each ROM ``hwgen build`` writes as ``mem/NAME.SUFFIX.hex``."""
        return []

    @property
    def fifo_depth(self) -> int:
        """Output FIFO entries of the engine (0: none), for the skip-buffer analysis."""
        return getattr(self.engine, "fifo_depth", 0)


def _thresholds(layer: ConvLayer) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(thresholds, directions) for the engine: (C_out,) per channel or (C_out, H_out * W_out) per position
    (row-major, the order the engine produces its output pixels); (None, None) for class scores and for a
    conv whose accumulator a join reads."""
    out = layer.output
    if not isinstance(out, ThresholdOutput):  # class scores, or a join's accumulator
        return None, None
    t, d = np.asarray(out.thresholds), np.asarray(out.direction)
    c, h, w = layer.out_shape
    if t.shape not in ((c,), (c, h, w)) or d.shape != t.shape:
        raise BuildError(f"layer {layer.name}: thresholds {t.shape} and directions {d.shape} must both be per "
                         f"channel ({c},) or per output position {(c, h, w)}")
    if not np.all((d == 1) | (d == -1)):
        raise BuildError(f"layer {layer.name}: threshold directions must be +1 ('>=') or -1 ('<='), "
                         f"not {sorted(set(np.unique(d).tolist()) - {1, -1})}")
    if t.ndim == 3:
        t, d = t.reshape(c, h * w), d.reshape(c, h * w)
    return t, (None if np.all(d == 1) else d)


@dataclass
class ConvStage(Stage):
    """A convolution or fully connected layer: input adapter (window or converter) and folded engine."""

    node_type: ClassVar[type] = ConvLayer

    window: SlidingWindowUnit | None = None  # sliding-window layers
    converter: WidthConverter | None = None  # whole-map layers
    element_bits: int = 1                    # bits per input element: 8 (uint8) or 1

    @classmethod
    def build(cls, node: ConvLayer, inputs: tuple[str, ...], ctx: StageContext) -> "ConvStage":
        fold = ctx.folds[node.name]
        width = ctx.widths[inputs[0]]
        bits = PIXEL_BITS if node.input_kind == "uint8" else 1
        c_in, h, w = node.in_shape
        kh, kw = node.kernel
        weights = stream_weights(node)
        thresholds, directions = _thresholds(node)
        masked = node.padding > 0
        if node.input_kind == "binary" and node.weight_bits == 1:
            engine = MVTU(weights=weights, pe=fold.pe, simd=fold.simd, thresholds=thresholds,
                          directions=directions, masked=masked, ecp5_cells=ctx.ecp5_cells,
                          match_count_model=ctx.match_count_model, memory=ctx.memory)
        else:
            offsets = ctx.input_offsets if node.input_table is not None else node.input_offset
            engine = MACUnit(weights=weights, input_offset=offsets, in_channels=c_in, pe=fold.pe, simd=fold.simd,
                             thresholds=thresholds, directions=directions, input_kind=node.input_kind,
                             masked=masked, memory=ctx.memory)
        window = converter = None
        if fold.layer.whole_map:
            converter = WidthConverter(in_width=width, out_width=fold.simd * bits)
        else:
            if kh != kw:
                raise BuildError(f"layer {node.name}: the sliding-window unit needs a square kernel, not {kh}x{kw}")
            window = SlidingWindowUnit(in_shape=(c_in * bits, h, w), kernel=kh, stride=node.stride,
                                       padding=node.padding, in_width=width, simd=fold.simd * bits,
                                       memory=ctx.memory)
        _, h_out, w_out = node.out_shape
        return cls(node.name, engine, fold.pe, in_bits_per_frame=c_in * h * w * bits,
                   out_beats_per_frame=h_out * w_out * engine.nf, window=window, converter=converter,
                   element_bits=bits)

    def connect(self, m: Module, inputs: list) -> None:
        """The window through its SWU (the valid mask one bit per element), or a whole-map layer through its
        width converter (and a FIFO of one input vector when NF > 1)."""
        (src,) = inputs
        engine = self.engine
        if self.window is not None:
            swu = m.submodules[f"{self.layer_name}_window"] = self.window
            link(m, src, swu.i, swu.i.payload.eq(src.payload))
            # The window's output comes from its own FIFO, whose ready and valid are flip-flops, and the window
            # issues by credits (swu.OUTPUT_FIFO_DEPTH): the engine's ready reaches that FIFO only. (Before, a
            # register slice of two beats sat here, and its w_rdy entered the window's issue logic.)
            link(m, swu.o, engine.i, [engine.i.payload.data.eq(swu.o.payload.data),
                                      engine.i.payload.valid.eq(swu.o.payload.valid)])
            return
        conv = m.submodules[f"{self.layer_name}_convert"] = self.converter
        link(m, src, conv.i, conv.i.payload.eq(src.payload))
        vectors = conv.o
        if engine.nf > 1:
            # The vector FIFO's read data come straight from its RAM (no output register): the engine registers
            # them every cycle without an enable, so its ready does not fan out to a wide register's enables
            # (SFC: 896 of them, 75.7 MHz; TFC: 448, 120.8 MHz). Outside block RAM it is built in slices of
            # FANOUT_GROUP_BITS, each with its own pointers (sliced_fifo).
            width = self.converter.out_width
            in_block_ram = engine.memory.ram_in_block_ram(width, engine.sf)
            fifo = m.submodules[f"{self.layer_name}_fifo"] = sliced_fifo(
                width=width, depth=engine.sf, slice_bits=width if in_block_ram else FANOUT_GROUP_BITS)
            link(m, conv.o, fifo.w_stream, fifo.w_data.eq(conv.o.payload))
            vectors = fifo.r_stream
        link(m, vectors, engine.i, [engine.i.payload.data.eq(vectors.payload),
                                    engine.i.payload.valid.eq(Const((1 << engine.simd) - 1, engine.simd))])

    @property
    def memory_bits(self) -> dict[str, int]:
        """Weights, thresholds; buffers: the engine's input buffer, the line buffer, the vector FIFO."""
        e = self.engine
        buffers = e.input_buffer_bits
        if self.window is not None:
            buffers += self.window.buffer_bits
        if self.converter is not None and e.nf > 1:
            buffers += e.sf * self.converter.out_width  # the vector FIFO
        return {"weights": e.weight_rom_bits, "thresholds": e.threshold_rom_bits, "buffers": buffers}

    def lut4(self, target: Target) -> int:
        """The folded engine, its window (:mod:`hwgen.hw.cost`) and the glue around them."""
        logic = cost.folded_lut4(self.engine, target)
        if self.window is not None:
            logic += cost.window_lut4(self.window, target)
        return logic + self._glue(target)[0]

    def bram_blocks(self, target: Target) -> int:
        return cost.folded_bram_blocks(self.engine) + self._glue(target)[1]

    def dsp_blocks(self, target: Target) -> int:
        return cost.folded_dsp(self.engine, target)

    def _glue(self, target: Target) -> tuple[int, int]:
        """(logic, block RAMs) around the engine: the line buffer and the vector FIFO where Yosys puts them
        (:func:`~hwgen.hw.cost.ram_cost`), an input buffer outside block RAM, a gathering converter's word and
        a word-wide register term for the vector FIFO; the logic only where the family counts the glue. The
        FIFO terms are those the glue coefficients were fitted with (SF - 1 words in RAM plus an output
        register, the registered FIFO of before): the FIFO has no output register now (SF words in RAM), and
        the terms stay as fitted until the coefficients are measured again (TFC after the change: 6,138 LUT4
        placed, 6,194 estimated, docs/synth.md)."""
        e, spec = self.engine, target.spec.cost
        logic, blocks = 0.0, 0
        if self.window is not None:
            c, _, w = self.window.in_shape
            ram, ram_blocks = cost.ram_cost(target, c, self.window.rows * w)
            logic, blocks = logic + ram, blocks + ram_blocks
            ram, ram_blocks = cost.ram_cost(target, self.window.simd + 1, OUTPUT_FIFO_DEPTH)  # its output FIFO
            logic, blocks = logic + ram, blocks + ram_blocks
        if e.input_buffer_bits and not e.buffer_in_block_ram:
            logic += cost.ram_logic(target.spec.memory, spec, e.input_buffer_bits // e.sf, e.sf)
        if self.converter is not None:
            logic += cost.converter_logic(self.converter, target)
            if e.nf > 1:
                if e.sf > 1:
                    ram, ram_blocks = cost.ram_cost(target, self.converter.out_width, e.sf - 1)
                    logic, blocks = logic + ram, blocks + ram_blocks
                logic += spec.register_per_bit * self.converter.out_width
        return (round(logic) if spec.glue else 0), blocks

    def report_fields(self, fold: LayerFold | None) -> dict:
        e = self.engine
        return dict(pe=fold.pe, simd=fold.simd, nf=e.nf, sf=e.sf, macs=fold.layer.macs, cycles=fold.cycles,
                    weight_field_bits=e.weight_rom_bits // (e.c_out * e.fan_in),
                    input_word_bits=e.input_buffer_bits // e.sf if e.input_buffer_bits else 0,
                    lanes=fold.lanes, acc_bits=e.acc_width, threshold_bits_each=e.threshold_width,
                    positions=fold.layer.positions, whole_map=fold.layer.whole_map,
                    threshold_factors=_factors_fields(e.threshold_factors))

    def rom_files(self) -> list[tuple[str, list[int], int]]:
        """The weight ROM (fields of the engine's weight bits), and the threshold ROM in threshold mode (with
        factored thresholds: the corrections, then the A and B ROMs)."""
        e = self.engine
        files = [("weights", e.weight_words(), e.weight_rom_shape[0])]
        if not e.accumulator_mode:
            files.append(("thresholds", e.threshold_words(), e.threshold_table.word_bits))
        f = e.threshold_factors
        if f is not None:  # the corrections above; the factors
            if e.nf > 1:
                files.append(("threshold_a", f.a_words(), e.pe * f.a_bits))
            files.append(("threshold_b", f.b_words(), 2 * f.b_bits))
        return files


def _factors_fields(f) -> dict | None:
    """report.json's ``threshold_factors`` of a layer: None, or the factored form's widths and bits
    (:mod:`hwgen.hw.engines.threshold_factors`)."""
    if f is None:
        return None
    return dict(a_bits=f.a_bits, b_bits=f.b_bits, shift=f.shift, correction_bits=f.table.bits,
                a_rom_bits=f.a_rom_bits, b_rom_bits=f.b_rom_bits)


@dataclass
class PoolStage(Stage):
    """A max-pool over bits, at the width of the stream it reads.

    Cost: two LUT4 per bit of width per slot (R x R slots, R = ceil(K / S):
    one for K <= S) plus counters; its row buffer where Yosys puts it (not counted).
    """

    node_type: ClassVar[type] = MaxPoolLayer

    @classmethod
    def build(cls, node: MaxPoolLayer, inputs: tuple[str, ...], ctx: StageContext) -> "PoolStage":
        width = ctx.widths[inputs[0]]
        pool = MaxPoolUnit(in_shape=node.in_shape, kernel=node.kernel, stride=node.stride, use_and=node.use_and,
                           width=width)
        return cls(node.name, pool, width, in_bits_per_frame=int(np.prod(node.in_shape)),
                   out_beats_per_frame=pool.beats_per_frame_out)

    def connect(self, m: Module, inputs: list) -> None:
        (src,) = inputs
        link(m, src, self.engine.i, self.engine.i.payload.eq(src.payload))

    @property
    def memory_bits(self) -> dict[str, int]:
        return {"weights": 0, "thresholds": 0, "buffers": self.engine.buffer_bits}

    def lut4(self, target: Target) -> int:
        e = self.engine
        return cost.scaled(2 * len(e.i.payload) * e.slots ** 2 + cost.CONTROL_LUT4, target)

    def bram_blocks(self, target: Target) -> int:
        return 0

    def report_fields(self, fold: LayerFold | None) -> dict:
        e = self.engine
        return dict(pe=None, simd=None, nf=None, sf=None, macs=0, cycles=None, in_shape=list(e.in_shape),
                    kernel=e.kernel, stride=e.stride)


#: The residual join's LUT4 (ECP5), per lane and threshold bit (the comparison with the selected threshold),
#: per lane (the select, the output register's share) and per engine (counters, flow control): a
#: least-squares fit to ``benchmarks/join_synth.py`` (PE 4-24 x 8- and 11-bit thresholds, NF = 4,
#: placed: within 2.6 % of all eight designs), threshold ROM of 4 words included.
JOIN_LANE_LUT4_PER_BIT = 1.80
JOIN_LANE_LUT4 = 7.2
JOIN_CONTROL_LUT4 = 11
#: LUT4 per threshold bit, beyond the LUT ROM itself, when the thresholds come from a LUT ROM deeper than the
#: fit's (the same benchmark at NF = 16: 2.0 LUT4 per ROM word bit over the NF = 4 design, of which the
#: 16-word ROM is 1; the comparison no longer folds a constant threshold into its logic). From block RAM
#: (NF = 128) the NF = 4 formula holds (-7 % and -10 % at PE 16 and 8).
JOIN_LUT_ROM_THRESHOLD_LUT4_PER_BIT = 1


@dataclass
class JoinStage(Stage):
    """A residual join: the main branch's accumulators against the threshold the shortcut bit selects.

    ``converter`` regroups the shortcut's beats to the join's PE bits (None
    when they already come so); ``skip`` is the skip buffer on the shortcut
    edge, set by the accelerator once every stage is built (its depth needs
    the main branch's stages). Cost: per lane ``JOIN_LANE_LUT4_PER_BIT * tw +
    JOIN_LANE_LUT4`` (tw: threshold bits), ``JOIN_CONTROL_LUT4``, a threshold
    ROM deeper than the fit's and kept in logic, and inversion XORs
    (:func:`~hwgen.hw.cost.threshold_rom_lut4`); with such a ROM in logic
    ``JOIN_LUT_ROM_THRESHOLD_LUT4_PER_BIT`` per threshold bit of a word
    (2 * PE * tw) for the comparisons; the skip buffer where Yosys
    puts a FIFO of its shape; a gathering converter.
    """

    node_type: ClassVar[type] = JoinLayer

    converter: WidthConverter | None = None
    skip: SkipBuffer | None = None

    @classmethod
    def build(cls, node: JoinLayer, inputs: tuple[str, ...], ctx: StageContext) -> "JoinStage":
        main = ctx.stages[inputs[0]]
        e = main.engine
        if not isinstance(e, (MVTU, MACUnit)) or not e.accumulator_mode:
            raise BuildError(f"join {node.name}: its main input {main.layer_name} must be a conv in accumulator mode")
        c, h, w = node.in_shape
        engine = JoinUnit.for_layer(node, pe=e.pe, acc_range=e.acc_range, memory=ctx.memory)
        shortcut_width = ctx.widths[inputs[1]]
        converter = WidthConverter(in_width=shortcut_width, out_width=e.pe) if shortcut_width != e.pe else None
        return cls(node.name, engine, e.pe, in_bits_per_frame=c * h * w * e.acc_width,
                   out_beats_per_frame=h * w * engine.nf, converter=converter)

    def connect(self, m: Module, inputs: list) -> None:
        main, short = inputs
        join = self.engine
        link(m, main, join.main, join.main.payload.eq(main.payload))
        if self.converter is not None:
            conv = m.submodules[f"{self.layer_name}_shortcut_convert"] = self.converter
            link(m, short, conv.i, conv.i.payload.eq(short.payload))
            short = conv.o
        link(m, short, join.shortcut, join.shortcut.payload.eq(short.payload))

    @property
    def memory_bits(self) -> dict[str, int]:
        """The threshold ROM; buffers: the skip buffer (counted in the memory budget too)."""
        return {"weights": 0, "thresholds": self.engine.threshold_rom_bits,
                "buffers": self.skip.bits if self.skip is not None else 0}

    @staticmethod
    def fitted_lut4(e: JoinUnit) -> float:
        """The fitted terms (ECP5 LUT4): ``(JOIN_LANE_LUT4_PER_BIT * tw + JOIN_LANE_LUT4) * PE + JOIN_CONTROL_LUT4``."""
        return (JOIN_LANE_LUT4_PER_BIT * e.threshold_width + JOIN_LANE_LUT4) * e.pe + JOIN_CONTROL_LUT4

    @staticmethod
    def rom_lut4(e: JoinUnit) -> float:
        """Beyond the fit (ECP5 LUT4): a threshold ROM deeper than 4 words kept in logic and the comparisons
        with its thresholds (``JOIN_LUT_ROM_THRESHOLD_LUT4_PER_BIT`` per threshold bit of a word), inversion XORs."""
        logic = cost.threshold_rom_lut4(e.pe, e.word_bits, e.depth, e.has_directions, e.memory)
        if cost.threshold_rom_beyond_fit(e.depth, e.memory):
            logic += JOIN_LUT_ROM_THRESHOLD_LUT4_PER_BIT * 2 * e.pe * e.threshold_width
        return logic

    def lut4(self, target: Target) -> int:
        e = self.engine
        logic = self.fitted_lut4(e) + self.rom_lut4(e)
        glue = self.skip.lut4_and_blocks(target)[0] if self.skip is not None else 0.0
        if self.converter is not None:
            glue += cost.converter_logic(self.converter, target)
        return cost.scaled(logic, target) + (round(glue) if target.spec.cost.glue else 0)

    def bram_blocks(self, target: Target) -> int:
        e = self.engine
        deep = e.depth > 1 and e.memory.threshold_rom_in_block_ram(e.depth)
        blocks = e.memory.block_ram.blocks_for(e.word_bits, e.depth) if deep else 0
        return blocks + (self.skip.lut4_and_blocks(target)[1] if self.skip is not None else 0)

    def report_fields(self, fold: LayerFold | None) -> dict:
        e, skip = self.engine, self.skip
        return dict(pe=e.pe, simd=None, nf=e.nf, sf=None, macs=0, cycles=self.out_beats_per_frame,
                    positions=e.positions, threshold_bits_each=e.threshold_width,
                    skip_buffer={"fork": skip.fork, "consumer": skip.consumer, "width": skip.width,
                                 "depth": skip.depth, "bits": skip.bits, "main_branch_frames": round(skip.held, 4)})

    def rom_files(self) -> list[tuple[str, list[int], int]]:
        e = self.engine
        return [("thresholds", e.threshold_words(), e.word_bits)] if e.threshold_rom_bits else []


#: The stage kind of each IR node type.
STAGE_KINDS: dict[type, type[Stage]] = {kind.node_type: kind for kind in (ConvStage, PoolStage, JoinStage)}


def stage_kind(node) -> type[Stage]:
    """The :class:`Stage` subclass that builds ``node`` (BuildError for a node type without hardware)."""
    try:
        return STAGE_KINDS[type(node)]
    except KeyError:
        raise BuildError(f"node {getattr(node, 'name', node)!r}: no hardware for {type(node).__name__} "
                         f"(kinds: {', '.join(t.__name__ for t in STAGE_KINDS)})") from None

