"""Stream formats of the simulated hardware, as numpy conversions (no simulator needed).

Accelerator (``hwgen_top``, see :mod:`hwgen.sim.buildfolder`)
    Input: each frame is one uint8 image (C, H, W) sent as its H*W*C bytes
    in (y, x, c) order, channel fastest (:func:`pixel_stream`), IN_WIDTH / 8
    bytes per beat of ``s_axis_tdata[IN_WIDTH-1:0]``, the first on bits 7..0
    (:func:`pixel_beats`; one byte per beat at the default 8 bits).
    Output: per frame ``num_classes + 1`` 32-bit words: the class scores as
    two's complement, then the class index, with ``tlast`` on the class word
    (:func:`decode_words`).

Engines (``amaranth.lib.stream`` ports of :mod:`hwgen.hw.engines`)
    Bit maps: pixels in row-major order, each pixel C / width beats, beat q
    holding channels ``q*width ..`` on bits 0.. (:func:`map_beats`,
    :func:`beats_to_map`). Window vectors for the folded engines: per output
    position the fan-in F = K*K*C in (i, j, c) order with a tap mask
    (:func:`window_vectors`), sent as F / SIMD slices of ``lane_bits * SIMD``
    data bits with the SIMD valid bits above them (:func:`vector_beats`).
    Folded-engine outputs: NF beats per vector, bit / field p = channel
    ``nf * PE + p`` (:func:`decode_fold_beats`).

Payloads wider than 64 bits are Python ints.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "beats_to_map",
    "decode_fold_beats",
    "decode_words",
    "map_beats",
    "pack_lanes",
    "pixel_beats",
    "pixel_stream",
    "vector_beats",
    "window_vectors",
    "words_per_frame",
]


# -- accelerator -------------------------------------------------------------

def pixel_stream(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, C, H, W) -> uint8 (N * H * W * C,): the s_axis bytes, (y, x, c) order, frame after frame."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)).reshape(-1)


def pixel_beats(images: np.ndarray, in_width: int = 8) -> list[int]:
    """uint8 images (N, C, H, W) -> s_axis beats of ``in_width`` bits (ints): ``in_width / 8`` consecutive bytes of
    :func:`pixel_stream` per beat, byte k on bits ``8k .. 8k + 7``; a frame must be whole beats."""
    stream = pixel_stream(images)
    per_beat = in_width // 8
    if in_width % 8 or per_beat < 1 or (stream.size // max(len(images), 1)) % per_beat:
        raise ValueError(f"{in_width}-bit beats ({per_beat} bytes) must divide a frame of "
                         f"{stream.size // max(len(images), 1)} bytes")
    return pack_lanes(stream.reshape(-1, per_beat), 8)


def words_per_frame(num_classes: int) -> int:
    """Output words per frame: the scores and the class index."""
    return num_classes + 1


def decode_words(words: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """m_axis words (N * (K + 1),) as unsigned 32-bit -> (scores int64 (N, K), classes int64 (N,)).

    Scores are read as 32-bit two's complement; the class word as unsigned.
    """
    w = np.asarray(words, dtype=np.int64).reshape(-1, words_per_frame(num_classes)) & 0xFFFFFFFF
    scores = np.where(w[:, :num_classes] >= 1 << 31, w[:, :num_classes] - (1 << 32), w[:, :num_classes])
    return scores.astype(np.int64), w[:, num_classes].astype(np.int64)


# -- engines -----------------------------------------------------------------

def pack_lanes(values: np.ndarray, lane_bits: int) -> list[int]:
    """Rows of non-negative lanes (R, L) -> R ints, lane k on bits ``lane_bits * k ..``."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"lanes must be (rows, lanes), got {values.shape}")
    total = lane_bits * values.shape[1]
    if total <= 62:
        shifts = (np.arange(values.shape[1], dtype=np.int64) * lane_bits)
        return [int(v) for v in (values.astype(np.int64) << shifts).sum(axis=1)]
    out = []
    for row in values.astype(np.uint64):
        acc = 0
        for k, v in enumerate(row.tolist()):
            acc |= int(v) << (lane_bits * k)
        out.append(acc)
    return out


