"""The accelerator's top level: one stage per IR node, connected by streams, AXI4-Stream at both ends.

Each node becomes the stage of its kind (:mod:`hwgen.hw.stages`: a
convolution's window or converter and folded engine, a pool, a residual
join), built in the IR's topological order and connected by name:

* a node read by several nodes (a fork) sends its stream to each through a
  :class:`~hwgen.hw.engines.fork.Fork`; a residual join's shortcut edge gets
  a skip buffer (a FIFO, :mod:`hwgen.hw.graph` sizes it);
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
    They leave the score unit through :data:`OUTPUT_SLICES` two-word FIFOs
    (one cycle each, full rate).

Back-pressure is honoured everywhere (``m_axis_tready`` low only delays):
every engine holds its output until taken and stops taking input when full,
so nothing is dropped. A frame's throughput is set by the slowest engine
(:func:`hwgen.hw.folding.summarize`).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines.convert import WidthConverter
from hwgen.hw.engines.fifo import sliced_fifo
from hwgen.hw.engines.fork import Fork
from hwgen.hw.engines.lookup import InputTableUnit
from hwgen.hw.engines.mvtu import MVTU
from hwgen.hw.engines.scores import ScoreUnit
from hwgen.hw.families import MemoryMap
from hwgen.hw.folding import PIXEL_BITS, LayerFold, input_stream_bits
from hwgen.hw.graph import check_streams, held_frames, main_path, shortcut_edge, skip_depth
from hwgen.hw.stages import JoinStage, SkipBuffer, Stage, StageContext, link, stage_kind
from hwgen.compile.fold import flip_negative_channels
from hwgen.compile.ir import INPUT, ConvLayer, JoinLayer, Network, ScoreOutput
from hwgen.errors import BuildError

__all__ = ["TOP_MODULE", "WORD_BITS", "Accelerator"]

TOP_MODULE = "hwgen_top"
#: Bits of an output word.
WORD_BITS = 32
#: Two-word FIFOs between the score unit and ``m_axis`` (``sliced_fifo``: ready and valid from flip-flops). The
#: output pins pulled the score unit to the edge of the chip and along it when the bank's read multiplexer
#: drove them directly (LFC seed 2: the bank spread over 81 columns of the top edge, its store enable copy to
#: ``score1`` 10.22 ns of routing, 93.08 MHz); two registers let the placer put the last next to the pins
#: and the one before it between them and the score unit.
OUTPUT_SLICES = 2


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
        Build the MVTUs' match counts and the score unit's products from ECP5
        cells (``hwgen build`` for an ECP5 target); the simulators then compile
        ``hwgen/sim/ecp5_cells.v`` too.
    match_count_model : bool (default False)
        With ``ecp5_cells``: the Verilog for simulation, whose MVTU match counts
        are the simulation model of the cells (:mod:`hwgen.sim.match_counts`;
        ``hwgen build`` writes it as ``top_sim.v`` beside ``top.v``).
    memory : MemoryMap or None
        Where the engines put their weight ROMs and input buffers (the target
        family's, :class:`~hwgen.hw.families.MemoryMap`); None: the default target's.
    in_width : int (default 8)
        Bits of ``s_axis_tdata`` (:data:`~hwgen.hw.folding.IN_WIDTHS`); the
        folds must come from :func:`~hwgen.hw.folding.solve_folding` with the
        same ``in_width`` (the first layer's SIMD follows it).
    """

    def __init__(self, net: Network, folds: list[LayerFold], *, ecp5_cells: bool = False,
                 match_count_model: bool = False, memory: MemoryMap | None = None,
                 in_width: int = PIXEL_BITS) -> None:
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
        self.stages: list[Stage] = []
        first = net.layers[0]
        self.in_width = in_width
        width = input_stream_bits(net, in_width)
        self.input_converter = (WidthConverter(in_width=in_width, out_width=width) if width != in_width else None)
        self.input_table = (InputTableUnit(table=first.input_table, lanes=width // PIXEL_BITS)
                            if isinstance(first, ConvLayer) and first.input_table is not None else None)
        last = net.layers[-1]
        if not isinstance(last, ConvLayer) or not isinstance(last.output, ScoreOutput):
            raise BuildError("the network's last layer must be a ConvLayer with class scores")
        ctx = StageContext(folds=fold_of, ecp5_cells=ecp5_cells, match_count_model=match_count_model,
                           memory=memory,
                           input_offsets=self.input_table.offsets if self.input_table is not None else None,
                           widths={INPUT: width}, stages={})
        self.inputs: dict[str, tuple[str, ...]] = {}
        for index, node in enumerate(net.layers):
            self.inputs[node.name] = net.inputs_of(index)
            stage = stage_kind(node).build(node, self.inputs[node.name], ctx)
            self.stages.append(stage)
            ctx.stages[node.name] = stage
            ctx.widths[node.name] = stage.out_width
        for stage in self.stages:
            if isinstance(stage, JoinStage):
                stage.skip = self._skip_buffer(self.nodes[stage.layer_name], ctx)
        self.skips = {(st.skip.fork, st.skip.consumer): st.skip for st in self.stages
                      if isinstance(st, JoinStage)}
        tail = self.stages[-1].engine
        self.scores = ScoreUnit(scale=last.output.scale, bias=last.output.bias, acc_range=tail.acc_range,
                                pe=tail.pe, word_bits=WORD_BITS, ecp5_cells=ecp5_cells)
        super().__init__({
            "s_axis_tdata": In(in_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(WORD_BITS), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })

    @property
    def counts_matches_in_cells(self) -> bool:
        """Whether some MVTU counts matches in ECP5 cells: then the Verilog for simulation differs
        (``match_count_model``)."""
        return any(isinstance(st.engine, MVTU) and st.engine.ecp5_cells and not st.engine.masked
                   for st in self.stages)

    def _skip_buffer(self, join: JoinLayer, ctx: StageContext) -> SkipBuffer:
        """The join's skip buffer on its shortcut edge, deep enough for what its main branch holds
        (:mod:`hwgen.hw.graph`)."""
        fork, consumer = shortcut_edge(self.net, join)
        held = sum(held_frames(ctx.stages[name]) for name in main_path(self.net, join, fork))
        depth = skip_depth(self.nodes[fork].out_shape, ctx.widths[fork], held)
        return SkipBuffer(fork=fork, consumer=consumer, width=ctx.widths[fork], depth=depth, held=held)

    def elaborate(self, platform) -> Module:
        m = Module()
        src = SimpleNamespace(valid=self.s_axis_tvalid, ready=self.s_axis_tready, payload=self.s_axis_tdata)
        if self.input_converter is not None:
            conv = m.submodules.input_convert = self.input_converter
            link(m, src, conv.i, conv.i.payload.eq(src.payload))
            src = conv.o
        if self.input_table is not None:
            table = m.submodules.input_table = self.input_table
            link(m, src, table.i, table.i.payload.eq(src.payload))
            src = table.o
        edges: dict[tuple[str, str], object] = {}  # (producer, consumer) -> the stream the consumer reads
        self._fan_out(m, INPUT, src, edges)
        for stage in self.stages:
            node = stage.layer_name
            m.submodules[f"{node}_engine"] = stage.engine
            stage.connect(m, [edges[source, node] for source in self.inputs[node]])
            self._fan_out(m, node, stage.engine.o, edges)
        m.submodules.scores = self.scores
        src = edges[self.stages[-1].layer_name, "scores"]
        link(m, src, self.scores.i, self.scores.i.payload.eq(src.payload))
        out = self.scores.o
        src = SimpleNamespace(valid=out.valid, ready=out.ready, payload=Cat(out.payload.data, out.payload.last))
        for k in range(OUTPUT_SLICES):
            width = len(src.payload)
            fifo = m.submodules[f"out_slice{k}"] = sliced_fifo(width=width, depth=2, slice_bits=width)
            link(m, src, fifo.w_stream, fifo.w_data.eq(src.payload))
            src = fifo.r_stream
        m_axis = SimpleNamespace(valid=self.m_axis_tvalid, ready=self.m_axis_tready)
        link(m, src, m_axis, [self.m_axis_tdata.eq(src.payload[:-1]), self.m_axis_tlast.eq(src.payload[-1])])
        return m

    def _fan_out(self, m: Module, node: str, out, edges: dict) -> None:
        """The streams ``node``'s consumers read: ``out`` itself, or a :class:`Fork`'s outputs when several
        nodes read it; a skip buffer (FIFO) on a join's shortcut edge."""
        readers = self.consumers.get(node) or ["scores"]
        if len(readers) == 1:
            streams = [out]
        else:
            fork = m.submodules[f"{node}_fork"] = Fork(width=len(out.payload), n=len(readers))
            link(m, out, fork.i, fork.i.payload.eq(out.payload))
            streams = list(fork.o)
        for reader, edge in zip(readers, streams):
            skip = self.skips.get((node, reader))
            if skip is not None:
                fifo = m.submodules[f"{node}_{reader}_skip"] = SyncFIFOBuffered(width=skip.width, depth=skip.depth)
                wiring.connect(m, edge, fifo.w_stream)
                edge = fifo.r_stream
            edges[node, reader] = edge
