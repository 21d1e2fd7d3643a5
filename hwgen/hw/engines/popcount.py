"""The MVTU's match count: full adders of three lanes, a carry-save tree, one carry-chain adder.

``match_count(m, x, u, n, name, ecp5_cells=...)`` counts the lanes k < n with
``x[k] XOR u[k] = 1``; the MVTU stores its weight bits inverted (u = NOT w),
so a lane is XNOR(x, w), a match. The count is :func:`match_count_stages` (n)
cycles after ``x`` and ``u``:

1. **Lane adders** (registered): lanes in groups of three (a, b, c) go
   through a full adder: sum = a ^ b ^ c (weight 1), carry = maj(a, b, c)
   (weight 2); the n mod 3 lanes left over stay single bits of weight 1.
   With ``ecp5_cells=True`` a group costs one CCU2C (two LUT4 halves)
   and the XORs are inside it: the chain's LUT4 of bit k sees the four input
   bits of lanes b and c, P = (x_b ^ u_b) ^ (x_c ^ u_c), and its generate
   input (the LUT4 at C = D = 0) is lane b; lane a enters as the carry-in,
   injected by the half before it (P = 0, generate = x_a ^ u_a), which also
   emits the previous group's carry as its sum. So 3 lanes cost 2 LUT4
   instead of 3 XORs and a 6-input full adder. Elsewhere the same full
   adders are plain logic.
2. **Carry-save layers**, a register after every second layer: per bit
   weight, every three bits through a full adder (two LUT4s: with
   ``ecp5_cells`` instantiated LUT4 cells, so that synthesis cannot merge two
   layers into wider functions), sum kept, carry one weight up, until no
   weight holds more than two bits (:func:`carry_save_layers`). (A Dadda
   schedule, down to 9, 6, 4, 3, 2 bits per weight with half adders, took
   8 more LUT4 per 32 lanes: its half adders remove no bits.)
3. **Final adder** (registered): the two rows added, ``range(n + 1)``.
   With ``ecp5_cells`` it sits on the same carry chain as the lane adders
   (a half per bit, INIT 0x060A, and one for the carry-out), behind the
   half that emits the last lane carry, whose generate 0 starts the adder
   with carry 0: as few chains as possible, because nextpnr spends about
   4 more LUT4 on each chain (measured: 2 chains of 24 lanes 106 LUT4
   placed, 1 chain 100), but at most :data:`MAX_CHAIN_HALVES` halves per
   chain (:class:`CarryChain` splits longer ones before an inject or emit
   half). The MVTU adds its accumulator adder to the same chain.

The registers (lane adders, every second carry-save layer, the count) have no
reset: their words count only where the caller's valid pipeline, which is
reset, says so. So no reset reaches the thousands of flip-flops of an
engine's match counts, and the simulated model updates each as a copy of its
input bit (the reset term was 42 % of the CNV model's per-cycle C++).

**The simulation model** (``model=True``, for the Verilator models of
:mod:`hwgen.sim` only): an instance of :data:`MODEL_MODULE` (``hwgen/sim/match_count.v``),
``count = $countones(x ^ u)`` registered through the same :func:`match_count_stages` (n)
stages, which Verilator evaluates a 64-bit word at a time where the cells cost it several
statements per lane (CNV ``--pe 16``: 2.2x the simulated cycles per second). It stands for the
cells because (1) the cells equal the plain-logic tree register by register, proven per lane
count with Yosys's ``equiv_*`` passes (:mod:`hwgen.sim.match_counts`, before every simulation
that uses the model), and (2) the plain-logic tree equals the count for every n: every full adder
keeps s + 2c = a + b + c, and :func:`carry_save_reduce` moves each weight's bits only through
full adders, which ``tests/test_popcount.py`` checks of the construction for n up to 1,200 (and
proves with Yosys's SAT solver, model against cells, for small n). The caller's chain then holds
only what the caller adds to it.

The cells' semantics are Yosys's ECP5 simulation models (``+/ecp5/cells_sim.v``;
the simulator's copy is ``hwgen/sim/ecp5_cells.v``, checked against them by
``tests/test_popcount.py``; the cells are listed in
:data:`hwgen.hw.targets.ECP5_CELLS`): LUT4 output = INIT[{D, C, B, A}]; CCU2C per half:
S = LUT4 ^ CIN, COUT = LUT4 ? CIN : LUT2(A, B), where the LUT2 is INIT[3:0].
"""

from __future__ import annotations

from typing import Callable, TypeVar

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value

Bit = TypeVar("Bit")

