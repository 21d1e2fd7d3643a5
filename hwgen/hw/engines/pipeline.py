"""Pipelined arithmetic shared by the engines: register delays, replicated registers, a balanced adder tree and
the credit count of a producer in front of its own output FIFO.

A tree over n leaves has ``tree_levels(n) = ceil(log2 n)`` adder levels and a
register after every 2 levels and after the last, i.e.
``tree_register_stages(n) = (tree_levels(n) + 1) // 2`` cycles of latency.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from amaranth.hdl import Module, Mux, Shape, ShapeCastable, Signal, Value

__all__ = ["COPY_TREE_ABOVE", "FANOUT_COPY", "FANOUT_GROUP_BITS", "adder_tree", "copy_groups", "copy_registers",
           "credit_full_next", "delay", "delay_copies", "spans", "tree_levels", "tree_register_stages"]

#: The name part of a register copy made by :func:`delay_copies`. Yosys would merge identical registers
#: back into one; the synthesis script (``templates/synth.ys.j2``) marks the registers of wires named
#: ``*{FANOUT_COPY}*`` to be kept, so each copy stays beside the consumers it drives.
FANOUT_COPY = "_fanout"

#: Bits of a wide datapath that one copy of a control register drives (a stream/buffer select, the pointers
#: of a FIFO slice, an address copy): 16 LUT RAM cells of 4 bits on the ECP5.
FANOUT_GROUP_BITS = 64


def spans(total: int, size: int) -> list[tuple[int, int]]:
    """0 .. ``total`` cut into ranges [lo, hi) of ``size`` (the last one shorter): the slices or lane groups
    of a wide datapath that each get their own copy of a control register."""
    return [(lo, min(lo + size, total)) for lo in range(0, total, size)]


def tree_levels(n: int) -> int:
    """Adder levels of a balanced binary tree over n leaves: ceil(log2 n), 0 for n == 1."""
    return (n - 1).bit_length()


def tree_register_stages(n: int) -> int:
    """Register stages of the adder tree over n leaves: one every 2 adder levels (and after the last)."""
    return (tree_levels(n) + 1) // 2


def credit_full_next(pending: Value, push: Value, pop: Value, depth: int) -> Value:
    """``pending + push - pop == depth``: the credit count is full in the next cycle.

    ``pending`` counts words issued towards a FIFO of ``depth`` words and not yet taken from it; a producer
    issues only while ``pending < depth``, so every word has a place. This is the next cycle's "full" without
    the adder: ``pending == depth - 1`` after a push without a pop, else ``pending == depth`` unless a pop
    without a push, so a register loaded from it (a credit flag, a registered ``ready``) starts no carry chain.
    """
    return Mux(push & ~pop, pending == depth - 1, (push | ~pop) & (pending == depth))


def delay(m: Module, sig: Value, n: int, name: str, *, reset_less: bool = False) -> Value:
    """``sig`` delayed by n registers (without reset: ``reset_less``)."""
    for k in range(n):
        reg = Signal(sig.shape(), name=f"{name}{k}" if n > 1 else name, reset_less=reset_less)
        m.d.sync += reg.eq(sig)
        sig = reg
    return sig


#: Above this many copies (and with n >= 2), :func:`delay_copies` also copies the register before the last.
COPY_TREE_ABOVE = 8


def copy_groups(copies: int) -> tuple[int, int]:
    """(G, per group) of :func:`delay_copies`' tree over ``copies`` last copies: G = ceil(sqrt(copies)) copies of
    the register before the last, copy g feeding last copies g * per .. g * per + per - 1, per = ceil(copies / G)."""
    groups = math.isqrt(copies - 1) + 1
    return groups, -(-copies // groups)


def copy_registers(n: int, copies: int, name: str) -> dict[str, range]:
    """The registers :func:`delay_copies` (``n``, ``copies``, ``name``) makes, by name, each with the last
    copies (their indices) whose value passes through it: what a fault in that register reaches."""
    if copies == 1:
        return {(f"{name}{k}" if n > 1 else name): range(1) for k in range(n)}
    last = {f"{name}{FANOUT_COPY}{k}": range(k, k + 1) for k in range(copies)}
    if n >= 2 and copies > COPY_TREE_ABOVE:
        groups, per_group = copy_groups(copies)
        before = copy_registers(n - 1, groups, f"{name}_pre")
        return {**{reg: range(fed.start * per_group, min(copies, fed.stop * per_group)) for reg, fed in before.items()},
                **last}
    return {**{reg: range(copies) for reg in copy_registers(n - 1, 1, f"{name}_pre")}, **last}


def delay_copies(m: Module, sig: Value, n: int, copies: int, name: str, *, reset_less: bool = False
                 ) -> list[Value]:
    """``sig`` delayed by n >= 1 registers, the last register in ``copies`` identical copies.

    One copy per group of consumers (e.g. one per PE of a folded engine's input
    slice): each drives a share of the fan-out, so the placer can put it next to
    its consumers instead of one register reaching all of them. With more than
    :data:`COPY_TREE_ABOVE` copies and n >= 2 the register before the last is
    copied too, G = ceil(sqrt(copies)) times (``NAME_pre{FANOUT_COPY}G``), each
    feeding ceil(copies / G) of the last copies: no register drives more than
    about sqrt(copies) copies (CNV ``--pe 16``'s conv0, one register into 64
    copies: 9.24 ns of routing). Same value and latency as :func:`delay`; the
    last copies are named ``NAME{FANOUT_COPY}K`` (all kept apart in synthesis,
    see :data:`FANOUT_COPY`). One copy: :func:`delay` itself. ``reset_less``: no register has a reset.
    """
    if copies == 1:
        return [delay(m, sig, n, name, reset_less=reset_less)]
    if n >= 2 and copies > COPY_TREE_ABOVE:
        groups, per_group = copy_groups(copies)
        before = delay_copies(m, sig, n - 1, groups, f"{name}_pre", reset_less=reset_less)
        sources = [before[k // per_group] for k in range(copies)]
    else:
        sources = [delay(m, sig, n - 1, f"{name}_pre", reset_less=reset_less)] * copies
    regs = [Signal(sig.shape(), name=f"{name}{FANOUT_COPY}{k}", reset_less=reset_less) for k in range(copies)]
    m.d.sync += [reg.eq(src) for reg, src in zip(regs, sources)]
    return regs


def adder_tree(m: Module, leaves: Sequence[Value], node_shape: Callable[[int], Shape | ShapeCastable | range],
               name: str) -> Value:
    """Balanced adder tree over ``leaves``, a register after every 2 adder levels and after the last.

    Level l adds neighbouring pairs (an odd node out passes through), so the
    sum comes :func:`tree_register_stages` (len(leaves)) cycles later (the leaf
    itself, combinationally, for one leaf). A registered node summing k leaves
    gets the shape ``node_shape(k)``: the caller sizes nodes exactly, e.g.
    ``range(k + 1)`` for a popcount, or the signed range of k times the leaf bound.
    """
    nodes: list[tuple[Value, int]] = [(leaf, 1) for leaf in leaves]
    levels = tree_levels(len(nodes))
    for level in range(levels):
        paired = [(nodes[j][0] + nodes[j + 1][0], nodes[j][1] + nodes[j + 1][1])
                  for j in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
        if level % 2 == 1 or level == levels - 1:
            registered = []
            for j, (expr, count) in enumerate(nodes):
                reg = Signal(node_shape(count), name=f"{name}_l{level + 1}_{j}")
                m.d.sync += reg.eq(expr)
                registered.append((reg, count))
            nodes = registered
    assert len(nodes) == 1
    return nodes[0][0]
