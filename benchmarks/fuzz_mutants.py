"""Mutation check of the fuzz campaign: single-word faults of a network, and images that reveal them.

A *mutant* is the network with one word changed in one layer: a binary weight's bit flipped, a k-bit
weight moved one step, or one threshold word moved by one (per channel or per position). It is
*caught* by a set of images when its golden-model scores differ from the network's on one of them.
As the RTL equals the golden model of the unchanged design bit for bit on every simulated image, the
share caught by the simulated images is the share of such faults the RTL check would catch.

Random images rarely reveal a threshold fault: a threshold ``T`` moved to ``T + 1`` changes a bit only
where the accumulator equals ``T`` exactly. :func:`seek_image` therefore searches for a revealing
image: from a fuzz image, rounds of ``batch`` candidates (1-4 random pixels set to random values); a
candidate that reveals the mutant ends the search, otherwise the next round starts from the candidate
whose accumulators in the mutated channel come closest to its threshold,
``margin = min over positions |acc[c, y, x] - T[c(, y, x)]|`` (the bit that is nearest to flipping).

A mutant no image can reveal is *equivalent*; :func:`provably_equivalent` recognises a threshold moved
across an accumulator value that cannot occur (outside the channel's range, or of the wrong parity in
a binary layer), and those are counted apart rather than as misses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from hwgen.compile.golden import run_network
from hwgen.compile.ir import ConvLayer, Network, ThresholdOutput, input_range

__all__ = ["Mutant", "draw_mutants", "mutation_images", "provably_equivalent", "seek_image", "valid_taps"]


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
    """A threshold change no input can reveal. Moving T to T' changes ``acc >= T`` only where
    ``acc == min(T, T')`` (``acc <= T``: where ``acc == max(T, T')``); that value is unreachable when it
    lies outside the channel's accumulator range or, in a binary layer (+-1 weights on +-1 inputs, padded
    taps 0), when its parity differs from that of the position's valid tap count ``m`` (acc is a sum of m
    terms +-1), at every position the word governs."""
    if mutant.kind != "threshold":
        return False
    layer = net.layers[mutant.layer]
    v = _differing_value(layer, mutant)
    if layer.input_kind == "binary" and layer.weight_bits == 1:
        taps = valid_taps(layer).reshape(-1)
        if layer.output.per_position:
            taps = taps[[mutant.word % taps.size]]
        return not any(abs(v) <= m and (v - m) % 2 == 0 for m in taps.tolist())
    lo, hi = _channel_range(layer, mutant.channel)
    return not lo <= v <= hi


def _differing_value(layer: ConvLayer, mutant: Mutant) -> int:
    """The accumulator value where a threshold word's old and new values disagree."""
    direction = int(layer.output.direction.reshape(-1)[mutant.word])
    return min(mutant.before, mutant.after) if direction > 0 else max(mutant.before, mutant.after)


def valid_taps(layer: ConvLayer) -> np.ndarray:
    """(H_out, W_out): inputs inside the map (not padding) under each window, times C_in."""
    (c, h, w), (kh, kw), s, p = layer.in_shape, layer.kernel, layer.stride, layer.padding
    _, h_out, w_out = layer.out_shape

    def inside(size: int, k: int, n: int) -> np.ndarray:
        start = np.arange(n)[:, None] * s - p + np.arange(k)[None, :]
        return ((start >= 0) & (start < size)).sum(axis=1)

    return c * np.outer(inside(h, kh, h_out), inside(w, kw, w_out))


def _channel_range(layer: ConvLayer, channel: int) -> tuple[int, int]:
    """Exact (min, max) of one channel's accumulator over all inputs (per-tap extremes, as accumulator_range)."""
    w = layer.weights[channel].astype(np.int64)
    lo_c, hi_c = (v.reshape(-1, 1, 1) for v in input_range(layer))
    return int(np.minimum(w * lo_c, w * hi_c).sum()), int(np.maximum(w * lo_c, w * hi_c).sum())


