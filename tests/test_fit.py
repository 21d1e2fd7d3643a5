"""``hwgen build --fit``: the fastest balanced folding that fits the target by the cost model (hwgen/hw/fit.py).

The expected foldings are derived by hand from the layer shapes and the
devices' data-sheet resources; the cost model's estimates are what the
solver is bound by (LUT4 <= 85 %, block RAM <= 100 %), and
tests/test_cost.py pins those estimates to placed designs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.errors import BuildError
from hwgen.hw.builder import load_model
from hwgen.hw.fit import LUT_FILL, design_cost, fit_folding
from hwgen.hw.folding import LayerFold, fewest_lanes, summarize
from hwgen.hw.targets import get_target

REPO = Path(__file__).resolve().parent.parent
CNV = REPO / "models" / "cnv_cifar10.ckpt"
TFC = REPO / "models" / "tfc_mnist.ckpt"


def _model(path: Path):
    if not path.is_file():
        pytest.skip(f"{path} is not in the repository")
    return load_model(path)[0]


def test_cnv_fills_the_ecp5_85f_at_its_fastest_folding() -> None:
    """CNV's floor is conv0 fully unrolled: 8,100 cycles (C_in = 3 caps SIMD). At that rate conv1 needs
    64 * 576 * 784 / 8,100 = 3,568 lanes or more: PE 64 x SIMD 64, a weight ROM of NF * SF = 1 * 9 words of
    4,096 bits, which block RAM reads at 36 bits per EBR: 114 of the 85F's 208 EBR for 36,864 bits. The solver
    keeps such shallow ROMs in LUTs instead, and the whole design then fits."""
    net = _model(CNV)
    target = get_target("ecp5-85k")
    fit = fit_folding(net, target)
    folds = {f.layer.name: f for f in fit.folds}
    assert summarize(fit.folds).cycles_per_frame == 8_100
    assert (folds["conv0"].pe, folds["conv0"].simd) == (64, 3) and (folds["conv1"].pe, folds["conv1"].simd) == (64, 64)
    assert fit.lut4 <= LUT_FILL * 83_640 and fit.bram_blocks <= 208
    assert fit.memory.rom_lut_max_depth >= 9
    # the same folding with every weight ROM deeper than 4 words in block RAM (the family's own map) does not fit
    _, blocks = design_cost(net, fit.folds, target, target.spec.memory)
    assert blocks > 208


def test_a_smaller_device_gets_the_fastest_folding_that_fits_and_no_faster() -> None:
    """TFC on the iCE40HX8K (7,680 logic cells, 32 block RAMs): the fit fits, and the balanced folding of the
    next faster candidate (fewer cycles per frame) does not, by the same estimates."""
    net = _model(TFC)
    target = get_target("ice40-hx8k")
    fit = fit_folding(net, target)
    cycles = summarize(fit.folds).cycles_per_frame
    assert fit.lut4 <= LUT_FILL * 7_680 and fit.bram_blocks <= 32
    assert cycles > 784  # slower than the input stream: the device, not the stream, is the bound
    faster = max(f.layer.cycles(pe, simd) for f in fit.folds for pe in f.layer.legal_pe()
                 for simd in f.layer.legal_simd() if f.layer.cycles(pe, simd) < cycles)
    folds = [LayerFold(f.layer, *fewest_lanes(f.layer, faster)) for f in fit.folds]
    lut4, blocks = design_cost(net, folds, target, fit.memory)
    assert lut4 > LUT_FILL * 7_680 or blocks > 32


def test_a_network_that_fits_nowhere_is_refused(monkeypatch) -> None:
    """1.5 Mbit of CNV weights against the ECP5-25F's 56 x 18 Kbit = 1.0 Mbit of block RAM plus 0.3 Mbit of LUT
    ROM in 85 % of its LUT4s: refused by the weight bound, before any folding is placed (the 48 samples took
    30-80 s)."""
    import hwgen.hw.fit as fit

    def no_search(*args, **kwargs):
        raise AssertionError("the search ran")

    monkeypatch.setattr(fit, "place_weights", no_search)
    with pytest.raises(BuildError, match="cnv does not fit ecp5-25k at any balanced folding") as refused:
        fit_folding(_model(CNV), get_target("ecp5-25k"))
    message = str(refused.value)
    for figure in ("1,542,848 weight bits", "56 x 18,432 = 1,032,192 bits", "20,645", "LUT ROM (330,389 bits",
                   "choose a larger --target"):
        assert figure in message, (figure, message)


def _weight_roms(rows: list[dict], memory) -> list[tuple[dict, bool]]:
    """(row, in block RAM under ``memory``) of each of a design's rows with a weight ROM."""
    return [(r, memory.rom_in_block_ram(r["pe"] * r["simd"] * r["weight_field_bits"], r["nf"] * r["sf"]))
            for r in rows if r["weights_bits"]]


