"""Hardware engines: one Amaranth ``wiring.Component`` per layer kind (DESIGN.md section 3).

* :class:`~hwgen.hw.engines.mvtu.MVTU`: matrix-vector-threshold unit (binary
  convolution / fully connected layer, XNOR-popcount, threshold or accumulator output).
* :class:`~hwgen.hw.engines.mac.MACUnit`: the first layer's uint8 x k-bit engine.
  Both are :class:`~hwgen.hw.engines.folded.FoldedEngine` subclasses (shared
  schedule, input buffer, accumulator, threshold compare and output FIFO; the
  pipelined adder tree is in :mod:`hwgen.hw.engines.pipeline`).
* :class:`~hwgen.hw.engines.swu.SlidingWindowUnit`: map stream -> window vectors
  (with zero padding as valid masks) for the MVTU / MAC unit.
* :class:`~hwgen.hw.engines.pool.MaxPoolUnit`: per-channel OR / AND max-pool over bits.
* :class:`~hwgen.hw.engines.join.JoinUnit`: a residual join, the main branch's
  accumulators against the threshold the shortcut bit selects; with
  :class:`~hwgen.hw.engines.fork.Fork` (a stream read by several nodes).
"""

from __future__ import annotations

from hwgen.hw.engines.fork import Fork
from hwgen.hw.engines.join import JoinUnit
from hwgen.hw.engines.mac import MACUnit
from hwgen.hw.engines.mvtu import MVTU
from hwgen.hw.engines.pool import MaxPoolUnit
from hwgen.hw.engines.swu import SlidingWindowUnit

__all__ = ["MVTU", "Fork", "JoinUnit", "MACUnit", "MaxPoolUnit", "SlidingWindowUnit"]
