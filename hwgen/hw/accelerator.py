"""The accelerator's top level: one engine per IR layer, chained by streams, AXI4-Stream at both ends.

Data path (DESIGN.md section 3), for each :class:`~hwgen.compile.ir.ConvLayer`
with its folding (PE, SIMD):

* a sliding-window layer gets a :class:`SlidingWindowUnit` (window vectors
  with padding marked invalid); a whole-map layer (a fully connected layer:
  the kernel covers the whole unpadded input) reads the map stream directly,
  regrouped to SIMD elements per beat by a :class:`WidthConverter`, every tap
  valid, through a FIFO of one input vector (SF beats) when the engine has
  more than one neuron fold: the engine reads a vector in its first SF cycles
  and computes for (NF - 1) * SF more, and the FIFO lets the producer deliver
  the next frame's vector meanwhile instead of stalling (a sliding-window
  layer's line buffer does the same);
* then an :class:`MVTU` (binary inputs) or a :class:`MACUnit` (the first
  layer's uint8 pixels: the SWU treats a pixel's C channels of 8 bits as 8C
  bit-channels and SIMD elements as 8 * SIMD bits; the valid mask keeps one
  bit per element);
* a :class:`MaxPoolUnit` per pool layer, at the width of the stream it reads;
* when ``s_axis`` is wider than the first engine's stream
  (:func:`~hwgen.hw.folding.input_stream_bits`: a sliding-window first
  layer whose pixel is narrower), a :class:`WidthConverter` splits each beat
  first (:attr:`Accelerator.input_converter`); a whole-map first layer's own
  converter reads ``s_axis`` directly;
* when the first layer has an exact input table (QONNX imports), an
  :class:`InputTableUnit` in front of the first engine rewrites each pixel
  byte (all the bytes of a beat at once) so that the MAC unit's ``x - p_c``
  equals the table's value (hwgen/hw/engines/lookup.py; one cycle of latency);
* the last layer in accumulator mode, then the :class:`ScoreUnit` (scores + top-1).

A binary feature map travels as the map stream: pixels in row-major order,
channels ``q*width .. q*width + width - 1`` on beat q, where width is the
producing engine's PE (an MVTU emits one beat of PE channels per neuron fold).

Ports (the Verilog module's, flat names)
-----
s_axis_tdata[IN_WIDTH-1:0], s_axis_tvalid, s_axis_tready, s_axis_tlast (in; tlast is ignored)
    Frames of the uint8 image (C, H, W), H*W*C bytes per frame in (y, x, c)
    order (channel fastest), frames back to back; IN_WIDTH / 8 bytes per
    beat, the first on bits 7..0 (AXI4-Stream byte order), which must divide
    H*W*C (:func:`~hwgen.hw.folding.check_in_width`: a frame is whole beats).
m_axis_tdata[WORD-1:0], m_axis_tvalid, m_axis_tready, m_axis_tlast (out)
    Per frame C_classes + 1 words: the class scores (two's complement,
    sign-extended to WORD = 32 bits), then the class index with tlast = 1.

Back-pressure is honoured everywhere (``m_axis_tready`` low only delays):
every engine holds its output until taken and stops taking input when full,
so nothing is dropped. A frame's throughput is set by the slowest engine
(:func:`hwgen.hw.folding.summarize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Cat, Const, Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines import MVTU, MACUnit, MaxPoolUnit, SlidingWindowUnit
from hwgen.hw.engines.convert import WidthConverter
from hwgen.hw.engines.fork import Fork
from hwgen.hw.engines.join import JoinUnit
from hwgen.hw.engines.lookup import InputTableUnit
from hwgen.hw.engines.scores import ScoreUnit
from hwgen.hw.families import MemoryMap
from hwgen.hw.folding import PIXEL_BITS, LayerFold, input_stream_bits
from hwgen.hw.graph import check_streams, held_frames, main_path, shortcut_edge, skip_depth
from hwgen.compile.fold import flip_negative_channels
from hwgen.compile.ir import INPUT, ConvLayer, JoinLayer, MaxPoolLayer, Network, ScoreOutput, ThresholdOutput
from hwgen.errors import BuildError

__all__ = ["TOP_MODULE", "WORD_BITS", "Accelerator", "EngineStage", "stream_weights"]

TOP_MODULE = "hwgen_top"
#: Bits of an output word.
WORD_BITS = 32


def stream_weights(layer: ConvLayer) -> np.ndarray:
    """(C_out, F) weights in the stream's fan-in order (i, j, c), channel fastest."""
    w = np.asarray(layer.weights, dtype=np.int64)
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


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