@pytest.mark.parametrize("path", [TFC, CNV], ids=["tfc", "cnv"])
def test_the_weight_bound_is_below_every_estimate_the_search_sees(path: Path) -> None:
    """:func:`weight_capacity` is a lower bound of the cost model: at foldings across the whole candidate range
    (fastest to slowest), under every memory map :func:`place_weights` tries (so whatever it reports), on an
    ECP5 and an iCE40 (``scale`` 2), each weight ROM in block RAM has at least bits / Q of its row's block RAMs,
    each one in LUTs at least ``scale`` * bits / 16 - 1/2 of its row's LUT4, and the whole design's LUT4 and
    block RAMs hold all the weight bits. The LUT ROM alone, too: a ROM the family's own map puts in block RAM
    and a deeper map in LUTs adds at least ``scale`` * bits / 16 LUT4 to its row (less 1 for the two rows'
    rounding), which the engine's other terms would hide. A cost-model change that breaks the bound fails here."""
    from hwgen.hw.fit import _memories, balanced_folds, candidate_cycles, design_rows, weight_capacity

    net = _model(path)
    candidates = candidate_cycles(net)
    picks = sorted({candidates[round(i * (len(candidates) - 1) / 3)] for i in range(4)})
    for target in (get_target("ecp5-25k"), get_target("ice40-hx8k")):
        for cycles in picks:
            folds = balanced_folds(net, cycles)
            own = None
            for memory in _memories(target):  # the family's own first
                rows = design_rows(net, folds, target, memory)
                roms = _weight_roms(rows, memory)
                own = own or roms
                for (row, in_block_ram), (own_row, own_in_block_ram) in zip(roms, own):
                    held = (weight_capacity(target, 0, row["bram_blocks_estimate"], 0) if in_block_ram else
                            weight_capacity(target, row["lut4_estimate"], 0, 1))
                    assert row["weights_bits"] <= held, (target.name, cycles, memory, row["name"], in_block_ram)
                    if own_in_block_ram and not in_block_ram:
                        rom_lut4 = row["lut4_estimate"] - own_row["lut4_estimate"]
                        assert row["weights_bits"] <= weight_capacity(target, rom_lut4, 0, 2), (
                            target.name, cycles, memory, row["name"])
                lut4, blocks = (sum(r[key] for r in rows) for key in ("lut4_estimate", "bram_blocks_estimate"))
                bits = sum(r["weights_bits"] for r in rows)
                assert bits <= weight_capacity(target, lut4, blocks, len(roms)), (target.name, cycles, memory)


def test_the_weight_bound_alone_refuses_no_network_the_search_would_try(monkeypatch) -> None:
    """The bound does not over-refuse: where the weights fit it, the search runs. CNV on the ECP5-45F: its
    1.5 Mbit of weights are within the 108 block RAMs' 2.0 Mbit, so the search places foldings (and refuses
    it on its own estimates: block RAM at the slowest folding). TFC on an iCE40 without block RAM and with
    just enough logic cells to hold its weights as LUT ROM by the bound: the search runs; one cell fewer and
    the bound refuses it without placing a folding. The search's samples are cut to 2 to keep the test short."""
    import dataclasses

    import hwgen.hw.fit as fit
    from hwgen.hw.fit import balanced_folds, candidate_cycles, design_rows, weight_capacity

    monkeypatch.setattr(fit, "SAMPLES", 2)
    placed = []

    def counted(*args, **kwargs):
        placed.append(args[1])
        return place_weights(*args, **kwargs)

    place_weights = fit.place_weights
    monkeypatch.setattr(fit, "place_weights", counted)

    def outcome(net, target) -> tuple[int, str]:
        """(foldings placed, the refusal or "" for a fit)."""
        placed.clear()
        try:
            fit_folding(net, target)
        except BuildError as error:
            return len(placed), str(error)
        return len(placed), ""

    searched, refusal = outcome(_model(CNV), get_target("ecp5-45k"))
    assert searched and "weight bits" not in refusal, refusal
    assert refusal.startswith("cnv does not fit ecp5-45k at any balanced folding: at ")

    tfc = _model(TFC)
    bare = dataclasses.replace(get_target("ice40-hx8k"), name="bare", bram_blocks=0)
    folds = balanced_folds(tfc, candidate_cycles(tfc)[0])
    weights = [r["weights_bits"] for r in design_rows(tfc, folds, bare, bare.spec.memory) if r["weights_bits"]]
    edge = next(lut4 for lut4 in range(1, 100_000)
                if sum(weights) <= weight_capacity(bare, LUT_FILL * lut4, 0, len(weights)))
    searched, refusal = outcome(tfc, dataclasses.replace(bare, lut4=edge))
    assert searched and "weight bits" not in refusal, refusal
    searched, refusal = outcome(tfc, dataclasses.replace(bare, lut4=edge - 1))
    assert not searched and refusal.startswith(f"tfc does not fit bare at any balanced folding: its "
                                               f"{sum(weights):,} weight bits"), refusal