def map_beats(maps: np.ndarray, width: int) -> list[int]:
    """Bit maps uint8 (N, C, H, W) -> raw beats, ``width`` bits each (C / width beats per pixel)."""
    maps = np.asarray(maps)
    c = maps.shape[1]
    if c % width:
        raise ValueError(f"width {width} must divide C ({c})")
    return pack_lanes(maps.transpose(0, 2, 3, 1).reshape(-1, width), 1)


def beats_to_map(beats: list[int], shape: tuple[int, int, int], width: int) -> np.ndarray:
    """The inverse of :func:`map_beats`: whole frames of raw beats -> uint8 (N, C, H, W)."""
    c, h, w = shape
    per_frame = h * w * c // width
    if len(beats) % per_frame:
        raise ValueError(f"{len(beats)} beats is not a whole number of frames of {per_frame}")
    bits = np.array([[(v >> k) & 1 for k in range(width)] for v in beats], dtype=np.uint8)
    return bits.reshape(-1, h, w, c).transpose(0, 3, 1, 2)


def window_vectors(maps: np.ndarray, kernel: int, stride: int, padding: int) -> tuple[np.ndarray, np.ndarray]:
    """The sliding-window unit's window vectors of maps (N, C, H, W) (bits or pixels).

    Returns ``data`` (N, H_out, W_out, F) (the input's dtype) and ``valid``
    uint8 (N, H_out, W_out, F), F = K*K*C in (i, j, c) order: element
    ``(i*K + j)*C + c`` is channel c of input pixel ``(y*S + i - P, x*S + j - P)``;
    a padded tap has data 0 and valid 0. H_out = (H + 2P - K) // S + 1.
    """
    maps = np.asarray(maps)
    n, c, h, w = maps.shape
    last = np.pad(maps.transpose(0, 2, 3, 1), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    inside = np.pad(np.ones((1, h, w, c), dtype=np.uint8), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho, wo = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1

    def windows(x: np.ndarray) -> np.ndarray:
        win = sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride][:, :ho, :wo]
        return win.transpose(0, 1, 2, 4, 5, 3).reshape(x.shape[0], ho, wo, -1)  # (.., i, j, c)

    valid = np.broadcast_to(windows(inside), (n, ho, wo, kernel * kernel * c))
    return np.ascontiguousarray(windows(last)), np.ascontiguousarray(valid)


def vector_beats(data: np.ndarray, valid: np.ndarray, simd: int, lane_bits: int) -> list[int]:
    """Vectors (..., F) with tap masks -> F / SIMD raw beats each: data lanes, then the SIMD valid bits."""
    f = data.shape[-1]
    if f % simd:
        raise ValueError(f"SIMD {simd} must divide the fan-in {f}")
    d = pack_lanes(np.asarray(data).reshape(-1, simd), lane_bits)
    v = pack_lanes(np.asarray(valid).reshape(-1, simd), 1)
    return [a | (b << (lane_bits * simd)) for a, b in zip(d, v)]


def decode_fold_beats(beats: list[int], pe: int, nf: int, field_bits: int | None) -> np.ndarray:
    """Folded-engine output beats -> (vectors, NF * PE): bits (uint8, ``field_bits`` None) or signed fields (int64).

    Beat ``v * NF + nf`` holds channels ``nf * PE .. nf * PE + PE - 1`` of
    vector v: bit p (threshold mode) or the ``field_bits``-wide two's-complement
    field p (accumulator mode). Trailing beats of an incomplete vector are dropped.
    """
    n = len(beats) // nf
    width = 1 if field_bits is None else field_bits
    mask = (1 << width) - 1
    vals = np.array([[(b >> (p * width)) & mask for p in range(pe)] for b in beats[:n * nf]], dtype=np.int64)
    vals = vals.reshape(n, nf * pe)
    if field_bits is None:
        return vals.astype(np.uint8)
    return np.where(vals >> (field_bits - 1), vals - (1 << field_bits), vals)
