"""UART line waveforms for the Amaranth-simulator tests: encode bytes to per-cycle levels, decode levels to bytes.

Both work on a list of line levels, one per clock cycle (idle high), 8N1,
LSB first. ``bit_cycles`` may be fractional (a sender at another baud rate).
"""

from __future__ import annotations


def encode(data: bytes, bit_cycles: float, *, idle_before: int = 5, idle_after: int = 20, gap_bits: float = 0.0,
           bad_stop: frozenset[int] = frozenset()) -> list[int]:
    """Levels of ``data`` sent as 8N1 characters of ``bit_cycles`` cycles per bit.

    ``gap_bits``: idle time between characters, in bits. ``bad_stop``: indices
    of characters sent with a stop bit of 0 (a framing error).
    """
    bits: list[tuple[float, float, int]] = []  # (start, end, level)
    t = float(idle_before)
    for k, byte in enumerate(data):
        frame = [0, *((byte >> j) & 1 for j in range(8)), 0 if k in bad_stop else 1]
        for level in frame:
            bits.append((t, t + bit_cycles, level))
            t += bit_cycles
        t += gap_bits * bit_cycles
    total = int(t) + idle_after
    levels = [1] * total
    for start, end, level in bits:
        for c in range(int(start + 0.5), min(total, int(end + 0.5))):
            levels[c] = level
    return levels


def decode(levels: list[int], bit_cycles: int) -> tuple[list[int], list[int], list[str]]:
    """(bytes, start cycle of each, problems) of an 8N1 waveform sampled in the middle of each bit.

    A problem is a stop bit that is not 1, or a level change away from a bit boundary
    (every bit must last exactly ``bit_cycles`` cycles).
    """
    out, starts, problems = [], [], []
    t = 0
    n = len(levels)
    while t < n:
        if levels[t] == 1:
            t += 1
            continue
        if t + 10 * bit_cycles > n:
            problems.append(f"character at cycle {t} is cut off")
            break
        for j in range(10):
            seg = levels[t + j * bit_cycles:t + (j + 1) * bit_cycles]
            if len(set(seg)) != 1:
                problems.append(f"bit {j} of the character at cycle {t} is not {bit_cycles} cycles of one level: {seg}")
        value = sum(levels[t + (1 + j) * bit_cycles + bit_cycles // 2] << j for j in range(8))
        if levels[t + 9 * bit_cycles + bit_cycles // 2] != 1:
            problems.append(f"stop bit of the character at cycle {t} is 0")
        out.append(value)
        starts.append(t)
        t += 10 * bit_cycles
    return out, starts, problems
