"""nextpnr-ecp5's two routers: which one ``hwgen synth`` runs, and router1's time limit.

router1 times better on small designs but may not converge (the arcs left fall, then each batch of
1,000 iterations takes longer than the last, for hours); router2 converges on every design measured
here but is slower on small ones (docs/synth.md). So below :data:`ROUTER2_MIN_LUT4` estimated LUT4
``hwgen synth`` runs router1 with :class:`Router1Limit` watching its log: after
:data:`ROUTER1_LIMIT_S` seconds of routing nextpnr is stopped and run again with router2 (the same
seed, so the same placement).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ROUTERS", "ROUTER2_MIN_LUT4", "ROUTER1_LIMIT_S", "ROUTER1_LOG", "Router1Limit", "choose_router"]

#: nextpnr-ecp5 routers, and the design size (hwgen build's LUT4 estimate) from which router2 is chosen.
ROUTERS = ("router1", "router2")
ROUTER2_MIN_LUT4 = 10_000

#: Seconds of routing router1 gets before the run is stopped and routed with router2 (0: no limit).
#: TFC ``--fps 100000`` on ECP5-85F, seeds 1-3 beside two other place-and-route runs: 249, 341 and 85 s;
#: where it did not converge (an earlier engine set, seed 1) it had routed for more than 10 minutes
#: with 489 arcs left, each 1,000 iterations slower than the last.
ROUTER1_LIMIT_S = 480

#: nextpnr's log of a router1 run stopped at its limit, kept in the build folder beside the router2 run's.
ROUTER1_LOG = "pnr.router1.log"

#: router1's first line of routing in the nextpnr log ("Info: Routing 32091 arcs.").
_ROUTER1_STARTS = re.compile(rb"^Info: Routing \d+ arcs\.", re.MULTILINE)


def choose_router(lut4_estimate: int | None) -> str:
    """router2 for designs estimated above :data:`ROUTER2_MIN_LUT4` LUT4, router1 otherwise.

    Measured on ECP5-85F (seed 1, 100 MHz requested; placed LUT4, and today's
    estimate with the glue counted): router1 had not converged on CNV (20.5k
    placed then; 15.3k now, estimated 14.2k) after 75 minutes, nor on SFC
    (16.1k, estimated 16.0k) after 8 minutes of routing, where router2 took
    8-15 and 5 minutes; on TFC (6.2k, estimated 6.2k) router1 reached 112.5
    MHz in 75 s and router2 91.0 MHz. Again on the engines of 2026-12-07 (TFC
    ``--fps 100000``, 150 MHz, seeds 1-3): router1 170.39 / 166.11 / 167.70 MHz,
    router2 144.68 / 139.41 / 134.26; router1 has also failed to converge on
    TFC on some earlier engine sets (docs/synth.md), hence :class:`Router1Limit`.
    """
    return "router2" if lut4_estimate is not None and lut4_estimate > ROUTER2_MIN_LUT4 else "router1"


class Router1Limit:
    """A :func:`~hwgen.synth.stage.run_stage` ``stop`` for nextpnr with router1: a reason once router1 has
    routed for more than ``limit_s`` seconds, from its first line of routing in ``log_path`` (read as it
    grows), else None. ``limit_s`` 0: never."""

    def __init__(self, log_path: Path, limit_s: float = ROUTER1_LIMIT_S) -> None:
        self.log_path, self.limit_s = Path(log_path), limit_s
        self._read = 0            # bytes of the log searched so far
        self._tail = b""          # the last, unfinished line
        self.routing_since: float | None = None  # the stage's elapsed seconds when routing began

    def __call__(self, elapsed: float) -> str | None:
        if not self.limit_s:
            return None
        if self.routing_since is None:
            if not self._routing_started():
                return None
            self.routing_since = elapsed
        if elapsed - self.routing_since > self.limit_s:
            return f"router1 still routing after {self.limit_s:g} s"
        return None

    def _routing_started(self) -> bool:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._read)
                new = f.read()
        except OSError:
            return False
        self._read += len(new)
        text = self._tail + new
        cut = text.rfind(b"\n") + 1
        self._tail = text[cut:]
        return _ROUTER1_STARTS.search(text[:cut]) is not None
