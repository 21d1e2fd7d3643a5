"""What one accelerator simulation recorded, from either bench, and the timing derived from it.

:class:`StreamTrace` holds every output word (with its ``tlast``) and, per
frame, the cycles of its first and last input handshake and of its first and
last output word. Both the cocotb bench (:mod:`hwgen.sim.top_bench`) and the
bulk harness (:mod:`hwgen.sim.bulk`) produce one; it is stored as an ``.npz``
(:meth:`StreamTrace.save` / :meth:`StreamTrace.load`).

Timing (:meth:`StreamTrace.timing`), in clock cycles:

* ``latency``: first frame, from its first pixel accepted to its class word
  taken, inclusive (``out_last[0] - in_first[0] + 1``);
* ``cycles_per_frame``: steady state, the mean distance between the class
  words of consecutive frames over the second half of the run (the first
  half fills the pipeline); None with fewer than 2 frames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwgen.sim.formats import decode_words, words_per_frame

__all__ = ["StreamTrace", "Timing"]

NONE = np.iinfo(np.uint64).max


@dataclass
class Timing:
    """Measured cycles: first-frame ``latency``, steady-state ``cycles_per_frame``, total ``cycles``, speed."""

    latency: int | None
    cycles_per_frame: float | None
    cycles: int
    wall_s: float
    frames: int

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def images_per_s(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else float("nan")


@dataclass
class StreamTrace:
    """One run: ``words`` uint32 (M,), ``lasts`` uint8 (M,), per-frame cycles (N,) (``NONE``: did not happen)."""

    num_classes: int
    words: np.ndarray
    lasts: np.ndarray
    in_first: np.ndarray
    in_last: np.ndarray
    out_first: np.ndarray
    out_last: np.ndarray
    cycles: int
    wall_s: float
    stuck: bool = False
    protocol_errors: list[str] = field(default_factory=list)
    segments: list[int] = field(default_factory=lambda: [0])  # first frame of each independent run (reset)

    @property
    def frames_in(self) -> int:
        return len(self.in_first)

    @property
    def frames_out(self) -> int:
        return len(self.words) // words_per_frame(self.num_classes)

    def decoded(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores int64 (F, K), classes int64 (F,)) of the F whole frames that came out."""
        k = words_per_frame(self.num_classes)
        return decode_words(self.words[:self.frames_out * k], self.num_classes)

    def tlast_errors(self) -> list[str]:
        """``tlast`` must be 1 exactly on every frame's class word (the last of K + 1)."""
        k = words_per_frame(self.num_classes)
        expected = (np.arange(len(self.lasts)) % k) == k - 1
        bad = np.flatnonzero(self.lasts.astype(bool) != expected)
        if not len(bad):
            return []
        i = int(bad[0])
        msg = (f"m_axis_tlast is {int(self.lasts[i])} on word {i % k} of frame {i // k} "
               f"(expected 1 only on word {k - 1}, the class); {len(bad)} such words")
        return [msg]

    def errors(self) -> list[str]:
        errs = list(self.protocol_errors) + self.tlast_errors()
        if self.stuck:
            errs.append(f"the design stopped: {self.frames_out} of {self.frames_in} frames came out after "
                        f"{self.cycles} cycles ({int((self.in_first != NONE).sum())} frames started)")
        return errs

    def timing(self) -> Timing:
        """First-frame latency; steady-state cycles per frame, averaged over the segments' second halves."""
        n = self.frames_out
        latency = None
        if n >= 1 and self.in_first[0] != NONE:
            latency = int(self.out_last[0]) - int(self.in_first[0]) + 1
        spans, frames = 0, 0
        bounds = [*self.segments, len(self.in_first)]
        for a, b in itertools.pairwise(bounds):
            b = min(b, n)
            if b - a >= 2:
                h = a + max(0, min((b - a) // 2, b - a - 2))
                spans += int(self.out_last[b - 1]) - int(self.out_last[h])
                frames += b - 1 - h
        cpf = spans / frames if frames else None
        return Timing(latency=latency, cycles_per_frame=cpf, cycles=self.cycles, wall_s=self.wall_s, frames=n)

    @classmethod
    def concat(cls, traces: list[StreamTrace]) -> StreamTrace:
        """Traces of consecutive chunks of frames, each simulated from reset, as one trace.

        Cycles of chunk j are offset by the cycles of chunks 0..j-1 (one
        timeline, as if run one after another); ``wall_s`` is the longest
        chunk's (they ran at the same time); ``segments`` marks where each
        chunk starts. A stuck chunk ends the merged trace (the frames after
        it would be misnumbered).
        """
        kept: list[StreamTrace] = []
        for t in traces:
            kept.append(t)
            if t.stuck:
                break
        offsets = np.cumsum([0] + [t.cycles for t in kept[:-1]]).astype(np.uint64)

        def shifted(name: str) -> np.ndarray:
            parts = []
            for t, off in zip(kept, offsets):
                a = getattr(t, name)
                parts.append(np.where(a == NONE, NONE, a + off).astype(np.uint64))
            return np.concatenate(parts)

        starts = np.cumsum([0] + [t.frames_in for t in kept[:-1]])
        return cls(num_classes=kept[0].num_classes, words=np.concatenate([t.words for t in kept]),
                   lasts=np.concatenate([t.lasts for t in kept]), in_first=shifted("in_first"),
                   in_last=shifted("in_last"), out_first=shifted("out_first"), out_last=shifted("out_last"),
                   cycles=int(sum(t.cycles for t in kept)), wall_s=max(t.wall_s for t in kept),
                   stuck=any(t.stuck for t in kept),
                   protocol_errors=[f"chunk {j}: {e}" for j, t in enumerate(kept) for e in t.protocol_errors],
                   segments=[int(s) for s in starts])

    # -- storage ---------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        np.savez(path, num_classes=self.num_classes, words=self.words.astype(np.uint32),
                 lasts=self.lasts.astype(np.uint8), in_first=self.in_first, in_last=self.in_last,
                 out_first=self.out_first, out_last=self.out_last, cycles=self.cycles, wall_s=self.wall_s,
                 stuck=self.stuck, protocol_errors=np.array(self.protocol_errors, dtype=str),
                 segments=np.array(self.segments, dtype=np.int64))

    @classmethod
    def load(cls, path: str | Path) -> StreamTrace:
        with np.load(path) as z:
            return cls(num_classes=int(z["num_classes"]), words=z["words"], lasts=z["lasts"],
                       in_first=z["in_first"], in_last=z["in_last"], out_first=z["out_first"],
                       out_last=z["out_last"], cycles=int(z["cycles"]), wall_s=float(z["wall_s"]),
                       stuck=bool(z["stuck"]), protocol_errors=[str(s) for s in z["protocol_errors"]],
                       segments=[int(s) for s in z["segments"]])

    @classmethod
    def from_handshakes(cls, num_classes: int, frame_beats: int, frames: int, in_cycles: list[int],
                        words: list[int], lasts: list[int], out_cycles: list[int], *, cycles: int,
                        wall_s: float, stuck: bool, protocol_errors: list[str]) -> StreamTrace:
        """From per-beat handshake cycles (the cocotb bench's driver and monitor)."""
        k = words_per_frame(num_classes)
        in_c = np.asarray(in_cycles, dtype=np.uint64)
        out_c = np.asarray(out_cycles, dtype=np.uint64)

        def per_frame(c: np.ndarray, per: int, offset: int) -> np.ndarray:
            out = np.full(frames, NONE, dtype=np.uint64)
            sel = c[offset::per][:frames]
            out[:len(sel)] = sel
            return out

        return cls(num_classes=num_classes, words=np.asarray(words, dtype=np.uint32),
                   lasts=np.asarray(lasts, dtype=np.uint8),
                   in_first=per_frame(in_c, frame_beats, 0), in_last=per_frame(in_c, frame_beats, frame_beats - 1),
                   out_first=per_frame(out_c, k, 0), out_last=per_frame(out_c, k, k - 1),
                   cycles=cycles, wall_s=wall_s, stuck=stuck, protocol_errors=protocol_errors)
