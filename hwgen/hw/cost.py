"""Logic and block RAM estimates per stage, for the build report before any synthesis runs.

A first-order cost model per family (its coefficients: the family's
:class:`~hwgen.hw.families.LogicCost`), in the family's unit: ECP5 LUT4
(TRELLIS_COMB cells after place and route), iCE40 logic cells (ICESTORM_LC);
the synthesis report (``hwgen synth``) gives the real numbers. The engines'
formulas below were fitted in ECP5 LUT4s; an iCE40 estimate multiplies them
by ``LogicCost.scale`` and adds the glue (:func:`estimate_glue`): width
converters, vector FIFOs, buffers in flip-flops (the iCE40 has no LUT RAM)
and the score unit. For an engine with PE x SIMD lanes and accumulators of A bits:

* MVTU from ECP5 cells without a tap mask (``ecp5_cells``, ``masked=False``:
  the match count of :mod:`hwgen.hw.engines.popcount`):
  ``CELL_LANE_LUT4 * PE * SIMD + CELL_PE_LUT4 * PE + CELL_SIMD_LUT4 * SIMD +
  CELL_CONTROL_LUT4``, a least-squares fit to ``benchmarks/mvtu_synth.py
  --unmasked`` (SIMD 32/64/128 x PE 4/16, NF = 4, SF = 9: within 1.3 % of
  all six designs; docs/hardware.md);
* other MVTUs (the pair-sum adder tree of a padded layer, or plain logic off
  ECP5): ``LANE_LUT4 * PE * SIMD`` (XNOR, popcount) ``+ PE_LUT4 * PE``
  (accumulator, threshold, output) ``+ SIMD_LUT4 * SIMD`` (input slice,
  buffer multiplexer) ``+ CONTROL_LUT4``, fitted to the same runs of the
  earlier adder-tree engine (within 2.4 %); a padded (masked) layer adds the
  tap mask: ``MASK_LANE_LUT4`` per lane and a popcount of SIMD bits;
* MAC unit: per lane the term (a conditional negate of the 9-bit pixel
  difference for binary weights, a k x 9 multiplier for k-bit weights, a
  conditional negate of W for binary inputs) plus its share of the adder
  tree (about A bits per lane), then the same per-PE and control terms;
* weight ROM (NF * SF words of PE * SIMD fields): the fits above have it
  in block RAM; one the memory map leaves in logic (no deeper than
  ``rom_lut_max_depth``) adds :func:`lut_rom_lut4`, ``width * ceil(depth / 16)``;
* threshold ROM (threshold mode, R = P * NF words of :attr:`ThresholdTable.word_bits
  <hwgen.hw.engines.thresholds.ThresholdTable.word_bits>`): the fits above
  were made at NF = 4 and include such a 4-word ROM; a deeper one kept in
  logic (up to :attr:`~hwgen.hw.families.MemoryMap.threshold_lut_max_depth`
  words) adds :func:`lut_rom_lut4` (``ceil(R / 16)`` LUT4 per bit), a deeper one
  is block RAM (:func:`estimate_bram_blocks`) and adds none; an inversion bit
  per PE (some comparison ``<=``) adds one LUT4 per PE (the XOR);
* sliding-window unit: its SIMD-bit output multiplexer over C / SIMD chunks
  plus counters; max-pool unit: two LUTs per bit of width per slot (R x R
  slots, R = ceil(K / S): one for K <= S) plus counters;
* residual join (:class:`~hwgen.hw.engines.join.JoinUnit`, PE lanes,
  thresholds of tw bits): per lane ``JOIN_LANE_LUT4_PER_BIT * tw`` (the
  2:1 threshold select and the comparison's subtraction on a carry chain)
  plus its output register's share, the threshold ROM in logic when it is
  not in block RAM (:func:`lut_rom_lut4`), plus counters; its skip buffer
  (a FIFO of the fork's beats) where Yosys puts it, block RAM or LUT RAM
  (:func:`estimate_glue`); a fork: a few LUT4 per consumer (in the control term).
"""

