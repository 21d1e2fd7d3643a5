"""Mutation check of the fuzz campaign: single-word faults of a network, and images that reveal them.

A *mutant* is the network with one word changed in one layer: a binary weight's bit flipped, a k-bit
weight moved one step, or one threshold word moved by one (per channel or per position). It is
*caught* by a set of images when its golden-model scores differ from the network's on one of them.
As the RTL equals the golden model of the unchanged design bit for bit on every simulated image, the
share caught by the simulated images is the share of such faults the RTL check would catch.

Random images rarely reveal a threshold fault: a threshold ``T`` moved to ``T + 1`` changes a bit only
where the accumulator equals ``T`` exactly. :func:`seek_image` therefore searches for a revealing
image: from a fuzz image, rounds of ``batch`` candidates (1-4 pixels changed); a candidate that
reveals the mutant ends the search, otherwise the next round starts from the candidate that comes
closest (:func:`_compare`): first the one whose difference from the network reaches the deepest
node (a flipped bit must still travel through the later layers to a score), then the one with the
most differing bits there, then the one whose accumulators in the mutated channel come closest to its
threshold, ``margin = min over positions |acc[c, y, x] - T[c(, y, x)]|`` (the bit nearest to flipping).

A mutant no image can reveal is *equivalent*; :func:`provably_equivalent` recognises a threshold moved
across an accumulator value that cannot occur at any position it governs (outside the position's range,
or off the lattice of values its weights and input values allow: wrong parity in a binary layer, not a
multiple of the weights' common divisor on pixels), and a weight changed in a channel whose bit is
constant under both weights; those are counted apart rather than as misses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from hwgen.compile.golden import GoldenResult, run_network
from hwgen.compile.ir import INPUT, ConvLayer, Network, ThresholdOutput, input_values

__all__ = ["OUTCOMES", "Mutant", "decide_twice", "draw_mutants", "format_tally", "mutation_images", "provably_equivalent",
           "position_lattice", "seek_image", "valid_window"]


@dataclass
class Mutant:
    kind: str          # "weight" | "threshold"
    layer: int         # index into net.layers
    channel: int       # output channel of the changed word
    word: int          # flat index of the changed word in the layer's weights / thresholds
    before: int
    after: int
    net: Network


def draw_mutants(net: Network, rng: np.random.Generator, count: int) -> list[Mutant]:
    """``count`` single-word mutants, in uniformly drawn conv layers; thresholds half the time where the layer has them."""
    layers = [i for i, x in enumerate(net.layers) if isinstance(x, ConvLayer)]
    mutants = []
    for _ in range(count):
        index = int(rng.choice(layers))
        mutant_net = copy.deepcopy(net)
        layer = mutant_net.layers[index]
        if isinstance(layer.output, ThresholdOutput) and rng.random() < 0.5:
            kind, words = "threshold", layer.output.thresholds
            i = int(rng.integers(words.size))
            after = int(words.reshape(-1)[i]) + int(rng.choice([-1, 1]))
        else:
            kind, words = "weight", layer.weights
            i = int(rng.integers(words.size))
            w = int(words.reshape(-1)[i])
            limit = (1 << (layer.weight_bits - 1)) - 1
            after = -w if layer.weight_bits == 1 else (w - 1 if w >= limit else w + 1)
        before = int(words.reshape(-1)[i])
        words.reshape(-1)[i] = after
        mutants.append(Mutant(kind, index, i // (words.size // words.shape[0]), i, before, after, mutant_net))
    return mutants


def provably_equivalent(net: Network, mutant: Mutant) -> bool:
    """A fault no input can reveal, by :func:`position_lattice` of the layer at every position it governs.

    A threshold moved from T to T' changes ``acc >= T`` only where ``acc == min(T, T')`` (``acc <= T``:
    where ``acc == max(T, T')``); that value v is unreachable at a position when it lies outside
    [lo, hi] or off the lattice ``a0 + g Z``. (For a binary layer of +-1 weights this is exact: the
    parity of the valid tap count m and |v| <= m.) A weight fault is equivalent when the channel's bit
    is the same constant under the old and the new weights at every position: its threshold outside
    both accumulator ranges on the same side."""
    layer = net.layers[mutant.layer]
    if not isinstance(layer.output, ThresholdOutput):
        return False
    if mutant.kind == "threshold":
        v = _differing_value(layer, mutant)
        lo, hi, a0, g = position_lattice(layer, layer.weights[mutant.channel])
        if layer.output.per_position:
            pick = mutant.word % lo.size
            lo, hi, a0, g = (x.reshape(-1)[[pick]] for x in (lo, hi, a0, g))
        on_lattice = np.where(g == 0, v == a0, (v - a0) % np.maximum(g, 1) == 0)
        return not ((lo <= v) & (v <= hi) & on_lattice).any()
    old = position_lattice(layer, layer.weights[mutant.channel])
    new = position_lattice(layer, mutant.net.layers[mutant.layer].weights[mutant.channel])
    t = np.broadcast_to(np.asarray(layer.output.thresholds[mutant.channel]), old[0].shape)
    d = np.broadcast_to(np.asarray(layer.output.direction[mutant.channel]), old[0].shape)
    # bit = [acc >= T] (d > 0) / [acc <= T] (d < 0): constant 1 or 0 over [lo, hi]
    bits = [np.where(d > 0, np.where(lo >= t, 1, np.where(hi < t, 0, -1)),
                     np.where(hi <= t, 1, np.where(lo > t, 0, -1))) for lo, hi, _, _ in (old, new)]
    return bool(((bits[0] >= 0) & (bits[0] == bits[1])).all())


def position_lattice(layer: ConvLayer, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """(lo, hi, a0, g), each (H_out, W_out): the values one channel's accumulator can take at each output
    position lie in [lo, hi] and on ``a0 + g Z`` (g = 0: the single value a0).

    With weights w (C_in, KH, KW) over the valid (unpadded) taps of the position, a tap of input channel c
    takes the values V_c (binary: {-1, +1}; uint8: row c of ``input_values``), so acc = sum w v_tap lies
    between the sums of per-tap extremes, and differs from a0 = sum w min(V_c) by a multiple of
    g = gcd over the taps of w * gcd(V_c - min V_c)."""
    from math import gcd

    c_in = layer.in_shape[0]
    _, h_out, w_out = layer.out_shape
    values = (np.tile(np.array([-1, 1], np.int64), (c_in, 1)) if layer.input_kind == "binary"
              else input_values(layer))
    low, high = values.min(axis=1), values.max(axis=1)
    step = np.array([np.gcd.reduce(row - row.min()) for row in values], dtype=np.int64)
    wts = np.asarray(weights, dtype=np.int64)
    tap_lo = np.minimum(wts * low[:, None, None], wts * high[:, None, None])
    tap_hi = np.maximum(wts * low[:, None, None], wts * high[:, None, None])
    tap_a0 = wts * low[:, None, None]
    tap_g = np.abs(wts) * step[:, None, None]
    out = np.zeros((4, h_out, w_out), dtype=np.int64)
    for y in range(h_out):
        for x in range(w_out):
            window = np.ix_(range(c_in), *valid_window(layer, y, x))
            out[:, y, x] = (tap_lo[window].sum(), tap_hi[window].sum(), tap_a0[window].sum(),
                            gcd(*tap_g[window].ravel().tolist(), 0))
    return tuple(out)


def valid_window(layer: ConvLayer, y: int, x: int) -> tuple[list[int], list[int]]:
    """The kernel rows and columns whose taps lie inside the input map (not padding) at output (y, x)."""
    (_, h, w), (kh, kw), s, p = layer.in_shape, layer.kernel, layer.stride, layer.padding
    return ([i for i in range(kh) if 0 <= y * s - p + i < h], [j for j in range(kw) if 0 <= x * s - p + j < w])


def _differing_value(layer: ConvLayer, mutant: Mutant) -> int:
    """The accumulator value where a threshold word's old and new values disagree."""
    direction = int(layer.output.direction.reshape(-1)[mutant.word])
    return min(mutant.before, mutant.after) if direction > 0 else max(mutant.before, mutant.after)


def _scores_differ(ours: GoldenResult, theirs: GoldenResult) -> np.ndarray:
    """Per image: some class score differs between two runs of the same images."""
    return (ours.scores != theirs.scores).any(axis=1)


def _reveals(net: Network, mutant: Mutant, images: np.ndarray) -> np.ndarray:
    """Per image: the mutant's scores differ from the network's."""
    return _scores_differ(run_network(net, images), run_network(mutant.net, images))


def _margin(net: Network, mutant: Mutant, ours: GoldenResult) -> np.ndarray:
    """Per image of ``ours`` (the network's run, with intermediates): how near the bits the mutated word
    governs are to flipping (0: a revealing value).

    A threshold word: ``|acc - v|`` at its positions (one, per position), v the only accumulator value
    where the two thresholds disagree (:func:`_differing_value`). A weight: ``|acc - T|`` over the
    channel's positions (the change moves acc by a few steps around there)."""
    layer = net.layers[mutant.layer]
    n = len(ours.scores)
    if not isinstance(layer.output, ThresholdOutput):
        return np.zeros(n)  # a score layer: nothing to steer by
    acc = ours.intermediates[f"{layer.name}.acc"][:, mutant.channel].reshape(n, -1).astype(np.int64)
    if mutant.kind == "weight":
        return np.abs(acc - np.reshape(layer.output.thresholds[mutant.channel], -1)).min(axis=1)
    if layer.output.per_position:
        acc = acc[:, [mutant.word % acc.shape[1]]]
    return np.abs(acc - _differing_value(layer, mutant)).min(axis=1)


def _compare(net: Network, mutant: Mutant, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, from one run of each network: (the mutant's scores differ, :func:`_scores_differ`; the
    closeness key). The key is minimised lexicographically (its rows' first minimum is the closest image):
    ``(-depth, -differing bits at that depth, margin)``. ``depth`` is the topological index of the last
    node whose output bits differ between the network and the mutant (-1 where none does), the bits
    counted there, and ``margin`` :func:`_margin`."""
    ours = run_network(net, images, keep_intermediates=True)
    theirs = run_network(mutant.net, images, keep_intermediates=True)
    depth = np.full(len(images), -1)
    count = np.zeros(len(images), dtype=np.int64)
    for index, node in enumerate(net.layers):
        if index < mutant.layer or node.name not in ours.intermediates:
            continue
        diff = (ours.intermediates[node.name] != theirs.intermediates[node.name]).reshape(len(images), -1).sum(axis=1)
        depth = np.where(diff > 0, index, depth)
        count = np.where(diff > 0, diff, count)
    return _scores_differ(ours, theirs), np.stack([-depth, -count, _margin(net, mutant, ours)], axis=1)


def _propose(current: np.ndarray, batch: int, rng: np.random.Generator) -> np.ndarray:
    """``batch`` candidates, each 1-4 pixels of ``current`` changed: half by small steps (+-1, 2, 4, 16:
    a first layer's accumulator moves by a weight per step), half to random values (to jump)."""
    flat = current.reshape(-1).astype(np.int64)
    cands = np.repeat(flat[None], batch, axis=0)
    for k, row in enumerate(cands):
        picks = rng.integers(0, flat.size, size=int(rng.integers(1, 5)))
        if k % 2:
            row[picks] = rng.integers(0, 256, size=len(picks))
        else:
            row[picks] += rng.choice([-16, -4, -2, -1, 1, 2, 4, 16], size=len(picks))
    return np.clip(cands, 0, 255).astype(np.uint8).reshape(batch, *current.shape)


def _aimed(net: Network, mutant: Mutant, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` with one window of pixels set so that a threshold fault's differing value v is the
    accumulator there, when the faulty layer reads the pixels (uint8) itself; else ``image``.

    At a random position the word governs, every tap starts at the pixel giving its smallest term,
    then taps in order of decreasing weight take the pixel whose term rise is the largest one not past
    what is left of v - lo: exact whenever the rises can make up the rest (a tap of weight +-1 on
    offset pixels ends it), near v otherwise, and a start for the search either way."""
    layer = net.layers[mutant.layer]
    if mutant.kind != "threshold" or layer.input_kind != "uint8" or net.inputs_of(mutant.layer) != (INPUT,):
        return image
    s, p = layer.stride, layer.padding
    _, h_out, w_out = layer.out_shape
    word = mutant.word % (h_out * w_out) if layer.output.per_position else int(rng.integers(h_out * w_out))
    y, x = divmod(word, w_out)
    terms = layer.weights[mutant.channel].astype(np.int64)[:, :, :, None] * input_values(layer)[:, None, None, :]
    rows, cols = valid_window(layer, y, x)
    taps = [(c, i, j) for c in range(layer.in_shape[0]) for i in rows for j in cols]
    image = image.copy()
    left = _differing_value(layer, mutant) - sum(int(terms[t].min()) for t in taps)
    for c, i, j in sorted(taps, key=lambda t: -int(np.ptp(terms[t]))):
        rise = terms[c, i, j] - terms[c, i, j].min()
        fits = np.flatnonzero(rise <= left) if left >= 0 else np.array([int(np.argmin(rise))])
        pixel = int(fits[np.argmax(rise[fits])])
        image[c, y * s - p + i, x * s - p + j] = pixel
        left -= int(rise[pixel])
    return image


def seek_image(net: Network, mutant: Mutant, images: np.ndarray, rng: np.random.Generator, *,
               rounds: int = 40, batch: int = 32, restarts: int = 3) -> np.ndarray | None:
    """An image (uint8, the input shape) that reveals ``mutant``, or None (see the module docstring):
    ``restarts`` searches of ``rounds`` rounds, each from another fuzz image."""
    for _ in range(restarts):
        current = _aimed(net, mutant, images[int(rng.integers(len(images)))], rng)
        for _ in range(rounds):
            cands = _propose(current, batch, rng)
            revealed, key = _compare(net, mutant, cands)
            hit = np.flatnonzero(revealed)
            if len(hit):
                return cands[hit[0]]
            first = key[np.lexsort(key.T[::-1])[0]]  # lexicographic minimum: column 0 first
            best = np.flatnonzero((key == first).all(axis=1))
            current = cands[int(rng.choice(best))]  # ties broken at random: a plateau is walked, not stuck on
    return None


def score_gaps(net: Network, images: np.ndarray, c: int) -> np.ndarray:
    """Per image, ``|score_c - max_{k != c} score_k|`` by the golden model: 0 is a tie for the top."""
    scores = run_network(net, images).scores.astype(np.int64)
    return np.abs(scores[:, c] - np.delete(scores, c, axis=1).max(axis=1))


def close_call_images(net: Network, images: np.ndarray, rng: np.random.Generator, *,
                      rounds: int = 60, batch: int = 32) -> list[tuple[int, np.ndarray]]:
    """Per class c, (c, an image on which c's score is as close to the best other class's as a search finds).

    From the image of ``images`` with the smallest :func:`score_gaps` for c, ``rounds`` rounds of
    ``batch`` candidates (:func:`_propose`) keep the candidate with the smallest gap while it is no
    larger (a plateau is walked), until a tie (gap 0, which the argmax gives to the lower index). Random
    images rarely bring two classes this close, and it is there that a fault in the score path shows:
    an accumulator or product bit off, the running maximum's register wrong, the tie rule broken."""
    found = []
    for c in range(net.num_classes):
        gaps = score_gaps(net, images, c)
        current, best = images[int(np.argmin(gaps))], int(gaps.min())
        for _ in range(rounds):
            if best == 0:
                break
            cands = _propose(current, batch, rng)
            gaps = score_gaps(net, cands, c)
            if gaps.min() <= best:
                current, best = cands[int(np.argmin(gaps))], int(gaps.min())
        found.append((c, current))
    return found


#: The outcomes a mutant is counted under, in the order the check tries them (:func:`mutation_images`).
OUTCOMES = ("fuzz", "lattice", "sought", "solver_revealed", "solver_equivalent", "undecided")

#: A mutant the solver leaves undecided within the campaign's time is tried once more with this many times
#: the time. About 1 % of the mutants run out of 40 s (deep first-layer kernels whose flipped bit must reach
#: a later layer's threshold exactly); given 400 s each, the five of the 2026-12-04 campaign were all settled
#: (docs/simulation.md), so the second try costs little and leaves few undecided.
SOLVER_RETRY_FACTOR = 10


def decide_twice(net: Network, mutant, *, timeout_s: float, base: np.ndarray):
    """(fuzz_solver.decide's decision, whether it ran twice): once with ``timeout_s``, once more with
    :data:`SOLVER_RETRY_FACTOR` times that when the first run leaves it undecided."""
    from fuzz_solver import decide

    decision = decide(net, mutant, timeout_s=timeout_s, base=base)
    if decision.verdict != "undecided":
        return decision, False
    return decide(net, mutant, timeout_s=timeout_s * SOLVER_RETRY_FACTOR, base=base), True


def mutation_images(net: Network, images: np.ndarray, rng: np.random.Generator, count: int,
                    *, seek: bool = True, solver_timeout_s: float = 0.0) -> tuple[np.ndarray, dict]:
    """(the images plus one revealing image per mutant the images missed, the tally).

    Each mutant ends in the first outcome of :data:`OUTCOMES` that holds: revealed by the fuzz images,
    provably equivalent by the lattice (:func:`provably_equivalent`), revealed by a sought image
    (:func:`seek_image`), then, with ``solver_timeout_s > 0``, settled by the constraint solver
    (benchmarks/fuzz_solver.py: a revealing image, or a proof that none exists; once more with
    :data:`SOLVER_RETRY_FACTOR` times the time when the first run leaves it open), else undecided.
    Tally per kind: ``{outcome: count, ..., "tried": count, "retried": count}`` ("retried": how many went
    to the second solver run, whatever its outcome).
    """
    tally = {kind: dict.fromkeys((*OUTCOMES, "tried", "retried"), 0) for kind in ("weight", "threshold")}
    extra = []
    for mutant in draw_mutants(net, rng, count):
        row = tally[mutant.kind]
        row["tried"] += 1
        outcome, image, retried = _settle(net, mutant, images, rng, seek=seek, solver_timeout_s=solver_timeout_s)
        row[outcome] += 1
        row["retried"] += retried
        if image is not None:
            extra.append(image)
    return (np.concatenate([images, np.stack(extra)]) if extra else images), tally


def _settle(net: Network, mutant: Mutant, images: np.ndarray, rng: np.random.Generator, *, seek: bool,
            solver_timeout_s: float) -> tuple[str, np.ndarray | None, bool]:
    """(the outcome of :data:`OUTCOMES`, a revealing image to add to the images or None, whether the solver
    ran a second time)."""
    if _reveals(net, mutant, images).any():
        return "fuzz", None, False
    if provably_equivalent(net, mutant):
        return "lattice", None, False
    found = seek_image(net, mutant, images, rng) if seek else None
    if found is not None:
        return "sought", found, False
    if solver_timeout_s <= 0:
        return "undecided", None, False
    decision, retried = decide_twice(net, mutant, timeout_s=solver_timeout_s, base=images[0])
    return {"revealed": "solver_revealed", "equivalent": "solver_equivalent"}.get(decision.verdict, "undecided"), \
        decision.image, retried


def format_tally(tallies: list[dict]) -> str:
    """One line per kind: the share of the mutants that are not equivalent caught by the fuzz images, with
    the sought and solver images; the equivalent ones (lattice, solver); the undecided."""
    lines = [f"mutation check over {len(tallies)} networks:"]
    for kind in ("weight", "threshold"):
        n = {key: sum(t[kind].get(key, 0) for t in tallies) for key in (*OUTCOMES, "tried", "retried")}
        equivalent = n["lattice"] + n["solver_equivalent"]
        caught = n["fuzz"] + n["sought"] + n["solver_revealed"]
        live = max(1, n["tried"] - equivalent)
        lines.append(f"  {kind} words: {n['tried']} mutants, {equivalent} equivalent ({n['lattice']} by the lattice, "
                     f"{n['solver_equivalent']} by the solver); of the other {n['tried'] - equivalent}: "
                     f"{n['fuzz']} ({100 * n['fuzz'] / live:.1f} %) caught by the fuzz images, {caught} "
                     f"({100 * caught / live:.1f} %) with the sought ({n['sought']}) and solver ({n['solver_revealed']}) "
                     f"images, {n['undecided']} undecided "
                     f"({n['retried']} given a second solver run)")
    return "\n".join(lines)
