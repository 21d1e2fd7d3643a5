"""How conservative the skip-buffer bound is: the smallest depth of each skip buffer that still runs.

Run by hand (not a test; Amaranth's simulator, a few minutes)::

    python benchmarks/skip_buffer_depth.py [--size 12] [--width 0.25] [--pe-choice 2 1]
                                           [--images 3] [--seed 3]

A ResNet-8 of ``--width`` on ``--size`` x ``--size`` inputs (random weights,
identity and downsampling blocks; the network of tests/test_residual_hw.py),
folded at each ``--pe-choice`` (the heaviest layer's legal PE number, as the
tests choose it). For each skip buffer, with the others at the analysis'
depth D (:func:`hwgen.hw.graph.skip_depth`), a bisection over its depth
d in [1, D] finds

* ``no loss``: the smallest d at which ``--images`` frames without gaps or
  stalls come out bit-exact with every steady frame interval equal to the
  folding's cycles per frame (no throughput loss);
* ``no deadlock``: the smallest d at which they come out bit-exact under
  random input gaps (0.3) and output stalls (0.4), within 12 times the
  estimated cycles.

Both assume a deeper buffer is never worse (a FIFO that is deeper accepts
whatever a shallower one does). The table gives D, both minima and D over
the larger one: the margin the bound keeps.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from amaranth.hdl import UnusedElaboratable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from accel_sim import frame_intervals, golden_words, simulate_accelerator  # noqa: E402
from streams import mismatches  # noqa: E402
from test_compile import state_numpy  # noqa: E402
from test_residual import images_for, residual_model  # noqa: E402

from hwgen.compile.compiler import compile_architecture  # noqa: E402
from hwgen.hw.accelerator import Accelerator  # noqa: E402
from hwgen.hw.folding import fixed_stages, layer_shapes, solve_folding, summarize  # noqa: E402
from hwgen.train.zoo import ModelOptions, make_architecture  # noqa: E402

GAP_P, STALL_P = 0.3, 0.4


def runs(acc: Accelerator, images: np.ndarray, estimate: int, *, gaps: bool, seed: int) -> bool:
    """Whether ``images`` come out bit-exact (and, without gaps, at ``estimate`` cycles per steady frame)."""
    budget = (12 if gaps else 4) * estimate * len(images) + 5000
    try:
        trace = simulate_accelerator(acc, images, budget=budget, seed=seed,
                                     gap_p=GAP_P if gaps else 0.0, stall_p=STALL_P if gaps else 0.0)
    except AssertionError:  # the budget ran out: a deadlock (or a throughput far below the estimate)
        return False
    if mismatches(trace.outputs, golden_words(acc.net, images)):
        raise AssertionError("a mismatch with the golden model: not a depth question, a bug")
    return gaps or bool(np.all(frame_intervals(acc, trace)[1:] == estimate))


def smallest_depth(make, key: tuple[str, str], ok) -> int:
    """The smallest depth of skip buffer ``key`` for which ``ok(acc)`` holds (bisection; ``make()`` builds anew)."""
    acc = make()
    lo, hi = 1, acc.skips[key].depth  # ok(hi) is the claim under test
    while lo < hi:
        mid = (lo + hi) // 2
        acc = make()
        acc.skips[key].depth = mid
        if ok(acc):
            hi = mid
        else:
            lo = mid + 1
    return lo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=12)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--pe-choice", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UnusedElaboratable)  # accelerators built only to read their skips

    arch = make_architecture("resnet", input_shape=(3, args.size, args.size), num_classes=4, mean=(0.5,) * 3,
                             std=(0.25,) * 3, options=ModelOptions(width=args.width))
    net = compile_architecture(arch, state_numpy(residual_model(arch, args.seed)))
    images = images_for(arch, args.seed, args.images)
    heaviest = max(layer_shapes(net), key=lambda s: s.macs)
    legal = heaviest.legal_pe()
    print(f"ResNet-8 x{args.width:g} on {args.size}x{args.size}, {args.images} frames; "
          f"gaps {GAP_P} / stalls {STALL_P} for 'no deadlock'\n")
    print("| --pe | cycles/frame | skip buffer (fork -> consumer) | width | D (analysis) | no loss | no deadlock "
          "| D / max |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for choice in args.pe_choice:
        pe = legal[choice % len(legal)]
        folds = solve_folding(net, pe=pe)
        estimate = summarize(folds, fixed_stages(net)).cycles_per_frame

        def make() -> Accelerator:
            return Accelerator(net, folds)

        for key, skip in make().skips.items():
            start = time.monotonic()
            full = smallest_depth(make, key, lambda acc: runs(acc, images, estimate, gaps=False, seed=0))
            alive = smallest_depth(make, key, lambda acc: runs(acc, images, estimate, gaps=True, seed=args.seed))
            print(f"| {pe} | {estimate:,} | {skip.fork} -> {skip.consumer} | {skip.width} | {skip.depth} | {full} | "
                  f"{alive} | {skip.depth / max(full, alive):.1f} |", flush=True)
            print(f"  ({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
