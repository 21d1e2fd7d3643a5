"""Engine bench cases: one IR layer, its folding, random inputs and the stall pattern, in a folder.

A case folder holds

* ``layer.hwir``: a one-layer :class:`~hwgen.compile.ir.Network` with the
  layer under test (a :class:`~hwgen.compile.ir.ConvLayer` or a
  :class:`~hwgen.compile.ir.MaxPoolLayer`), saved with
  :func:`hwgen.compile.artifact.save_network` (it is only a container: it is
  never run as a network);
* ``inputs.npy``: uint8 input maps (N, C, H, W), bits or pixels;
* ``case.json``: ``engine`` ("mvtu", "mac", "swu", "pool"), the folding
  (``pe``, ``simd``, ``width``...), the figures of the DUT it was built with
  (``nf``, ``sf``, ``acc_width``, ``cycles_per_frame``, ``latency``), and the
  bench settings ``seed``, ``gap_p``, ``stall_p``.

The pytest side builds the DUT (:func:`make_dut`) from the same layer, so the
benches are parameterised from the DUT; the scoreboard's layer can be
replaced by a corrupted copy (:func:`corrupt_threshold`, :func:`flip_weight`)
to show that a mismatch is caught. :func:`run_engine` verilates one engine
(its ports ``i__*``, ``o__*``) or uses a :class:`Bundle` (:func:`build_bundle`):
several engines in one module, ports prefixed with their names
(``NAME__i__valid``...), so a set of quick tests costs one Verilator build.

Engines and what the golden model says about their outputs:

* ``mvtu`` (a binary layer; threshold or accumulator mode) and ``mac`` (the
  first, uint8 layer): input window vectors (:func:`hwgen.sim.formats.window_vectors`),
  output ``apply_threshold(conv_accumulate(layer, x))`` or, for the last
  layer, ``conv_accumulate(layer, x)`` itself;
* ``swu``: the window vectors of the input maps (its stream format);
* ``pool``: ``max_pool_bits(x, layer)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable

from hwgen.compile.artifact import load_network, save_network
from hwgen.compile.golden import apply_threshold, conv_accumulate, max_pool_bits
from hwgen.compile.ir import (
    ConvLayer,
    MaxPoolLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
    accumulator_range,
)

ENGINES = ("mvtu", "mac", "swu", "pool")


@dataclass
class Case:
    """A loaded case: the layer (IR), the input maps, and ``params`` from case.json."""

    layer: ConvLayer | MaxPoolLayer
    inputs: np.ndarray
    params: dict

    @property
    def engine(self) -> str:
        return self.params["engine"]


def save_case(folder: Path, layer: ConvLayer | MaxPoolLayer, inputs: np.ndarray, params: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    net = Network(name=f"case-{layer.name}", input_shape=tuple(layer.in_shape), layers=[layer], num_classes=0)
    save_network(folder / "layer.hwir", net)
    np.save(folder / "inputs.npy", np.ascontiguousarray(inputs, dtype=np.uint8))
    (folder / "case.json").write_text(json.dumps(params, indent=1))
    return folder


def load_case(folder: Path) -> Case:
    folder = Path(folder)
    net = load_network(folder / "layer.hwir")
    return Case(layer=net.layers[0], inputs=np.load(folder / "inputs.npy"),
                params=json.loads((folder / "case.json").read_text()))


# -- random layers -------------------------------------------------------------

def random_conv(rng: np.random.Generator, name: str, in_shape: tuple[int, int, int], c_out: int, k: int, *,
                stride: int = 1, padding: int = 0, kind: str = "binary", weight_bits: int = 1,
                last: bool = False) -> ConvLayer:
    """A random ConvLayer: +-1 (or k-bit) weights, thresholds spread over the accumulator range.

    Thresholds (direction +1, the engines' ``>=``) are drawn mostly near the
    middle of the range, with one channel constant 0 and one constant 1 when
    there are enough channels. ``last``: a ScoreOutput (random scale and bias).
    """
    c_in = in_shape[0]
    if weight_bits == 1:
        w = rng.choice(np.array([-1, 1], dtype=np.int64), size=(c_out, c_in, k, k))
    else:
        m = (1 << (weight_bits - 1)) - 1
        w = rng.integers(-m, m + 1, size=(c_out, c_in, k, k), dtype=np.int64)
    layer = ConvLayer(name=name, in_shape=tuple(in_shape), weights=w, weight_bits=weight_bits, stride=stride,
                      padding=padding, input_kind=kind, output=None,
                      input_offset=rng.integers(0, 256, size=c_in).astype(np.int64) if kind == "uint8" else None)
    if last:
        layer.output = ScoreOutput(scale=rng.integers(1, 4, size=c_out).astype(np.int64),
                                   bias=rng.integers(-50, 51, size=c_out).astype(np.int64))
    else:
        lo, hi = accumulator_range(layer)
        mid, spread = (lo + hi) // 2, max(1, (hi - lo) // 8)
        t = rng.integers(mid - spread, mid + spread + 1, size=c_out).astype(np.int64)
        if c_out > 2:
            t[0], t[1] = hi + 1, lo  # constant 0, constant 1
        layer.output = ThresholdOutput(thresholds=t, direction=np.ones(c_out, dtype=np.int8))
    return layer


def random_pool(rng: np.random.Generator, name: str, in_shape: tuple[int, int, int], k: int) -> MaxPoolLayer:
    """A MaxPoolLayer (stride = kernel) with a random OR / AND choice per channel."""
    return MaxPoolLayer(name=name, in_shape=tuple(in_shape), kernel=k, stride=k,
                        use_and=rng.random(in_shape[0]) < 0.5)


def random_inputs(rng: np.random.Generator, n: int, layer: ConvLayer | MaxPoolLayer) -> np.ndarray:
    hi = 256 if isinstance(layer, ConvLayer) and layer.input_kind == "uint8" else 2
    return rng.integers(0, hi, size=(n, *layer.in_shape), dtype=np.uint8)


def corrupt_threshold(layer: ConvLayer, channel: int = 0) -> ConvLayer:
    """A copy of ``layer`` with one wrong threshold: channel ``channel``'s moves to the middle of the range.

    The middle of the accumulator range flips that channel's bit for many
    inputs (if the threshold already was there, it moves by a quarter of the range).
    """
    import copy

    bad = copy.deepcopy(layer)
    lo, hi = accumulator_range(layer)
    t = bad.output.thresholds
    new = (lo + hi) // 2
    t[channel] = new if t[channel] != new else new + max(1, (hi - lo) // 4)
    return bad


def flip_weight(layer: ConvLayer, channel: int = 0, index: int = 0) -> ConvLayer:
    """A copy of ``layer`` with one weight negated (channel ``channel``, flat index ``index`` of its fan-in)."""
    import copy

    bad = copy.deepcopy(layer)
    w = bad.weights[channel].reshape(-1)
    w[index] = -w[index] if w[index] != 0 else 1
    bad.weights[channel] = w.reshape(bad.weights[channel].shape)
    return bad


# -- DUTs ------------------------------------------------------------------------

def fan_in_matrix(layer: ConvLayer) -> np.ndarray:
    """Weights (C_out, F) with the fan-in in the SWU's (i, j, c) order."""
    return layer.weights.transpose(0, 2, 3, 1).reshape(layer.out_channels, -1)


def make_dut(engine: str, layer: ConvLayer | MaxPoolLayer, fold: dict):
    """The Amaranth engine for ``layer`` with ``fold`` (``pe``/``simd``, or ``in_width``/``simd``, or ``width``)."""
    from hwgen.hw.engines import MVTU, MACUnit, MaxPoolUnit, SlidingWindowUnit

    if engine == "pool":
        return MaxPoolUnit(in_shape=layer.in_shape, kernel=layer.kernel, stride=layer.stride,
                           use_and=layer.use_and, width=fold["width"])
    if engine == "swu":
        k = layer.kernel[0]
        return SlidingWindowUnit(in_shape=layer.in_shape, kernel=k, stride=layer.stride, padding=layer.padding,
                                 in_width=fold["in_width"], simd=fold["simd"])
    t = layer.output.thresholds if isinstance(layer.output, ThresholdOutput) else None
    if engine == "mvtu":
        return MVTU(weights=fan_in_matrix(layer), pe=fold["pe"], simd=fold["simd"], thresholds=t)
    if engine == "mac":
        return MACUnit(weights=fan_in_matrix(layer), input_offset=layer.input_offset, in_channels=layer.in_shape[0],
                       pe=fold["pe"], simd=fold["simd"], thresholds=t)
    raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")


def dut_figures(engine: str, dut, n_frames: int) -> dict:
    """What a bench needs to know about the DUT: its stream widths and timing figures."""
    if engine in ("mvtu", "mac"):
        return {"nf": dut.nf, "sf": dut.sf, "pe": dut.pe, "simd": dut.simd,
                "acc_width": dut.acc_width if dut.accumulator_mode else None,
                "lane_bits": len(dut.i.payload.data) // dut.simd, "latency": dut.latency,
                "cycles_per_vector": dut.cycles_per_vector}
    if engine == "swu":
        return {"in_width": dut.in_width, "simd": dut.simd, "latency": dut.latency,
                "cycles_per_frame": dut.cycles_per_frame, "beats_out": dut.beats_per_frame_out}
    return {"width": dut.width, "latency": dut.latency, "cycles_per_frame": dut.cycles_per_frame}


def export_verilog(dut, name: str, path: Path) -> Path:
    from amaranth.back import verilog

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(dut, name=name))
    return path


