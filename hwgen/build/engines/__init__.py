"""Hardware engines: one Amaranth ``wiring.Component`` per layer kind (DESIGN.md section 3).

* :class:`~hwgen.build.engines.mvtu.MVTU`: matrix-vector-threshold unit (binary
  convolution / fully connected layer, XNOR-popcount, threshold or accumulator output).
* :class:`~hwgen.build.engines.mac.MACUnit`: the first layer's uint8 x k-bit engine.
  Both are :class:`~hwgen.build.engines.folded.FoldedEngine` subclasses (shared
  schedule, input buffer, accumulator, threshold compare and output FIFO; the
  pipelined adder tree is in :mod:`hwgen.build.engines.pipeline`).
* :class:`~hwgen.build.engines.swu.SlidingWindowUnit`: map stream -> window vectors
  (with zero padding as valid masks) for the MVTU / MAC unit.
* :class:`~hwgen.build.engines.pool.MaxPoolUnit`: per-channel OR / AND max-pool over bits.
"""

from __future__ import annotations

from hwgen.build.engines.mac import MACUnit
from hwgen.build.engines.mvtu import MVTU
from hwgen.build.engines.pool import MaxPoolUnit
from hwgen.build.engines.swu import SlidingWindowUnit

__all__ = ["MVTU", "MACUnit", "MaxPoolUnit", "SlidingWindowUnit"]
