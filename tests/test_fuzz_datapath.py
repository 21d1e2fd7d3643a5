"""Register faults in an engine's arithmetic as faults of the golden model (benchmarks/fuzz_datapath.py): the
model gives the RTL's own scores under the fault, the solver's encoding gives the model's errors, and the
register check's decisions rest on both."""

from __future__ import annotations

import dataclasses
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from irnets import random_network
from ortools.sat.python import cp_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from fuzz_datapath import datapath_fault, faulty_scores, timing_parities  # noqa: E402
from fuzz_registers import flip_register_bit, register_sites  # noqa: E402
from fuzz_rtl import design_units, varied_images  # noqa: E402
from fuzz_solver import Miter, decide  # noqa: E402

from hwgen.compile.artifact import save_network  # noqa: E402
from hwgen.compile.golden import run_network  # noqa: E402
from hwgen.compile.ir import accumulator_range  # noqa: E402
from hwgen.hw.builder import BuildOptions, build  # noqa: E402

#: (engine module, register, bit; None: the register's top bit) and the function the fault reads:
#: an MVTU without a mask (l1: SIMD 4 = one lane group and a single lane; PE 1's copy of the input slice) and a
#: MAC on 4-bit weights (l0, SIMD 1: 27 steps, so that a product's sign bit carries some sums past the
#: accumulator's 16 bits; PE 1's copy of the difference, its sign bit: a padded tap's d = 0 reads -256; the
#: input slice on its way to neuron fold 0 only (x1_rr) and to the block-RAM buffer as well (x1_r)).
FAULTS = [("l1_conv_engine", "mc1_w0_0", 0, "xor"), ("l1_conv_engine", "mc0_w1_0", 0, "maj"),
          ("l1_conv_engine", "mc1_w0_1", 0, "lane"), ("l0_conv_engine", "prod1_0", 3, "product"),
          ("l0_conv_engine", "prod0_0", None, "product"), ("l0_conv_engine", "d3_0_fanout1", None, "difference"),
          ("l0_conv_engine", "x1_rr", 5, "input"), ("l0_conv_engine", "x1_r", 7, "input"),
          ("l1_conv_engine", "x2_fanout1", 3, "lane")]


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory):
    """(network, build folder, engines by module name, images, options): a padded 4-bit first layer (a MAC,
    PE 2 x SIMD 1), an unpadded binary conv (an MVTU without a mask, PE 2 x SIMD 4), an FC layer, a 2-bit
    score layer; varied images and, per first-layer channel, two whose centre window makes every term of
    that channel one sign (:func:`_one_sign`)."""
    rng = np.random.default_rng(11)
    net = random_network(rng, (3, 6, 6), [("conv", 4, 3, 1, 1), ("conv", 8, 3, 1, 0), ("fc", 4)], num_classes=4,
                         first_weight_bits=4, last_weight_bits=2)
    work = tmp_path_factory.mktemp("datapath")
    save_network(work / "net.hwir", net)
    options = BuildOptions(pe=1, overrides={"l0_conv": (2, 1), "l1_conv": (2, 4)})
    build(work / "net.hwir", work / "build", options, log=lambda *_: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        units = design_units(net, options)
    images = np.concatenate([varied_images(rng, net.input_shape, 120), _one_sign(net.layers[0])])
    return net, work / "build", units, images, options


def _one_sign(layer) -> np.ndarray:
    """Per output channel o of a 3 x 3 padded conv and sign s = +-1: the image whose window at (2, 2) holds 0
    where s W[o] > 0 and 255 elsewhere, every other pixel 0 (its accumulator there near an end of its range)."""
    images = []
    for o in range(layer.out_channels):
        for sign in (1, -1):
            image = np.zeros(layer.in_shape, np.uint8)
            image[:, 1:4, 1:4] = np.where(sign * layer.weights[o] > 0, 0, 255)
            images.append(image)
    return np.stack(images)


def _fault(design, module: str, register: str, bit: int | None):
    net, build_dir, units, *_ = design
    site, = [s for s in register_sites((build_dir / "top.v").read_text())
             if s.module.endswith(module) and s.name == register]
    bit = site.width - 1 if bit is None else bit
    names = [layer.name for layer in net.layers]
    return site, bit, datapath_fault(net, names.index(module.removesuffix("_engine")), units[module], register, bit)


def test_the_model_gives_the_rtl_scores(design, tmp_path: Path) -> None:
    """Each fault of :data:`FAULTS` inverted in top.v (the match counts as cells, as synthesised): the
    simulated scores under gaps and stalls are the model's, image by image, and differ from the golden
    model's on some images (so a wrong lane, weight or sign would show)."""
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    net, build_dir, _, images, _ = design
    golden = run_network(net, images).scores
    copy = tmp_path / "mutant"
    shutil.copytree(build_dir, copy)
    verilog = (build_dir / "top.v").read_text()
    for module, register, given, function in FAULTS:
        site, bit, fault = _fault(design, module, register, given)
        assert fault is not None and fault.function == function, (register, fault)
        model = faulty_scores(net, fault, images)
        assert (model != golden).any(axis=1).sum() >= 5, register
        if given is None and function == "product":  # its sign bit: the accumulator's wrap is part of the check
            layer = net.layers[fault.layer]
            final = fault.final(run_network(net, images, keep_intermediates=True).intermediates[f"{layer.name}.acc"]
                                + fault.errors(images), fault.threshold.reshape(1, -1, 1, 1))
            assert (fault.wrap(final) != final)[:, fault.channels].any(), register
        (copy / "top.v").write_text(flip_register_bit(verilog, site, bit))
        outcome = simulate(load_build_folder(copy), images, mode="bulk", match_counts="cells", gap_p=0.3,
                           stall_p=0.3, seed=1)
        assert not outcome.check.protocol_errors, register
        assert np.array_equal(outcome.check.scores, model), register


def test_the_solver_encoding_gives_the_model_errors(design) -> None:
    """With every pixel fixed to an image's, the miter's accumulator difference at each position of the
    faulty node's cone is the model's error there (fuzz_datapath.error_expression = DatapathFault.errors), and
    its faulty bit the model's (fuzz_datapath.faulty_bit = DatapathFault.bits, the accumulator's wrap
    included)."""
    net, _, _, images, _ = design
    for module, register, bit, _ in FAULTS:
        _, bit, fault = _fault(design, module, register, bit)
        golden = run_network(net, images[:3], keep_intermediates=True).intermediates
        inputs = images[:3] if fault.layer == 0 else golden[net.layers[fault.layer - 1].name]
        errors = fault.errors(inputs)
        bits = fault.bits(golden[f"{net.layers[fault.layer].name}.acc"] + errors)
        for n, image in enumerate(images[:3]):
            miter = Miter(net, fault)
            cone = list(zip(*np.nonzero(miter.cones[fault.layer])))
            deltas = [miter.delta(fault.layer, *p) for p in cone]
            outs = [miter.out(1, fault.layer, *p) for p in cone]
            for (c, y, x) in np.ndindex(*net.input_shape):  # every pixel fixed, read or not
                miter.model.Add(miter.pixel(c, y, x) == int(image[c, y, x]))
            solver = cp_model.CpSolver()
            assert solver.Solve(miter.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
            assert [solver.Value(d) for d in deltas] == [int(errors[n][p]) for p in cone], register
            assert [solver.Value(b) for b in outs] == [int(bits[n][p]) for p in cone], register


#: Accumulator bits (engine module, register, bit; None: the sign bit): a MAC's (27 steps) and an MVTU's (9 steps).
ACCUMULATOR_FAULTS = [("l0_conv_engine", "acc1", 3), ("l0_conv_engine", "acc0", None), ("l1_conv_engine", "acc1", 1),
                      ("l1_conv_engine", "acc0", None)]


def test_an_accumulator_bit_in_the_rtl_is_the_chain_of_inversions(design, tmp_path: Path) -> None:
    """Each fault of :data:`ACCUMULATOR_FAULTS` inverted in top.v, under gaps and stalls: the scores are the
    model's with every parity 1 (the engines here never wait an odd number of cycles between the steps of a
    result) on every image but the first (whose start value waited from the reset: its c_0 is that wait's
    parity), and differ from the golden model's on at least 5; with bit 0 of a MAC's accumulator, only images
    with an accumulator of the PE's channels within SF 2**b of its threshold or wrap change (81 of the 128
    have none and agree: the interval model's reach; one inversion per result, 2**b, fails here)."""
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    net, build_dir, _, images, _ = design
    golden = run_network(net, images, keep_intermediates=True)
    copy = tmp_path / "mutant"
    shutil.copytree(build_dir, copy)
    verilog = (build_dir / "top.v").read_text()

    def rtl(site, bit) -> np.ndarray:
        (copy / "top.v").write_text(flip_register_bit(verilog, site, bit))
        outcome = simulate(load_build_folder(copy), images, mode="bulk", match_counts="cells", gap_p=0.3,
                           stall_p=0.3, seed=1)
        assert not outcome.check.protocol_errors
        return outcome.check.scores

    for module, register, given in ACCUMULATOR_FAULTS:
        site, bit, fault = _fault(design, module, register, given)
        assert fault is not None and not fault.exact, register
        model = faulty_scores(net, fault, images)
        assert (model != golden.scores).any(axis=1).sum() >= 5, register
        assert np.array_equal(rtl(site, bit)[1:], model[1:]), register

    site, bit, fault = _fault(design, "l0_conv_engine", "acc1", 0)
    final = fault.final(golden.intermediates[f"{net.layers[fault.layer].name}.acc"], fault.threshold.reshape(1, -1, 1, 1))
    reach, half = fault.result_steps * fault.unit, 1 << (fault.acc_bits - 1)
    near = np.where(final >= 0, (final < reach) | (final + reach >= half), (final + reach >= 0) | (final - reach < -half))
    near = near[:, fault.channels].any(axis=(1, 2, 3))
    differ = (rtl(site, bit) != golden.scores).any(axis=1)
    assert differ.any() and (~near).sum() >= len(images) // 2
    assert not (differ & ~near).any()


def test_the_solver_encoding_of_an_accumulator_bit(design) -> None:
    """With every pixel fixed and each parity c_i fixed at random, the miter's accumulator difference and faulty
    bit at each position of the cone are the model's (DatapathFault.errors with those parities, .bits: the
    sign bit's wrap included), and timing_parities reads the parities back."""
    net, _, _, images, _ = design
    rng = np.random.default_rng(5)
    for module, register, bit in ACCUMULATOR_FAULTS:
        _, bit, fault = _fault(design, module, register, bit)
        layer = net.layers[fault.layer]
        golden = run_network(net, images[:2], keep_intermediates=True).intermediates
        inputs = images[:2] if fault.layer == 0 else golden[net.layers[fault.layer - 1].name]
        parities = rng.integers(0, 2, (2, *layer.out_shape, fault.result_steps))
        errors = fault.errors(inputs, parities)
        bits = fault.bits(golden[f"{layer.name}.acc"] + errors)
        wrapped = fault.wrap(fault.final(golden[f"{layer.name}.acc"] + errors, fault.threshold.reshape(1, -1, 1, 1)))
        for n, image in enumerate(images[:2]):
            miter = Miter(net, fault)
            cone = list(zip(*np.nonzero(miter.cones[fault.layer])))
            deltas = [miter.delta(fault.layer, *p) for p in cone]
            outs = [miter.out(1, fault.layer, *p) for p in cone]
            for key, var in [(k, v) for k, v in miter._memo.items() if k[0] == "timing_parity"]:
                miter.model.Add(var == int(parities[(n, *key[1:])]))
            for (c, y, x) in np.ndindex(*net.input_shape):
                miter.model.Add(miter.pixel(c, y, x) == int(image[c, y, x]))
            solver = cp_model.CpSolver()
            assert solver.Solve(miter.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
            assert [solver.Value(d) for d in deltas] == [int(errors[n][p]) for p in cone], register
            assert [solver.Value(b) for b in outs] == [int(bits[n][p]) for p in cone], register
            assert np.array_equal(timing_parities(fault, miter, solver)[0][fault.channels], parities[n][fault.channels])
        final = fault.final(golden[f"{layer.name}.acc"] + errors, fault.threshold.reshape(1, -1, 1, 1))
        assert ((wrapped != final)[:, fault.channels].any()) == (bit == fault.acc_bits - 1), register


def test_decide_reveals_or_proves(design) -> None:
    """A fault the images show is revealed by the solver (its image checked against the model inside
    decide). In a copy whose first layer outputs ones everywhere (thresholds at its accumulator's bottom),
    the faulty MVTU's accumulators are constants K; with the faulty channels' thresholds just past K plus the
    fault's reach (its steps times the largest step error), the fault is proved equivalent, and images agree."""
    net, _, _, images, _ = design
    _, _, fault = _fault(design, "l1_conv_engine", "mc1_w0_0", 0)
    assert decide(net, fault, timeout_s=30).verdict == "revealed"

    first, layer = net.layers[0], net.layers[fault.layer]
    ones = _with_thresholds(first, np.full(first.out_channels, accumulator_range(first)[0]), np.arange(first.out_channels))
    k = run_network(_replace(net, 0, ones), images[:1], keep_intermediates=True).intermediates[f"{layer.name}.acc"][0]
    reach = 2 * fault.weight * (layer.fan_in // fault.simd)
    t = np.asarray(layer.output.thresholds).copy()
    t[fault.channels] = k[fault.channels].max() + reach + 1
    assert t[fault.channels].max() <= accumulator_range(layer)[1] + 1  # not saturated: the proof is not trivial
    quiet = _replace(_replace(net, 0, ones), fault.layer, _with_thresholds(layer, t, fault.channels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        engine = design_units(quiet, design[4])["l1_conv_engine"]
    quiet_fault = datapath_fault(quiet, fault.layer, engine, "mc1_w0_0", 0)
    assert decide(quiet, quiet_fault, timeout_s=30).verdict == "equivalent"
    assert np.array_equal(faulty_scores(quiet, quiet_fault, images), run_network(quiet, images).scores)
    # PE 1's accumulator bit 0: the same reach (SF steps of 2 in these units), so equivalent there too, by the
    # interval and by the chain with the parities free; in the network itself the chain's image reveals it
    # under the parities the solver chose (checked in the golden model inside decide), the interval's only may
    accumulator = datapath_fault(quiet, fault.layer, engine, "acc1", 0)
    assert accumulator.result_steps * accumulator.unit == reach
    assert decide(quiet, accumulator, timeout_s=30).verdict == "equivalent"
    assert decide(quiet, dataclasses.replace(accumulator, interval=True), timeout_s=30).verdict == "equivalent"
    accumulator = _fault(design, "l1_conv_engine", "acc1", 0)[2]
    assert decide(net, accumulator, timeout_s=30).verdict == "revealed"
    assert decide(net, dataclasses.replace(accumulator, interval=True), timeout_s=30).verdict == "possible"


def _with_thresholds(layer, thresholds: np.ndarray, channels: np.ndarray):
    """``layer`` with per-channel ``thresholds`` and direction >= on ``channels`` (a per-channel output)."""
    d = np.asarray(layer.output.direction).copy()
    d[channels] = 1
    return dataclasses.replace(layer, output=dataclasses.replace(layer.output, thresholds=np.asarray(thresholds),
                                                                 direction=d))


def _replace(net, index: int, layer):
    return dataclasses.replace(net, layers=[layer if i == index else x for i, x in enumerate(net.layers)])


def test_what_is_not_modelled(design) -> None:
    """None for a register that is neither a lane adder's nor a product's (the match count itself), and for a
    product of an engine in accumulator mode (the score layer: its faults reach the scores directly)."""
    assert _fault(design, "l1_conv_engine", "mc1_count", 0)[2] is None
    assert _fault(design, "l3_score_engine", "prod0_0", 0)[2] is None


@pytest.mark.parametrize("n, copies", [(1, 1), (3, 1), (1, 4), (2, 4), (2, 9), (3, 16), (3, 100)])
def test_copy_registers_names_what_delay_copies_makes(n: int, copies: int) -> None:
    """hwgen.hw.engines.pipeline.copy_registers, which the model reads a copy's PEs from: every register
    delay_copies makes, by name, with the last copies its value passes through (traced back from each copy
    through the assignments Amaranth holds), the copy trees above COPY_TREE_ABOVE copies included."""
    from amaranth.hdl import Module, Signal

    from hwgen.hw.engines.pipeline import copy_registers, delay_copies

    m, source = Module(), Signal(4, name="source")
    last = delay_copies(m, source, n, copies, "d3_1")
    feeds = {st.lhs.name: st.rhs.name for st in m._statements["sync"]}
    reached: dict[str, set[int]] = {name: set() for name in feeds}
    for k, reg in enumerate(last):
        name = reg.name
        while name != "source":
            reached[name].add(k)
            name = feeds[name]
    assert {name: set(fed) for name, fed in copy_registers(n, copies, "d3_1").items()} == reached