# -- golden expectations -----------------------------------------------------------

def expected_outputs(case: Case) -> np.ndarray:
    """The golden model's output maps (N, C, H, W) for the case's engine and inputs.

    mvtu / mac: threshold bits, or the accumulator (last layer); swu: the
    window data (N, F, H_out, W_out) and tap masks stacked as (N, 2F, H_out, W_out);
    pool: the pooled bits.
    """
    layer, x = case.layer, case.inputs
    if case.engine == "pool":
        return max_pool_bits(x, layer)
    if case.engine == "swu":
        from hwgen.sim.formats import window_vectors

        data, valid = window_vectors(x, layer.kernel[0], layer.stride, layer.padding)
        return np.concatenate([data, valid], axis=-1).transpose(0, 3, 1, 2)
    acc = conv_accumulate(layer, x)
    if isinstance(layer.output, ScoreOutput):
        return acc.astype(np.int64)  # the last layer's engine emits the accumulator
    return apply_threshold(acc, layer.output)


# -- pytest side -------------------------------------------------------------------

SIM_DIR = Path(__file__).resolve().parent


@dataclass
class Bundle:
    """Several engines in one verilated model: ``model`` (a BuiltModel) and, per name, the engine and its spec."""

    model: object
    duts: dict
    specs: dict  # name -> (engine kind, layer, fold)


