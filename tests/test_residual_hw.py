"""Residual networks in hardware: the join engine, forks and skip buffers, against the golden model.

Random residual graphs (tests/test_residual.py's strategy: identity,
strided-conv and pooled shortcuts, pools after joins, zero and negative
shortcut scales) are compiled from PyTorch, built and run through the whole
accelerator in Amaranth's simulator with random input gaps and output
back-pressure, and must give the golden model's words; the frame period must
be the folding's estimate; a skip buffer much smaller than the analysis
(hwgen/hw/graph.py) must deadlock; one join threshold off by one must be
caught. The join engine alone is checked against ``join_bits`` with
per-position thresholds and mixed directions. The trained ResNet-8 goes
through ``hwgen build`` and the Verilator bulk harness.
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from accel_sim import frame_intervals, golden_words, simulate_accelerator
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streams import mismatches
from test_compile import state_numpy
from test_residual import images_for, residual_model, residual_networks

from hwgen.compile.compiler import compile_architecture
from hwgen.compile.golden import join_bits, run_network
from hwgen.compile.ir import JoinLayer
from hwgen.errors import BuildError
from hwgen.hw.accelerator import Accelerator
from hwgen.hw.engines.join import JoinUnit
from hwgen.hw.folding import fixed_stages, layer_shapes, solve_folding, summarize
from hwgen.train.zoo import ModelOptions, make_architecture

REPO = Path(__file__).resolve().parent.parent


def _folded(net, pe_choice: int):
    """The network at ``--pe`` = the heaviest layer's legal PE number ``pe_choice`` (mod their count)."""
    heaviest = max(layer_shapes(net), key=lambda s: s.macs)
    legal = heaviest.legal_pe()
    folds = solve_folding(net, pe=legal[pe_choice % len(legal)])
    return folds, Accelerator(net, folds)


