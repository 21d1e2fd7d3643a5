"""Fuzz the back end: random networks, random legal foldings, the RTL in Verilator against the golden model.

    python benchmarks/fuzz_rtl.py --nets 20 --seed 0 [--images 12] [--out runs/fuzz] [--cache-dir DIR]

Per network (seed ``S + i``, so any one is reproduced alone with ``--seed S+i --nets 1``):

* a random network (:func:`random_spec`): input 1-3 channels of 5-12 pixels square; 1-3 sliding
  convolutions (kernel 1-5, stride 1-2, padding 0..K//2, 2-16 channels; in one network of ten, one
  of them with 72 or 128: :data:`WIDE_SHARE`), max-pools (kernel 2-3, any
  stride 1..K: overlapping when the stride is below the kernel; OR or AND per channel) where the map
  allows, an optional whole-map FC layer; first-layer weights of 1, 2, 4 or 8 bits on uint8 pixels,
  offset by a per-channel mean or mapped through a per-channel table (a QONNX import's first layer),
  last layer of 1-8 bits; thresholds per channel or per position (XNOR-Net++ Gamma shapes 2-4),
  drawn from the accumulators random images produce (tests/irnets.py), with ``acc <= T`` on whole
  channels and at single positions; then some channels made constant, some set to the accumulator's
  exact bounds (lo, hi), and some given a negative slope (``acc <= T``); whole ``<=`` channels are
  turned by the compiler's flip pass (:func:`~hwgen.compile.fold.flip_negative_channels`) into
  flipped weights, as for a trained model with negative BatchNorm gamma, the rest stay ``<=`` in
  hardware; a network whose golden scores are one vector on the fuzz and 300 varied images (it
  computes a constant: no image could reveal a fault in its data path) is drawn again
  (:data:`CONSTANT_REDRAWS`);
* a random legal folding: ``--pe`` from the heaviest layer's divisors of C_out (with a random legal
  SIMD) or ``--fps``; a request the build refuses is redrawn (at most 20 times, then the network);
* images: random, all 0, all 255, and a checkerboard of 0/255;
* the C++ Verilator harness (``hwgen sim --bulk``'s) at a random input-gap and output-stall
  probability from {0, 0.3, 0.7, 0.95} plus a random pause pattern
  (:data:`~hwgen.sim.bulk.PAUSE_PATTERNS`: output stalled on every frame's last word, output stall
  bursts, input gaps between frames; 1-200 cycles long); every score and class must equal the
  golden model's.

Mutation check (``--mutants K``, default 20 per network; benchmarks/fuzz_mutants.py): K single-word
changes of the network (one weight or one threshold word); for each the fuzz images miss, an image
that reveals it is sought and added to the network's images *before* the RTL simulation, so every
mutant counted as caught is caught by images the RTL ran. Where the search fails, a constraint solver
(``--solver-timeout S`` seconds per mutant, default 40, then once more with ten times that for a mutant
still open: ``fuzz_mutants.SOLVER_RETRY_FACTOR``; or ``--no-solver``; benchmarks/fuzz_solver.py)
either gives a revealing image, added the same way, or proves that no image reveals the mutant
(equivalent). ``--mutation-report LOG`` recomputes the tally for the networks of an earlier campaign's
log (reproduced from their seeds). Faults in pipeline
registers need mutated RTL: ``--register-mutants K`` (default 0) inverts one bit of K clocked
registers of each design's Verilog in turn (benchmarks/fuzz_registers.py) and simulates each mutated
design on the same images, gaps and stalls, then on :data:`REGISTER_IMAGES` varied images, then
under the long waits of ``REGISTER_TIMINGS`` and the pauses of whole frames of :func:`frame_timings`
until one reveals it; caught = not the golden model's
scores, or the stream broken or stopped. A mutant none reveals is equivalent when it is a sliding-window
credit bound the fault only makes stricter or lowers harmlessly at a row end
(:func:`fuzz_registers.credit_fault_is_benign`), a max-pool
register no timing lets reach the output (:func:`fuzz_registers.benign_pool_register`), a register
no output depends on (:func:`fuzz_registers.unobservable_registers`), or a bit of
the score unit's running maximum that one image per reachable score-layer accumulator vector does not
reveal (:data:`RUNNING_MAXIMUM`, :func:`fuzz_solver.reachable_score_inputs`). A fault in an engine's
arithmetic (a match count's lane adder, an MVTU's input slice, a MAC lane's input, difference or product) is
written into the golden model exactly (benchmarks/fuzz_datapath.py) and decided by the solver: an image the RTL confirms (caught) or a proof
that none exists (equivalent); an accumulator bit, whose error depends on the timing, with the timing free
(equivalent: no timing moves a reachable accumulator across its threshold). Else it is missed.
``--close-calls`` adds, per class, an image on which that class's score and the best other class's
are as close as a search gets (a tie where it finds one; :func:`fuzz_mutants.close_call_images`),
before the RTL runs: where faults in the score path (an accumulator or product bit, the running
maximum, the tie rule) show, and random images rarely go.

A failure is saved as a reproducer in ``OUT/fail-SEED/``: ``net.hwir``, ``folding.json``,
``images.npy``, ``spec.json`` and the mismatch report.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_mutants import close_call_images, decide_twice, format_tally, mutation_images  # noqa: E402
from fuzz_registers import (benign_pool_register, credit_fault_is_benign, draw_register_mutants,  # noqa: E402
                            flip_register_bit, register_sites, unobservable_registers)
from fuzz_datapath import datapath_fault, faulty_scores  # noqa: E402
from fuzz_solver import reachable_score_inputs  # noqa: E402
from irnets import random_network  # noqa: E402

from amaranth.hdl import UnusedElaboratable  # noqa: E402

from hwgen.argtypes import non_negative_int, positive_float, positive_int  # noqa: E402
from hwgen.hw.builder import BuildOptions, build, plan_accelerator  # noqa: E402
from hwgen.hw.engines.mac import MACUnit  # noqa: E402
from hwgen.hw.engines.mvtu import MVTU  # noqa: E402
from hwgen.hw.engines.pool import MaxPoolUnit  # noqa: E402
from hwgen.hw.engines.swu import SlidingWindowUnit  # noqa: E402
from hwgen.hw.targets import get_target  # noqa: E402
from hwgen.compile.artifact import save_network  # noqa: E402
from hwgen.compile.fold import flip_negative_channels  # noqa: E402
from hwgen.compile.golden import run_network  # noqa: E402
from hwgen.compile.ir import ConvLayer, ThresholdOutput, accumulator_range  # noqa: E402
from hwgen.errors import HwgenError  # noqa: E402

STALLS = (0.0, 0.3, 0.7, 0.95)


def random_spec(rng: np.random.Generator) -> dict:
    """A random network description that random_network() turns into an IR (see the module docstring)."""
    c, size = int(rng.integers(1, 4)), int(rng.integers(5, 13))
    layers, h = [], size
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(1, min(5, h) + 1))
        pad = int(rng.integers(0, k // 2 + 1))
        stride = int(rng.integers(1, 3)) if h + 2 * pad - k >= 2 else 1
        layers.append(("conv", int(rng.choice([2, 4, 8, 16])), k, stride, pad))
        h = (h + 2 * pad - k) // stride + 1
        if h >= 3 and rng.random() < 0.4:
            kernel = int(rng.integers(2, min(3, h) + 1))
            pool_stride = int(rng.integers(1, kernel + 1))
            layers.append(("pool", kernel, pool_stride))
            h = (h - kernel) // pool_stride + 1
    if rng.random() < 0.5:
        layers.append(("fc", int(rng.choice([4, 8, 16]))))
    return {"input_shape": [c, size, size], "layers": [list(x) for x in layers],
            "num_classes": int(rng.integers(2, 11)), "first_weight_bits": int(rng.choice([1, 2, 4, 8])),
            "last_weight_bits": int(rng.choice([1, 2, 4, 8])), "per_position": bool(rng.random() < 0.3),
            "mixed_directions": bool(rng.random() < 0.5), "input_table": bool(rng.random() < 0.2)}


FEATURES = {"per-position thresholds": lambda s: s["per_position"],
            "Gamma-4 thresholds": lambda s: s.get("factored", False), "<= at positions and channels":
            lambda s: s["mixed_directions"], "input table": lambda s: s["input_table"],
            "overlapping pool": lambda s: any(x[0] == "pool" and x[2] < x[1] for x in s["layers"]),
            "pool": lambda s: any(x[0] == "pool" for x in s["layers"]),
            "strided conv": lambda s: any(x[0] == "conv" and x[3] > 1 for x in s["layers"]),
            "fc layer": lambda s: any(x[0] == "fc" for x in s["layers"]),
            "wide layer": lambda s: s.get("wide") is not None}


def coverage(specs: list[dict]) -> str:
    """How many of the networks had each feature of :data:`FEATURES`."""
    return "covered: " + ", ".join(f"{name} {sum(bool(has(s)) for s in specs)}" for name, has in FEATURES.items())


def edge_thresholds(rng: np.random.Generator, net, *, factored: bool = False):
    """Some thresholds at the accumulator's bounds, some channels with a negative slope (per channel or
    per position, whatever the layer has); the flip pass comes after. ``factored``: per-position layers keep
    their Gamma-shape-4 structure (only the slopes are drawn)."""
    for layer in net.layers:
        if not isinstance(layer, ConvLayer) or not isinstance(layer.output, ThresholdOutput):
            continue
        t, d = layer.output.thresholds.copy(), layer.output.direction.copy()
        lo, hi = accumulator_range(layer)
        if not (factored and layer.output.per_position):
            pick = rng.random(t.shape)
            t = np.where(pick < 0.1, lo, np.where(pick < 0.2, hi, t))
        negative = (rng.random(len(t)) < 0.3).reshape((-1,) + (1,) * (d.ndim - 1))
        d = np.where(negative, -1, d).astype(np.int8)
        layer.output = ThresholdOutput(t.astype(np.int64), d)
    return net


def images_for(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    checker = (np.indices(shape[1:]).sum(axis=0) % 2 * 255).astype(np.uint8)
    fixed = [np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8), np.broadcast_to(checker, shape).copy()]
    rand = rng.integers(0, 256, size=(max(0, n - len(fixed)), *shape), dtype=np.uint8)
    return np.concatenate([np.stack(fixed), rand])[:n]


def varied_images(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """n images drawn in turn from six distributions that push a layer's accumulators towards their ends and
    its thresholds' neighbourhoods more often than uniform pixels do: uniform; black and white at a random
    density; sparse (a tenth of the pixels random, the rest 0 or the rest 255); one random level with noise
    of +-3; half the pixels at one random level, the rest uniform."""
    def one(kind: int) -> np.ndarray:
        if kind == 0:
            return rng.integers(0, 256, size=shape)
        if kind == 1:
            return np.where(rng.random(shape) < rng.random(), 255, 0)
        if kind in (2, 3):
            sparse = rng.integers(0, 256, size=shape) * (rng.random(shape) < 0.1)
            return sparse if kind == 2 else 255 - sparse
        if kind == 4:
            return rng.integers(0, 256) + rng.integers(-3, 4, size=shape)
        return np.where(rng.random(shape) < 0.5, rng.integers(0, 256), rng.integers(0, 256, size=shape))
    return np.stack([np.clip(one(k % 6), 0, 255).astype(np.uint8) for k in range(n)])


def fold_request(rng: np.random.Generator, net) -> BuildOptions:
    if rng.random() < 0.25:
        return BuildOptions(fps=float(rng.choice([1e4, 1e5, 1e6, 1e7])))
    heaviest = max((x for x in net.layers if isinstance(x, ConvLayer)),
                   key=lambda x: x.weights.size * x.out_shape[1] * x.out_shape[2])
    c_out, fan_in = heaviest.weights.shape[0], int(np.prod(heaviest.weights.shape[1:]))
    pe = int(rng.choice([p for p in range(1, c_out + 1) if c_out % p == 0]))
    simd = int(rng.choice([s for s in range(1, min(fan_in, 64) + 1) if fan_in % s == 0]))
    return BuildOptions(pe=pe, simd=simd)


#: Share of networks with one wide convolution (its channels one of WIDE_CHANNELS): the layer that reads it
#: takes more than FANOUT_GROUP_BITS bits a pixel (a window's line buffer in slices, an engine's input slice
#: in lane groups, a sliced vector FIFO), which the 2-16 channels of random_spec never reach.
WIDE_SHARE = 0.1
WIDE_CHANNELS = (72, 128)


#: Draws of a network whose scores do not depend on the image (:func:`constant_scores`) that are made again,
#: at most, from the seeds ``[seed, 6, attempt]``: such a network (seeds 20006 and 20009: a 3 x 3 pool of
#: dense activations is 1 everywhere) computes a constant, so no image can reveal a fault in its data path
#: and every mutant there is missed whatever the RTL does. 6 of 56 seeds drew one before.
CONSTANT_REDRAWS = 20

#: Images besides the fuzz images on which :func:`constant_scores` looks for a second score vector.
CONSTANT_CHECK_IMAGES = 300


def constant_scores(net, images: np.ndarray, rng: np.random.Generator) -> bool:
    """Whether the golden model gives ``net`` one score vector on ``images`` and on
    :data:`CONSTANT_CHECK_IMAGES` :func:`varied_images`."""
    scores = run_network(net, np.concatenate([images, varied_images(rng, images.shape[1:],
                                                                    CONSTANT_CHECK_IMAGES)])).scores
    return bool((scores == scores[0]).all())


def draw(seed: int, n_images: int):
    """(rng after drawing, spec, the network before and after the flip pass, images) of one seed; None if
    refused. A network whose scores do not depend on the image is drawn again (:data:`CONSTANT_REDRAWS`;
    ``spec["redraws"]``, the last draw kept when all are)."""
    for attempt in range(CONSTANT_REDRAWS + 1):
        rng, spec, raw, images = _draw_once(seed, n_images, np.random.default_rng(
            seed if attempt == 0 else [seed, 6, attempt]))
        net = flip_negative_channels(raw)
        if not constant_scores(net, images, np.random.default_rng([seed, 7])):
            break
    spec["redraws"] = attempt
    return rng, spec, raw, net, images


def _draw_once(seed: int, n_images: int, rng: np.random.Generator):
    """(rng after drawing, spec, network before the flip pass, images): one draw of :func:`draw`."""
    spec = random_spec(rng)
    # drawn apart, so that the networks of seeds without them are those of earlier campaigns
    spec["factored"] = spec["per_position"] and bool(np.random.default_rng([seed, 4]).random() < 0.5)
    wide = np.random.default_rng([seed, 5])
    convs = [i for i, layer in enumerate(spec["layers"]) if layer[0] == "conv"]
    spec["wide"] = int(wide.choice(convs)) if wide.random() < WIDE_SHARE else None
    if spec["wide"] is not None:
        spec["layers"][spec["wide"]][1] = int(wide.choice(WIDE_CHANNELS))
    raw = random_network(rng, tuple(spec["input_shape"]), [tuple(x) for x in spec["layers"]],
                         num_classes=spec["num_classes"], first_weight_bits=spec["first_weight_bits"],
                         last_weight_bits=spec["last_weight_bits"], per_position=spec["per_position"],
                         mixed_directions=spec["mixed_directions"], input_table=spec["input_table"],
                         factored_thresholds=spec["factored"])
    raw = edge_thresholds(rng, raw, factored=spec["factored"])
    images = images_for(rng, tuple(spec["input_shape"]), n_images)
    return rng, spec, raw, images


#: Timings a register mutant the network's own timing misses is simulated under as well (in turn, until
#: one reveals it): a register that holds its value while the stream waits toggles under a stuck-inverted
#: input, so whether the fault shows depends on how long it waits; these two make waits long and varied.
REGISTER_TIMINGS = (dict(gap_p=0.0, stall_p=0.95, pattern="bursts", pattern_len=200),
                    dict(gap_p=0.95, stall_p=0.3, pattern="frame-gaps", pattern_len=7))


def frame_timings(frame_cycles: int) -> list[dict]:
    """Timings whose pauses are scaled to the design's frame interval T (``frame_cycles``), tried after
    :data:`REGISTER_TIMINGS`: output stalls on each frame's last word, input gaps after each frame and
    stall bursts of T/2, T, T + 1, 2T and 3T + 1 cycles (the waits of whole frames, of both parities,
    that fixed lengths miss), then random gaps and stalls of probability 0.5 and 0.9."""
    timings = [dict(gap_p=gap, stall_p=stall, pattern=pattern, pattern_len=length)
               for length in (max(1, frame_cycles // 2), frame_cycles, frame_cycles + 1, 2 * frame_cycles,
                              3 * frame_cycles + 1)
               for gap, stall, pattern in ((0.3, 0.5, "last-beat"), (0.5, 0.3, "frame-gaps"), (0.5, 0.5, "bursts"))]
    return timings + [dict(gap_p=p, stall_p=p, pattern="none", pattern_len=0) for p in (0.5, 0.9)]


def design_units(net, options: BuildOptions) -> dict[str, object]:
    """The sliding-window units, folded engines and max-pool units of the design ``build`` makes of ``net`` with ``options``,
    by the name of their module in its Verilog (``LAYER_window``, ``LAYER_engine``)."""
    acc, _, _ = plan_accelerator(net, options, get_target(options.target))
    units = {f"{stage.layer_name}_engine": stage.engine for stage in acc.stages
             if isinstance(stage.engine, (MACUnit, MVTU, MaxPoolUnit))}
    units.update({f"{stage.layer_name}_window": stage.window for stage in acc.stages
                  if getattr(stage, "window", None) is not None})
    return units


#: The score unit's running maximum (its module and register in the Verilog; hwgen.hw.engines.scores.ScoreUnit).
#: Class 0 of every frame rewrites it and it is read only while the frame's classes are scored, one per
#: cycle without a pause, so a fault in it changes a frame's class word as a function of the frame's
#: score-layer accumulators alone, whatever the timing.
RUNNING_MAXIMUM = ("scores", "best")


#: Images a register mutant that the fuzz images miss is simulated on as well (:func:`varied_images`, the
#: network's own timing): a fault in a weight, product or count register shows only where an accumulator
#: lies near its threshold, which a dozen images may not reach (seed 20003's fault in layer 0's weight word
#: register: 18 of 4,000 such images reveal it, 16 of them sparse dark ones; none of 1,000 from another draw,
#: none of the 48 images of earlier searches).
REGISTER_IMAGES = 4000


def register_check(build_dir: Path, images: np.ndarray, rng: np.random.Generator, count: int, *, net,
                   units: dict[str, object], cache_dir: Path | None, solver_timeout_s: float = 0.0,
                   **sim_options) -> dict:
    """Simulate ``count`` register mutants of the design in ``build_dir`` (one copy of the folder, its top.v
    replaced per mutant) on ``images`` with ``sim_options``, then on :data:`REGISTER_IMAGES` more images
    (:func:`varied_images`), then with each of :data:`REGISTER_TIMINGS` and :func:`frame_timings` (each at
    two harness seeds) until one reveals it. A mutant none reveals is settled where an argument covers every
    image and timing:

    * a credit bound of a window unit of ``units`` (:func:`design_units`) that the fault only makes stricter (or
      lowers harmlessly at a row end) is
      *equivalent* (:func:`fuzz_registers.credit_fault_is_benign`), as is a max-pool unit's register that no
      timing lets reach its output (:func:`fuzz_registers.benign_pool_register`) and a register no output
      depends on (:func:`fuzz_registers.unobservable_registers`);
    * a register of an engine's arithmetic that fuzz_datapath models exactly (a match count's lane adder, an
      MVTU's input slice, a MAC lane's input, difference or product: :func:`fuzz_datapath.datapath_fault`) is
      decided by the solver with
      ``solver_timeout_s`` (0: not tried; 10 times that when the first run leaves it open, as the word
      mutants: :func:`fuzz_mutants.decide_twice`): *caught* when the solver's image reveals it in the RTL as well,
      *equivalent* when no image can. The model must agree with the simulations: it predicts no difference
      on the images simulated so far, and a difference on the solver's image; else AssertionError;
    * an accumulator bit (its error depends on the timing: fuzz_datapath's model with the parities of the
      waits between steps free) the same way, after its interval model (errors of up to SF 2**b, which can
      only prove *equivalent*), except that the solver's image reveals it under the parities the solver chose,
      so it is simulated under every timing above: *caught* if one reveals it, else *missed*;
    * a bit of :data:`RUNNING_MAXIMUM` is simulated on one image per score-layer accumulator vector the
      network ``net`` can give (:func:`fuzz_solver.reachable_score_inputs`): *caught* if one reveals it,
      *equivalent* if none does and the vectors are all of them;

    else it is *missed*. {"tried", "caught", "caught_by_images", "caught_by_timing", "caught_by_score_inputs",
    "caught_by_solver", "equivalent": {name: why}, "missed": [name, ...]} with names ``module.register[bit]``. A mutant a rule
    calls equivalent that a simulation reveals stops the campaign (the rule would be wrong)."""
    import shutil

    from hwgen.errors import SimError
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    def reveals(timing: dict, frames: np.ndarray = images) -> bool:
        try:  # top.v, whose registers the mutants flip (the match counts as cells, as synthesised)
            return not simulate(load_build_folder(copy), frames, mode="bulk", cache_dir=cache_dir,
                                match_counts="cells", **timing).ok
        except SimError:  # the harness gave up (a stopped stream): the fault is visible
            return True

    verilog = (build_dir / "top.v").read_text()
    frame_cycles = load_build_folder(build_dir).cycles_per_frame
    more = [{**sim_options, **timing, "seed": sim_options.get("seed", 0) + extra}
            for timing in (*REGISTER_TIMINGS, *frame_timings(frame_cycles)) for extra in (0, 1000)]
    copy = build_dir.parent / "register-mutant"  # the build folder once; each mutant replaces its top.v
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(build_dir, copy)
    drawn = draw_register_mutants(verilog, rng, count)
    unobservable = unobservable_registers(build_dir / "top.v", register_sites(verilog))
    varied = varied_images(rng, images.shape[1:], REGISTER_IMAGES)
    missed, equivalent, by_images, by_timing, by_inputs, by_solver = [], {}, 0, 0, 0, 0
    golden = None  # the golden scores of images + varied, computed once when a datapath fault needs them
    score_inputs = None  # (images, complete), solved once per network when needed
    for site, bit in drawn:
        module = site.module.split(".")[-1]
        name = f"{module}.{site.name}[{bit}]"
        if site in unobservable:
            benign, why = True, "no output depends on it (Yosys opt_clean removes it)"
        elif isinstance(unit := units.get(module), MaxPoolUnit):
            why = benign_pool_register(unit, site.name)
            benign = why is not None
        else:
            benign = credit_fault_is_benign(unit, site.name, bit) if isinstance(unit, SlidingWindowUnit) else None
            why = "a credit bound made only stricter or lowered harmlessly at a row end"
        (copy / "top.v").write_text(flip_register_bit(verilog, site, bit))
        caught = (reveals(sim_options) or (reveals(sim_options, varied) and "images")
                  or (any(reveals(timing) for timing in more) and "timing"))
        if caught and benign:
            raise AssertionError(f"{build_dir}: {name} is revealed by a simulation but called benign")
        if caught:
            by_images += caught == "images"
            by_timing += caught == "timing"
        elif benign:
            equivalent[name] = why
        elif (module, site.name) == RUNNING_MAXIMUM:
            score_inputs = score_inputs or reachable_score_inputs(net)
            if len(score_inputs[0]) and reveals(sim_options, score_inputs[0]):
                by_inputs += 1
            elif score_inputs[1]:
                equivalent[name] = f"the running maximum, on all {len(score_inputs[0])} reachable score inputs"
            else:
                missed.append(name)
        elif (fault := _datapath(net, units.get(module), module, site.name, bit, solver_timeout_s)) is not None:
            seen = np.concatenate([images, varied])
            golden = run_network(net, seen).scores if golden is None else golden
            if fault.exact and not np.array_equal(faulty_scores(net, fault, seen), golden):
                raise AssertionError(f"{build_dir}: the model of {name} changes scores the RTL simulation did not")
            base = images[0]
            if not fault.exact:  # an accumulator bit: first the cheap interval, which can only prove
                interval, _ = decide_twice(net, dataclasses.replace(fault, interval=True), timeout_s=solver_timeout_s,
                                           base=base)
                if interval.verdict == "equivalent":
                    equivalent[name] = "an accumulator bit: no reachable accumulator within its reach (solver)"
                    continue
                # the search starts from an image the model reveals it on with every parity 1, if one was seen
                hits = np.nonzero((faulty_scores(net, fault, seen) != golden).any(axis=1))[0]
                base = seen[hits[0]] if len(hits) else base
            decision, _ = decide_twice(net, fault, timeout_s=solver_timeout_s, base=base)
            if decision.verdict == "revealed":
                # an exact model's image must reveal it; an accumulator bit's, under the parities the solver
                # chose, which the campaign's timings may not give
                shown = (reveals(sim_options, decision.image[None]) if fault.exact
                         else any(reveals(timing, decision.image[None]) for timing in (sim_options, *more)))
                if fault.exact and not shown:
                    raise AssertionError(f"{build_dir}: the solver's image for {name} does not reveal it in the RTL")
                by_solver += shown
                if not shown:
                    missed.append(name)
            elif decision.verdict == "equivalent":
                equivalent[name] = ("its error moves no reachable accumulator across its threshold (solver)"
                                    if fault.exact else "an accumulator bit: no timing moves a reachable "
                                    "accumulator across its threshold (solver)")
            else:
                missed.append(name)
        else:
            missed.append(name)
    shutil.rmtree(copy, ignore_errors=True)
    return {"tried": len(drawn), "caught": len(drawn) - len(missed) - len(equivalent), "caught_by_images": by_images,
            "caught_by_timing": by_timing, "caught_by_score_inputs": by_inputs, "caught_by_solver": by_solver,
            "equivalent": equivalent,
            "missed": missed}


def _datapath(net, engine, module: str, register: str, bit: int, solver_timeout_s: float):
    """fuzz_datapath's model of the fault (None: not one it models, not an engine, or no solver time)."""
    if solver_timeout_s <= 0 or not isinstance(engine, (MACUnit, MVTU)):
        return None
    names = [layer.name for layer in net.layers]
    return datapath_fault(net, names.index(module.removesuffix("_engine")), engine, register, bit)


