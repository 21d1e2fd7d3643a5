"""LUT4 estimates per stage, for the build report before any synthesis runs.

A first-order cost model in ECP5 LUT4 (TRELLIS_COMB cells after place and
route); the synthesis report (``hwgen synth``) gives the real numbers. For an
engine with PE x SIMD lanes and accumulators of A bits:

* MVTU from ECP5 cells without a tap mask (``ecp5_cells``, ``masked=False``:
  the match count of :mod:`hwgen.build.engines.popcount`):
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
* threshold ROM (threshold mode, R = P * NF words of :attr:`ThresholdTable.word_bits
  <hwgen.build.engines.thresholds.ThresholdTable.word_bits>`): the fits above
  were made at NF = 4 and include such a 4-word ROM; a deeper one kept in
  logic (up to :data:`~hwgen.build.engines.thresholds.THRESHOLD_LUT_MAX_DEPTH`
  words) adds ``ceil(R / 16)`` LUT4 per bit (16 words per LUT4), a deeper one
  is block RAM (:func:`estimate_bram_blocks`) and adds none; an inversion bit
  per PE (some comparison ``<=``) adds one LUT4 per PE (the XOR);
* sliding-window unit: its SIMD-bit output multiplexer over C / SIMD chunks
  plus counters; max-pool unit: two LUTs per bit of width per slot (R x R
  slots, R = ceil(K / S): one for K <= S) plus counters.
"""

from __future__ import annotations

import math

from hwgen.build.engines import MVTU, MACUnit, MaxPoolUnit, SlidingWindowUnit
from hwgen.build.engines.folded import BLOCK_RAM_MIN_DEPTH, WEIGHT_LUT_MAX_DEPTH
from hwgen.build.engines.thresholds import threshold_rom_in_block_ram
from hwgen.build.targets import Target

__all__ = ["estimate_bram_blocks", "estimate_lut4"]

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


def _threshold_lut4(engine) -> float:
    """LUT4 of a threshold ROM beyond the fitted engines' (see the module docstring), plus the inversion XORs."""
    table = engine.threshold_table
    if table is None:
        return 0.0
    cost = engine.pe if table.has_directions else 0.0
    if FITTED_THRESHOLD_WORDS < table.depth and not threshold_rom_in_block_ram(table.depth):
        cost += table.word_bits * math.ceil(table.depth / LUT_ROM_WORDS)
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


def estimate_lut4(engine) -> int:
    """Estimated LUT4 of one engine (see the module docstring)."""
    if isinstance(engine, (MVTU, MACUnit)):
        cost = _folded(engine) + _threshold_lut4(engine)
    elif isinstance(engine, SlidingWindowUnit):
        chunks = engine.in_shape[0] // engine.simd
        cost = engine.simd * math.ceil(math.log2(chunks + 1)) + CONTROL_LUT4
    elif isinstance(engine, MaxPoolUnit):
        cost = 2 * len(engine.i.payload) * engine.slots ** 2 + CONTROL_LUT4
    else:
        cost = CONTROL_LUT4
    return round(cost)


def estimate_bram_blocks(engine, target: Target) -> int:
    """Block RAMs of a folded engine's memories that go to block RAM on ``target``.

    The weight ROM (NF * SF words of PE * SIMD fields) when deeper than
    WEIGHT_LUT_MAX_DEPTH, the input buffer (SF words) when deeper than
    BLOCK_RAM_MIN_DEPTH, the threshold ROM (P * NF words) when
    :func:`~hwgen.build.engines.thresholds.threshold_rom_in_block_ram`; each
    as :meth:`Target.bram_blocks_for` (port width and depth). Line buffers,
    pool rows and FIFOs are left to Yosys (LUT RAM or block RAM) and not
    counted here. 0 for other engines.
    """
    if not isinstance(engine, (MVTU, MACUnit)):
        return 0
    blocks = 0
    depth = engine.nf * engine.sf
    if depth > WEIGHT_LUT_MAX_DEPTH:
        blocks += target.bram_blocks_for(engine.weight_rom_bits // depth, depth)
    if engine.nf > 1 and engine.sf > BLOCK_RAM_MIN_DEPTH:
        blocks += target.bram_blocks_for(engine.input_buffer_bits // engine.sf, engine.sf)
    table = engine.threshold_table
    if table is not None and threshold_rom_in_block_ram(table.depth):
        blocks += target.bram_blocks_for(table.word_bits, table.depth)
    return blocks