from __future__ import annotations

import math

from hwgen.hw.engines import MVTU, JoinUnit, MACUnit, MaxPoolUnit, SlidingWindowUnit
from hwgen.hw.engines.scores import ScoreUnit
from hwgen.hw.families import LogicCost, MemoryMap
from hwgen.hw.targets import Target

__all__ = ["estimate_bram_blocks", "estimate_glue", "estimate_lut4", "estimate_scores", "lut_rom_lut4",
           "ram_in_block_ram", "ram_logic"]

#: The MVTU from ECP5 cells (no tap mask): per lane, per PE, per SIMD bit, per engine.
CELL_LANE_LUT4 = 2.09
CELL_PE_LUT4 = 17.5
CELL_SIMD_LUT4 = 2.5
CELL_CONTROL_LUT4 = 44
#: LUT4 per XNOR-popcount lane of the adder-tree MVTU (fit to post-route ECP5 runs of the unmasked MVTU).
LANE_LUT4 = 4.0
#: LUT4 per PE: accumulator, threshold compare, output FIFO share.
PE_LUT4 = 22
#: LUT4 per SIMD bit: input register / buffer multiplexer.
SIMD_LUT4 = 2.8
#: LUT4 per lane for the tap mask of a padded layer (the AND; the valid popcount is SIMD * POPCOUNT_LUT4).
MASK_LANE_LUT4 = 0.4
POPCOUNT_LUT4 = 3.0
#: Counters, address and flow-control logic of one engine.
CONTROL_LUT4 = 30
#: LUT4 per lane and threshold bit of a residual join: the 2:1 select and the subtraction (not fitted yet).
JOIN_LANE_LUT4_PER_BIT = 1.5
#: Words of a threshold ROM already in the fitted engines (NF = 4); words per LUT4 of a logic ROM.
FITTED_THRESHOLD_WORDS = 4
LUT_ROM_WORDS = 16


def lut_rom_lut4(width: int, depth: int) -> int:
    """LUT4 of a ROM of ``depth`` words of ``width`` bits in logic: ``width * ceil(depth / 16)`` (16 words per LUT4)."""
    return width * math.ceil(depth / LUT_ROM_WORDS)


def _weight_rom_lut4(engine) -> float:
    """LUT4 of a weight ROM the memory map leaves in logic (the fitted engines' ROMs are block RAM)."""
    depth = engine.nf * engine.sf
    width = engine.weight_rom_bits // depth
    return 0.0 if engine.memory.rom_in_block_ram(width, depth) else lut_rom_lut4(width, depth)


def _threshold_lut4(engine) -> float:
    """LUT4 of a threshold ROM beyond the fitted engines' (see the module docstring), plus the inversion XORs."""
    table = engine.threshold_table
    if table is None:
        return 0.0
    cost = engine.pe if table.has_directions else 0.0
    if FITTED_THRESHOLD_WORDS < table.depth and not engine.memory.threshold_rom_in_block_ram(table.depth):
        cost += lut_rom_lut4(table.word_bits, table.depth)
    return cost


def _folded(engine) -> float:
    lanes = engine.pe * engine.simd
    per_pe = engine.pe * PE_LUT4
    if isinstance(engine, MVTU) and engine.ecp5_cells and not engine.masked:
        return CELL_LANE_LUT4 * lanes + CELL_PE_LUT4 * engine.pe + CELL_SIMD_LUT4 * engine.simd + CELL_CONTROL_LUT4
    if isinstance(engine, MVTU):
        mask = (MASK_LANE_LUT4 * lanes + POPCOUNT_LUT4 * engine.simd) if engine.masked else 0.0
        return LANE_LUT4 * lanes + per_pe + SIMD_LUT4 * engine.simd + mask + CONTROL_LUT4
    assert isinstance(engine, MACUnit)
    if engine.binary_inputs:
        term = engine.weight_bits
    elif engine.binary_weights:
        term = 9
    else:
        term = 9 * engine.weight_bits
    return (term + engine.acc_width) * lanes + per_pe + CONTROL_LUT4


