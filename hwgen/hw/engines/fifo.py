"""The engines' first-in first-out buffer: Amaranth's :class:`~amaranth.lib.fifo.SyncFIFO`, its storage marked
for synthesis as never read at an address written in the same cycle.

A read and a write meet at one address only when the FIFO is empty (``r_rdy``
low: the word read is not taken) or full (``w_rdy`` low: nothing is
written), so the storage's read-during-write result is never used. Marked
``no_rw_check``, Yosys adds no logic to give the old word on such a read;
without the mark it does, between the block RAM and the register behind it
(a vector FIFO read into the engine's input slice: CNV ``--pe 16``'s conv5,
5.85 ns of block-RAM clock-to-output and that logic on the critical path,
the register left outside the block RAM). Ports, depth and latency are
SyncFIFO's.
"""

from __future__ import annotations

from amaranth.lib import fifo

__all__ = ["SyncFIFO"]


class SyncFIFO(fifo.SyncFIFO):
    """:class:`amaranth.lib.fifo.SyncFIFO` with its storage memory marked ``no_rw_check`` (module docstring)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth:
            m.submodules.storage.attrs["no_rw_check"] = 1
        return m
