"""A register fault in an engine's arithmetic, as an exact fault of the golden model (for the solver).

A register mutant (benchmarks/fuzz_registers.py) that no simulation reveals is often in the arithmetic of a
folded engine: a lane adder's bit of an MVTU's match count, its input slice, or a MAC lane's input, difference
or product. Such a fault changes nothing but the accumulators of the PEs it reaches, by an amount that depends
on the step's input values alone, so it can be written into the golden model and decided by the constraint solver
(benchmarks/fuzz_solver.py) like a weight mutant: an image that reveals it, or a proof that none does. A bit
of the accumulator itself depends on the timing as well, through the parities of the waits between steps
(below): those are free in the solver.

The registers (inverted bit ``b`` of the next value, every cycle: :func:`fuzz_registers.flip_register_bit`):

* ``mcP_w0_J`` / ``mcP_w1_J`` of an MVTU without a mask (:func:`hwgen.hw.engines.popcount.match_count`):
  lane group J = lanes (3J, 3J + 1, 3J + 2) through a full adder, its sum (weight 1) or carry (weight 2);
  ``mcP_w0_J`` with J >= the groups is the single lane 3 G + (J - G) (G = SIMD // 3 groups). With m_k the
  match of lane k (input bit == weight bit), the bit is m_a ^ m_b ^ m_c, maj(m_a, m_b, m_c) or m_k, and the
  step's match count becomes ``count + 2**w (1 - 2 bit)``: the carry-save tree and the final adder keep
  every column's sum. In the golden model's units (acc = 2 matches - F) the step adds ``2**(w+1) (1 - 2 bit)``.
* the input slice of an MVTU without a mask: ``x2`` and the copies :func:`hwgen.hw.engines.pipeline.copy_registers`
  names (lane K = bit b, the PEs the copy feeds), and ``x1``, ``x1_r``, ``x1_rr`` (:meth:`FoldedEngine._input_slice`,
  every PE): lane K's input bit inverted, so its match m_K is, and the count moves by ``1 - 2 m_K`` ("lane" above,
  read from the input). ``x1_rr`` reaches only the steps of neuron fold 0 (the later folds re-read the input
  buffer, written from the stream), as ``x1`` and ``x1_r`` do unless the buffer is written from ``x1_r``
  (:attr:`FoldedEngine.buffer_written_late`);
* a MAC unit's (:class:`hwgen.hw.engines.mac.MACUnit`) lane K, whose term t (``W d``, or ``W ? d : ~d`` with
  inverted terms; d = x - p on a valid tap, 0 on a padded one, ``2 x - 1`` for bits) is kept in ``pw`` bits two's
  complement (``prodP_K``): "product", bit b of t inverted; "difference", bit b of d inverted in d's own bits
  (``dK``, and ``d3_K`` with its copies: the PEs each feeds), so a padded tap's d = 0 becomes +-2**b and the
  faulty ``W d`` may leave ``pw`` bits (it wraps there); "input", bit b of the lane's pixel (or its bit) inverted
  on a valid tap (``x1``, ``x1_r``, ``x1_rr`` as for an MVTU; lane K = b // 8, or b on bits). The error is the
  faulty term, wrapped to ``pw`` bits, less the true one: a function of the lane's raw input (a pixel 0..255 or
  a bit) and its W (:meth:`DatapathFault.lane_error_table`), which the adder tree and the accumulator carry as
  they are (the terms are in the golden model's units).

Step (nf, sf) of PE P at output position (y, x) computes channel o = nf PE + P over fan-in elements
f = sf SIMD + k (lane k), which stand for tap (i, j, c) in the stream's order (channel fastest,
hwgen.compile.kinds.conv.stream_weights). So the fault adds to every accumulator of the channels it reaches
(o = nf PE + P for the PEs P the register feeds; nf = 0 only, for the input slice above)

    E[o, y, x] = sum over sf of step_error(values of the lanes of step sf at (y, x), W[o, lanes])

and the output bit is the engine's (hwgen.hw.engines.folded): the sign of the accumulator's last sum,
inverted for ``<=``. The accumulator is ``acc_bits`` wide and starts at -T_hw (a MAC; T_hw the engine's
saturated threshold, ``clip(clip(T, lo - 1, hi + 1) + neg, lo, hi + 1)``) or -ceil((F + T_hw) / 2) (an MVTU,
which sums matches), so under the fault the last sum is

    final = acc + E - T_hw                                  (MAC)
    final = (acc + E + F) / 2 - ceil((F + T_hw) / 2)        (MVTU)

taken modulo 2**acc_bits as a signed number (the fault may carry it past the width the true sums need:
the adder wraps, and wrapping the partial sums or only the last one is the same), and the bit is
``(final >= 0) XOR neg``. Without the fault, final is in range and this is the golden bit.

A bit of the accumulator itself (``accP``, threshold mode) is the one fault here whose error depends on
the timing: the register is written in every cycle (``acc <= valid ? (last ? start : acc + sum) : acc``), so
under the fault its bit b is inverted at the load, at every step and in every cycle it holds; the last step's
sum is read combinationally (``total = acc + sum``). Between two steps (or the load and the first step) only
the parity of the inversions counts: with ``c_i`` that parity before step i + 1 (1 when the steps follow each
other without a wait), the register's value at the steps is

    a_0 = S ^ c_0 2**b,   a_i = (a_(i-1) + s_i) ^ c_i 2**b  (i = 1 .. SF - 1),   total = a_(SF-1) + s_SF

in the register's units (S the start value, s_i step i's sum: :meth:`DatapathFault.start_value`,
:meth:`DatapathFault.step_sums`), and ``u ^ 2**b = u + 2**b (1 - 2 bit_b(u))``. The c_i are the timing's;
the model (:attr:`DatapathFault.exact` False) takes them as inputs (:meth:`DatapathFault.errors`: all 1 by
default) and the solver as free Booleans per accumulator, so its "equivalent" holds for every timing, and its
image reveals the fault for the parities it chose (the register check simulates it under several timings).

The model is exact only where nothing before the accumulator wraps: :func:`datapath_fault` returns None
unless (MVTU) the faulty count ``[0, SIMD + 2**w]`` fits the count's ``range(SIMD + 1)`` bits (it is
zero-extended into the accumulator), and (MAC, a product or a difference) every adder-tree node that may hold
the faulty term fits its width (a node narrower than the accumulator that wrapped would be sign-extended
wrongly; a faulty pixel's term stays in the true terms' range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hwgen.compile.golden import run_network
from hwgen.compile.ir import ConvLayer, Network, ThresholdOutput, accumulator_range, input_values
from hwgen.compile.kinds import kind_of
from hwgen.compile.kinds.conv import stream_weights
from hwgen.hw.engines.mac import MACUnit, tree_node_bits
from hwgen.hw.engines.mvtu import MVTU
from hwgen.hw.engines.pipeline import copy_registers
from hwgen.hw.engines.popcount import lane_groups

__all__ = ["MAC_FUNCTIONS", "DatapathFault", "datapath_fault", "error_expression", "faulty_bit", "faulty_scores",
           "lane_values", "timing_parities"]

_LANE_ADDER = re.compile(r"mc(\d+)_w([01])_(\d+)$")
_PRODUCT = re.compile(r"prod(\d+)_(\d+)$")
_DIFFERENCE = re.compile(r"d(\d+)$")         # a MAC lane's difference (S2), before its copies d3_K
_INPUT_SLICE = ("x1", "x1_r", "x1_rr")        # the stream's slice, to the steps of neuron fold 0
_ACCUMULATOR = re.compile(r"acc(\d+)$")     # PE P's accumulator (threshold mode): a timing-dependent error

#: The faults of a MAC lane, each a function of the lane's raw input and weight (DatapathFault.lane_error_table).
MAC_FUNCTIONS = ("product", "difference", "input")


def lane_values(layer: ConvLayer) -> np.ndarray:
    """int64 (C_in, R): the value a tap of channel c stands for by its raw input r (a pixel, R = 256:
    :func:`hwgen.compile.ir.input_values`; a bit, R = 2: ``2 r - 1``)."""
    if layer.input_kind == "binary":
        return np.tile(np.array([-1, 1], dtype=np.int64), (layer.in_shape[0], 1))
    return input_values(layer)


def _match_start(fan_in: int, t_hw):
    """An MVTU's accumulator start value in matches, ``-ceil((F + T_hw) / 2)`` (numbers or arrays)."""
    return (-(fan_in + t_hw)) // 2


