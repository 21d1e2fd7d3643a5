"""Decide a single-word mutant exactly: an image that reveals it, or a proof that no image does (z3).

The image search of benchmarks/fuzz_mutants.py finds revealing images for most mutants, but when it
gives up the mutant may be equivalent (its flipped bit masked in every image by a constant channel, a
pool or a later threshold) or only hard to reveal. :func:`decide` settles it with an SMT solver: is
there a uint8 image ``x`` with ``scores_N(x) != scores_M(x)`` for the network N and its mutant M?

The query, in z3's linear integer arithmetic, is the golden model's definition (hwgen.compile.ir)
written as constraints over one *miter* of N and M:

* **pixels**: one integer per input tap ``v[c, y, x]`` ranging over the values channel c's pixels stand
  for (``input_values``: ``x - p_c`` or a QONNX table): an arithmetic progression ``lo + g k``
  (0 <= k < n), otherwise a disjunction of the table's values. The image is read back by choosing,
  for each v, a pixel that maps to it; pixels the query does not read keep the base image's value.
* **accumulators** ``acc[o, y, x] = sum W[o, c, i, j] v[c, y s + i - pad, x s + j - pad]`` over the valid
  taps, v = ``2 b - 1`` for bits; **bits** 0/1 integers ``b = [acc >= T]`` / ``[acc <= T]`` (per channel or
  per position; integers, not Booleans, keep every accumulator linear, so parity and common divisors
  are visible to the solver's lattice reasoning); **pools** the linear bounds of Or / And over the
  window. One integer variable per accumulator and per bit of N.
* **the cone** (:func:`fault_cone`): only positions whose value can differ between N and M are written
  twice. In the mutated layer those are the positions the word governs (a per-position threshold: one;
  a per-channel threshold or a weight: the channel's); after it, every position whose window reads a
  cone position (all channels of a conv, the same channel of a pool). M's accumulator there is
  ``acc_N + delta`` with ``delta = sum W_M v_M - W_N v_N`` over the taps that can differ only, so the
  shared part of both networks is one set of constraints.
* **the miter**: some class ``k`` with ``scale_k != 0`` of the score layer has ``delta_k != 0``
  (``score = scale acc + bias``: the scores differ exactly where the accumulators do).

``sat``: the model's image, which :func:`decide` checks with the golden model (a solver image that does
not reveal the mutant there is an encoding error and raises). ``unsat``: no image reveals the mutant,
it is *equivalent*. ``unknown``: the time limit ran out, *undecided*. Chain networks with uint8 input
only (the fuzz campaign's); tests/test_fuzz_solver.py checks the encoding against the golden model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import z3

from hwgen.compile.golden import run_network
from hwgen.compile.ir import ConvLayer, MaxPoolLayer, Network, ScoreOutput, ThresholdOutput, input_values

__all__ = ["ENCODINGS", "RUNS", "Decision", "Miter", "decide", "fault_cone"]


@dataclass
class Decision:
    """``verdict``: "revealed" (``image`` reveals the mutant, checked), "equivalent" or "undecided"."""

    verdict: str
    image: np.ndarray | None
    seconds: float


def _window_rows(layer: ConvLayer, y: int) -> range:
    """Input rows (in the unpadded map) read by output row ``y``, clipped to the map."""
    top = y * layer.stride - layer.padding
    return range(max(0, top), min(layer.in_shape[1], top + layer.kernel[0]))


def _window_cols(layer: ConvLayer, x: int) -> range:
    left = x * layer.stride - layer.padding
    return range(max(0, left), min(layer.in_shape[2], left + layer.kernel[1]))


def _taps(layer: ConvLayer, o: int, y: int, x: int):
    """(c, row, col, weight index) of every valid (unpadded) tap of output (o, y, x)."""
    for c in range(layer.in_shape[0]):
        for r in _window_rows(layer, y):
            for q in _window_cols(layer, x):
                yield c, r, q, (o, c, r - y * layer.stride + layer.padding, q - x * layer.stride + layer.padding)


def fault_cone(net: Network, mutant) -> list[np.ndarray]:
    """Per node, bool (C, H, W) of its outputs: True where the mutant's value can differ from the network's.

    The mutated node: the positions the word governs (see the module docstring); a later conv: every
    channel at the positions whose valid window holds a cone position of its input; a pool: the same
    channel at the windows holding one."""
    cones: list[np.ndarray] = []
    for i, node in enumerate(net.layers):
        c, h, w = node.out_shape
        cone = np.zeros((c, h, w), dtype=bool)
        if i == mutant.layer:
            if mutant.kind == "threshold" and node.output.per_position:
                cone.reshape(-1)[mutant.word] = True
            else:
                cone[mutant.channel] = True
        elif i > mutant.layer:
            before = cones[-1]
            for y in range(h):
                for x in range(w):
                    if isinstance(node, MaxPoolLayer):
                        s, k = node.stride, node.kernel
                        cone[:, y, x] = before[:, y * s:y * s + k, x * s:x * s + k].any(axis=(1, 2))
                    else:
                        cone[:, y, x] = before[:, _window_rows(node, y)][:, :, _window_cols(node, x)].any()
        cones.append(cone)
    return cones


#: The encodings of a miter (see the module docstring): Boolean bits, or 0/1 integer bits.
ENCODINGS = ("bool-bits", "int-bits")


class Miter:
    """The constraints of one (network, mutant) pair; side 0 is the network, side 1 the mutant.

    :meth:`out` gives a node's output bit at a position, :meth:`delta` the mutant's accumulator minus
    the network's; both are built on first use, so the solver holds just the support of the cone.
    :attr:`pixels` maps each (c, y, x) read to its value variable. ``encoding``: one of :data:`ENCODINGS`.
    ``relax_first``: the first node's accumulators are free on their position's lattice instead of sums
    of pixels (see :meth:`acc`), a superset of what images give: unsat proves equivalence, sat proves
    nothing."""

    def __init__(self, net: Network, mutant_net: Network, cones: list[np.ndarray], *, encoding: str = "bool-bits",
                 relax_first: bool = False, mutant=None):
        if not net.is_chain or net.layers[0].input_kind != "uint8":
            raise ValueError("the solver encodes chain networks with uint8 input only")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding {encoding!r} is not one of {ENCODINGS}")
        self.nets, self.cones, self.encoding = (net, mutant_net), cones, encoding
        self.integer_bits = encoding == "int-bits"
        self.relax_first, self.mutant = relax_first, mutant
        self.solver = z3.SolverFor("QF_LIA")
        self.pixels: dict[tuple[int, int, int], z3.ExprRef] = {}
        self._values = input_values(net.layers[0])
        self._memo: dict[tuple, z3.ExprRef] = {}

    def _sum(self, terms: list) -> z3.ArithRef:
        return z3.Sum(terms) if terms else z3.IntVal(0)

    def _on_lattice(self, a: z3.ArithRef, lo: int, hi: int, a0: int, g: int, name: str) -> None:
        """``a`` in [lo, hi] and on ``a0 + g Z`` (g = 0: a = a0)."""
        if g == 0:
            self.solver.add(a == a0)
        else:
            k = z3.Int(name)
            self.solver.add(a >= lo, a <= hi, a == a0 + g * k)

    # -- inputs ----------------------------------------------------------------------------------
    def pixel(self, c: int, y: int, x: int) -> z3.ExprRef:
        """The value variable of input tap (c, y, x), constrained to the values channel c's pixels take:
        ``v0 + g k`` (0 <= k < n) for an arithmetic progression, else one of the table's values."""
        key = (c, y, x)
        if key not in self.pixels:
            v = z3.Int(f"v_{c}_{y}_{x}")
            values = np.unique(self._values[c])
            steps = np.diff(values)
            if len(values) == 1:
                self.solver.add(v == int(values[0]))
            elif (steps == steps[0]).all():
                k = z3.Int(f"k_{c}_{y}_{x}")
                self.solver.add(k >= 0, k < len(values), v == int(values[0]) + int(steps[0]) * k)
            else:
                self.solver.add(z3.Or([v == int(t) for t in values]))
            self.pixels[key] = v
        return self.pixels[key]

    def image(self, model: z3.ModelRef, base: np.ndarray) -> np.ndarray:
        """``base`` with every pixel the query reads set to one that maps to the model's value."""
        image = base.copy()
        for (c, y, x), v in self.pixels.items():
            value = model.eval(v, model_completion=True).as_long()
            image[c, y, x] = int(np.flatnonzero(self._values[c] == value)[0])
        return image

    # -- nodes -----------------------------------------------------------------------------------
    def _tap(self, side: int, i: int, c: int, y: int, x: int) -> z3.ExprRef:
        """Value of input tap (c, y, x) of node i: a pixel value, or 2b - 1 of the previous node's bit."""
        if i == 0:
            return self.pixel(c, y, x)
        bit = self.out(side, i - 1, c, y, x)
        return 2 * bit - 1 if self.integer_bits else z3.If(bit, 1, -1)

    def acc(self, side: int, i: int, o: int, y: int, x: int) -> z3.ExprRef:
        """Node i's accumulator at (o, y, x): a variable on side 0; ``acc_0 + delta`` inside the cone on side 1."""
        if side == 1 and self.cones[i][o, y, x]:
            return self.acc(0, i, o, y, x) + self.delta(i, o, y, x)
        key = ("acc", i, o, y, x)
        if key not in self._memo:
            layer = self.nets[0].layers[i]
            a = z3.Int(f"acc_{i}_{o}_{y}_{x}")
            if i == 0 and self.relax_first:
                self._relaxed_first(a, o, y, x)
            else:
                terms = [int(layer.weights[tap]) * self._tap(0, i, c, r, q)
                         for c, r, q, tap in _taps(layer, o, y, x) if layer.weights[tap]]
                self.solver.add(a == self._sum(terms))
            self._memo[key] = a
        return self._memo[key]

    def _relaxed_first(self, a: z3.ArithRef, o: int, y: int, x: int) -> None:
        """The relaxed first-node accumulator at (o, y, x): anywhere on the position's lattice
        (fuzz_mutants.position_lattice). Where the mutant changes a first-node weight of this channel and
        the tap is valid here, that tap stays exact, ``a = w v_tap + rest``, and the rest is free on the
        lattice of the other taps (so the mutant's ``a + delta`` reads the same pixel)."""
        from fuzz_mutants import position_lattice

        layer, m = self.nets[0].layers[0], self.mutant
        weights = layer.weights[o].copy()
        exact = []
        if m is not None and m.kind == "weight" and m.layer == 0 and m.channel == o:
            c, i, j = np.unravel_index(m.word % weights.size, weights.shape)
            r, q = y * layer.stride - layer.padding + i, x * layer.stride - layer.padding + j
            if 0 <= r < layer.in_shape[1] and 0 <= q < layer.in_shape[2]:
                exact.append(int(weights[c, i, j]) * self.pixel(int(c), int(r), int(q)))
                weights[c, i, j] = 0
        lo, hi, a0, g = (int(v[y, x]) for v in position_lattice(layer, weights))
        rest = z3.Int(f"rest_{o}_{y}_{x}") if exact else a
        self._on_lattice(rest, lo, hi, a0, g, f"k_acc_{o}_{y}_{x}")
        if exact:
            self.solver.add(a == rest + exact[0])

    def delta(self, i: int, o: int, y: int, x: int) -> z3.ExprRef:
        """The mutant's accumulator minus the network's at (o, y, x) of node i: the sum of
        ``W_M v_M - W_N v_N`` over the taps where the weight or the input can differ."""
        key = ("delta", i, o, y, x)
        if key not in self._memo:
            ours, theirs = self.nets[0].layers[i], self.nets[1].layers[i]
            terms = []
            for c, r, q, tap in _taps(ours, o, y, x):
                w_n, w_m = int(ours.weights[tap]), int(theirs.weights[tap])
                if i > 0 and self.cones[i - 1][c, r, q]:
                    terms.append(w_m * self._tap(1, i, c, r, q) - w_n * self._tap(0, i, c, r, q))
                elif w_m != w_n:
                    terms.append((w_m - w_n) * self._tap(0, i, c, r, q))
            self._memo[key] = self._sum(terms)
        return self._memo[key]

    def out(self, side: int, i: int, c: int, y: int, x: int) -> z3.ExprRef:
        """Node i's output bit at (c, y, x) on ``side`` (outside the cone both sides share side 0's): a z3
        Bool, or with ``integer_bits`` a 0/1 integer variable (see the module docstring)."""
        if side == 1 and not self.cones[i][c, y, x]:
            side = 0
        key = ("out", side, i, c, y, x)
        if key not in self._memo:
            node = self.nets[side].layers[i]
            if isinstance(node, MaxPoolLayer):
                s, k = node.stride, node.kernel
                window = [self.out(side, i - 1, c, y * s + r, x * s + q) for r in range(k) for q in range(k)]
                bit = self._pool(window, bool(node.use_and[c]), f"b{side}_{i}_{c}_{y}_{x}")
            elif isinstance(node, ConvLayer) and isinstance(node.output, ThresholdOutput):
                t = node.output.thresholds[c, y, x] if node.output.per_position else node.output.thresholds[c]
                d = node.output.direction[c, y, x] if node.output.per_position else node.output.direction[c]
                a = self.acc(side, i, c, y, x)
                bit = self._bit(a >= int(t) if d > 0 else a <= int(t), f"b{side}_{i}_{c}_{y}_{x}")
            else:
                raise ValueError(f"node {node.name}: the solver encodes threshold convs and pools only")
            self._memo[key] = bit
        return self._memo[key]

    def _bit(self, condition: z3.BoolRef, name: str) -> z3.ExprRef:
        if not self.integer_bits:
            return condition
        b = z3.Int(name)
        self.solver.add(b == z3.If(condition, 1, 0))
        return b

    def _pool(self, window: list[z3.ExprRef], use_and: bool, name: str) -> z3.ExprRef:
        if not self.integer_bits:
            return z3.And(window) if use_and else z3.Or(window)
        b = z3.Int(name)  # AND: b <= each input, b >= sum - (n - 1); OR: b >= each input, b <= sum
        self.solver.add(b >= 0, b <= 1)
        if use_and:
            self.solver.add(*[b <= w for w in window], b >= z3.Sum(window) - (len(window) - 1))
        else:
            self.solver.add(*[b >= w for w in window], b <= z3.Sum(window))
        return b

    def bit_differences(self, i: int) -> z3.BoolRef:
        """Some output bit of node i differs between the two sides (necessary for a score to differ)."""
        return z3.Or([self.out(0, i, *p) != self.out(1, i, *p) for p in zip(*np.nonzero(self.cones[i]))])

    def score_differences(self) -> list[tuple[int, z3.ArithRef]]:
        """(class k, delta_k) for every class whose score can differ (in the cone, scale_k != 0)."""
        i = len(self.nets[0].layers) - 1
        last = self.nets[0].layers[i]
        assert isinstance(last, ConvLayer) and isinstance(last.output, ScoreOutput)
        return [(k, self.delta(i, k, 0, 0)) for k in range(last.out_channels)
                if self.cones[i][k, 0, 0] and last.output.scale[k] != 0]


