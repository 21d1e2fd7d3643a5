"""The simulator's numpy side, without a simulator: stream formats, traces and timing, scoreboard reports."""

from __future__ import annotations

import numpy as np
from irnets import random_network

from hwgen.compile.golden import conv_accumulate, run_network
from hwgen.compile.ir import ConvLayer, ThresholdOutput
from hwgen.sim.formats import (
    beats_to_map,
    decode_fold_beats,
    decode_words,
    map_beats,
    pixel_stream,
    vector_beats,
    window_vectors,
)
from hwgen.sim.scoreboard import check_accelerator, compare_maps
from hwgen.sim.trace import NONE, StreamTrace


def test_pixel_stream_is_yxc_channel_fastest() -> None:
    img = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(1, 2, 3, 4)  # (N, C, H, W)
    s = pixel_stream(np.concatenate([img, img + 100]))
    assert s[:4].tolist() == [img[0, 0, 0, 0], img[0, 1, 0, 0], img[0, 0, 0, 1], img[0, 1, 0, 1]]
    assert len(s) == 48 and s[24] == 100


def test_decode_words_signed_scores_and_class() -> None:
    words = np.array([5, 0xFFFFFFFF, 0x80000000, 1, 7, 0, 0, 2], dtype=np.uint32)
    scores, classes = decode_words(words, 3)
    assert scores.tolist() == [[5, -1, -(1 << 31)], [7, 0, 0]]
    assert classes.tolist() == [1, 2]


def test_map_beats_round_trip() -> None:
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 2, size=(2, 6, 3, 2), dtype=np.uint8)
    assert np.array_equal(beats_to_map(map_beats(maps, 3), (6, 3, 2), 3), maps)


def test_window_vectors_sum_to_the_golden_accumulator() -> None:
    """Window data (x) and tap masks (valid), dotted with the (i, j, c) weights, give conv_accumulate."""
    rng = np.random.default_rng(1)
    for stride, pad in ((1, 1), (2, 0), (2, 2)):
        w = rng.choice(np.array([-1, 1]), size=(3, 4, 3, 3))
        layer = ConvLayer(name="c", in_shape=(4, 5, 6), weights=w, weight_bits=1, stride=stride, padding=pad,
                          input_kind="binary", output=ThresholdOutput(np.zeros(3, np.int64), np.ones(3, np.int8)))
        x = rng.integers(0, 2, size=(2, 4, 5, 6), dtype=np.uint8)
        data, valid = window_vectors(x, 3, stride, pad)
        acc = ((2 * data.astype(np.int64) - 1) * valid) @ w.transpose(0, 2, 3, 1).reshape(3, -1).T
        assert np.array_equal(acc.transpose(0, 3, 1, 2), conv_accumulate(layer, x))


def test_vector_beats_and_fold_decoding() -> None:
    data = np.array([[1, 0, 1, 1]], dtype=np.uint8)
    valid = np.array([[1, 1, 0, 1]], dtype=np.uint8)
    assert vector_beats(data, valid, 2, 1) == [0b1101, 0b1011]  # data bits, then valid bits
    beats = [0b0111_1101, 0b0000_0011]  # PE = 2 fields of 4 bits, NF = 1: [-3, 7], [3, 0]
    assert decode_fold_beats(beats, 2, 1, 4).tolist() == [[-3, 7], [3, 0]]
    assert decode_fold_beats([0b10, 0b01], 2, 2, None).tolist() == [[0, 1, 1, 0]]


def _trace(lasts, out_last, in_first) -> StreamTrace:
    n = len(out_last)
    return StreamTrace(num_classes=2, words=np.zeros(len(lasts), np.uint32), lasts=np.array(lasts, np.uint8),
                       in_first=np.array(in_first, np.uint64), in_last=np.full(n, NONE, np.uint64),
                       out_first=np.full(n, NONE, np.uint64), out_last=np.array(out_last, np.uint64),
                       cycles=1000, wall_s=0.5)


def test_trace_timing_and_tlast_check() -> None:
    t = _trace([0, 0, 1] * 4, [100, 150, 200, 250], [3, 60, 110, 160])
    assert t.tlast_errors() == []
    tm = t.timing()
    assert tm.latency == 98 and tm.cycles_per_frame == 50 and tm.cycles_per_s == 2000
    bad = _trace([0, 1, 1, 0, 0, 1], [10, 20], [0, 5])
    assert "m_axis_tlast is 1 on word 1 of frame 0" in bad.tlast_errors()[0]


def test_compare_maps_names_the_first_position() -> None:
    exp = np.zeros((2, 3, 2, 2), np.uint8)
    got = exp.copy()
    got[1, 2, 0, 1] = 1
    got[1, 0, 1, 0] = 1
    m = compare_maps(got, exp, "mvtu layer 'x'")
    assert (m.frame, m.y, m.x, m.channels, m.total) == (1, 0, 1, [2], 2)
    assert "frame 1, position (y=0, x=1): c2: 1 != 0" in m.describe()
    assert "RTL produced 1 frames, the golden model 2" in compare_maps(exp[:1], exp, "w")
    assert compare_maps(exp, exp, "w") is None


def test_scoreboard_explains_a_score_mismatch() -> None:
    rng = np.random.default_rng(2)
    net = random_network(rng, (1, 6, 6), [("conv", 4, 3, 1, 1), ("fc", 6)], num_classes=3)
    images = rng.integers(0, 256, size=(5, 1, 6, 6), dtype=np.uint8)
    gold = run_network(net, images)
    scores, classes = gold.scores.copy(), gold.predictions.copy()
    ok = check_accelerator(net, images, scores, classes)
    assert ok.ok and ok.first_mismatch is None
    scale = int(net.layers[-1].output.scale[1])
    scores[2, 1] += 2 * scale  # the RTL's accumulator of class 1 is 2 higher
    bad = check_accelerator(net, images, scores, classes)
    assert not bad.ok and bad.mismatches == 1
    text = bad.first_mismatch
    assert text.startswith("image 2:") and "scores differ for class(es) 1" in text
    ref = run_network(net, images[2:3], keep_intermediates=True)
    acc = int(ref.intermediates[f"{net.layers[-1].name}.acc"][0, 1, 0, 0])
    assert f"{acc + 2:>7}   {acc:10d}  <--" in text  # RTL acc vs golden acc of the class


def test_scoreboard_counts_missing_frames_and_wrong_class_words() -> None:
    rng = np.random.default_rng(3)
    net = random_network(rng, (1, 4, 4), [("fc", 4)], num_classes=3)
    images = rng.integers(0, 256, size=(3, 1, 4, 4), dtype=np.uint8)
    gold = run_network(net, images)
    classes = gold.predictions.copy()
    classes[0] = (classes[0] + 1) % 3
    check = check_accelerator(net, images, gold.scores[:2], classes[:2])
    assert check.mismatches == 2  # frame 0: wrong class word; frame 2: never came out
    assert "not the argmax of the RTL's own scores" in check.first_mismatch
