"""The accelerator as a graph: forks, the shortcut edge of each residual join, and its skip buffer's depth.

A node read by several nodes gets a :class:`~hwgen.hw.engines.fork.Fork`
(its stream is delivered to each consumer). A residual join J reads the main
branch's accumulators and the shortcut's bits; both branches start at a common
node X, the *fork* of the block (a block input X, read by the main branch's
first conv and by J itself, identity shortcut, or by the shortcut's own
engine, e.g. a 1x1 stride-2 conv or a pool). :func:`shortcut_edge` finds the
edge X -> (first node of the shortcut branch); the skip buffer, a FIFO of X's
beats, sits on it.

Skip buffer depth (no deadlock, no throughput loss)
----------------------------------------------------
The join takes a main beat and a shortcut beat together, for the same output
position. While it waits for the main branch's beat of position p, the
shortcut's data from p on is held in the skip buffer (and the shortcut
branch's own engines), and the main branch holds everything the fork has sent
it beyond p: its line buffers, input buffers, pool rows, output FIFOs and
pipeline. The fork sends a beat only when every consumer takes it, so if the
skip buffer fills first, the fork stops, the main branch starves and the join
waits for ever (deadlock); if it fills often, the main branch is slowed.
Measured in frames, the main branch holds at most

    H_main = sum over its stages of  buffer bits / the stage's input bits per frame
                                   + output FIFO entries / its output beats per frame

(:func:`held_frames`), so a skip buffer of

    D = ceil(H_main * B_X) + 2 * R_X + SLACK_BEATS beats

(B_X: X's beats per frame, R_X: per row) can always take what the fork sends
while the main branch is not yet able to emit position p: the two rows and the
slack cover the window rows a sliding window needs beyond what it stores and
the registers between the stages. RTL simulation with random gaps and
back-pressure checks it (no deadlock, frame period = the folding's estimate;
tests/test_residual_hw.py), and that a much smaller buffer deadlocks.
"""

from __future__ import annotations

import math

from hwgen.compile.ir import INPUT, JoinLayer, Network
from hwgen.errors import BuildError

__all__ = ["SLACK_BEATS", "check_streams", "held_frames", "main_path", "shortcut_edge", "skip_depth"]

#: Beats of skip buffer beyond the analysis: the registers between the stages of the main branch.
SLACK_BEATS = 8


def _producer(net: Network, name: str) -> str:
    """The one node ``name`` reads (its first input for a join, the main branch)."""
    index = [n.name for n in net.layers].index(name)
    return net.inputs_of(index)[0]


def _ancestors(net: Network, name: str) -> set[str]:
    index = {n.name: i for i, n in enumerate(net.layers)}
    seen, todo = set(), [name]
    while todo:
        cur = todo.pop()
        if cur in seen or cur == INPUT:
            continue
        seen.add(cur)
        todo.extend(net.inputs_of(index[cur]))
    return seen | {INPUT}


def shortcut_edge(net: Network, join: JoinLayer) -> tuple[str, str]:
    """(X, consumer): the block's fork X and the node after it on the shortcut branch (J itself for an identity
    shortcut). BuildError when the shortcut does not meet the main branch at a fork of the network."""
    main, shortcut = join.inputs
    upstream = _ancestors(net, main)
    consumer, cur = join.name, shortcut
    while cur not in upstream:
        consumer, cur = cur, _producer(net, cur)
    if cur == INPUT:
        raise BuildError(f"join {join.name}: its shortcut and main branch meet only at the input pixels; a residual "
                         f"block must start at a binary node")
    return cur, consumer


def main_path(net: Network, join: JoinLayer, fork: str) -> list[str]:
    """The main branch's nodes from the one after ``fork`` to the join's main input, in stream order."""
    path, cur = [], join.inputs[0]
    while cur != fork:
        if cur == INPUT:
            raise BuildError(f"join {join.name}: the main branch does not start at the shortcut's fork {fork}")
        path.append(cur)
        cur = _producer(net, cur)
    return path[::-1]


def held_frames(stage) -> float:
    """H of one stage (a :class:`~hwgen.hw.stages.Stage`): the frames' worth of data it can hold (see the
    module docstring)."""
    return (stage.memory_bits["buffers"] / stage.in_bits_per_frame
            + stage.fifo_depth / stage.out_beats_per_frame)


def skip_depth(fork_shape: tuple[int, int, int], fork_width: int, held: float) -> int:
    """D in beats of the fork's stream: ``ceil(held * B_X) + 2 * R_X + SLACK_BEATS`` (module docstring);
    ``fork_shape`` (C, H, W) bits at ``fork_width`` bits per beat."""
    c, h, w = fork_shape
    if (c * h * w) % fork_width:
        raise BuildError(f"a map of {c} x {h} x {w} bits is not a whole number of {fork_width}-bit beats")
    frame_beats = c * h * w // fork_width
    row_beats = math.ceil(c * w / fork_width)
    return int(math.ceil(held * frame_beats)) + 2 * row_beats + SLACK_BEATS


def check_streams(net: Network) -> None:
    """BuildError unless every node's inputs can be streamed: a join's branches meet at a fork of the network."""
    for join in net.joins:
        fork, _ = shortcut_edge(net, join)
        main_path(net, join, fork)