def test_cli_fit_and_its_conflicts(tmp_path: Path, capsys) -> None:
    """``--fit`` builds the fitted folding (TFC on ECP5: input-bound, 784 cycles); with ``--simd`` it is refused."""
    _model(TFC)
    assert main(["build", str(TFC), "--fit", "--target", "ecp5-85k", "-o", str(tmp_path / "t")]) == 0
    assert "--fit" in capsys.readouterr().out
    import json

    report = json.loads((tmp_path / "t" / "report.json").read_text())
    assert report["cycles_per_frame"] == 784 and report["folding"]["request"] == "--fit"
    assert main(["build", str(TFC), "--fit", "--simd", "4", "-o", str(tmp_path / "u")]) == 2
    assert "--simd applies with --pe" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_a_fitted_design_is_bit_exact_at_its_folding_rate() -> None:
    """A small network (8-bit first layer, stride 2, pool) fitted to the ECP5-25F: the folding is its fastest
    (the floor: every layer fully unrolled or the input stream), and in Amaranth's simulator, with input gaps
    and output back-pressure, every word equals the golden model's; without them the frame period is the
    folding's estimate."""
    from accel_sim import frame_intervals, golden_words, simulate_accelerator
    from irnets import random_network
    from streams import mismatches

    from hwgen.hw.accelerator import Accelerator
    from hwgen.hw.folding import fastest_cycles, fixed_stages

    rng = np.random.default_rng(5)
    shape = (3, 8, 8)
    net = random_network(rng, shape, [("conv", 8, 3, 1, 1), ("conv", 8, 3, 2, 1), ("pool", 2), ("fc", 8)],
                         num_classes=4, first_weight_bits=8, last_weight_bits=1)
    target = get_target("ecp5-25k")
    fit = fit_folding(net, target)
    cycles = summarize(fit.folds, fixed_stages(net)).cycles_per_frame
    assert cycles == fastest_cycles(net)[0]
    acc = Accelerator(net, fit.folds, memory=fit.memory)
    images = rng.integers(0, 256, size=(4, *shape), dtype=np.uint8)
    trace = simulate_accelerator(acc, images, budget=40 * cycles * len(images) + 5000, seed=3, gap_p=0.3,
                                 stall_p=0.4)
    assert not mismatches(trace.outputs, golden_words(net, images))
    trace = simulate_accelerator(acc, images, budget=4 * cycles * len(images) + 5000)
    assert not mismatches(trace.outputs, golden_words(net, images))
    steady = frame_intervals(acc, trace)[1:]
    assert np.all(np.abs(steady - cycles) <= 0.05 * cycles), (steady, cycles)


def test_fps_builds_place_the_weights_too() -> None:
    """``--fps 12000`` on CNV folds like ``--fit`` (8,333 cycles allow nothing slower than the 8,100 floor for
    conv0 and conv1): with every ROM deeper than 4 words in block RAM it needs more than the 85F's 208 EBR, so
    the build leaves the shallow ROMs to LUTs, as ``--fit`` does, instead of refusing."""
    from hwgen.hw.fit import place_weights
    from hwgen.hw.folding import solve_folding

    net = _model(CNV)
    target = get_target("ecp5-85k")
    folds = solve_folding(net, fps=12_000, clock_hz=100e6)
    assert design_cost(net, folds, target, target.spec.memory)[1] > 208
    placed = place_weights(net, folds, target)
    assert placed.bram_blocks <= 208 and placed.lut4 <= LUT_FILL * 83_640
    tfc = _model(TFC)
    folds = solve_folding(tfc, fps=100_000, clock_hz=100e6)
    assert place_weights(tfc, folds, target).memory == target.spec.memory  # fits as it was: unchanged


