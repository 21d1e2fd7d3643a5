"""Logic and block RAM estimates: the folded engines' model and the memories', for the build report.

Each layer kind's stage (:mod:`hwgen.hw.stages`) sums its estimate from the
formulas here (a convolution: its folded engine, window and glue) or states
its own (a pool, a residual join). A first-order cost model per family (its coefficients: the family's
:class:`~hwgen.hw.families.LogicCost`), in the family's unit: ECP5 LUT4
(TRELLIS_COMB cells after place and route), iCE40 logic cells (ICESTORM_LC);
the synthesis report (``hwgen synth``) gives the real numbers. The engines'
formulas below were fitted in ECP5 LUT4s; an iCE40 estimate multiplies them
by ``LogicCost.scale`` (:func:`scaled`) and adds the glue: width
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
  tree (about A bits per lane), then the same per-PE and control terms; on a
  target with DSP blocks the k x 9 multipliers are DSPs (:func:`folded_dsp`:
  Yosys maps each to one; ResNet-8's int8 conv0 at PE 16 x SIMD 3: 48
  MULT18X18D placed, 50 with the score unit's 2) and cost no LUT4;
* weight ROM (NF * SF words of PE * SIMD fields): the fits above have it
  in block RAM; one the memory map leaves in logic (no deeper than
  ``rom_lut_max_depth``) adds :func:`lut_rom_lut4`, ``width * ceil(depth / 16)``;
* threshold ROM (threshold mode, R = P * NF words of :attr:`ThresholdTable.word_bits
  <hwgen.hw.engines.thresholds.ThresholdTable.word_bits>`): the fits above
  were made at NF = 4 and include such a 4-word ROM; a deeper one kept in
  logic (up to :attr:`~hwgen.hw.families.MemoryMap.threshold_lut_max_depth`
  words) adds :func:`lut_rom_lut4` (``ceil(R / 16)`` LUT4 per bit), a deeper one
  is block RAM (:func:`folded_bram_blocks`) and adds none; an inversion bit
  per PE (some comparison ``<=``) adds one LUT4 per PE (the XOR);
* sliding-window unit (:func:`window_lut4`): its SIMD-bit output multiplexer
  over C / SIMD chunks plus counters;
* memories left to Yosys (line buffers, vector FIFOs, skip buffers:
  :func:`ram_cost`): block RAM where :meth:`~hwgen.hw.families.MemoryMap.ram_in_block_ram`, else LUT RAM
  or flip-flops (:func:`ram_logic`).
"""

from __future__ import annotations

import math

from hwgen.hw.engines import MVTU, MACUnit, SlidingWindowUnit
from hwgen.hw.engines.scores import ScoreUnit
from hwgen.hw.families import LogicCost, MemoryMap
from hwgen.hw.targets import Target

__all__ = ["converter_logic", "estimate_scores", "folded_bram_blocks", "folded_dsp", "folded_lut4", "lut_rom_lut4",
           "multiplier_lanes", "ram_cost", "ram_logic", "scaled", "scores_dsp", "threshold_rom_beyond_fit", "threshold_rom_lut4",
           "window_lut4"]

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
#: Words of a threshold ROM already in the fitted engines (NF = 4); words per LUT4 of a logic ROM.
FITTED_THRESHOLD_WORDS = 4
LUT_ROM_WORDS = 16


def lut_rom_lut4(width: int, depth: int) -> int:
    """LUT4 of a ROM of ``depth`` words of ``width`` bits in logic: ``width * ceil(depth / 16)`` (16 words per LUT4)."""
    return width * math.ceil(depth / LUT_ROM_WORDS)


def _weight_rom_lut4(engine) -> float:
    """LUT4 of a weight ROM the memory map leaves in logic (the fitted engines' ROMs are block RAM), or of
    the bank select of one split in depth (B banks: B - 1 LUT4 per bit, a 2:1 multiplexer per bank added)."""
    width, depth = engine.weight_rom_shape
    if engine.memory.rom_in_block_ram(width, depth):
        return float((engine.weight_rom_banks - 1) * width)
    return lut_rom_lut4(width, depth)


def threshold_rom_beyond_fit(depth: int, memory: MemoryMap) -> bool:
    """A threshold ROM of ``depth`` words deeper than the fitted engines' (:data:`FITTED_THRESHOLD_WORDS`)
    and kept in logic (not forced into block RAM): its LUTs are not in the fits."""
    return FITTED_THRESHOLD_WORDS < depth and not memory.threshold_rom_in_block_ram(depth)


def threshold_rom_lut4(pe: int, word_bits: int, depth: int, has_directions: bool, memory: MemoryMap) -> float:
    """LUT4 of a threshold ROM of ``depth`` words of ``word_bits`` beyond the fitted engines' (see the module
    docstring): ``lut_rom_lut4`` of a ROM :func:`threshold_rom_beyond_fit`, plus one XOR per PE for the
    inversion bits."""
    cost = pe if has_directions else 0.0
    if threshold_rom_beyond_fit(depth, memory):
        cost += lut_rom_lut4(word_bits, depth)
    return cost


def _threshold_lut4(engine) -> float:
    """:func:`threshold_rom_lut4` of a folded engine's threshold ROMs (0 in accumulator mode), plus, with
    factored thresholds, a ``threshold_width``-bit adder per PE (start = K + product >> s + D)."""
    table = engine.threshold_table
    if table is None:
        return 0.0
    cost = engine.pe if table.has_directions else 0.0
    cost += sum(threshold_rom_lut4(engine.pe, width, depth, False, engine.memory)
                for width, depth in engine.threshold_roms())
    if engine.threshold_factors is not None:
        cost += engine.pe * engine.threshold_width
    return cost


