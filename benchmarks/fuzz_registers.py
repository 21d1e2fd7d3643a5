"""Faults in the pipeline registers of a generated design: one register bit inverted, in the Verilog.

The mutation check of the fuzz campaign (benchmarks/fuzz_mutants.py) changes words of the network;
a fault in the logic between them (a pipeline register, a counter, a handshake flag) needs mutated
RTL. Every clocked register of the Verilog Yosys writes for a build has the form::

    always @(posedge clk)
      NAME <= NEXT ;

(:data:`REGISTER`; ``NEXT;`` without the space when NEXT is a plain name). A *register mutant* inverts
bit ``b`` of one such register's next value, ``NAME <= (NEXT) ^ (1 << b)``, for the whole run: a
stuck-inverted flip-flop input. It is *caught* when the bulk simulation of the mutated design, on the fuzz
images with the same gaps and stalls, is not the golden model's: a wrong score, a protocol error (output
beats missing or extra) or a stream that stops (the harness's idle limit). A mutant none of these reveal
may still be harmless (an unused bit, a register whose value is ignored while its valid flag is low), so
the uncaught ones are listed for a look, not called equivalent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["RegisterSite", "REGISTER", "draw_register_mutants", "flip_register_bit", "register_sites"]

#: A single-statement clocked assignment as Yosys's write_verilog prints a $dff: name, next value (``NEXT ;``
#: after an expression or an escaped name, ``NEXT;`` after a plain name: a register without reset copying a wire).
REGISTER = re.compile(r"^  always @\(posedge clk\)\n    (\\\S+ |\w+) <= (.+?) ?;\n", re.M)
_DECLARATION = re.compile(r"^  reg (?:\[(\d+):(\d+)\] )?(\\\S+ |\w+)", re.M)
_MODULE = re.compile(r"^module (\\\S+ |\w+)", re.M)


@dataclass(frozen=True)
class RegisterSite:
    """One clocked register: its module, name and width, and where its statement lies in the text."""

    module: str
    name: str
    width: int
    start: int   # offset of the ``always`` statement in the Verilog text
    end: int


def register_sites(verilog: str) -> list[RegisterSite]:
    """Every single-statement clocked register of ``verilog``, with its width from its ``reg`` declaration."""
    modules = [(m.start(), m.group(1).strip()) for m in _MODULE.finditer(verilog)] + [(len(verilog), "")]
    sites = []
    for (start, module), (end, _) in zip(modules, modules[1:]):
        body = verilog[start:end]
        widths = {m.group(3): (int(m.group(1)) - int(m.group(2)) + 1 if m.group(1) else 1)
                  for m in _DECLARATION.finditer(body)}
        for m in REGISTER.finditer(body):
            if m.group(1) in widths:
                sites.append(RegisterSite(module, m.group(1).strip(), widths[m.group(1)],
                                          start + m.start(), start + m.end()))
    return sites


def flip_register_bit(verilog: str, site: RegisterSite, bit: int) -> str:
    """``verilog`` with bit ``bit`` of ``site``'s next value inverted (the rest of the text unchanged)."""
    if not 0 <= bit < site.width:
        raise ValueError(f"bit {bit} outside {site.name} ({site.width} bits)")
    m = REGISTER.match(verilog, site.start)
    assert m is not None and m.end() == site.end, "site does not match the text"
    name, nxt = m.group(1), m.group(2)
    mutated = f"  always @(posedge clk)\n    {name} <= ({nxt} ) ^ {site.width}'h{1 << bit:x} ;\n"
    return verilog[:site.start] + mutated + verilog[site.end:]


def draw_register_mutants(verilog: str, rng: np.random.Generator, count: int) -> list[tuple[RegisterSite, int]]:
    """``count`` distinct (site, bit) pairs, the site drawn uniformly over the design's register bits."""
    sites = register_sites(verilog)
    bits = [(s, b) for s in sites for b in range(s.width)]
    picks = rng.choice(len(bits), size=min(count, len(bits)), replace=False)
    return [bits[int(i)] for i in picks]