__all__ = ["MODEL_MODULE", "CarryChain", "carry_save_layers", "carry_save_reduce", "chain_adder", "lane_groups",
           "match_count",
           "match_count_stages", "source_digest"]

#: The simulation model's Verilog module (``hwgen/sim/match_count.v``): parameters N (lanes) and STAGES.
MODEL_MODULE = "hwgen_match_count"

#: Halves per carry chain at most (32 CCU2C cells): nextpnr times the carry through a whole chain, about
#: 0.07 ns per cell, so the chain of a 128-lane match count and its adders (53 cells) set Fmax (125 MHz).
MAX_CHAIN_HALVES = 64

#: CCU2C half, C tied to 1: P = 0 (the carry-in passes to S: it emits the previous group's carry),
#: generate = A ^ B (injects lane a as the next half's carry-in).
INIT_INJECT = 0x0006
#: CCU2C half: P = A ^ B ^ C ^ D (lanes b and c), generate = A ^ B (lane b): a full adder with the carry-in.
INIT_ADD = 0x6996
#: CCU2C half that only emits its carry-in (P = 0, generate = 0).
INIT_EMIT = 0x0000
#: CCU2C half of an adder, D tied to 1 and C to 0: P = A ^ B, generate = A (Yosys's own adder cells use 0x96AA).
INIT_SUM = 0x060A

_ZERO, _ONE = Const(0, 1), Const(1, 1)
#: A, B, C, D of an emitting half (C tied to 1, so P = INIT[{D, 1, B, A}] = 0 for INIT_INJECT and INIT_EMIT).
_EMIT_INPUTS = (_ZERO, _ZERO, _ONE, _ZERO)


def source_digest() -> str:
    """What the match counts' netlists follow from: SHA-256 (16 hex digits) of this module's code and
    Amaranth's version. ``hwgen build`` records it beside ``top_sim.v``; a simulation uses the model
    only where it is still the same (the proofs are made with this code)."""
    import hashlib
    from importlib import metadata
    from pathlib import Path

    code = Path(__file__).read_bytes() + metadata.version("amaranth").encode()
    return hashlib.sha256(code).hexdigest()[:16]


def _column_heights(n: int) -> dict[int, int]:
    """Bits per weight after the lane adders: n // 3 sums and n % 3 single lanes of weight 1, n // 3 carries
    of weight 2."""
    groups = n // 3
    return {0: groups + n % 3, 1: groups}


def carry_save_layers(n: int) -> int:
    """Full-adder layers of the match count over n lanes: until no weight holds more than two bits
    (each layer: every three bits of a weight -> a sum there and a carry one weight up)."""
    return _layers(_column_heights(n))