def _solve(net: Network, mutant, *, encoding: str, local: bool, timeout_s: float,
           relax_first: bool = False) -> tuple[z3.CheckSatResult, Miter]:
    """One solver run over a fresh miter: ``local``: can the mutated node's own bits differ (the nodes up
    to it only); else: can a score differ (the bits' difference added as a hint)."""
    miter = Miter(net, mutant.net, fault_cone(net, mutant), encoding=encoding, relax_first=relax_first, mutant=mutant)
    miter.solver.set("timeout", max(1, int(timeout_s * 1000)))
    last = mutant.layer == len(net.layers) - 1
    if not last:
        miter.solver.add(miter.bit_differences(mutant.layer))
    if not local:
        differences = [d != 0 for _, d in miter.score_differences()]
        miter.solver.add(z3.Or(differences) if differences else z3.BoolVal(False))
    elif last:
        return z3.sat, miter  # nothing local to check before the scores
    return miter.solver.check(), miter


#: The solver runs of :func:`decide`, in order: (encoding, local, relax_first, share of the time limit).
#: The local run (can the mutated node's bits differ at all) settles an unreachable threshold value at
#: once; Boolean bits find revealing images fastest; the relaxed run (first-node accumulators free on
#: their lattices) proves equivalence where the pixels' sums are too many for the exact runs; integer
#: bits prove it through the parity and common divisors of later layers.
RUNS = (("int-bits", True, False, 0.25), ("bool-bits", False, False, 0.25), ("int-bits", False, True, 0.25),
        ("int-bits", False, False, 0.25))