@dataclass
class EngineStage:
    """One IR node's hardware: its input adapter, its engine, what it reads and writes.

    A join's stage has no window or converter on its main input; ``converter``
    is then the shortcut's regrouping to the join's PE bits per beat (None when
    the shortcut already comes in beats of PE bits) and ``skip`` its skip buffer.
    """

    layer_name: str
    engine: wiring.Component          # MVTU, MACUnit, MaxPoolUnit or JoinUnit
    window: SlidingWindowUnit | None  # sliding-window layers
    converter: WidthConverter | None  # whole-map layers; a join's shortcut
    element_bits: int                 # bits per input element: 8 (uint8) or 1
    out_width: int                    # bits per output beat (the map stream's width)
    in_bits_per_frame: int = 0        # C * H * W * element_bits of the (main) input map
    out_beats_per_frame: int = 0      # beats the stage emits per frame
    skip: SkipBuffer | None = None    # a join's skip buffer

    @property
    def memory_bits(self) -> dict[str, int]:
        """On-chip memory of this stage: weights, thresholds, buffers (line buffer, pool row, input buffer,
        a join's skip buffer)."""
        e = self.engine
        bits = {"weights": 0, "thresholds": 0, "buffers": 0}
        if isinstance(e, JoinUnit):
            bits["thresholds"] = e.threshold_rom_bits
            bits["buffers"] = self.skip.bits if self.skip is not None else 0
            return bits
        if isinstance(e, (MVTU, MACUnit)):
            bits["weights"] = e.weight_rom_bits
            bits["thresholds"] = e.threshold_rom_bits
            bits["buffers"] += e.input_buffer_bits
        else:
            bits["buffers"] += e.buffer_bits
        if self.window is not None:
            bits["buffers"] += self.window.buffer_bits
        if self.converter is not None and e.nf > 1:
            bits["buffers"] += e.sf * self.converter.out_width  # the vector FIFO
        return bits