def multiplier_lanes(engine) -> int:
    """Lanes of a folded engine whose term is a real multiplier (a MAC unit with k-bit weights on uint8
    pixels: k x 9 bits); 0 for XNOR lanes and conditional negates."""
    if isinstance(engine, MACUnit) and not engine.binary_inputs and not engine.binary_weights:
        return engine.pe * engine.simd
    return 0


def _folded(engine, dsp: bool = False) -> float:
    """The engine's lanes, PEs and control; ``dsp``: its multipliers go to DSP blocks (no LUT4 for them)."""
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
        term = 0 if dsp else 9 * engine.weight_bits
    return (term + engine.acc_width) * lanes + per_pe + CONTROL_LUT4


def scaled(logic: float, target: Target | None = None) -> int:
    """An ECP5-LUT4 figure in ``target``'s unit (``LogicCost.scale``; None: ECP5 LUT4), rounded."""
    return round(logic * (1.0 if target is None else target.spec.cost.scale))


def folded_lut4(engine, target: Target | None = None) -> int:
    """Estimated LUT4 (ECP5) / logic cells (iCE40) of a folded engine (MVTU or MAC unit) on ``target``:
    its lanes, PEs and control, its threshold ROM and a weight ROM in logic (see the module docstring);
    multipliers that :func:`folded_dsp` puts in DSP blocks cost no LUT4."""
    dsp = target is not None and target.dsp > 0
    return scaled(_folded(engine, dsp) + _threshold_lut4(engine) + _weight_rom_lut4(engine), target)


def folded_dsp(engine, target: Target) -> int:
    """DSP blocks of a folded engine on ``target``: one per :func:`multiplier_lanes` lane (a k x 9 product
    fits one 18 x 18 multiplier) and one per PE with factored thresholds (A x B, at most 18 x 18:
    :mod:`~hwgen.hw.engines.threshold_factors`); Yosys maps every such ``$mul`` to MULT18X18D on ECP5,
    SB_MAC16 with ``-dsp`` on the UP5K; none on a family without DSPs."""
    factored = engine.pe if engine.threshold_factors is not None else 0
    return multiplier_lanes(engine) + factored if target.dsp > 0 else 0


def scores_dsp(scores: ScoreUnit, target: Target) -> int:
    """DSP blocks of the score unit: one multiplier per scale chunk (:attr:`ScoreUnit.chunk_offsets
    <hwgen.hw.engines.scores.ScoreUnit.chunk_offsets>`), none without DSPs."""
    return len(scores.chunk_offsets) if target.dsp > 0 else 0


def window_lut4(window: SlidingWindowUnit, target: Target | None = None) -> int:
    """A sliding-window unit: its SIMD-bit output multiplexer over C / SIMD chunks, plus counters."""
    chunks = window.in_shape[0] // window.simd
    return scaled(window.simd * math.ceil(math.log2(chunks + 1)) + CONTROL_LUT4, target)


def ram_logic(memory: MemoryMap, cost: LogicCost, width: int, depth: int) -> float:
    """Logic of a RAM outside block RAM: LUT RAM where the family has it, ``lut_ram_per_cell`` per DPR16X4
    (16 words x 4 bits: ``ceil(width / 4) * ceil(depth / 16)`` cells), else flip-flop RAM, ``ff_ram_per_bit``."""
    if memory.lut_ram:
        return cost.lut_ram_per_cell * memory.lut_ram_cells(width, depth)
    return cost.ff_ram_per_bit * width * depth


def ram_cost(target: Target, width: int, depth: int) -> tuple[float, int]:
    """(logic, block RAMs) of a RAM left to Yosys (a line buffer, a FIFO): its blocks where
    :meth:`~hwgen.hw.families.MemoryMap.ram_in_block_ram`, else its :func:`ram_logic` (counted only where the
    family counts the glue)."""
    memory = target.spec.memory
    if memory.ram_in_block_ram(width, depth):
        return 0.0, memory.block_ram.blocks_for(width, depth)
    return ram_logic(memory, target.spec.cost, width, depth), 0


def converter_logic(converter, target: Target) -> float:
    """A gathering width converter holds one output word (``register_per_bit`` per bit); a splitting one: 0."""
    if converter.out_width > converter.in_width:
        return target.spec.cost.register_per_bit * converter.out_width
    return 0.0


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


def folded_bram_blocks(engine) -> int:
    """Block RAMs of a folded engine's memories that go to block RAM.

    The weight ROM (NF * SF words of PE * SIMD fields) and the input buffer
    (SF words) where the engine's :class:`~hwgen.hw.families.MemoryMap`
    puts them in block RAM (:meth:`~hwgen.hw.families.MemoryMap.rom_blocks`: per bank and slice), and the threshold ROM
    (P * NF words) when
    :meth:`~hwgen.hw.families.MemoryMap.threshold_rom_in_block_ram` (a registered table as the weight ROM,
    per bank and slice; the others whole); each as
    :meth:`~hwgen.hw.families.BlockRam.blocks_for` (port width
    and depth). Line buffers, pool rows and FIFOs are :func:`ram_cost`'s.
    """
    blocks = 0
    width, depth = engine.weight_rom_shape
    memory = engine.memory
    if memory.rom_in_block_ram(width, depth):
        blocks += memory.rom_blocks(width, depth)
    if engine.buffer_in_block_ram:
        blocks += memory.block_ram.blocks_for(engine.input_buffer_bits // engine.sf, engine.sf)
    roms = [(width, depth) for width, depth in engine.threshold_roms() if memory.threshold_rom_in_block_ram(depth)]
    if engine.threshold_table_registered:  # the table, first, a registered ROM: per bank and slice
        blocks += memory.rom_blocks(*roms.pop(0))
    return blocks + sum(memory.block_ram.blocks_for(width, depth) for width, depth in roms)