def _layers(columns: dict[int, int] | dict[int, list]) -> int:
    """:func:`carry_save_layers` of columns given as bits per weight (or the bits themselves)."""
    heights = {w: h if isinstance(h, int) else len(h) for w, h in columns.items()}
    layers = 0
    while max(heights.values()) > 2:
        nxt: dict[int, int] = {}
        for weight, h in heights.items():
            nxt[weight] = nxt.get(weight, 0) + h - 2 * (h // 3)
            nxt[weight + 1] = nxt.get(weight + 1, 0) + h // 3
        heights = nxt
        layers += 1
    return layers


def carry_save_reduce(columns: dict[int, list[Bit]],
                      full_adder: Callable[[list[Bit], int, int, int], tuple[Bit, Bit]],
                      register: Callable[[list[Bit], int, int], list[Bit]]) -> dict[int, list[Bit]]:
    """The carry-save layers on ``columns`` (weight -> bits) until no weight holds more than two bits.

    Layer L = 1, 2, ...: for each weight w in ascending order, the bits j, j + 1, j + 2 (j = 0, 3, ...
    while three remain) become ``full_adder(bits, L, w, j / 3)`` = (sum, carry); the layer's new weight
    w holds the carries from w - 1, then w's sums, then w's leftover bits. After every even layer each
    weight's bits go through ``register(bits, L, w)``. So sum_w 2^w * (bits at w) is the same after
    every layer wherever s + 2c = a + b + c. Generic in the bit type: the engines pass Amaranth
    values, ``tests/test_popcount.py`` symbols that record what was added where.
    """
    for layer in range(1, _layers(columns) + 1):
        nxt: dict[int, list[Bit]] = {}
        for weight in sorted(columns):
            bits = columns[weight]
            full = len(bits) // 3 * 3
            for j in range(0, full, 3):
                s, c = full_adder(list(bits[j:j + 3]), layer, weight, j // 3)
                nxt.setdefault(weight, []).append(s)
                nxt.setdefault(weight + 1, []).append(c)
            nxt.setdefault(weight, []).extend(bits[full:])
        if layer % 2 == 0:
            columns = {w: register(bits, layer, w) for w, bits in nxt.items()}
        else:
            columns = nxt
    assert max(len(bits) for bits in columns.values()) <= 2
    return columns


def match_count_stages(n: int) -> int:
    """Cycles from the lanes to the count: lane adders, a register per two carry-save layers, final adder."""
    return 2 + carry_save_layers(n) // 2


#: LUT4 INITs of a full adder on inputs A, B, C (D unused): the sum (parity) and the carry (majority).
INIT_XOR3 = 0x9696
INIT_MAJ3 = 0xE8E8


def _full_adder(a: Value, b: Value, c: Value) -> tuple[Value, Value]:
    return a ^ b ^ c, (a & b) | (c & (a ^ b))


def _lut4(m: Module, name: str, init: int, a: Value, b: Value, c: Value) -> Signal:
    z = Signal(name=name)
    m.submodules[f"{name}_lut"] = Instance("LUT4", p_INIT=Const(init, 16), i_A=a, i_B=b, i_C=c, i_D=_ZERO, o_Z=z)
    return z


def _full_adder_lut4(m: Module, name: str, a: Value, b: Value, c: Value) -> tuple[Value, Value]:
    return _lut4(m, f"{name}_s", INIT_XOR3, a, b, c), _lut4(m, f"{name}_c", INIT_MAJ3, a, b, c)


class CarryChain:
    """CCU2C halves in chain order; :meth:`build` pairs them into cells, COUT to CIN, the first CIN 0."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.halves: list[tuple[int, tuple[Value, Value, Value, Value], Signal]] = []

    def add(self, init: int, a: Value, b: Value, c: Value, d: Value) -> Signal:
        """One half: P = INIT[{D, C, B, A}], generate = INIT[{B, A}]; returns its S = P ^ carry-in."""
        s = Signal(name=f"{self.name}_h{len(self.halves)}")
        self.halves.append((init, (a, b, c, d), s))
        return s

    def emit(self) -> Signal:
        """A half that passes its carry-in to S and sends carry 0 on (P = 0, generate = 0); returns S."""
        return self.add(INIT_EMIT, *_EMIT_INPUTS)

    def build(self, m: Module) -> None:
        """Instantiate the cells: chains of at most :data:`MAX_CHAIN_HALVES` halves, split before a half that
        ignores its carry-in (P = 0: inject or emit), the carry into it emitted at the end of the chain before."""
        chains, current = [], []
        for init, inputs, s in self.halves:
            if len(current) >= MAX_CHAIN_HALVES - 2 and init in (INIT_INJECT, INIT_EMIT):
                chains.append(current + [(INIT_EMIT, _EMIT_INPUTS, s)])
                current = [(init, inputs, Signal(name=f"{s.name}_unused"))]
            else:
                current.append((init, inputs, s))
        chains.append(current)
        cell = 0
        for halves in chains:
            halves = halves + [(INIT_EMIT, _EMIT_INPUTS, Signal(name=f"{self.name}_pad{cell}"))] * (len(halves) % 2)
            cin: Value = _ZERO
            for k in range(0, len(halves), 2):
                (init0, (a0, b0, c0, d0), s0), (init1, (a1, b1, c1, d1), s1) = halves[k], halves[k + 1]
                cout = Signal(name=f"{self.name}_co{cell}")
                m.submodules[f"{self.name}_cc{cell}"] = Instance(
                    "CCU2C", p_INIT0=Const(init0, 16), p_INIT1=Const(init1, 16), p_INJECT1_0="NO",
                    p_INJECT1_1="NO", i_CIN=cin, i_A0=a0, i_B0=b0, i_C0=c0, i_D0=d0, i_A1=a1, i_B1=b1, i_C1=c1,
                    i_D1=d1, o_S0=s0, o_S1=s1, o_COUT=cout)
                cin = cout
                cell += 1


def _lane_adders_ccu2c(chain: CarryChain, x: Value, u: Value, groups: list[tuple[int, int, int]]
                       ) -> tuple[list[Value], list[Value]]:
    """(sums, carries) of the lane groups: per group an inject half (which also emits the previous
    group's carry) and an add half, then one half emitting the last carry (its generate 0 leaves a
    carry-in of 0 for what follows on the chain)."""
    sums, carries = [], []
    for k, (a, b, c) in enumerate(groups):
        emitted = chain.add(INIT_INJECT, x[a], u[a], _ONE, _ZERO)
        if k:
            carries.append(emitted)
        sums.append(chain.add(INIT_ADD, x[b], u[b], x[c], u[c]))
    if groups:
        carries.append(chain.emit())
    return sums, carries


def chain_adder(chain: CarryChain, a: Value, b: Value, *, carry_out: bool) -> Value:
    """a + b (equal widths) on ``chain``, whose carry must be 0 here (after an emitting half, or at
    its start): one half per bit (:data:`INIT_SUM`), and with ``carry_out`` one more emitting the
    carry-out as the top bit; without, the sum wraps to the width (two's complement)."""
    bits = [chain.add(INIT_SUM, a[i], b[i], _ZERO, _ONE) for i in range(len(a))]
    if carry_out:
        bits.append(chain.emit())
    return Cat(*bits)


def _lane_adders_logic(x: Value, u: Value, groups: list[tuple[int, int, int]]) -> tuple[list[Value], list[Value]]:
    """(sums, carries) of the lane groups in plain logic."""
    pairs = [_full_adder(x[a] ^ u[a], x[b] ^ u[b], x[c] ^ u[c]) for a, b, c in groups]
    return [s for s, _ in pairs], [c for _, c in pairs]


def _register(m: Module, bits: list[Value], name: str) -> list[Signal]:
    """One flip-flop per bit (``NAME_j``), without reset (:func:`match_count`)."""
    regs = [Signal(name=f"{name}_{j}", reset_less=True) for j in range(len(bits))]
    m.d.sync += [r.eq(b) for r, b in zip(regs, bits)]
    return regs


def lane_groups(n: int) -> tuple[list[tuple[int, int, int]], list[int]]:
    """(groups, singles) of :func:`match_count`'s lane adders over n lanes: the groups (3j, 3j + 1, 3j + 2),
    registered as ``NAME_w0_j`` (sum) and ``NAME_w1_j`` (carry), then the n mod 3 single lanes, registered
    after the sums in ``NAME_w0``."""
    return [(j, j + 1, j + 2) for j in range(0, n - n % 3, 3)], list(range(n - n % 3, n))


def match_count(m: Module, x: Value, u: Value, n: int, name: str, *, ecp5_cells: bool,
                chain: CarryChain | None = None, model: bool = False) -> Signal:
    """popcount(x ^ u) over n lanes, :func:`match_count_stages` (n) cycles later (see the module docstring).

    With ``ecp5_cells``, the lane adders and the final adder go on ``chain`` when one is given, which
    the caller then builds (and may extend: it ends with carry 0); otherwise on a chain of their own.
    With ``model``, the simulation model instead (nothing goes on ``chain``).
    """
    if model:
        count = Signal(range(n + 1), name=f"{name}_count")
        m.submodules[f"{name}_model"] = Instance(MODEL_MODULE, p_N=n, p_STAGES=match_count_stages(n),
                                                 i_clk=ClockSignal(), i_x=x[:n], i_u=u[:n], o_count=count)
        return count
    groups, singles = lane_groups(n)
    own_chain = ecp5_cells and chain is None
    if own_chain:
        chain = CarryChain(f"{name}_chain")
    if ecp5_cells:
        sums, carries = _lane_adders_ccu2c(chain, x, u, groups)
    else:
        sums, carries = _lane_adders_logic(x, u, groups)
    columns = {0: _register(m, sums + [x[j] ^ u[j] for j in singles], f"{name}_w0"),
               1: _register(m, carries, f"{name}_w1")}

    def full_adder(bits: list[Value], layer: int, weight: int, index: int) -> tuple[Value, Value]:
        if ecp5_cells:
            return _full_adder_lut4(m, f"{name}_l{layer}w{weight}fa{index}", *bits)
        return _full_adder(*bits)

    columns = carry_save_reduce(columns, full_adder,
                                lambda bits, layer, weight: _register(m, bits, f"{name}_l{layer}w{weight}"))
    width = max(columns) + 1
    rows = [Cat(*[columns[w][r] if len(columns.get(w, ())) > r else Const(0, 1) for w in range(width)])
            for r in range(2)]
    count = Signal(range(n + 1), name=f"{name}_count", reset_less=True)
    if ecp5_cells:
        m.d.sync += count.eq(chain_adder(chain, *rows, carry_out=True))
        if own_chain:
            chain.build(m)
    else:
        m.d.sync += count.eq(rows[0] + rows[1])
    return count