def _reveals(net: Network, mutant: Mutant, images: np.ndarray) -> np.ndarray:
    """Per image: the mutant's scores differ from the network's."""
    return (run_network(net, images).scores != run_network(mutant.net, images).scores).any(axis=1)


def _margin(net: Network, mutant: Mutant, images: np.ndarray) -> np.ndarray:
    """Per image: how near the bits the mutated word governs are to flipping (0: a revealing value).

    A threshold word: ``|acc - v|`` at its positions (one, per position), v the only accumulator value
    where the two thresholds disagree (:func:`_differing_value`). A weight: ``|acc - T|`` over the
    channel's positions (the change moves acc by a few steps around there)."""
    layer = net.layers[mutant.layer]
    if not isinstance(layer.output, ThresholdOutput):
        return np.zeros(len(images))  # a score layer: nothing to steer by
    acc = run_network(net, images, keep_intermediates=True).intermediates[f"{layer.name}.acc"][:, mutant.channel]
    acc = acc.reshape(len(images), -1).astype(np.int64)
    if mutant.kind == "weight":
        return np.abs(acc - np.reshape(layer.output.thresholds[mutant.channel], -1)).min(axis=1)
    if layer.output.per_position:
        acc = acc[:, [mutant.word % acc.shape[1]]]
    return np.abs(acc - _differing_value(layer, mutant)).min(axis=1)


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


def seek_image(net: Network, mutant: Mutant, images: np.ndarray, rng: np.random.Generator, *,
               rounds: int = 40, batch: int = 32, restarts: int = 3) -> np.ndarray | None:
    """An image (uint8, the input shape) that reveals ``mutant``, or None (see the module docstring):
    ``restarts`` searches of ``rounds`` rounds, each from another fuzz image."""
    for _ in range(restarts):
        current = images[int(rng.integers(len(images)))]
        for _ in range(rounds):
            cands = _propose(current, batch, rng)
            hit = np.flatnonzero(_reveals(net, mutant, cands))
            if len(hit):
                return cands[hit[0]]
            margins = _margin(net, mutant, cands)
            best = np.flatnonzero(margins == margins.min())
            current = cands[int(rng.choice(best))]  # ties broken at random: a plateau is walked, not stuck on
    return None


def mutation_images(net: Network, images: np.ndarray, rng: np.random.Generator, count: int,
                    *, seek: bool = True) -> tuple[np.ndarray, dict]:
    """(the images plus one revealing image per mutant the images missed, the tally).

    Tally per kind: ``[caught by the fuzz images, caught with the sought images, equivalent, tried]``.
    """
    tally = {"weight": [0, 0, 0, 0], "threshold": [0, 0, 0, 0]}
    extra = []
    for mutant in draw_mutants(net, rng, count):
        row = tally[mutant.kind]
        row[3] += 1
        if _reveals(net, mutant, images).any():
            row[0] += 1
            row[1] += 1
            continue
        if provably_equivalent(net, mutant):
            row[2] += 1
            continue
        found = seek_image(net, mutant, images, rng) if seek else None
        if found is not None:
            extra.append(found)
            row[1] += 1
    return (np.concatenate([images, np.stack(extra)]) if extra else images), tally


def format_tally(tallies: list[dict]) -> str:
    """One line per kind: caught by the fuzz images, by the fuzz plus sought images, equivalent, missed."""
    lines = [f"mutation check over {len(tallies)} networks:"]
    for kind in ("weight", "threshold"):
        fuzz, sought, equivalent, tried = (sum(t[kind][k] for t in tallies) for k in range(4))
        live = max(1, tried - equivalent)
        lines.append(f"  {kind} words: {tried} mutants, {equivalent} provably equivalent; of the other {tried - equivalent}: "
                     f"{fuzz} ({100 * fuzz / live:.1f} %) caught by the fuzz images, {sought} ({100 * sought / live:.1f} %) "
                     f"with the sought images, {tried - equivalent - sought} missed")
    return "\n".join(lines)