def decide(net: Network, mutant, *, timeout_s: float = 30.0, base: np.ndarray | None = None) -> Decision:
    """Whether some uint8 image reveals ``mutant`` (a fuzz_mutants.Mutant of ``net``): the solver runs of
    :data:`RUNS` in turn, the first answer that settles it wins (see the module docstring)."""
    t0 = time.perf_counter()
    for encoding, local, relax_first, share in RUNS:
        answer, miter = _solve(net, mutant, encoding=encoding, local=local, relax_first=relax_first,
                               timeout_s=timeout_s * share)
        if answer == z3.unsat:
            return Decision("equivalent", None, time.perf_counter() - t0)
        if answer == z3.sat and not local and not relax_first:
            break
    else:
        return Decision("undecided", None, time.perf_counter() - t0)
    image = miter.image(miter.solver.model(), np.zeros(net.input_shape, np.uint8) if base is None else base)
    ours, theirs = run_network(net, image[None]), run_network(mutant.net, image[None])
    if np.array_equal(ours.scores, theirs.scores):
        raise RuntimeError(f"the solver's image does not reveal the mutant in the golden model ({mutant.kind} "
                           f"word {mutant.word} of node {mutant.layer}): the encoding disagrees with golden.py")
    return Decision("revealed", image, time.perf_counter() - t0)