def estimate_lut4(engine, target: Target | None = None) -> int:
    """Estimated LUT4 (ECP5) / logic cells (iCE40) of one engine on ``target`` (None: in ECP5 LUT4s;
    see the module docstring)."""
    if isinstance(engine, (MVTU, MACUnit)):
        cost = _folded(engine) + _threshold_lut4(engine) + _weight_rom_lut4(engine)
    elif isinstance(engine, SlidingWindowUnit):
        chunks = engine.in_shape[0] // engine.simd
        cost = engine.simd * math.ceil(math.log2(chunks + 1)) + CONTROL_LUT4
    elif isinstance(engine, MaxPoolUnit):
        cost = 2 * len(engine.i.payload) * engine.slots ** 2 + CONTROL_LUT4
    elif isinstance(engine, JoinUnit):
        cost = JOIN_LANE_LUT4_PER_BIT * engine.threshold_width * engine.pe + engine.pe + CONTROL_LUT4
        if engine.depth > 1 and not engine.memory.threshold_rom_in_block_ram(engine.depth):
            cost += lut_rom_lut4(engine.word_bits, engine.depth)
    else:
        cost = CONTROL_LUT4
    return round(cost * (1.0 if target is None else target.spec.cost.scale))


def ram_in_block_ram(memory: MemoryMap, width: int, depth: int) -> bool:
    """Whether Yosys (memory_libmap) puts a RAM without a ``ram_style`` (a vector FIFO, a line buffer) in block
    RAM: when its blocks (:meth:`~hwgen.hw.families.BlockRam.blocks_for`, ``yosys_cost`` each: ECP5 128, iCE40
    64) cost less than the alternative, LUT RAM where the family has it (ECP5 DPR16X4: 4 per 16 words x 4 bits,
    ``share/lattice/lutrams_trellis.txt``), else flip-flops (1 per bit)."""
    if memory.lut_ram:
        other = 4 * math.ceil(width / 4) * math.ceil(depth / 16)
    else:
        other = width * depth
    return other > memory.block_ram.yosys_cost * memory.block_ram.blocks_for(width, depth)


def ram_logic(memory: MemoryMap, cost: LogicCost, width: int, depth: int) -> float:
    """Logic of a RAM outside block RAM: LUT RAM where the family has it, ``lut_ram_per_cell`` per DPR16X4
    (16 words x 4 bits: ``ceil(width / 4) * ceil(depth / 16)`` cells), else flip-flop RAM, ``ff_ram_per_bit``."""
    if memory.lut_ram:
        return cost.lut_ram_per_cell * math.ceil(width / 4) * math.ceil(depth / 16)
    return cost.ff_ram_per_bit * width * depth