def _inverted(u, step: int):
    """``u ^ step`` for a power of two ``step``, as a number (two's complement: ``u + step (1 - 2 bit)``, bit
    the one ``step`` weighs; integers or numpy arrays)."""
    return u + step * (1 - 2 * ((u // step) % 2))


def _signed(value, bits: int):
    """``value`` (integers) modulo 2**bits, as a signed number."""
    half = 1 << (bits - 1)
    return (value + half) % (2 * half) - half


@dataclass(frozen=True)
class DatapathFault:
    """A register fault of node ``layer``'s engine as a fault of the golden model (see the module docstring).

    ``pe_set``: the PEs whose accumulators the register reaches, of ``pes``; ``first_fold_only``: only in the
    steps of neuron fold 0. ``lanes``: the fan-in lanes the faulty bit reads (MVTU: 1 or 3; MAC: 1; none for an
    accumulator); ``function``: "xor", "maj" or "lane" (MVTU), one of :data:`MAC_FUNCTIONS`, or "accumulator"
    (either engine: the accumulator's own bit); ``weight``: 2**w (MVTU), the bit b's 2**b (MAC, an
    accumulator); ``width``: the faulty register's bits per lane (MAC: the term's, the difference's or the
    pixel's; an accumulator's); ``term_bits``: a MAC term's (``pw``); ``sums_matches``: the engine is an MVTU
    without a mask (its accumulator counts matches); ``interval``: an accumulator bit's error taken as any
    ``2**b e``, e in [-SF, SF] (the solver can then only prove equivalence: :func:`error_expression`);
    ``threshold``, ``neg``: the engine's T_hw and ``<=`` flags, shaped as the layer's thresholds; ``acc_bits``:
    the accumulator's width (see the module docstring). ``net``: the network (side 1 of fuzz_solver's miter:
    :data:`kind` "datapath" there draws the faulty node's bits from :func:`faulty_bit`)."""

    layer: int
    pe_set: tuple[int, ...]
    pes: int
    simd: int
    lanes: tuple[int, ...]
    function: str
    weight: int
    width: int
    inverted_terms: bool
    threshold: np.ndarray
    neg: np.ndarray
    acc_bits: int
    net: Network
    name: str
    first_fold_only: bool = False
    term_bits: int = 0
    sums_matches: bool = False
    interval: bool = False
    kind: str = "datapath"

    @cached_property
    def channels(self) -> np.ndarray:
        """The output channels the fault reaches: o = nf PE + P for P in ``pe_set`` (nf = 0 only when
        ``first_fold_only``)."""
        channels = range(self.pes if self.first_fold_only else self.net.layers[self.layer].out_channels)
        return np.array([o for o in channels if o % self.pes in self.pe_set], dtype=np.int64)

    def steps(self, y: int, x: int, lanes=None) -> list[list[tuple[int, int, int, int, bool]]]:
        """Per step sf, the faulty bit's lanes (or ``lanes``) at output (y, x): (fan-in element f, c, row, col,
        valid)."""
        layer = self.net.layers[self.layer]
        c_in, h, w = layer.in_shape
        kw = layer.kernel[1]
        out = []
        for sf in range(self.result_steps):
            taps = []
            for k in self.lanes if lanes is None else lanes:
                f = sf * self.simd + k
                i, j, c = f // (kw * c_in), (f // c_in) % kw, f % c_in
                row, col = y * layer.stride - layer.padding + i, x * layer.stride - layer.padding + j
                taps.append((f, c, row, col, 0 <= row < h and 0 <= col < w))
            out.append(taps)
        return out

    @property
    def exact(self) -> bool:
        """Whether the error is a function of the inputs alone (not of the timing: an accumulator bit's is not)."""
        return self.function != "accumulator"

    @property
    def unit(self) -> int:
        """An accumulator fault's error per inversion in the golden model's units: 2**b, times 2 for an MVTU
        (its register counts matches; acc = 2 matches - F)."""
        return self.weight * (2 if self.sums_matches else 1)

    @property
    def result_steps(self) -> int:
        """SF: the steps of one result (fan-in / SIMD)."""
        return self.net.layers[self.layer].fan_in // self.simd

    # -- the fault in numbers (numpy) --------------------------------------------------------------
    def step_error(self, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The error one step of an MVTU adds, in the golden model's accumulator units: ``values`` (..., lanes)
        the lanes' input bits, ``weights`` (lanes,) their W."""
        matches = (values == (weights > 0)).astype(np.int64)
        if self.function == "xor":
            bit = matches[..., 0] ^ matches[..., 1] ^ matches[..., 2]
        elif self.function == "maj":
            bit = (matches.sum(axis=-1) >= 2).astype(np.int64)
        else:
            bit = matches[..., 0]
        return self.bit_error(bit)

    def term(self, w: int, value):
        """A MAC lane's term for weight ``w`` and input ``value`` (numbers): ``W d``, less 1 for a -1 weight with
        inverted terms (``~d = -d - 1``)."""
        return w * value - int(self.inverted_terms and w == -1)

    def bit_error(self, bit):
        """The error of one MVTU step whose faulty bit reads ``bit`` (0/1, numbers or a Boolean expression), in
        the golden model's units: ``2 * 2**w (1 - 2 bit)`` (acc = 2 matches - F)."""
        return 2 * self.weight * (1 - 2 * bit)

    def lane_error_table(self, w: int, c: int, valid: bool) -> np.ndarray:
        """A MAC lane's error (int64, by its raw input r: :func:`lane_values`) for weight ``w``, input channel
        ``c``, a valid or padded tap: the faulty term wrapped to ``term_bits`` less the true term, with d the
        lane's value (0 on a padded tap) and the fault of :attr:`function` (see the module docstring). Computed
        once per (w, c, valid) and kept: the numpy model and the solver's encoding read it per tap."""
        key = (w, c, valid)
        if key not in self._tables:
            self._tables[key] = self._lane_error_table(w, c, valid)
        return self._tables[key]

    @cached_property
    def _tables(self) -> dict[tuple[int, int, bool], np.ndarray]:
        return {}

    def _lane_error_table(self, w: int, c: int, valid: bool) -> np.ndarray:
        values = lane_values(self.net.layers[self.layer])[c]
        d = values if valid else np.zeros_like(values)
        true = self.term(w, d)
        if self.function == "product":
            faulty = true ^ self.weight
        elif self.function == "difference":
            faulty = self.term(w, _signed(d ^ self.weight, self.width))
        else:  # "input": the raw input with bit b inverted, on a valid tap
            faulty = self.term(w, values[np.arange(len(values)) ^ self.weight]) if valid else true
        return _signed(faulty, self.term_bits) - true

    def step_bound(self) -> int:
        """The largest |error| one step can add."""
        if self.function == "accumulator":
            return self.unit
        if self.function not in MAC_FUNCTIONS:
            return abs(self.bit_error(0))
        layer = self.net.layers[self.layer]
        return max(int(np.abs(self.lane_error_table(int(w), c, valid)).max())
                   for w in np.unique(layer.weights) for c in range(layer.in_shape[0]) for valid in (False, True))

    def start_value(self, o: int, y: int, x: int) -> int:
        """S: the accumulator's start value for (o, y, x) in the register's units: ``-T_hw`` (plus N_o, channel
        o's -1 weights, with inverted terms), or ``-ceil((F + T_hw) / 2)`` when it counts matches."""
        layer = self.net.layers[self.layer]
        t = int(self.threshold[(o,) if self.threshold.ndim == 1 else (o, y, x)])
        if self.sums_matches:
            return _match_start(layer.fan_in, t)
        return -t + (int(np.count_nonzero(layer.weights[o] == -1)) if self.inverted_terms else 0)

    def step_term(self, w: int, value, valid: bool):
        """One lane's share of a step's sum in the register's units, for weight ``w`` and the lane's value (a
        number or a linear expression; an input bit when the engine counts matches): its match, else its term
        (:meth:`term`, with d = 0 on a padded tap)."""
        if self.sums_matches:
            return value if w > 0 else 1 - value
        return self.term(w, value if valid else 0)

    def step_sums(self, inputs: np.ndarray, o: int, y: int, x: int) -> np.ndarray:
        """int64 (N, SF): s_i of channel o at (y, x), each step's sum in the register's units, for the node's
        inputs (N, C, H, W) (bits, or uint8 pixels)."""
        layer = self.net.layers[self.layer]
        weights, values = stream_weights(layer), lane_values(layer)
        sums = np.zeros((len(inputs), self.result_steps), dtype=np.int64)
        for sf, taps in enumerate(self.steps(y, x, range(self.simd))):
            for f, c, row, col, valid in taps:
                raw = inputs[:, c, row, col].astype(np.int64) if valid else np.zeros(len(inputs), np.int64)
                value = raw if self.sums_matches else values[c][raw]
                sums[:, sf] += self.step_term(int(weights[o, f]), value, valid)
        return sums

    def errors(self, inputs: np.ndarray, parities: np.ndarray | None = None) -> np.ndarray:
        """E (N, C_out, H_out, W_out) for the node's inputs (N, C, H, W): bits, or uint8 pixels (a first node).
        A fault that is not :attr:`exact` reads ``parities`` (N, C_out, H_out, W_out, SF) 0/1 as its c_i (all
        1 when None: the steps back to back)."""
        if not self.exact:
            return self._accumulator_errors(inputs, parities)
        layer = self.net.layers[self.layer]
        weights = stream_weights(layer)
        _, h_out, w_out = layer.out_shape
        e = np.zeros((inputs.shape[0], *layer.out_shape), dtype=np.int64)
        for y in range(h_out):
            for x in range(w_out):
                for taps in self.steps(y, x):
                    raw = np.stack([inputs[:, c, row, col].astype(np.int64) if valid
                                    else np.zeros(len(inputs), np.int64) for _, c, row, col, valid in taps], axis=-1)
                    for o in self.channels:
                        if self.function in MAC_FUNCTIONS:
                            (f, c, _, _, valid), = taps
                            e[:, o, y, x] += self.lane_error_table(int(weights[o, f]), c, valid)[raw[:, 0]]
                        else:
                            e[:, o, y, x] += self.step_error(raw, weights[o, [f for f, *_ in taps]])
        return e

    def _accumulator_errors(self, inputs: np.ndarray, parities: np.ndarray | None) -> np.ndarray:
        """E of an accumulator bit (see the module docstring): ``total - S - sum of s_i``, in the golden model's
        units."""
        layer = self.net.layers[self.layer]
        shape = (len(inputs), *layer.out_shape, self.result_steps)
        c = np.ones(shape, np.int64) if parities is None else np.asarray(parities, np.int64)
        e = np.zeros(shape[:-1], dtype=np.int64)
        step = self.weight
        for o in self.channels:
            for y, x in np.ndindex(*layer.out_shape[1:]):
                sums, start = self.step_sums(inputs, o, y, x), self.start_value(o, y, x)
                a = np.full(len(inputs), start, np.int64)
                for i in range(self.result_steps):  # a_i = (a_(i-1) + s_i) ^ c_i 2**b, from a = S
                    u = a + (sums[:, i - 1] if i else 0)
                    a = np.where(c[:, o, y, x, i] == 1, _inverted(u, step), u)
                e[:, o, y, x] = (a - start - sums[:, :-1].sum(axis=1)) * (self.unit // step)
        return e

    def final(self, acc, t_hw):
        """The accumulator's last sum before wrapping (see the module docstring), for ``acc`` = the golden
        accumulator plus E (numbers, or a linear expression times 2 for an MVTU: see :func:`faulty_bit`)."""
        if not self.sums_matches:
            return acc - t_hw
        fan_in = self.net.layers[self.layer].fan_in
        return (acc + fan_in) // 2 + _match_start(fan_in, t_hw)

    def wrap(self, value: np.ndarray) -> np.ndarray:
        """``value`` modulo 2**acc_bits, as a signed number."""
        return _signed(value, self.acc_bits)

    def bits(self, acc: np.ndarray) -> np.ndarray:
        """The faulty node's output bits (N, C, H, W) for its golden accumulators plus E (N, C, H, W)."""
        shape = (1, -1, 1, 1) if self.threshold.ndim == 1 else (1, *self.threshold.shape)
        t, neg = self.threshold.reshape(shape), self.neg.reshape(shape)
        return ((self.wrap(self.final(acc, t)) >= 0) ^ neg).astype(np.uint8)


def _hardware_thresholds(layer: ConvLayer, engine) -> tuple[np.ndarray, np.ndarray]:
    """(T_hw, neg) of ``layer``'s engine, shaped as the layer's thresholds (hwgen.hw.engines.folded:
    ``acc <= T`` is NOT ``acc >= T + 1``, saturated to [lo, hi + 1], same bits)."""
    out = layer.output
    lo, hi = engine.acc_range
    neg = np.asarray(out.direction) < 0
    return np.clip(np.clip(np.asarray(out.thresholds), lo - 1, hi + 1) + neg, lo, hi + 1).astype(np.int64), neg


def _fits(lo: int, hi: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1


def datapath_fault(net: Network, layer_index: int, engine, register: str, bit: int) -> DatapathFault | None:
    """The golden-model fault of inverting bit ``bit`` of ``register`` in node ``layer_index``'s ``engine`` (an
    MVTU or MACUnit of the build), or None when the register is not one this module models or a register on
    the way could wrap (see the module docstring)."""
    layer = net.layers[layer_index]
    if (not isinstance(layer, ConvLayer) or not isinstance(layer.output, ThresholdOutput) or engine.accumulator_mode
            or layer.input_table is not None):
        return None
    simd, every_pe = engine.simd, tuple(range(engine.pe))
    threshold, neg = _hardware_thresholds(layer, engine)
    common = {"layer": layer_index, "pes": engine.pe, "simd": simd, "inverted_terms": False, "name": register,
              "net": net, "threshold": threshold, "neg": neg, "acc_bits": engine.threshold_width,
              "sums_matches": isinstance(engine, MVTU) and not engine.masked}
    if (m := _ACCUMULATOR.match(register)) is not None and int(m.group(1)) < engine.pe:
        return DatapathFault(pe_set=(int(m.group(1)),), lanes=(), function="accumulator", weight=1 << bit,
                             width=engine.threshold_width, **common)
    # the input slice (a MAC, an MVTU without a mask): lane bit // lane_bits, every PE, neuron fold 0 unless
    # the buffer is written from it
    if register in _INPUT_SLICE and (isinstance(engine, MACUnit) or not engine.masked):
        common.update(pe_set=every_pe, lanes=(bit // engine.lane_bits,), first_fold_only=(
            register == "x1_rr" or not engine.buffer_written_late))
        if isinstance(engine, MVTU):
            return DatapathFault(function="lane", weight=1, width=1, **common)
        return _mac_fault(engine, "input", bit % engine.lane_bits, engine.lane_bits, common)
    if isinstance(engine, MVTU) and not engine.masked:
        if (m := _LANE_ADDER.match(register)) is not None and bit == 0:
            pe, w, j = (int(g) for g in m.groups())
            groups, singles = lane_groups(simd)
            if j < len(groups):
                lanes, function = groups[j], "xor" if w == 0 else "maj"
            elif w == 0 and j < len(groups) + len(singles):
                lanes, function = (singles[j - len(groups)],), "lane"
            else:
                return None
            if simd + (1 << w) >= 1 << simd.bit_length():
                return None  # the faulty count wraps in range(SIMD + 1)'s bits
            return DatapathFault(pe_set=(pe,), lanes=lanes, function=function, weight=1 << w, width=0, **common)
        copies = copy_registers(engine.operand_copy_stages, engine.pe, "x2")  # the slice, per PE
        if register in copies:
            return DatapathFault(pe_set=tuple(copies[register]), lanes=(bit,), function="lane", weight=1, width=1,
                                 **common)
    elif isinstance(engine, MACUnit):
        if (m := _PRODUCT.match(register)) is not None:
            pe, k = (int(g) for g in m.groups())
            return _mac_fault(engine, "product", bit, None, {**common, "pe_set": (pe,), "lanes": (k,)})
        d_bits = engine.difference_bits
        if (m := _DIFFERENCE.match(register)) is not None and int(m.group(1)) < simd:
            return _mac_fault(engine, "difference", bit, d_bits,
                              {**common, "pe_set": every_pe, "lanes": (int(m.group(1)),)})
        for k in range(simd):
            copies = copy_registers(engine.operand_copy_stages, engine.pe, f"d3_{k}")
            if register in copies:
                return _mac_fault(engine, "difference", bit, d_bits,
                                  {**common, "pe_set": tuple(copies[register]), "lanes": (k,)})
    return None


def _mac_fault(engine: MACUnit, function: str, bit: int, width: int | None, common: dict) -> DatapathFault | None:
    """A MAC lane's fault of ``function`` at bit ``bit`` of a ``width``-bit register (None: the product's own
    ``pw`` bits), or None where a faulty term (a product's or a difference's: up to 2**(pw - 1) in magnitude)
    could wrap an adder-tree node narrower than the accumulator (a faulty pixel's term stays within the true
    terms' bound)."""
    bound, term_bits, widest = engine.term_shape()
    width = term_bits if width is None else width
    if not 0 <= bit < width:
        return None
    if function != "input":
        faulty = 1 << (term_bits - 1)
        for n in range(1, engine.simd + 1):  # every adder-tree node that may hold the term: n leaves
            if not _fits(-(n - 1) * bound - faulty, (n - 1) * bound + faulty - 1, tree_node_bits(n, bound, widest)):
                return None
    return DatapathFault(function=function, weight=1 << bit, width=width, term_bits=term_bits,
                         **{**common, "inverted_terms": engine.inverted_terms})


def faulty_scores(net: Network, fault: DatapathFault, images: np.ndarray, parities: np.ndarray | None = None) -> np.ndarray:
    """The scores (N, classes) of ``net`` with ``fault`` (a chain network): the golden model up to the faulty
    node, its PE's bits from its accumulators plus :meth:`DatapathFault.errors` (with ``parities``, an
    accumulator bit's timing) (:meth:`DatapathFault.bits`), the rest as the golden model."""
    golden = run_network(net, images, keep_intermediates=True)
    layer = net.layers[fault.layer]
    inputs = images if fault.layer == 0 else golden.intermediates[net.layers[fault.layer - 1].name]
    errors = fault.errors(inputs, parities)
    bits = golden.intermediates[layer.name].copy()
    bits[:, fault.channels] = fault.bits(golden.intermediates[f"{layer.name}.acc"] + errors)[:, fault.channels]
    x = bits.transpose(0, 2, 3, 1)  # channel last, as the nodes take it
    for node in net.layers[fault.layer + 1:]:
        x = kind_of(node).evaluate(node, [x], lambda *_: None)
    return np.asarray(x)


def error_expression(fault: DatapathFault, miter, o: int, y: int, x: int):
    """E[o, y, x] as a CP-SAT linear expression over ``miter``'s variables (a fuzz_solver.Miter of the network
    and ``fault``), exactly :meth:`DatapathFault.errors`: per step, an MVTU's faulty bit written with one Boolean;
    a MAC lane's error its table (:meth:`DatapathFault.lane_error_table`) at the tap's raw input, an element
    of it by the pixel's variable (one per pixel and weight) or linear in the input bit."""
    if not fault.exact and fault.interval:  # E = unit e, e in [-SF, SF]: every parity at once, and more
        e = miter.model.NewIntVar(-fault.result_steps, fault.result_steps, f"interval_{o}_{y}_{x}")
        return fault.unit * e
    if not fault.exact:
        return _accumulator_error(fault, miter, o, y, x)
    layer = fault.net.layers[fault.layer]
    weights = stream_weights(layer)
    model, total = miter.model, 0
    for taps in fault.steps(y, x):
        w = [int(weights[o, f]) for f, *_ in taps]
        if fault.function in MAC_FUNCTIONS:
            (f, c, row, col, valid), = taps
            total += _lane_error(fault, miter, w[0], c, row, col, valid)
            continue
        matches = []
        for (f, c, row, col, valid), wk in zip(taps, w):
            b = miter.out(0, fault.layer - 1, c, row, col)
            matches.append(b if wk > 0 else 1 - b)
        if fault.function == "lane":
            bit = matches[0]
        else:
            parity, carry = model.NewBoolVar("fault_parity"), model.NewBoolVar("fault_carry")
            model.Add(sum(matches) == parity + 2 * carry)
            bit = parity if fault.function == "xor" else carry
        total += fault.bit_error(bit)
    return total


def _accumulator_error(fault: DatapathFault, miter, o: int, y: int, x: int):
    """E at (o, y, x) of an accumulator bit (a linear expression): the chain of the module docstring with each
    parity c_i a free Boolean (kept for :func:`timing_parities`), the bit b of u_i from ``u_i = 2**(b+1) q +
    2**b beta + r`` (0 <= r < 2**b), the inversion ``c_i 2**b (1 - 2 beta)``; u_0 = S is a constant."""
    layer = fault.net.layers[fault.layer]
    weights, model, step = stream_weights(layer), miter.model, fault.weight
    sums = []
    for taps in fault.steps(y, x, range(fault.simd)):
        total = 0
        for f, c, row, col, valid in taps:
            if not valid:
                value = 0
            elif fault.layer == 0:
                value = miter.value(c, row, col)
            else:
                bit = miter.out(0, fault.layer - 1, c, row, col)
                value = bit if fault.sums_matches else 2 * bit - 1
            total += fault.step_term(int(weights[o, f]), value, valid)
        sums.append(total)
    start = fault.start_value(o, y, x)
    largest = int(np.abs(lane_values(layer)).max()) * int(np.abs(weights[o]).max()) + 1
    bound = abs(start) + fault.result_steps * (fault.simd * largest + step)  # |u_i|, |a_i|
    # the chain's values for the search's starting image with every parity 1 (hints: CP-SAT found no
    # assignment of the chain in 30 s from the pixels' hints alone, tests/test_fuzz_datapath.py's network)
    hint = None if miter.hint is None else _hint_sums(fault, miter, o, y, x)
    a, error, a_hint = start, 0, start
    for i in range(fault.result_steps):
        c = model.NewBoolVar(f"parity_{o}_{y}_{x}_{i}")
        miter._memo["timing_parity", o, y, x, i] = c
        u_hint = a_hint + (int(hint[i - 1]) if i and hint is not None else 0)
        if i == 0:
            flip = (_inverted(start, step) - start) * c
        else:
            u = model.NewIntVar(-bound, bound, f"u_{o}_{y}_{x}_{i}")
            model.Add(u == a + sums[i - 1])
            q = model.NewIntVar(-(bound // (2 * step)) - 1, bound // (2 * step) + 1, f"q_{o}_{y}_{x}_{i}")
            beta, z = model.NewBoolVar(f"beta_{o}_{y}_{x}_{i}"), model.NewBoolVar(f"z_{o}_{y}_{x}_{i}")
            r = model.NewIntVar(0, step - 1, f"r_{o}_{y}_{x}_{i}")
            model.Add(u == 2 * step * q + step * beta + r)
            model.AddMultiplicationEquality(z, [c, beta])  # z = c AND beta
            flip = step * c - 2 * step * z
            if hint is not None:
                for var, value in ((u, u_hint), (q, u_hint // (2 * step)), (beta, (u_hint // step) % 2),
                                   (r, u_hint % step), (z, (u_hint // step) % 2)):
                    model.AddHint(var, value)
        a_next = model.NewIntVar(-bound, bound, f"a_{o}_{y}_{x}_{i}")
        model.Add(a_next == (a if i == 0 else u) + flip)
        if hint is not None:
            a_hint = _inverted(u_hint, step)
            model.AddHint(c, 1)
            model.AddHint(a_next, a_hint)
        a, error = a_next, error + flip
    return (fault.unit // step) * error


def _hint_sums(fault: DatapathFault, miter, o: int, y: int, x: int) -> np.ndarray:
    """s_i (SF,) of (o, y, x) for the miter's hint image (the faulty node's inputs computed once)."""
    if "hint_inputs" not in miter._memo:
        net, image = fault.net, miter.hint[None]
        miter._memo["hint_inputs"] = (image if fault.layer == 0 else run_network(net, image, keep_intermediates=True)
                                      .intermediates[net.layers[fault.layer - 1].name])
    return fault.step_sums(miter._memo["hint_inputs"], o, y, x)[0]


def timing_parities(fault: DatapathFault, miter, solver) -> np.ndarray:
    """The c_i (1, C_out, H_out, W_out, SF) the solver chose for an accumulator bit (1 where it read none)."""
    c = np.ones((1, *fault.net.layers[fault.layer].out_shape, fault.result_steps), dtype=np.int64)
    for key, var in miter._memo.items():
        if key[0] == "timing_parity":
            c[(0, *key[1:])] = solver.Value(var)
    return c


def _lane_error(fault: DatapathFault, miter, w: int, c: int, row: int, col: int, valid: bool):
    """A MAC lane's error at input tap (c, row, col) for weight ``w``: a constant on a padded tap (or where the
    table is), ``e0 + (e1 - e0) b`` for an input bit b, else a variable equal to the table's element at the pixel."""
    table = fault.lane_error_table(w, c, valid)
    if not valid or table.min() == table.max():
        return int(table[0])
    if fault.layer > 0:
        return int(table[0]) + int(table[1] - table[0]) * miter.out(0, fault.layer - 1, c, row, col)
    key = ("lane_error", c, row, col, w)
    if key not in miter._memo:
        error = miter.model.NewIntVar(int(table.min()), int(table.max()), f"lane_error_{c}_{row}_{col}_{w}")
        miter.model.AddElement(miter.pixel(c, row, col), [int(e) for e in table], error)
        miter._memo[key] = error
    return miter._memo[key]


def faulty_bit(fault: DatapathFault, miter, b, acc, c: int, y: int, x: int) -> None:
    """Constrain the Boolean ``b`` to the faulty node's bit at (c, y, x) given ``acc`` (the golden accumulator
    plus E, a linear expression): final + k 2**acc_bits = wrapped in the signed range, b = (wrapped >= 0)
    XOR neg (see the module docstring)."""
    model = miter.model
    index = (c,) if fault.threshold.ndim == 1 else (c, y, x)
    t, neg = int(fault.threshold[index]), bool(fault.neg[index])
    layer = fault.net.layers[fault.layer]
    if not fault.sums_matches:
        final = acc - t
    else:  # (acc + F) / 2 matches, acc + F even
        matches = model.NewIntVar(-(1 << 30), 1 << 30, "fault_matches")
        model.Add(2 * matches == acc + layer.fan_in)
        final = matches + _match_start(layer.fan_in, t)
    half = 1 << (fault.acc_bits - 1)
    lo, hi = accumulator_range(layer)
    reach = fault.result_steps * fault.step_bound()
    turns = (max(abs(lo), abs(hi)) + reach + abs(t) + layer.fan_in) // (2 * half) + 1
    k = model.NewIntVar(-turns, turns, "fault_turns")
    wrapped = model.NewIntVar(-half, half - 1, "fault_wrapped")
    model.Add(wrapped == final + 2 * half * k)
    ge = model.NewBoolVar("fault_sign")
    model.Add(wrapped >= 0).OnlyEnforceIf(ge)
    model.Add(wrapped <= -1).OnlyEnforceIf(ge.Not())
    model.Add(b == (1 - ge if neg else ge))
