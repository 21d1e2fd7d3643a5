"""The first layer's exact input table in hardware: the InputTableUnit in front of the MAC unit.

Random IR networks whose first layer reads a random per-channel table (an
arbitrary function of the pixel, values in [-128, 127]) run through the whole
accelerator in Amaranth's simulator against the golden model; a network whose
hardware was built from a different table must be caught.
"""

from __future__ import annotations

import numpy as np
import pytest
from accel_sim import golden_words, simulate_accelerator
from irnets import random_network
from streams import mismatches

from hwgen.hw.accelerator import Accelerator
from hwgen.hw.engines.lookup import table_offsets
from hwgen.hw.folding import fixed_stages, solve_folding, summarize
from hwgen.compile.ir import accumulator_range
from hwgen.errors import BuildError

CASES = {
    "conv_pad_fc": ((3, 6, 6), [("conv", 4, 3, 1, 1), ("fc", 6)], 2, 3, 1, 4),
    "int8_mlp": ((2, 5, 5), [("fc", 8)], 4, 5, 8, 3),
}


def _build(case: str, seed: int = 0):
    shape, layers, pe, simd, first_bits, classes = CASES[case]
    rng = np.random.default_rng(seed)
    net = random_network(rng, shape, layers, num_classes=classes, first_weight_bits=first_bits, input_table=True)
    folds = solve_folding(net, pe=pe, simd=simd)
    return net, folds, rng.integers(0, 256, size=(4, *shape), dtype=np.uint8)


@pytest.mark.parametrize("case", sorted(CASES))
def test_tables_are_bit_exact_with_stalls(case: str) -> None:
    net, folds, images = _build(case)
    acc = Accelerator(net, folds)
    assert acc.input_table is not None
    cycles = summarize(folds, fixed_stages(net)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=40 * cycles * len(images) + 5000, seed=5,
                                 gap_p=0.3, stall_p=0.4)
    assert not mismatches(trace.outputs, golden_words(net, images))


def test_a_different_table_is_caught() -> None:
    net, folds, images = _build("conv_pad_fc")
    expected = golden_words(net, images)
    first = net.layers[0]
    first.input_table = first.input_table.copy()
    first.input_table[:, ::3] = -first.input_table[:, ::3] - 1  # stays within [-128, 127]
    trace = simulate_accelerator(Accelerator(net, folds), images, budget=200_000)
    assert mismatches(trace.outputs, expected)


def test_offsets_map_each_channel_into_a_byte() -> None:
    table = np.array([np.arange(256) - 128, np.where(np.arange(256) >= 128, 1, -1)])
    p = table_offsets(table)
    assert list(p) == [128, 1]
    assert np.all((table + p[:, None] >= 0) & (table + p[:, None] <= 255))
    table_offsets(np.array([np.zeros(256), np.arange(256) - 300]).astype(np.int64))  # a span of 255 fits
    with pytest.raises(BuildError, match="channel 1 spans 256 values"):
        table_offsets(np.array([np.zeros(256), np.r_[np.arange(255), 255 + 1]]).astype(np.int64))


def test_the_accumulator_range_follows_the_table() -> None:
    net, _, _ = _build("int8_mlp")
    first = net.layers[0]
    lo, hi = accumulator_range(first)
    w = first.weights.reshape(len(first.weights), first.in_shape[0], -1)
    t = first.input_table
    per_tap_hi = np.maximum(w * t.max(axis=1)[None, :, None], w * t.min(axis=1)[None, :, None])
    assert hi == int(per_tap_hi.sum(axis=(1, 2)).max())
    assert lo < 0 < hi