def estimate_glue(stage, target: Target) -> tuple[int, int]:
    """(logic, block RAMs) of a stage's parts around its engine on ``target``.

    Block RAM (every family): the vector FIFO of a whole-map layer with
    NF > 1 (SF - 1 words of the converter's output, plus an output register),
    a sliding-window unit's line buffer (R * W words of C bits) and a join's
    skip buffer (its depth in words of the fork's beat), each
    where Yosys' own rule puts it (:func:`ram_in_block_ram`), else in logic. Logic, where
    the family counts the glue (``LogicCost.glue``): a gathering width
    converter holds one output word (``register_per_bit`` per bit); a FIFO
    outside block RAM is LUT RAM or flip-flop RAM (:func:`ram_logic`), as is
    an input buffer outside block RAM, plus the FIFO's output register.
    """
    cost = target.spec.cost
    e = stage.engine
    memory = target.spec.memory
    logic, blocks = 0.0, 0
    window = stage.window
    if window is not None:
        c, _, w = window.in_shape
        if ram_in_block_ram(memory, c, window.rows * w):
            blocks += memory.block_ram.blocks_for(c, window.rows * w)
        else:
            logic += ram_logic(memory, cost, c, window.rows * w)
    skip = getattr(stage, "skip", None)
    if skip is not None:
        if ram_in_block_ram(memory, skip.width, skip.depth):
            blocks += memory.block_ram.blocks_for(skip.width, skip.depth)
        else:
            logic += ram_logic(memory, cost, skip.width, skip.depth)
    if isinstance(e, (MVTU, MACUnit)) and e.input_buffer_bits and not e.buffer_in_block_ram:
        logic += ram_logic(memory, cost, e.input_buffer_bits // e.sf, e.sf)
    conv = stage.converter
    if conv is not None:
        if conv.out_width > conv.in_width:
            logic += cost.register_per_bit * conv.out_width
        if isinstance(e, (MVTU, MACUnit)) and e.nf > 1:  # a join's converter regroups its shortcut: no FIFO
            if e.sf > 1 and ram_in_block_ram(memory, conv.out_width, e.sf - 1):
                blocks += memory.block_ram.blocks_for(conv.out_width, e.sf - 1)
            elif e.sf > 1:
                logic += ram_logic(memory, cost, conv.out_width, e.sf - 1)
            logic += cost.register_per_bit * conv.out_width
    return (round(logic) if cost.glue else 0), blocks


def estimate_scores(scores: ScoreUnit, target: Target) -> int:
    """Logic of the score unit on ``target``; 0 unless the family counts the glue.

    Per class and score bit ``score_per_word_bit`` (the score bank, the class
    select, the argmax compare), plus, without DSP blocks, the scale
    multiplier in logic: ``score_per_product_bit`` per bit of acc_width x
    score_width, plus ``score_fixed`` (the word output, the argmax's index,
    and what every design has once: the top's control).
    """
    cost = target.spec.cost
    if not cost.glue:
        return 0
    logic = cost.score_fixed + cost.score_per_word_bit * scores.num_classes * scores.score_width
    if target.dsp == 0:
        logic += cost.score_per_product_bit * scores.acc_width * scores.score_width
    return round(logic)


def estimate_bram_blocks(engine, target: Target) -> int:
    """Block RAMs of a folded engine's memories that go to block RAM on ``target``.

    The weight ROM (NF * SF words of PE * SIMD fields) and the input buffer
    (SF words) where the engine's :class:`~hwgen.hw.families.MemoryMap`
    puts them in block RAM (a sliced ROM: per slice), and the threshold ROM
    (P * NF words) when
    :meth:`~hwgen.hw.families.MemoryMap.threshold_rom_in_block_ram`; each as
    :meth:`~hwgen.hw.families.BlockRam.blocks_for` (port width
    and depth). Line buffers, pool rows and FIFOs are left to Yosys (LUT RAM
    or block RAM) and not counted here. A join: its threshold ROM when in block RAM. 0 for other engines.
    """
    if isinstance(engine, JoinUnit):
        deep = engine.depth > 1 and engine.memory.threshold_rom_in_block_ram(engine.depth)
        return engine.memory.block_ram.blocks_for(engine.word_bits, engine.depth) if deep else 0
    if not isinstance(engine, (MVTU, MACUnit)):
        return 0
    blocks = 0
    depth = engine.nf * engine.sf
    width = engine.weight_rom_bits // depth
    memory = engine.memory
    if memory.rom_in_block_ram(width, depth):
        step = memory.rom_slice_width(width, depth)
        blocks += sum(memory.block_ram.blocks_for(min(step, width - lo), depth) for lo in range(0, width, step))
    if engine.buffer_in_block_ram:
        blocks += memory.block_ram.blocks_for(engine.input_buffer_bits // engine.sf, engine.sf)
    table = engine.threshold_table
    if table is not None and memory.threshold_rom_in_block_ram(table.depth):
        blocks += memory.block_ram.blocks_for(table.word_bits, table.depth)
    return blocks
