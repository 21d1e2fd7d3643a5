"""Decide a single-word mutant exactly: an image that reveals it, or a proof that no image does (CP-SAT).

The image search of benchmarks/fuzz_mutants.py finds revealing images for most mutants, but when it
gives up the mutant may be equivalent (its flipped bit masked in every image by a constant channel, a
pool or a later threshold) or only hard to reveal. :func:`decide` settles it with a constraint solver
(OR-Tools CP-SAT, exact over bounded integers): is there a uint8 image ``x`` with
``scores_N(x) != scores_M(x)`` for the network N and its mutant M?

The query is the golden model's definition (hwgen.compile.ir) written as constraints over one *miter*
of N and M:

* **pixels**: one integer 0..255 per input tap read, mapped to the value it stands for by the channel's
  table (``input_values``: ``x - p_c`` as a linear expression, a QONNX table as an element constraint);
* **accumulators** ``acc[o, y, x] = sum W[o, c, i, j] v[c, y s + i - pad, x s + j - pad]`` over the valid
  taps, ``v = 2 b - 1`` for bits; **bits** Booleans with ``b <=> acc >= T`` (``acc <= T``), per channel
  or per position; **pools** the Or / And of the window;
* **the cone** (:func:`fault_cone`): only positions whose value can differ between N and M are written
  twice. In the mutated node those are the positions the word governs (a per-position threshold: one;
  a per-channel threshold or a weight: the channel's); after it, every position whose window reads a
  cone position (all channels of a conv, the same channel of a pool). M's accumulator there is
  ``acc_N + delta`` with ``delta = sum W_M v_M - W_N v_N`` over the taps that can differ only, so the
  shared part of both networks is one set of constraints;
* **the miter**: some class ``k`` with ``scale_k != 0`` of the score layer has ``delta_k != 0``
  (``score = scale acc + bias``: the scores differ exactly where the accumulators do).

Feasible: the solver's image, which :func:`decide` checks with the golden model (a solver image that
does not reveal the mutant there is an encoding error and raises). Infeasible: no image reveals the
mutant, it is *equivalent*. Neither within the time limit: *undecided*. Chain networks with uint8 input
only (the fuzz campaign's); tests/test_fuzz_solver.py checks the encoding against the golden model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from fuzz_datapath import error_expression, faulty_bit, faulty_scores, timing_parities
from fuzz_mutants import position_lattice, valid_window
from hwgen.compile.golden import run_network
from hwgen.compile.ir import (ConvLayer, MaxPoolLayer, Network, ScoreOutput, ThresholdOutput, accumulator_range,
                              input_values)

#: CP-SAT's parallel portfolio (its search strategies, local search and neighbourhood search side by side):
#: one worker ran out of 60 s on exact-sum instances (a flipped bit carried through an FC layer over 1,600
#: bits) that eight settle in under a second, on 2 cores as well.
WORKERS = 8

#: The search starts from a random image's pixels (a hint: it guides the search, proves nothing). Without
#: one, CP-SAT found no image for a product or match-count fault that half of all random images reveal
#: (tests/test_fuzz_datapath.py's network: 60 s without an answer; 0.2 s from any image, revealing or not).
HINT_SEED = 0

__all__ = ["HINT_SEED", "RUNS", "Decision", "Miter", "decide", "fault_cone", "reachable_score_inputs"]


@dataclass
class Decision:
    """``verdict``: "revealed" (``image`` reveals the mutant, checked; for a register fault whose error depends on
    the timing, under the parities the solver chose: a timing may give them), "equivalent", "undecided", or
    "possible" (an accumulator bit's interval model: an image whose accumulator lies within the fault's reach)."""

    verdict: str
    image: np.ndarray | None
    seconds: float


def _taps(layer: ConvLayer, o: int, y: int, x: int):
    """(c, row, col, weight index) of every valid (unpadded) tap of output (o, y, x)."""
    rows, cols = valid_window(layer, y, x)
    top, left = y * layer.stride - layer.padding, x * layer.stride - layer.padding
    for c in range(layer.in_shape[0]):
        for i in rows:
            for j in cols:
                yield c, top + i, left + j, (o, c, i, j)


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
            if mutant.kind == "datapath":  # a register fault: every position of its PE's channels
                cone[mutant.channels] = True
            elif mutant.kind == "threshold" and node.output.per_position:
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
                        rows, cols = valid_window(node, y, x)
                        top, left = y * node.stride - node.padding, x * node.stride - node.padding
                        cone[:, y, x] = before[:, [top + i for i in rows]][:, :, [left + j for j in cols]].any()
        cones.append(cone)
    return cones


class Miter:
    """The CP-SAT model of one (network, mutant) pair; side 0 is the network, side 1 the mutant.

    :meth:`out` gives a node's output bit at a position (a Boolean variable), :meth:`delta` the mutant's
    accumulator minus the network's (a linear expression); both are built on first use, so the model
    holds just the support of the cone. :attr:`pixels` maps each (c, y, x) read to its pixel variable.
    ``relax_first``: the first node's accumulators are free on their position's lattice instead of sums
    of pixels (see :meth:`acc`), a superset of what images give: infeasible proves equivalence, feasible
    proves nothing. ``mutant`` None: the network alone (:func:`reachable_score_inputs`). ``hint``: the image the
    search starts from (its pixels are hinted by :func:`_solve`; an accumulator bit's chain hints its own
    variables from it: fuzz_datapath)."""

    def __init__(self, net: Network, mutant, *, relax_first: bool = False, hint: np.ndarray | None = None):
        if not net.is_chain or net.layers[0].input_kind != "uint8":
            raise ValueError("the solver encodes chain networks with uint8 input only")
        if mutant is None:  # the network alone (side 0): an empty cone everywhere
            self.nets, self.cones = (net, net), [np.zeros(node.out_shape, dtype=bool) for node in net.layers]
        else:
            self.nets, self.cones = (net, mutant.net), fault_cone(net, mutant)
        self.relax_first, self.mutant, self.hint = relax_first, mutant, hint
        self.model = cp_model.CpModel()
        self.pixels: dict[tuple[int, int, int], cp_model.IntVar] = {}
        self._values = input_values(net.layers[0])
        self._memo: dict[tuple, object] = {}

    # -- inputs ----------------------------------------------------------------------------------
    def pixel(self, c: int, y: int, x: int) -> cp_model.IntVar:
        """The pixel variable (0..255) of input tap (c, y, x)."""
        if (c, y, x) not in self.pixels:
            self.pixels[c, y, x] = self.model.NewIntVar(0, 255, f"x_{c}_{y}_{x}")
        return self.pixels[c, y, x]

    def value(self, c: int, y: int, x: int):
        """The value input tap (c, y, x) stands for: ``x - p`` (linear) or an element of the channel's table."""
        key = ("value", c, y, x)
        if key not in self._memo:
            row = self._values[c]
            if (np.diff(row) == 1).all():
                self._memo[key] = self.pixel(c, y, x) + int(row[0])
            else:
                v = self.model.NewIntVar(int(row.min()), int(row.max()), f"v_{c}_{y}_{x}")
                self.model.AddElement(self.pixel(c, y, x), [int(t) for t in row], v)
                self._memo[key] = v
        return self._memo[key]

    def image(self, solver: cp_model.CpSolver, base: np.ndarray) -> np.ndarray:
        """``base`` with every pixel the model reads set to the solver's value."""
        image = base.copy()
        for (c, y, x), var in self.pixels.items():
            image[c, y, x] = solver.Value(var)
        return image

    # -- nodes -----------------------------------------------------------------------------------
    def _tap(self, side: int, i: int, c: int, y: int, x: int):
        """Value of input tap (c, y, x) of node i: a pixel's value, or 2b - 1 of the previous node's bit."""
        if i == 0:
            return self.value(c, y, x)
        return 2 * self.out(side, i - 1, c, y, x) - 1

    def acc(self, side: int, i: int, o: int, y: int, x: int):
        """Node i's accumulator at (o, y, x): a variable on side 0; ``acc_0 + delta`` inside the cone on side 1."""
        if side == 1 and self.cones[i][o, y, x]:
            return self.acc(0, i, o, y, x) + self.delta(i, o, y, x)
        key = ("acc", i, o, y, x)
        if key not in self._memo:
            layer = self.nets[0].layers[i]
            lo, hi = accumulator_range(layer)
            a = self.model.NewIntVar(lo, hi, f"acc_{i}_{o}_{y}_{x}")
            if i == 0 and self.relax_first:
                self._relaxed_first(a, o, y, x)
            else:
                self.model.Add(a == sum(int(layer.weights[tap]) * self._tap(0, i, c, r, q)
                                        for c, r, q, tap in _taps(layer, o, y, x) if layer.weights[tap]))
            self._memo[key] = a
        return self._memo[key]

    def _relaxed_first(self, a: cp_model.IntVar, o: int, y: int, x: int) -> None:
        """The relaxed first-node accumulator at (o, y, x): anywhere on the position's lattice
        (fuzz_mutants.position_lattice: in [lo, hi], a0 + g k). Where the mutant changes a first-node weight
        of this channel and the tap is valid here, that tap stays exact, ``a = w v_tap + rest``, and the
        rest is free on the lattice of the other taps (so the mutant's ``a + delta`` reads the same pixel)."""
        layer, m = self.nets[0].layers[0], self.mutant
        weights = layer.weights[o].copy()
        exact, tap = 0, None
        if m is not None and m.kind == "weight" and m.layer == 0 and m.channel == o:
            tap = tuple(int(t) for t in np.unravel_index(m.word % weights.size, weights.shape))
            c, i, j = tap
            r, q = y * layer.stride - layer.padding + i, x * layer.stride - layer.padding + j
            if 0 <= r < layer.in_shape[1] and 0 <= q < layer.in_shape[2]:
                exact = int(weights[tap]) * self.value(c, r, q)
                weights[tap] = 0
            else:
                tap = None
        key = ("lattice", o, tap)  # one lattice per channel (and per exact tap): every position at once
        if key not in self._memo:
            self._memo[key] = position_lattice(layer, weights)
        lo, hi, a0, g = (int(v[y, x]) for v in self._memo[key])
        # lo - a0 and hi - a0 are multiples of g (a tap's extremes differ by its weight times its step)
        k = self.model.NewIntVar((lo - a0) // g if g else 0, (hi - a0) // g if g else 0, f"k_{o}_{y}_{x}")
        self.model.Add(a == a0 + g * k + exact)

    def delta(self, i: int, o: int, y: int, x: int):
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
            if self.mutant is not None and self.mutant.kind == "datapath" and i == self.mutant.layer:
                terms.append(error_expression(self.mutant, self, o, y, x))
            self._memo[key] = sum(terms)
        return self._memo[key]

    def out(self, side: int, i: int, c: int, y: int, x: int) -> cp_model.IntVar:
        """Node i's output bit at (c, y, x) on ``side`` (outside the cone both sides share side 0's)."""
        if side == 1 and not self.cones[i][c, y, x]:
            side = 0
        key = ("out", side, i, c, y, x)
        if key not in self._memo:
            node = self.nets[side].layers[i]
            b = self.model.NewBoolVar(f"b{side}_{i}_{c}_{y}_{x}")
            if isinstance(node, MaxPoolLayer):
                s, k = node.stride, node.kernel
                window = [self.out(side, i - 1, c, y * s + r, x * s + q) for r in range(k) for q in range(k)]
                if node.use_and[c]:
                    self.model.AddMinEquality(b, window)
                else:
                    self.model.AddMaxEquality(b, window)
            elif side == 1 and self.mutant.kind == "datapath" and i == self.mutant.layer:
                faulty_bit(self.mutant, self, b, self.acc(1, i, c, y, x), c, y, x)  # the engine's own bit
            elif isinstance(node, ConvLayer) and isinstance(node.output, ThresholdOutput):
                t = node.output.thresholds[c, y, x] if node.output.per_position else node.output.thresholds[c]
                d = node.output.direction[c, y, x] if node.output.per_position else node.output.direction[c]
                a, t = self.acc(side, i, c, y, x), int(t)
                on, off = (a >= t, a <= t - 1) if d > 0 else (a <= t, a >= t + 1)
                self.model.Add(on).OnlyEnforceIf(b)
                self.model.Add(off).OnlyEnforceIf(b.Not())
            else:
                raise ValueError(f"node {node.name}: the solver encodes threshold convs and pools only")
            self._memo[key] = b
        return self._memo[key]

    def some(self, conditions: list, name: str) -> None:
        """Require at least one of the linear ``conditions`` (each reified by a Boolean)."""
        flags = []
        for n, condition in enumerate(conditions):
            flag = self.model.NewBoolVar(f"{name}_{n}")
            self.model.Add(condition).OnlyEnforceIf(flag)
            flags.append(flag)
        self.model.AddBoolOr(flags)

    def bit_differences(self, i: int) -> list:
        """Per cone position of node i: its bit differs between the two sides."""
        return [self.out(0, i, *p) != self.out(1, i, *p) for p in zip(*np.nonzero(self.cones[i]))]

    def score_differences(self) -> list[tuple[int, object]]:
        """(class k, delta_k) for every class whose score can differ (in the cone, scale_k != 0)."""
        i = len(self.nets[0].layers) - 1
        last = self.nets[0].layers[i]
        assert isinstance(last, ConvLayer) and isinstance(last.output, ScoreOutput)
        return [(k, self.delta(i, k, 0, 0)) for k in range(last.out_channels)
                if self.cones[i][k, 0, 0] and last.output.scale[k] != 0]


def _solve(net: Network, mutant, *, local: bool, relax_first: bool, timeout_s: float,
           hint: np.ndarray | None = None):
    """One solver run over a fresh miter -> (status, solver, miter). ``local``: can the mutated node's own
    bits differ (the nodes up to it only); else: can a score differ (the bits' difference added as a hint).
    ``hint``: an image whose pixels the search starts from (:data:`HINT_SEED`)."""
    hint = np.random.default_rng(HINT_SEED).integers(0, 256, net.input_shape, dtype=np.uint8) if hint is None else hint
    miter = Miter(net, mutant, relax_first=relax_first, hint=hint)
    last = mutant.layer == len(net.layers) - 1
    if not last:
        miter.some(miter.bit_differences(mutant.layer), "flip")
    if not local:
        differences = [d != 0 for _, d in miter.score_differences() if not isinstance(d, int)]
        if not differences:
            return cp_model.INFEASIBLE, None, miter
        miter.some(differences, "score")
    elif last:
        return cp_model.FEASIBLE, None, miter  # nothing local to check before the scores
    for (c, y, x), var in miter.pixels.items():
        miter.model.AddHint(var, int(hint[c, y, x]))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = timeout_s
    solver.parameters.num_workers = WORKERS
    return solver.Solve(miter.model), solver, miter


#: The solver runs of :func:`decide`, in order: (local, relax_first, share of the time limit). The local
#: run (can the mutated node's bits differ at all) settles an unreachable threshold value at once; the
#: exact run finds revealing images or proves equivalence; the relaxed run (first-node accumulators free
#: on their lattices) proves equivalence where the exact run runs out of time.
RUNS = ((True, False, 0.2), (False, False, 0.6), (False, True, 0.2))


def decide(net: Network, mutant, *, timeout_s: float = 30.0, base: np.ndarray | None = None) -> Decision:
    """Whether some uint8 image reveals ``mutant`` (a fuzz_mutants.Mutant of ``net``): the solver runs of
    :data:`RUNS` in turn, the first answer that settles it wins (see the module docstring)."""
    t0 = time.perf_counter()
    for local, relax_first, share in RUNS:
        status, solver, miter = _solve(net, mutant, local=local, relax_first=relax_first, timeout_s=timeout_s * share,
                                       hint=base)
        if status == cp_model.INFEASIBLE:
            return Decision("equivalent", None, time.perf_counter() - t0)
        if status in (cp_model.FEASIBLE, cp_model.OPTIMAL) and not local and not relax_first:
            break
    else:
        return Decision("undecided", None, time.perf_counter() - t0)
    image = miter.image(solver, np.zeros(net.input_shape, np.uint8) if base is None else base)
    if mutant.kind == "datapath" and mutant.interval:  # errors in a range wider than any timing's: nothing to check
        return Decision("possible", image, time.perf_counter() - t0)
    ours = run_network(net, image[None]).scores
    if mutant.kind == "datapath":  # an accumulator bit under the parities the solver chose
        theirs = faulty_scores(net, mutant, image[None], None if mutant.exact else timing_parities(mutant, miter, solver))
    else:
        theirs = run_network(mutant.net, image[None]).scores
    if np.array_equal(ours, theirs):
        what = mutant.name if mutant.kind == "datapath" else f"word {mutant.word}"
        raise RuntimeError(f"the solver's image does not reveal the mutant in the golden model ({mutant.kind} "
                           f"{what} of node {mutant.layer}): the encoding disagrees with golden.py")
    return Decision("revealed", image, time.perf_counter() - t0)


def reachable_score_inputs(net: Network, *, limit: int = 64, timeout_s: float = 60.0) -> tuple[np.ndarray, bool]:
    """One image per distinct vector of score-layer accumulators (the score unit's input) that uint8 images
    give: (images uint8 (N, C, H, W), complete). Found one at a time, each solver run asking for an image
    whose vector differs from every one found so far; *complete* when the last run proves none is left,
    not when ``limit`` vectors are found first or a run takes more than ``timeout_s``. Each image's
    vector is computed again by the golden model; one that differs from the solver's is an encoding error
    (RuntimeError)."""
    miter = Miter(net, None)
    last = len(net.layers) - 1
    accs = [miter.acc(0, last, k, 0, 0) for k in range(net.layers[last].out_channels)]
    images: list[np.ndarray] = []
    while len(images) < limit:
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = timeout_s
        solver.parameters.num_workers = WORKERS
        status = solver.Solve(miter.model)
        if status == cp_model.INFEASIBLE:
            return np.stack(images) if images else np.zeros((0, *net.input_shape), np.uint8), True
        if status not in (cp_model.FEASIBLE, cp_model.OPTIMAL):
            break
        image = miter.image(solver, np.zeros(net.input_shape, np.uint8))
        vector = run_network(net, image[None], keep_intermediates=True).intermediates[
            f"{net.layers[last].name}.acc"][0, :, 0, 0]
        if [solver.Value(a) for a in accs] != [int(v) for v in vector]:
            raise RuntimeError("the solver's score-layer accumulators differ from the golden model's")
        images.append(image)
        miter.some([a != int(v) for a, v in zip(accs, vector)], f"new{len(images)}")
    return np.stack(images) if images else np.zeros((0, *net.input_shape), np.uint8), False