class _EngineBundle(Elaboratable):
    """An Elaboratable placing engines side by side; engine NAME's stream ports become NAME__i__valid, ..."""

    def __init__(self, duts: dict) -> None:
        from amaranth.hdl import Signal, Value

        self.duts = duts
        self.pins = {}
        for name, dut in duts.items():
            pins = {}
            for port in ("i", "o"):
                stream = getattr(dut, port)
                width = len(Value.cast(stream.payload))
                pins[port] = (Signal(name=f"{name}__{port}__valid"), Signal(name=f"{name}__{port}__ready"),
                              Signal(width, name=f"{name}__{port}__payload"))
            self.pins[name] = pins

    def ports(self) -> list:
        return [sig for pins in self.pins.values() for port in pins.values() for sig in port]

    def elaborate(self, platform):
        from amaranth.hdl import Module, Value

        m = Module()
        for name, dut in self.duts.items():
            m.submodules[name] = dut
            (iv, ir, ip), (ov, orr, op) = self.pins[name]["i"], self.pins[name]["o"]
            m.d.comb += [dut.i.valid.eq(iv), Value.cast(dut.i.payload).eq(ip), ir.eq(dut.i.ready),
                         ov.eq(dut.o.valid), op.eq(Value.cast(dut.o.payload)), dut.o.ready.eq(orr)]
        return m


def build_bundle(folder: Path, specs: dict) -> Bundle:
    """One Verilog module ``engines`` holding an engine per ``specs`` entry (name -> (kind, layer, fold)), verilated.

    One Verilator build instead of one per engine: the quick tests share it.
    Each engine's ports are prefixed with its name; ``clk`` and ``rst`` are shared.
    """
    from amaranth.back import verilog

    from hwgen.sim.runner import build_model

    duts = {name: make_dut(kind, layer, fold) for name, (kind, layer, fold) in specs.items()}
    top = _EngineBundle(duts)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "engines.v"
    path.write_text(verilog.convert(top, name="engines", ports=top.ports()))
    return Bundle(model=build_model([path], "engines"), duts=duts, specs=specs)


def run_engine(folder: Path, engine: str, layer: ConvLayer | MaxPoolLayer, fold: dict, inputs: np.ndarray, *,
               seed: int = 0, gap_p: float = 0.0, stall_p: float = 0.0, check_timing: bool = False,
               scoreboard_layer: ConvLayer | MaxPoolLayer | None = None, waves: bool = True,
               bundle: Bundle | None = None, name: str | None = None):
    """Run the bench of the engine for ``layer`` + ``fold`` on ``inputs``; a BenchResult.

    The engine is built alone (cached), or taken from ``bundle`` under
    ``name`` (then ``engine``, ``layer`` and ``fold`` must be that entry's).
    ``scoreboard_layer``: the layer the bench's golden model uses (default
    ``layer``); pass a corrupted copy to check that the bench catches it.
    """
    from hwgen.sim.runner import build_model, run_bench

    if bundle is not None:
        kind, built_layer, built_fold = bundle.specs[name]
        assert (kind, built_fold) == (engine, fold) and built_layer is layer, "not the bundle's engine"
        dut, model, prefix = bundle.duts[name], bundle.model, f"{name}__"
    else:
        dut, prefix = make_dut(engine, layer, fold), ""
    figures = dut_figures(engine, dut, len(inputs))
    if engine in ("mvtu", "mac"):
        _, ho, wo = layer.out_shape
        figures["cycles_per_frame"] = figures["cycles_per_vector"] * ho * wo
    params = {"engine": engine, **fold, **figures, "seed": seed, "gap_p": gap_p, "stall_p": stall_p,
              "check_timing": check_timing, "prefix": prefix}
    save_case(folder, scoreboard_layer if scoreboard_layer is not None else layer, inputs, params)
    if bundle is None:
        model = build_model([export_verilog(dut, engine, folder / f"{engine}.v")], engine)
    return run_bench(model, f"bench_{engine}", folder / "run", env={"HWGEN_SIM_CASE": str(folder)},
                     module_paths=[SIM_DIR], waves=waves, seed=seed)
