"""FPGA targets: the devices ``hwgen build`` budgets for and ``hwgen synth`` places and routes on.

Each :class:`Target` records what the open toolchain needs (family, the
nextpnr device flag and package, Yosys ``synth_*`` options) and the device's
resources, from the vendor data sheets, checked against what nextpnr's
``--report`` lists as available (``tests/test_synth.py``):

==========  ===========  ======  ======  =================  ====  ====
target      part         LUT4    FF      block RAM          DSP   I/O
==========  ===========  ======  ======  =================  ====  ====
ecp5-85k    LFE5U-85F    83,640  83,640  208 x 18 Kbit EBR  156   205
ecp5-45k    LFE5U-45F    43,848  43,848  108 x 18 Kbit EBR  72    203
ecp5-25k    LFE5U-25F    24,288  24,288  56 x 18 Kbit EBR   28    197
ice40-up5k  iCE40UP5K     5,280   5,280  30 x 4 Kbit EBR    8     39
ice40-hx8k  iCE40HX8K     7,680   7,680  32 x 4 Kbit EBR    0     206
==========  ===========  ======  ======  =================  ====  ====

Units: LUT4 and FF count cells (ECP5: TRELLIS_COMB / TRELLIS_FF; iCE40: one
logic cell holds one LUT4 and one FF); a block RAM block holds
``bram_block_bits`` bits (ECP5 EBR: 18 Kbit = 18,432 bits, i.e. 512 x 36 with
the parity bits used as data; iCE40: 4 Kbit = 4,096 bits); DSP counts 18x18
multipliers (ECP5 MULT18X18D) or iCE40 SB_MAC16 blocks; I/O counts the user
pins the package bonds out (ECP5 CABGA381, iCE40UP5K SG48, iCE40HX8K CT256).
The iCE40UP5K's four 256 Kbit single-port RAMs (SB_SPRAM256KA) are not
counted as block RAM: they have no initial contents, so the engines' weight
ROMs cannot live in them. Family facts (block RAM shapes, memory mapping,
cells, tools, file names) are in :mod:`hwgen.hw.families`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwgen.hw.families import ECP5, Family, FamilySpec, blocks_for
from hwgen.errors import ConfigError

__all__ = ["ECP5_BRAM_SHAPES", "ECP5_CELLS", "ICE40_BRAM_SHAPES", "TARGETS", "Family", "Target", "blocks_for",
           "get_target", "instantiates_ecp5_cells"]

#: (width, depth) read-port configurations of one block RAM, widest first (:mod:`hwgen.hw.families`).
ECP5_BRAM_SHAPES = Family.ECP5.spec.block_ram.shapes
ICE40_BRAM_SHAPES = Family.ICE40.spec.block_ram.shapes

#: ECP5 cells that ECP5 builds instantiate (the MVTU's match count, hwgen/hw/engines/popcount.py; the score
#: unit's products, hwgen/hw/engines/multiply.py).
ECP5_CELLS = ECP5.cells


def instantiates_ecp5_cells(verilog_text: str) -> bool:
    """Whether Verilog (Amaranth's back end: ``CELL #(`` at the start of a line) instantiates :data:`ECP5_CELLS`."""
    return ECP5.instantiates_cells(verilog_text)


@dataclass(frozen=True)
class Target:
    """One FPGA device in one package (see the module docstring for units and sources)."""

    name: str              #: the ``--target`` name, e.g. "ecp5-85k"
    family: Family
    part: str              #: human-readable part, e.g. "LFE5U-85F"
    device_flag: str       #: nextpnr device option, e.g. "--85k"
    package: str           #: nextpnr ``--package``, e.g. "CABGA381"
    lut4: int              #: LUT4s (ECP5 TRELLIS_COMB, iCE40 logic cells)
    ff: int                #: flip-flops
    bram_blocks: int       #: block RAMs (ECP5 DP16KD, iCE40 SB_RAM40_4K)
    bram_block_bits: int   #: bits per block RAM
    dsp: int               #: 18x18 multipliers (MULT18X18D) or SB_MAC16 blocks
    io: int                #: user I/O pins of the package
    synth_flags: tuple[str, ...] = ()  #: extra Yosys synth_ecp5 / synth_ice40 options
    #: package ball of a primary-clock input (ECP5 PCLK) where an out-of-context run puts ``clk``, or None
    #: (any pad). Left to nextpnr, ``clk`` can land on a pad with no dedicated path to the global clock
    #: network, and router2 then fails to route it (seen on CNV at BNN-PYNQ's folding, ECP5-85F, seed 1).
    clock_site: str | None = None

    @property
    def bram_bits(self) -> int:
        """Total block RAM bits: bram_blocks * bram_block_bits."""
        return self.bram_blocks * self.bram_block_bits

    @property
    def spec(self) -> FamilySpec:
        """The family's facts: memories, cells, tools, file names (:mod:`hwgen.hw.families`)."""
        return self.family.spec

    @property
    def bram_shapes(self) -> tuple[tuple[int, int], ...]:
        """(width, depth) configurations of one block RAM's read port (ECP5 DP16KD incl. its 36-bit
        pseudo-dual-port mode; iCE40 SB_RAM40_4K)."""
        return self.spec.block_ram.shapes

    @property
    def bram_max_width(self) -> int:
        """Widest read port of one block RAM (ECP5: 36 bits, iCE40: 16 bits)."""
        return self.bram_shapes[0][0]

    def bram_blocks_for(self, width: int, depth: int) -> int:
        """Block RAMs a memory of ``depth`` words of ``width`` bits takes, in the best configuration:
        min over (w, d) in :attr:`bram_shapes` of ceil(width / w) * ceil(depth / d).

        A wide, shallow ROM (PE * SIMD bits per word, few folds) is limited by the
        port width, not by its bits.
        """
        return blocks_for(self.bram_shapes, width, depth)

    @property
    def pnr_flags(self) -> tuple[str, ...]:
        """nextpnr device selection: (device_flag, "--package", package)."""
        return (self.device_flag, "--package", self.package)


#: CABGA381 ball G2: PCLKT6_0, a primary-clock input (the ULX3S feeds its 25 MHz oscillator there).
ECP5_CABGA381_CLOCK_SITE = "G2"

_EBR_ECP5 = Family.ECP5.spec.block_ram.bits    # DP16KD: 18 Kbit
_EBR_ICE40 = Family.ICE40.spec.block_ram.bits  # SB_RAM40_4K: 4 Kbit

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("ecp5-85k", Family.ECP5, "LFE5U-85F", "--85k", "CABGA381",
           lut4=83_640, ff=83_640, bram_blocks=208, bram_block_bits=_EBR_ECP5, dsp=156, io=205,
           clock_site=ECP5_CABGA381_CLOCK_SITE),
    Target("ecp5-45k", Family.ECP5, "LFE5U-45F", "--45k", "CABGA381",
           lut4=43_848, ff=43_848, bram_blocks=108, bram_block_bits=_EBR_ECP5, dsp=72, io=203,
           clock_site=ECP5_CABGA381_CLOCK_SITE),
    Target("ecp5-25k", Family.ECP5, "LFE5U-25F", "--25k", "CABGA381",
           lut4=24_288, ff=24_288, bram_blocks=56, bram_block_bits=_EBR_ECP5, dsp=28, io=197,
           clock_site=ECP5_CABGA381_CLOCK_SITE),
    Target("ice40-up5k", Family.ICE40, "iCE40UP5K", "--up5k", "sg48",
           lut4=5_280, ff=5_280, bram_blocks=30, bram_block_bits=_EBR_ICE40, dsp=8, io=39,
           synth_flags=("-device", "u", "-dsp")),
    Target("ice40-hx8k", Family.ICE40, "iCE40HX8K", "--hx8k", "ct256",
           lut4=7_680, ff=7_680, bram_blocks=32, bram_block_bits=_EBR_ICE40, dsp=0, io=206,
           synth_flags=("-device", "hx")),
)}


def get_target(name: str | Target) -> Target:
    """The :class:`Target` called ``name`` (a Target passes through); ConfigError listing the valid names otherwise."""
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}") from None