class Accelerator(wiring.Component):
    """The whole streaming accelerator of a compiled network at a given folding (see the module docstring).

    Parameters
    ----------
    net : Network
        Any compiled IR: thresholds per channel or per position, ``>=`` or
        ``<=``. The flip pass (:func:`~hwgen.compile.fold.flip_negative_channels`)
        runs here first, so channels that are all ``<=`` become ``>=`` (their
        weights negated) and cost no inversion bits; a channel whose direction
        changes across positions keeps a per-position inversion bit.
        :attr:`net` is the flipped IR (the same bits and scores in every layer).
    folds : list[LayerFold]
        One per ConvLayer, in order (:func:`hwgen.hw.folding.solve_folding`).
    ecp5_cells : bool (default False)
        Build the MVTUs' match counts from ECP5 cells (``hwgen build`` for an
        ECP5 target); the simulators then compile ``hwgen/sim/ecp5_cells.v`` too.
    memory : MemoryMap or None
        Where the engines put their weight ROMs and input buffers (the target
        family's, :class:`~hwgen.hw.families.MemoryMap`); None: the default target's.
    in_width : int (default 8)
        Bits of ``s_axis_tdata`` (:data:`~hwgen.hw.folding.IN_WIDTHS`); the
        folds must come from :func:`~hwgen.hw.folding.solve_folding` with the
        same ``in_width`` (the first layer's SIMD follows it).
    """

    def __init__(self, net: Network, folds: list[LayerFold], *, ecp5_cells: bool = False,
                 memory: MemoryMap | None = None, in_width: int = PIXEL_BITS) -> None:
        convs = [layer for layer in net.layers if isinstance(layer, ConvLayer)]
        if [f.layer.name for f in folds] != [c.name for c in convs]:
            raise BuildError("the folding does not match the network's layers")
        fold_of = {f.layer.name: f for f in folds}
        net = flip_negative_channels(net)
        check_streams(net)
        self.net = net
        self.nodes = {node.name: node for node in net.layers}
        self.consumers = net.consumers()
        if len(self.consumers[INPUT]) != 1:
            raise BuildError(f"the input pixels are read by {len(self.consumers[INPUT])} nodes "
                             f"({', '.join(self.consumers[INPUT])}); the accelerator streams them to one")
        self.stages: list[EngineStage] = []
        first = net.layers[0]
        self.in_width = in_width
        width = input_stream_bits(net, in_width)
        self.input_converter = (WidthConverter(in_width=in_width, out_width=width) if width != in_width else None)
        self.input_table = (InputTableUnit(table=first.input_table, lanes=width // PIXEL_BITS)
                            if isinstance(first, ConvLayer) and first.input_table is not None else None)
        last = net.layers[-1]
        if not isinstance(last, ConvLayer) or not isinstance(last.output, ScoreOutput):
            raise BuildError("the network's last layer must be a ConvLayer with class scores")
        widths = {INPUT: width}
        by_name: dict[str, EngineStage] = {}
        for index, node in enumerate(net.layers):
            source = net.inputs_of(index)[0]
            if isinstance(node, JoinLayer):
                stage = self._join_stage(node, by_name[source], widths[node.inputs[1]], memory)
            else:
                stage = self._stage(node, fold_of.get(node.name), widths[source], ecp5_cells, memory)
            self.stages.append(stage)
            by_name[node.name] = stage
            widths[node.name] = stage.out_width
        for stage in self.stages:
            if isinstance(stage.engine, JoinUnit):
                stage.skip = self._skip_buffer(self.nodes[stage.layer_name], by_name, widths)
        self.skips = {(st.skip.fork, st.skip.consumer): st.skip for st in self.stages if st.skip is not None}
        tail = self.stages[-1].engine
        self.scores = ScoreUnit(scale=last.output.scale, bias=last.output.bias, acc_range=tail.acc_range,
                                pe=tail.pe, word_bits=WORD_BITS)
        super().__init__({
            "s_axis_tdata": In(in_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(WORD_BITS), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })

    def _stage(self, layer, fold: LayerFold | None, width: int, ecp5_cells: bool,
               memory: MemoryMap | None) -> EngineStage:
        in_bits = int(np.prod(layer.in_shape))
        if isinstance(layer, MaxPoolLayer):
            pool = MaxPoolUnit(in_shape=layer.in_shape, kernel=layer.kernel, stride=layer.stride,
                               use_and=layer.use_and, width=width)
            return EngineStage(layer.name, pool, None, None, 1, width, in_bits_per_frame=in_bits,
                               out_beats_per_frame=pool.beats_per_frame_out)
        bits = PIXEL_BITS if layer.input_kind == "uint8" else 1
        c_in, h, w = layer.in_shape
        kh, kw = layer.kernel
        weights = stream_weights(layer)
        thresholds, directions = _thresholds(layer)
        masked = layer.padding > 0
        if layer.input_kind == "binary" and layer.weight_bits == 1:
            engine = MVTU(weights=weights, pe=fold.pe, simd=fold.simd, thresholds=thresholds,
                          directions=directions, masked=masked, ecp5_cells=ecp5_cells, memory=memory)
        else:
            offsets = self.input_table.offsets if layer.input_table is not None else layer.input_offset
            engine = MACUnit(weights=weights, input_offset=offsets, in_channels=c_in, pe=fold.pe, simd=fold.simd,
                             thresholds=thresholds, directions=directions, input_kind=layer.input_kind,
                             masked=masked, memory=memory)
        window = converter = None
        if fold.layer.whole_map:
            converter = WidthConverter(in_width=width, out_width=fold.simd * bits)
        else:
            if kh != kw:
                raise BuildError(f"layer {layer.name}: the sliding-window unit needs a square kernel, not {kh}x{kw}")
            window = SlidingWindowUnit(in_shape=(c_in * bits, h, w), kernel=kh, stride=layer.stride,
                                       padding=layer.padding, in_width=width, simd=fold.simd * bits)
        _, h_out, w_out = layer.out_shape
        return EngineStage(layer.name, engine, window, converter, bits, fold.pe, in_bits_per_frame=in_bits * bits,
                           out_beats_per_frame=h_out * w_out * engine.nf)

    def _join_stage(self, join: JoinLayer, main: EngineStage, shortcut_width: int,
                    memory: MemoryMap | None) -> EngineStage:
        e = main.engine
        if not isinstance(e, (MVTU, MACUnit)) or not e.accumulator_mode:
            raise BuildError(f"join {join.name}: its main input {main.layer_name} must be a conv in accumulator mode")
        c, h, w = join.in_shape
        positions = 1 if join.thresholds.ndim == 2 else h * w
        direction = np.asarray(join.direction)
        engine = JoinUnit(thresholds=np.asarray(join.thresholds).reshape(2, c, positions),
                          directions=None if np.all(direction == 1) else direction.reshape(c, positions),
                          pe=e.pe, acc_range=e.acc_range, memory=memory)
        converter = (WidthConverter(in_width=shortcut_width, out_width=e.pe) if shortcut_width != e.pe else None)
        return EngineStage(join.name, engine, None, converter, 1, e.pe, in_bits_per_frame=c * h * w * e.acc_width,
                           out_beats_per_frame=h * w * engine.nf)

    def _skip_buffer(self, join: JoinLayer, by_name: dict[str, EngineStage], widths: dict[str, int]) -> SkipBuffer:
        """The join's skip buffer on its shortcut edge, deep enough for what its main branch holds
        (:mod:`hwgen.hw.graph`)."""
        fork, consumer = shortcut_edge(self.net, join)
        held = sum(held_frames(by_name[name]) for name in main_path(self.net, join, fork))
        shape = self.nodes[fork].out_shape
        depth = skip_depth(shape, widths[fork], held)
        return SkipBuffer(fork=fork, consumer=consumer, width=widths[fork], depth=depth, held=held)

    def elaborate(self, platform) -> Module:
        m = Module()
        src = SimpleNamespace(valid=self.s_axis_tvalid, ready=self.s_axis_tready, payload=self.s_axis_tdata)
        if self.input_converter is not None:
            conv = m.submodules.input_convert = self.input_converter
            _link(m, src, conv.i, conv.i.payload.eq(src.payload))
            src = conv.o
        if self.input_table is not None:
            table = m.submodules.input_table = self.input_table
            _link(m, src, table.i, table.i.payload.eq(src.payload))
            src = table.o
        edges: dict[tuple[str, str], object] = {}  # (producer, consumer) -> the stream the consumer reads
        self._fan_out(m, INPUT, src, edges)
        for stage in self.stages:
            node = stage.layer_name
            m.submodules[f"{node}_engine"] = stage.engine
            if isinstance(stage.engine, JoinUnit):
                main, shortcut = self.nodes[node].inputs
                _link(m, edges[main, node], stage.engine.main, stage.engine.main.payload.eq(edges[main, node].payload))
                short = edges[shortcut, node]
                if stage.converter is not None:
                    conv = m.submodules[f"{node}_shortcut_convert"] = stage.converter
                    _link(m, short, conv.i, conv.i.payload.eq(short.payload))
                    short = conv.o
                _link(m, short, stage.engine.shortcut, stage.engine.shortcut.payload.eq(short.payload))
            else:
                source = [k for k in edges if k[1] == node][0]
                self._feed(m, stage, edges[source])
            self._fan_out(m, node, stage.engine.o, edges)
        m.submodules.scores = self.scores
        src = edges[self.stages[-1].layer_name, "scores"]
        _link(m, src, self.scores.i, self.scores.i.payload.eq(src.payload))
        m.d.comb += [
            self.m_axis_tvalid.eq(self.scores.o.valid),
            self.scores.o.ready.eq(self.m_axis_tready),
            self.m_axis_tdata.eq(self.scores.o.payload.data),
            self.m_axis_tlast.eq(self.scores.o.payload.last),
        ]
        return m

    def _fan_out(self, m: Module, node: str, out, edges: dict) -> None:
        """The streams ``node``'s consumers read: ``out`` itself, or a :class:`Fork`'s outputs when several
        nodes read it; a skip buffer (FIFO) on a join's shortcut edge."""
        readers = self.consumers.get(node) or ["scores"]
        if len(readers) == 1:
            streams = [out]
        else:
            fork = m.submodules[f"{'input' if node == INPUT else node}_fork"] = Fork(width=len(out.payload),
                                                                                    n=len(readers))
            _link(m, out, fork.i, fork.i.payload.eq(out.payload))
            streams = list(fork.o)
        for reader, stream_ in zip(readers, streams):
            skip = self.skips.get((node, reader))
            if skip is not None:
                fifo = m.submodules[f"{node}_{reader}_skip"] = SyncFIFOBuffered(width=skip.width, depth=skip.depth)
                m.d.comb += [fifo.w_en.eq(stream_.valid), stream_.ready.eq(fifo.w_rdy),
                             fifo.w_data.eq(stream_.payload)]
                stream_ = SimpleNamespace(valid=fifo.r_rdy, ready=fifo.r_en, payload=fifo.r_data)
            edges[node, reader] = stream_

    def _feed(self, m: Module, stage: EngineStage, src) -> None:
        """A conv or pool stage's input adapter: the pool directly, a window through its SWU, a whole-map
        layer through its width converter (and vector FIFO)."""
        if isinstance(stage.engine, MaxPoolUnit):
            _link(m, src, stage.engine.i, stage.engine.i.payload.eq(src.payload))
        elif stage.window is not None:
            swu = m.submodules[f"{stage.layer_name}_window"] = stage.window
            _link(m, src, swu.i, swu.i.payload.eq(src.payload))
            bits = stage.element_bits
            valid = swu.o.payload.valid
            _link(m, swu.o, stage.engine.i, [
                stage.engine.i.payload.data.eq(swu.o.payload.data),
                stage.engine.i.payload.valid.eq(Cat(valid[j] for j in range(0, len(valid), bits))),
            ])
        else:
            conv = m.submodules[f"{stage.layer_name}_convert"] = stage.converter
            _link(m, src, conv.i, conv.i.payload.eq(src.payload))
            vectors = conv.o
            if stage.engine.nf > 1:
                fifo = m.submodules[f"{stage.layer_name}_fifo"] = SyncFIFOBuffered(
                    width=stage.converter.out_width, depth=stage.engine.sf)
                m.d.comb += [fifo.w_en.eq(conv.o.valid), conv.o.ready.eq(fifo.w_rdy),
                             fifo.w_data.eq(conv.o.payload)]
                vectors = SimpleNamespace(valid=fifo.r_rdy, ready=fifo.r_en, payload=fifo.r_data)
            simd = stage.engine.simd
            _link(m, vectors, stage.engine.i, [
                stage.engine.i.payload.data.eq(vectors.payload),
                stage.engine.i.payload.valid.eq(Const((1 << simd) - 1, simd)),
            ])


def _link(m: Module, src, dst, payload) -> None:
    """valid / ready between two streams, and the given payload assignment(s)."""
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready)]
    m.d.comb += payload if isinstance(payload, list) else [payload]
