"""The residual join engine alone on ECP5: placed LUT4 against the cost model, and the fit of its lane term.

Run by hand (not a test; about 1 min per design on this 2-core machine)::

    python benchmarks/join_synth.py [--pe 4 8 16 24] [--acc 64 576] [--nf 4] [--seed 1]
                                    [--freq 125] [--out build/bench_join]

Each design is one :class:`hwgen.hw.engines.JoinUnit` with C = PE * NF
channels, per-channel thresholds (two rows, random in the accumulator range
[-A, A] of ``--acc`` A, all comparisons ``>=`` as after the flip pass), so
its threshold ROM is NF words of 2 * PE thresholds of ``tw =
signed_bits(-A, A + 1)`` bits, exported with its stream ports as the top
level (``hwgen_top``) and run through ``hwgen synth`` for ecp5-85k.

The cost model (:class:`hwgen.hw.stages.JoinStage`) counts per design
``(JOIN_LANE_LUT4_PER_BIT * tw + JOIN_LANE_LUT4) * PE + JOIN_CONTROL_LUT4``
(per lane: the comparison with the selected threshold, the select and the
output register; per engine: counters and flow control; the fit's 4-word
threshold ROM included) plus a deeper ROM kept in logic and inversion XORs
(:func:`hwgen.hw.cost.threshold_rom_lut4`) and, for a LUT ROM deeper than 4
words, the comparisons with a threshold that is no longer a constant
(``JOIN_LUT_ROM_THRESHOLD_LUT4_PER_BIT`` per threshold bit). Fit at NF = 4,
check at ``--nf 16`` (LUT ROM) and ``--nf 128`` (block RAM). The table gives the placed LUT4
(nextpnr's TRELLIS_COMB), the model's estimate and their difference, then
the least-squares fit of the three constants over the designs (``placed -
extra = k * tw * PE + l * PE + c``).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from hwgen.compile.ir import signed_bits
from hwgen.hw.engines import JoinUnit
from hwgen.hw.stages import JOIN_CONTROL_LUT4, JOIN_LANE_LUT4, JOIN_LANE_LUT4_PER_BIT, JoinStage
from hwgen.hw.targets import get_target
from hwgen.synth.runner import run_synth

REPO = Path(__file__).resolve().parent.parent
TARGET = "ecp5-85k"
TOP = "hwgen_top"


def join_unit(pe: int, nf: int, acc: int, seed: int = 0) -> JoinUnit:
    """A JoinUnit of C = PE * NF channels, per-channel threshold pairs random in [-acc, acc + 1], all ``>=``."""
    rng = np.random.default_rng(seed)
    c = pe * nf
    thresholds = rng.integers(-acc, acc + 2, size=(2, c, 1))
    return JoinUnit(thresholds=thresholds, directions=None, pe=pe, acc_range=(-acc, acc))


def model_parts(unit: JoinUnit, target) -> tuple[int, float]:
    """(the cost model's LUT4 estimate, its part outside the three fitted terms: deeper ROM and its
    comparisons, inversion XORs)."""
    stage = JoinStage("join", unit, unit.pe, in_bits_per_frame=0, out_beats_per_frame=unit.nf)
    return stage.lut4(target), JoinStage.rom_lut4(unit)


def measure(folder: Path, pe: int, nf: int, acc: int, freq: float, seed: int) -> dict:
    unit = join_unit(pe, nf, acc)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(verilog.convert(unit, name=TOP))
    start = time.monotonic()
    result = run_synth(folder, TARGET, freq, seed, top=TOP, allow_timing_fail=True, stream=io.StringIO())
    placed = result.resource("LUT4").used
    estimate, extra = model_parts(unit, get_target(TARGET))
    print(f"  pe={pe} nf={nf} acc={acc}: {placed} LUT4, {result.fmax_mhz:.1f} MHz "
          f"({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)
    return {"pe": pe, "nf": nf, "acc": acc, "tw": unit.threshold_width, "placed": placed, "estimate": estimate,
            "extra": extra, "ff": result.resource("FF").used, "fmax": result.fmax_mhz}


def fit(rows: list[dict]) -> np.ndarray:
    """Least squares of ``placed - extra = k * tw * PE + l * PE + c`` over the rows: (k, l, c)."""
    a = np.array([[r["tw"] * r["pe"], r["pe"], 1] for r in rows], dtype=float)
    y = np.array([r["placed"] - r["extra"] for r in rows], dtype=float)
    return np.linalg.lstsq(a, y, rcond=None)[0]


def table(rows: list[dict], k: np.ndarray) -> str:
    lines = ["| PE | NF | acc range | tw | placed LUT4 | estimate | error | refit estimate | refit error | FF | Fmax (MHz) |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        refit = r["extra"] + k @ [r["tw"] * r["pe"], r["pe"], 1]
        lines.append(f"| {r['pe']} | {r['nf']} | +-{r['acc']} | {r['tw']} | {r['placed']:,} | {r['estimate']:,} | "
                     f"{100 * (r['estimate'] - r['placed']) / r['placed']:+.1f} % | {refit:,.0f} | "
                     f"{100 * (refit - r['placed']) / r['placed']:+.1f} % | {r['ff']:,} | {r['fmax']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pe", type=int, nargs="+", default=[4, 8, 16, 24],
                        help="lanes (PE 24 x 11-bit accumulators is near the 365 I/O of the CABGA381 package)")
    parser.add_argument("--acc", type=int, nargs="+", default=[64, 576],
                        help="accumulator ranges [-A, A] (576: a 3x3 conv of 64 binary channels)")
    parser.add_argument("--nf", type=int, default=4, help="neuron folds (C = PE * NF)")
    parser.add_argument("--freq", type=float, default=125.0, help="nextpnr --freq (MHz)")
    parser.add_argument("--seed", type=int, default=1, help="placer seed")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench_join")
    args = parser.parse_args()
    rows = [measure(args.out / f"pe{pe}_acc{acc}", pe, args.nf, acc, args.freq, args.seed)
            for acc in args.acc for pe in args.pe]
    k = fit(rows)
    print(f"JoinUnit on {TARGET} (NF={args.nf}, per-channel thresholds, all >=; model: JOIN_LANE_LUT4_PER_BIT = "
          f"{JOIN_LANE_LUT4_PER_BIT:g}, JOIN_LANE_LUT4 = {JOIN_LANE_LUT4:g}, JOIN_CONTROL_LUT4 = {JOIN_CONTROL_LUT4:g})\n")
    print(table(rows, k))
    print(f"\nleast squares: JOIN_LANE_LUT4_PER_BIT = {k[0]:.2f}, JOIN_LANE_LUT4 = {k[1]:.2f}, "
          f"JOIN_CONTROL_LUT4 = {k[2]:.1f} "
          f"(tw = signed_bits(-A, A + 1): {', '.join(f'A={a}: {signed_bits(-a, a + 1)}' for a in args.acc)})")


if __name__ == "__main__":
    main()