def _resnet(seed: int = 3, size: int = 12):
    arch = make_architecture("resnet", input_shape=(3, size, size), num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3,
                             options=ModelOptions(width=0.25))
    return arch, compile_architecture(arch, state_numpy(residual_model(arch, seed)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(residual_networks(), st.integers(0, 3))
def test_random_residual_graphs_are_bit_exact_with_gaps_and_back_pressure(case, pe_choice: int) -> None:
    arch, seed = case
    net = compile_architecture(arch, state_numpy(residual_model(arch, seed)))
    folds, acc = _folded(net, pe_choice)
    images = images_for(arch, seed, 3)
    cycles = summarize(folds, fixed_stages(net)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=40 * cycles * len(images) + 5000, seed=seed % 97,
                                 gap_p=0.3, stall_p=0.4)
    assert not mismatches(trace.outputs, golden_words(acc.net, images))


def test_a_resnet_runs_at_the_folding_estimate() -> None:
    """ResNet-8 at width 0.25 on 12 x 12 inputs: identity and downsampling blocks, no stalls, frame period =
    the slowest engine's cycles."""
    arch, net = _resnet()
    folds, acc = _folded(net, 1)
    images = images_for(arch, 3, 4)
    estimate = summarize(folds, fixed_stages(net)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=4 * estimate * len(images) + 5000)
    assert not mismatches(trace.outputs, golden_words(acc.net, images))
    assert {s.consumer for s in acc.skips.values()} == {"b0_add", "b1_down", "b2_down"}
    steady = frame_intervals(acc, trace)[1:]
    assert np.all(steady == estimate), (steady, estimate)


def test_a_skip_buffer_far_below_the_analysis_deadlocks() -> None:
    """The depth is not slack: with 2 beats the fork stalls the main branch before the join can take anything."""
    arch, net = _resnet()
    _, acc = _folded(net, 1)
    for skip in acc.skips.values():
        skip.depth = 2
    with pytest.raises(AssertionError, match="timeout"):
        simulate_accelerator(acc, images_for(arch, 3, 2), budget=20_000)


def test_one_join_threshold_off_by_one_is_caught() -> None:
    """An accelerator built with one join threshold moved by one (where that changes these images' scores)
    disagrees with the golden model of the real network."""
    arch, net = _resnet(seed=4)
    images = images_for(arch, 4, 4)
    want = run_network(net, images).scores
    for join in net.joins:
        for index in np.ndindex(join.thresholds.shape):
            bad = copy.deepcopy(net)
            next(j for j in bad.joins if j.name == join.name).thresholds[index] += 1
            if not np.array_equal(run_network(bad, images).scores, want):
                _, acc = _folded(bad, 1)
                trace = simulate_accelerator(acc, images, budget=200_000)
                assert mismatches(trace.outputs, golden_words(net, images))
                return
    pytest.fail("no single off-by-one join threshold changes these images' scores")


def _drive_join(unit: JoinUnit, beats: list[tuple[list[int], int]], *, seed: int) -> list[int]:
    """Offer (accumulators, shortcut bits) beats on the two inputs independently, with random gaps on each
    and random back-pressure on ``o``; the output beats in order."""
    rng = random.Random(seed)
    out: list[int] = []

    async def bench(ctx):
        mi = si = 0
        for _ in range(40 * len(beats) + 50):
            if len(out) == len(beats):
                break
            m_valid = mi < len(beats) and rng.random() < 0.6
            s_valid = si < len(beats) and rng.random() < 0.6
            ctx.set(unit.main.valid, m_valid)
            ctx.set(unit.shortcut.valid, s_valid)
            if mi < len(beats):
                ctx.set(unit.main.payload, beats[mi][0])
            if si < len(beats):
                ctx.set(unit.shortcut.payload, beats[si][1])
            ready = rng.random() < 0.7
            ctx.set(unit.o.ready, ready)
            m_take = m_valid and ctx.get(unit.main.ready)
            s_take = s_valid and ctx.get(unit.shortcut.ready)
            assert m_take == s_take or not (m_valid and s_valid), "one input taken without the other"
            assert not (m_take and not s_valid) and not (s_take and not m_valid)
            if ctx.get(unit.o.valid) and ready:
                out.append(ctx.get(unit.o.payload))
            mi += m_take
            si += s_take
            await ctx.tick()

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("per_position", [False, True])
def test_join_unit_equals_join_bits(per_position: bool) -> None:
    """4 channels at PE 2 (NF 2) on a 3 x 2 map; thresholds per channel or per position, mixed directions,
    some outside the accumulator range (constant bits)."""
    rng = np.random.default_rng(7)
    c, h, w, lo, hi = 4, 3, 2, -9, 9
    shape = (c, h, w) if per_position else (c,)
    t = rng.integers(lo - 3, hi + 4, size=(2, *shape))
    d = rng.choice([-1, 1], size=shape).astype(np.int8)
    join = JoinLayer("j", (c, h, w), t, d, inputs=("a", "s"))
    acc = rng.integers(lo, hi + 1, size=(5, c, h, w))
    s = rng.integers(0, 2, size=(5, c, h, w)).astype(np.uint8)
    want = join_bits(acc, s, join)
    unit = JoinUnit(thresholds=t.reshape(2, c, -1), directions=d.reshape(c, -1), pe=2, acc_range=(lo, hi))
    beats = []
    for n in range(5):
        for y in range(h):
            for x in range(w):
                for nf in range(2):
                    ch = slice(2 * nf, 2 * nf + 2)
                    beats.append(([int(a) for a in acc[n, ch, y, x]], int(s[n, ch, y, x] @ [1, 2])))
    got = _drive_join(unit, beats, seed=1)
    expected = [int(want[n, 2 * nf:2 * nf + 2, y, x] @ [1, 2])
                for n in range(5) for y in range(h) for x in range(w) for nf in range(2)]
    assert got == expected


def test_join_unit_refuses_bad_parameters() -> None:
    with pytest.raises(BuildError, match=r"\(2, C\)"):
        JoinUnit(thresholds=np.zeros(4, np.int64), directions=None, pe=2, acc_range=(-4, 4))
    with pytest.raises(BuildError, match="PE must divide"):
        JoinUnit(thresholds=np.zeros((2, 4), np.int64), directions=None, pe=3, acc_range=(-4, 4))
    with pytest.raises(BuildError, match="directions"):
        JoinUnit(thresholds=np.zeros((2, 4), np.int64), directions=np.zeros(4, np.int64), pe=2, acc_range=(-4, 4))


@pytest.fixture(scope="module")
def resnet_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = REPO / "models" / "resnet8_cifar10_short.ckpt"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    out = tmp_path_factory.mktemp("resnet") / "resnet8"
    result = subprocess.run([sys.executable, "-m", "hwgen.cli", "build", str(path), "--pe", "16", "-o", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return out


def test_build_reports_the_skip_buffers(resnet_build: Path) -> None:
    import json

    report = json.loads((resnet_build / "report.json").read_text())
    joins = [r for r in report["layers"] if r["engine"] == "JoinUnit"]
    assert [r["name"] for r in joins] == ["b0_add", "b1_add", "b2_add"]
    skips = [r["skip_buffer"] for r in joins]
    assert [(s["fork"], s["consumer"]) for s in skips] == [("conv0", "b0_add"), ("b0_add", "b1_down"),
                                                          ("b1_add", "b2_down")]
    assert report["memory"]["skip_bits"] == sum(s["bits"] for s in skips) > 0
    assert all(r["cycles"] == 32 * 32 for r in joins)
    text = (resnet_build / "report.md").read_text()
    assert "skip buffers" in text and "conv0 -> b0_add" in text


def test_trained_resnet_is_bit_exact_in_verilator(resnet_build: Path) -> None:
    """The bulk harness (C++ + Verilator), random images with input gaps and output stalls."""
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    folder = load_build_folder(resnet_build)
    images = np.random.default_rng(2).integers(0, 256, size=(6, 3, 32, 32), dtype=np.uint8)
    out = simulate(folder, images, mode="bulk", seed=5, gap_p=0.2, stall_p=0.3)
    assert out.ok, out.check.first_mismatch
    assert out.check.agree.sum() == 6