def test_a_build_prints_no_unused_engine_warnings(tmp_path: Path) -> None:
    """Every build costs foldings with accelerators that are never elaborated; freeing them must not print
    Amaranth's UnusedElaboratable warnings (20 of them on TFC before they were silenced)."""
    import subprocess
    import sys

    _model(TFC)
    run = subprocess.run([sys.executable, "-m", "hwgen.cli", "build", str(TFC), "--fps", "100000",
                          "-o", str(tmp_path / "b")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "UnusedElaboratable" not in run.stderr, run.stderr[-2000:]


def _single_refolds(fold: LayerFold) -> list[LayerFold]:
    from hwgen.hw.folding import equal_lane_foldings

    return [LayerFold(fold.layer, pe, simd) for pe, simd in equal_lane_foldings(fold.layer, fold.lanes)
            if (pe, simd) != (fold.pe, fold.simd)]


def test_equal_lane_refolding_keeps_the_rate_and_leaves_no_cheaper_single_refold() -> None:
    """TFC ``--fps 100000``: the fewest lanes give fc0 1 x 56 (the larger SIMD of equal lanes); its gathering
    converter, vector FIFO and input buffer are 448 bits wide, so 8 x 7 (56 bits) costs less by the estimate.
    :func:`cheapest_ties` keeps every layer's lanes and the pipeline's cycles, lowers the estimate, and leaves
    no layer whose refolding alone would save :data:`TIE_MIN_SAVING` more (what it promises)."""
    from hwgen.hw.fit import TIE_MIN_SAVING, cheapest_ties
    from hwgen.hw.folding import solve_folding

    net = _model(TFC)
    target = get_target("ecp5-85k")
    folds = solve_folding(net, fps=100_000, clock_hz=100e6)
    assert (folds[0].pe, folds[0].simd) == (1, 56)
    base = design_cost(net, folds, target, target.spec.memory)[0]
    fit = cheapest_ties(net, folds, target)
    assert [f.lanes for f in fit.folds] == [f.lanes for f in folds]
    assert [f.cycles for f in fit.folds] == [f.cycles for f in folds]
    assert (fit.folds[0].pe, fit.folds[0].simd) != (1, 56)
    assert fit.lut4 <= (1 - TIE_MIN_SAVING) * base and fit.fits(target)
    for index, fold in enumerate(fit.folds):
        for alt in _single_refolds(fold):
            trial = list(fit.folds)
            trial[index] = alt
            assert design_cost(net, trial, target, fit.memory)[0] > (1 - TIE_MIN_SAVING) * fit.lut4, alt


def test_layers_the_user_fixed_keep_their_folding(tmp_path: Path) -> None:
    """``--pe``'s heaviest layer and ``--folding`` overrides are not refolded; the other layers are."""
    import json

    from hwgen.hw.builder import BuildOptions, plan_accelerator
    from hwgen.hw.fit import cheapest_ties
    from hwgen.hw.folding import solve_folding

    net = _model(TFC)
    target = get_target("ecp5-85k")
    folds = solve_folding(net, fps=100_000, clock_hz=100e6)
    fixed = cheapest_ties(net, folds, target, fixed=frozenset({"fc0"}))
    assert (fixed.folds[0].pe, fixed.folds[0].simd) == (1, 56)
    # through the build: --pe 1 fixes the heaviest layer (fc0: 1 x 56); an override fixes fc0 at --fps
    _, pe_folds, _ = plan_accelerator(net, BuildOptions(pe=1), target)
    assert (pe_folds[0].pe, pe_folds[0].simd) == (1, 56)
    _, fps_folds, _ = plan_accelerator(net, BuildOptions(fps=100_000), target)
    assert (fps_folds[0].pe, fps_folds[0].simd) != (1, 56)
    _, kept, _ = plan_accelerator(net, BuildOptions(fps=100_000, overrides={"fc0": (1, 56)}), target)
    assert (kept[0].pe, kept[0].simd) == (1, 56)
    overrides = tmp_path / "folding.json"
    overrides.write_text(json.dumps({"fc0": {"pe": 1, "simd": 56}}))
    out = tmp_path / "b"
    assert main(["build", str(TFC), "--fps", "100000", "--folding", str(overrides), "-o", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads((out / "report.json").read_text())["layers"]}
    assert (rows["fc0"]["pe"], rows["fc0"]["simd"]) == (1, 56)
