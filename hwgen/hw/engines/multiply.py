"""A pipelined multiplier: ``p = a * b`` (signed) :data:`LATENCY` = 2 cycles after ``a`` and ``b``.

``registered_product(m, a, b, name=..., ecp5_cells=...)`` registers the operands
once and the product once:

    cycle t:     a, b
    cycle t + 1: operand registers a_r, b_r
    cycle t + 2: p = a_r * b_r, read from the product register

With ``ecp5_cells=True`` and both operands at most 18 bits (one multiplier
cell), the two registers are the MULT18X18D's own (REG_INPUTA_CLK,
REG_INPUTB_CLK, REG_OUTPUT_CLK = CLK0, clock enable high, reset low): the
cell's multiplier delay then lies between two of its registers, and the
fabric sees only register clock-to-output at both ends. Measured on the
ECP5-85F (nextpnr, one 18 x 18 product between fabric registers, alone on
the chip): 144 MHz with no cell register, 184 with the output register, 510
with input and output registers. Yosys does not move fabric registers into
MULT18X18D, hence the instance (its simulation model: hwgen/sim/ecp5_cells.v).
Otherwise the same two register stages in fabric, and the tools map the
product as they like.

The product is ``len(a) + len(b)`` bits wide, exact.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal, Value, signed

__all__ = ["LATENCY", "MULT_OPERAND_BITS", "registered_product"]

#: Cycles from the operands to their product.
LATENCY = 2
#: Widest signed operand of one ECP5 multiplier cell (MULT18X18D).
MULT_OPERAND_BITS = 18


def registered_product(m: Module, a: Value, b: Value, *, name: str, ecp5_cells: bool) -> Signal:
    """``a * b`` (both signed) :data:`LATENCY` cycles later, as a signed Signal of ``len(a) + len(b)`` bits."""
    a, b = a.as_signed(), b.as_signed()
    width = len(a) + len(b)
    p = Signal(signed(width), name=name)
    if ecp5_cells and max(len(a), len(b)) <= MULT_OPERAND_BITS:
        wide_a = Signal(signed(MULT_OPERAND_BITS), name=f"{name}_a")
        wide_b = Signal(signed(MULT_OPERAND_BITS), name=f"{name}_b")
        product = Signal(2 * MULT_OPERAND_BITS, name=f"{name}_p")
        m.d.comb += [wide_a.eq(a), wide_b.eq(b), p.eq(product[:width])]
        ports = {f"i_A{k}": wide_a[k] for k in range(MULT_OPERAND_BITS)}
        ports.update({f"i_B{k}": wide_b[k] for k in range(MULT_OPERAND_BITS)})
        ports.update({f"i_C{k}": Const(0, 1) for k in range(MULT_OPERAND_BITS)})
        ports.update({f"o_P{k}": product[k] for k in range(2 * MULT_OPERAND_BITS)})
        m.submodules[f"{name}_mult"] = Instance(
            "MULT18X18D", p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
            i_CLK0=ClockSignal("sync"), i_CE0=Const(1, 1), i_RST0=Const(0, 1), **ports)
        return p
    a_r = Signal(signed(len(a)), name=f"{name}_a")
    b_r = Signal(signed(len(b)), name=f"{name}_b")
    m.d.sync += [a_r.eq(a), b_r.eq(b), p.eq(a_r * b_r)]
    return p