def fuzz_one(seed: int, *, n_images: int, out: Path, cache_dir: Path | None, mutants: int = 0,
             register_mutants: int = 0, solver_timeout_s: float = 0.0, close_calls: bool = False) -> dict:
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    try:
        rng, spec, raw, net, images = draw(seed, n_images)
    except (HwgenError, ValueError) as exc:
        return {"seed": seed, "status": "generator refused", "why": str(exc)[:200]}
    flip_ok = np.array_equal(run_network(raw, images).scores, run_network(net, images).scores)
    tally = None
    if mutants:  # the sought images join the fuzz images before the RTL runs them
        images, tally = mutation_images(net, images, np.random.default_rng([seed, 1]), mutants,
                                        solver_timeout_s=solver_timeout_s)
    close = []
    if close_calls:  # one close-call image per class, also before the RTL runs
        close = [image for _, image in close_call_images(net, images, np.random.default_rng([seed, 3]))]
        images = np.concatenate([images, np.stack(close)])
    work = out / f"net-{seed}"
    work.mkdir(parents=True, exist_ok=True)
    save_network(work / "net.hwir", net)
    t0 = time.perf_counter()
    for _ in range(20):
        options = fold_request(rng, net)
        try:
            build(work / "net.hwir", work / "build", options, log=lambda *_: None)
            break
        except HwgenError as exc:
            last = str(exc)
    else:
        return {"seed": seed, "status": "no legal folding drawn", "why": last[:200]}
    build_s = time.perf_counter() - t0
    from hwgen.sim.bulk import PAUSE_PATTERNS

    stall = float(rng.choice(STALLS))
    gap = float(rng.choice(STALLS))
    pattern = str(rng.choice(PAUSE_PATTERNS))
    pattern_len = int(rng.choice([1, 7, 64, 200])) if pattern != "none" else 0
    sim_options = dict(seed=seed, gap_p=gap, stall_p=stall, pattern=pattern, pattern_len=pattern_len)
    outcome = simulate(load_build_folder(work / "build"), images, mode="bulk", cache_dir=cache_dir, **sim_options)
    result = {"seed": seed, "status": "ok" if outcome.ok and flip_ok else "MISMATCH", "spec": spec,
              "folding": options.describe(), "gap_p": gap, "stall_p": stall, "pattern": pattern,
              "pattern_len": pattern_len, "images": len(images), "close_call_images": len(close),
              "mismatches": int(outcome.check.mismatches), "flip_pass_ok": bool(flip_ok),
              "build_s": round(build_s, 2), "verilator_s": round(outcome.build_s or 0.0, 2),
              "sim_s": round(outcome.timing.wall_s, 3),
              "factored_layers": sum(bool(row.get("threshold_factors")) for row in
                                     json.loads((work / "build" / "report.json").read_text())["layers"])}
    if tally is not None:
        result["mutants"], result["fuzz_images"] = tally, n_images
    if register_mutants and result["status"] == "ok":
        with warnings.catch_warnings():  # the model's engines are never elaborated: silence Amaranth on that
            warnings.simplefilter("ignore", UnusedElaboratable)
            units = design_units(net, options)
            result["registers"] = register_check(work / "build", images, np.random.default_rng([seed, 2]),
                                                 register_mutants, net=net, units=units, cache_dir=cache_dir,
                                                 solver_timeout_s=solver_timeout_s, **sim_options)
            del units
            gc.collect()  # free them inside the filter
    if result["status"] != "ok":
        fail = out / f"fail-{seed}"
        fail.mkdir(parents=True, exist_ok=True)
        save_network(fail / "net.hwir", net)
        np.save(fail / "images.npy", images)
        (fail / "folding.json").write_text(json.dumps({"request": options.describe(), "pe": options.pe,
                                                        "simd": options.simd, "fps": options.fps}) + "\n")
        (fail / "spec.json").write_text(json.dumps(result, indent=1) + "\n")
        (fail / "report.txt").write_text(str(outcome.check.first_mismatch) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=positive_int, default=12, help="images per network (default 12)")
    p.add_argument("--out", type=Path, default=Path("runs/fuzz"))
    p.add_argument("--cache-dir", type=Path, default=None, help="Verilator model cache (default hwgen's)")
    p.add_argument("--mutants", type=non_negative_int, default=20, help="single-word mutants per network (default 20)")
    p.add_argument("--solver-timeout", type=positive_float, default=40.0, metavar="S",
                   help="seconds of constraint solving per mutant the images miss (default 40; benchmarks/fuzz_solver.py)")
    p.add_argument("--no-solver", action="store_true", help="no constraint solving: what the images miss stays undecided")
    p.add_argument("--register-mutants", type=non_negative_int, default=0,
                   help="pipeline-register faults simulated per network (default 0; benchmarks/fuzz_registers.py)")
    p.add_argument("--close-calls", action="store_true",
                   help="add per class an image whose score is as close to the top other class's as a search "
                        "finds (fuzz_mutants.close_call_images)")
    p.add_argument("--mutation-report", type=Path, default=None, metavar="LOG",
                   help="only the mutation check, for the networks simulated in an earlier campaign's LOG")
    args = p.parse_args(argv)
    if args.no_solver:
        args.solver_timeout = 0.0
    if args.mutation_report:
        if not args.mutation_report.is_file():
            p.error(f"--mutation-report: {args.mutation_report} is not a file (a campaign's fuzz-seedS.jsonl)")
        return mutation_report(args.mutation_report, args.mutants, args.solver_timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / f"fuzz-seed{args.seed}.jsonl"
    results = []
    print(f"{'seed':>6}  {'status':<10} {'layers':<44} {'folding':<24} {'gap':>4} {'stall':>5} {'s':>6}")
    for i in range(args.nets):
        t0 = time.perf_counter()
        r = fuzz_one(args.seed + i, n_images=args.images, out=args.out, cache_dir=args.cache_dir,
                     mutants=args.mutants, register_mutants=args.register_mutants,
                     solver_timeout_s=args.solver_timeout, close_calls=args.close_calls)
        r["seconds"] = round(time.perf_counter() - t0, 1)
        results.append(r)
        with open(log, "a") as f:
            f.write(json.dumps(r) + "\n")
        layers = " ".join(f"{x[0]}{x[1:]}" for x in r.get("spec", {}).get("layers", []))[:44]
        print(f"{r['seed']:>6}  {r['status']:<10} {layers:<44} {r.get('folding', '-'):<24} "
              f"{r.get('gap_p', 0):>4} {r.get('stall_p', 0):>5} {r['seconds']:>6}", flush=True)
    ran = [r for r in results if r["status"] in ("ok", "MISMATCH")]
    bad = [r for r in ran if r["status"] == "MISMATCH"]
    mean = sum(r["seconds"] for r in ran) / max(1, len(ran))
    print(f"\n{len(ran)} networks simulated ({len(results) - len(ran)} drawn but not built), {len(bad)} with a "
          f"mismatch; {mean:.1f} s per network; log {log}")
    redrawn = sum(bool(r["spec"].get("redraws")) for r in ran)
    print(coverage([r["spec"] for r in ran]) + f" (of {len(ran)}); drawn again for constant scores: {redrawn}; "
          f"layers with factored thresholds: "
          f"{sum(r.get('factored_layers', 0) for r in ran)} in {sum(bool(r.get('factored_layers')) for r in ran)} "
          f"networks")
    if args.mutants:
        print(format_tally([r["mutants"] for r in ran if "mutants" in r]))
    if args.register_mutants:
        print(format_registers([r["registers"] for r in ran if "registers" in r]))
    return 1 if bad else 0


def format_registers(tallies: list[dict]) -> str:
    """The register-fault line: the mutants; those proved equivalent, by reason; caught of the others (how
    many only on the extra images, under the extra timings or on the reachable score inputs); the registers
    whose faults were missed."""
    tried, caught = sum(t["tried"] for t in tallies), sum(t["caught"] for t in tallies)
    by_images = sum(t.get("caught_by_images", 0) for t in tallies)
    by_timing = sum(t.get("caught_by_timing", 0) for t in tallies)
    by_inputs = sum(t.get("caught_by_score_inputs", 0) for t in tallies)
    by_solver = sum(t.get("caught_by_solver", 0) for t in tallies)
    reasons = Counter(why.split(",")[0] for t in tallies for why in t.get("equivalent", {}).values())
    equivalent = sum(reasons.values())
    missed = [m for t in tallies for m in t["missed"]]
    why = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
    line = (f"register faults over {len(tallies)} networks: {tried} mutants, {equivalent} equivalent"
            f"{f' ({why})' if why else ''}; of the other {tried - equivalent}: {caught} "
            f"({100 * caught / max(1, tried - equivalent):.1f} %) caught by the RTL simulation ({by_images} of them "
            f"only on the extra images, {by_timing} only under the extra timings, {by_inputs} only on the "
            f"reachable score inputs, {by_solver} only on the solver's images)")
    return line + (f"; missed: {', '.join(missed)}" if missed else "")


def mutation_report(log: Path, count: int, solver_timeout_s: float) -> int:
    """The mutation check for every network an earlier campaign simulated (reproduced from its seed)."""
    records = []  # every line read and checked before the first network is drawn again
    for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
        try:
            r = json.loads(line)
            if r["status"] in ("ok", "MISMATCH"):  # a network drawn and simulated (else refused or not built)
                records.append((r["seed"], r.get("fuzz_images", r["images"])))
        except (json.JSONDecodeError, KeyError, TypeError):
            print(f"fuzz_rtl.py: error: --mutation-report: {log} line {number} is not a campaign record "
                  f"(a fuzz-seedS.jsonl line: status, and seed and images where simulated)", file=sys.stderr)
            return 2
    tallies = []
    for seed, n_images in records:
        _, _, _, net, images = draw(seed, n_images)
        tallies.append(mutation_images(net, images, np.random.default_rng([seed, 1]), count,
                                       solver_timeout_s=solver_timeout_s)[1])
    print(format_tally(tallies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
