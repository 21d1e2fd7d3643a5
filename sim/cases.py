"""Engine bench cases: one IR layer, its folding, random inputs and the stall pattern, in a folder.

A case folder holds

* ``layer.hwir``: a one-layer :class:`~hwgen.compile.ir.Network` with the
  layer under test (a :class:`~hwgen.compile.ir.ConvLayer`,
  :class:`~hwgen.compile.ir.MaxPoolLayer` or
  :class:`~hwgen.compile.ir.JoinLayer`, whose ``inputs`` name two nodes the
  file does not hold), saved with :func:`hwgen.compile.artifact.save_network`
  (it is only a container: it is never run or checked as a network);
* ``inputs.npy``: the input maps (N, C, H, W): uint8 bits or pixels, or for
  a join int64 accumulators of the main branch;
* ``shortcut.npy`` (a join only): the shortcut's uint8 bits (N, C, H, W);
* ``case.json``: ``engine`` (a key of :data:`ENGINES`), the folding
  (``pe``, ``simd``, ``width``, ``acc_range``...), the figures of the DUT it
  was built with (``nf``, ``sf``, ``acc_width``, ``cycles_per_frame``,
  ``latency``), and the bench settings ``seed``, ``gap_p``, ``stall_p``.

The pytest side builds the DUT (:func:`make_dut`) from the same layer, so the
benches are parameterised from the DUT; the scoreboard's layer can be
replaced by a corrupted copy (:func:`corrupt_threshold`, :func:`flip_weight`)
to show that a mismatch is caught. :func:`run_engine` verilates one engine
(its stream ports ``PORT__*``: ``i`` and ``o``, or a join's ``main``,
``shortcut`` and ``o``) or uses a :class:`Bundle` (:func:`build_bundle`):
several engines in one module, ports prefixed with their names
(``NAME__i__valid``...), so a set of quick tests costs one Verilator build.

Engines (one class each in :mod:`engine_kinds`: DUT, figures, golden model,
beats) and what the golden model says about their outputs:

* ``mvtu`` (a binary layer; threshold or accumulator mode) and ``mac`` (the
  first, uint8 layer): input window vectors (:func:`hwgen.sim.formats.window_vectors`),
  output ``apply_threshold(conv_accumulate(layer, x))`` or, for the last
  layer, ``conv_accumulate(layer, x)`` itself;
* ``swu``: the window vectors of the input maps (its stream format), data
  and tap masks stacked as (N, 2F, H_out, W_out);
* ``pool``: ``max_pool_bits(x, layer)``;
* ``join``: ``join_bits(acc, shortcut, layer)``, the accumulators drawn within
  the fold's ``acc_range`` (:func:`random_join_inputs`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable
from engine_kinds import ENGINES, EngineKind, engine_kind

from hwgen.compile.artifact import load_network, save_network
from hwgen.compile.ir import (
    ConvLayer,
    JoinLayer,
    Layer,
    MaxPoolLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
    accumulator_range,
)

__all__ = ["ENGINES", "Bundle", "Case", "build_bundle", "corrupt_threshold", "dut_figures", "expected_outputs",
           "export_verilog", "flip_weight", "load_case", "make_dut", "random_conv",
           "random_inputs", "random_join", "random_join_inputs", "random_pool", "run_engine", "save_case"]


@dataclass
class Case:
    """A loaded case: the layer (IR), the input maps, ``params`` from case.json, a join's shortcut bits."""

    layer: Layer
    inputs: np.ndarray
    params: dict
    shortcut: np.ndarray | None = None

    @property
    def engine(self) -> str:
        return self.params["engine"]


def save_case(folder: Path, layer: Layer, inputs: np.ndarray, params: dict,
              shortcut: np.ndarray | None = None) -> Path:
    """Write a case folder; ``inputs`` are stored as the dtype of kind ``params["engine"]``."""
    folder.mkdir(parents=True, exist_ok=True)
    net = Network(name=f"case-{layer.name}", input_shape=tuple(layer.in_shape), layers=[layer], num_classes=0)
    save_network(folder / "layer.hwir", net)
    np.save(folder / "inputs.npy", np.ascontiguousarray(inputs, dtype=engine_kind(params["engine"]).input_dtype))
    if shortcut is not None:
        np.save(folder / "shortcut.npy", np.ascontiguousarray(shortcut, dtype=np.uint8))
    else:
        (folder / "shortcut.npy").unlink(missing_ok=True)
    (folder / "case.json").write_text(json.dumps(params, indent=1))
    return folder


def load_case(folder: Path) -> Case:
    folder = Path(folder)
    net = load_network(folder / "layer.hwir")
    shortcut = folder / "shortcut.npy"
    return Case(layer=net.layers[0], inputs=np.load(folder / "inputs.npy"),
                params=json.loads((folder / "case.json").read_text()),
                shortcut=np.load(shortcut) if shortcut.is_file() else None)


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


def random_join(rng: np.random.Generator, name: str, in_shape: tuple[int, int, int], acc_range: tuple[int, int], *,
                per_position: bool = False, mixed: bool = True) -> JoinLayer:
    """A JoinLayer (inputs ``main``, ``shortcut``) with thresholds drawn in [lo - 2, hi + 2] of ``acc_range``.

    Thresholds (2, C), or (2, C, H, W) with ``per_position``; directions +1,
    or (``mixed``) +1 / -1 at random. With more than two channels channel 0
    is constant (both rows below the range) and channel 1's bit follows the
    shortcut (row 0 above the range, row 1 below).
    """
    lo, hi = acc_range
    c, h, w = in_shape
    shape = (c, h, w) if per_position else (c,)
    t = rng.integers(lo - 2, hi + 3, size=(2, *shape)).astype(np.int64)
    if c > 2:
        t[:, 0] = lo - 2
        t[0, 1], t[1, 1] = hi + 2, lo - 2
    d = rng.choice(np.array([-1, 1], dtype=np.int8), size=shape) if mixed else np.ones(shape, dtype=np.int8)
    return JoinLayer(name=name, in_shape=tuple(in_shape), thresholds=t, direction=d, inputs=("main", "shortcut"))


def random_inputs(rng: np.random.Generator, n: int, layer: ConvLayer | MaxPoolLayer) -> np.ndarray:
    hi = 256 if isinstance(layer, ConvLayer) and layer.input_kind == "uint8" else 2
    return rng.integers(0, hi, size=(n, *layer.in_shape), dtype=np.uint8)


def random_join_inputs(rng: np.random.Generator, n: int, layer: JoinLayer,
                       acc_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A join's inputs: int64 accumulators uniform in ``acc_range`` (both ends included) and uint8 shortcut bits."""
    lo, hi = acc_range
    shape = (n, *layer.in_shape)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64), rng.integers(0, 2, size=shape, dtype=np.uint8)


def corrupt_threshold(layer: ConvLayer | JoinLayer, channel: int = 0, *,
                      acc_range: tuple[int, int] | None = None) -> ConvLayer | JoinLayer:
    """A copy of ``layer`` with channel ``channel``'s thresholds (every row and position) moved to the middle.

    The middle of the accumulator range (a conv's :func:`accumulator_range`,
    a join's ``acc_range``) flips that channel's bit for many inputs (a
    threshold already there moves by a quarter of the range).
    """
    bad = copy.deepcopy(layer)
    if isinstance(layer, JoinLayer):
        if acc_range is None:
            raise ValueError(f"join {layer.name!r}: corrupt_threshold needs its acc_range")
        (lo, hi), t, at = acc_range, bad.thresholds, (slice(None), channel)
    else:
        (lo, hi), t, at = accumulator_range(layer), bad.output.thresholds, channel
    new = (lo + hi) // 2
    t[at] = np.where(t[at] != new, new, new + max(1, (hi - lo) // 4))
    return bad


def flip_weight(layer: ConvLayer, channel: int = 0, index: int = 0) -> ConvLayer:
    """A copy of ``layer`` with one weight negated (channel ``channel``, flat index ``index`` of its fan-in)."""
    bad = copy.deepcopy(layer)
    w = bad.weights[channel].reshape(-1)
    w[index] = -w[index] if w[index] != 0 else 1
    bad.weights[channel] = w.reshape(bad.weights[channel].shape)
    return bad


# -- DUTs and golden expectations (per engine kind: engine_kinds.py) -------------------

def make_dut(engine: str, layer: Layer, fold: dict):
    """The Amaranth engine for ``layer`` with ``fold`` (``pe``/``simd``, ``in_width``/``simd``, ``width``, or
    ``pe``/``acc_range``): :meth:`engine_kinds.EngineKind.make_dut` of kind ``engine``."""
    return engine_kind(engine).make_dut(layer, fold)


def dut_figures(engine: str, dut, n_frames: int) -> dict:
    """What a bench needs to know about the DUT: its stream widths and timing figures."""
    return engine_kind(engine).figures(dut)


def export_verilog(dut, name: str, path: Path) -> Path:
    from amaranth.back import verilog

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(dut, name=name))
    return path


def expected_outputs(case: Case) -> np.ndarray:
    """The golden model's output maps (N, C, H, W) for the case's engine and inputs (see the module docstring)."""
    return engine_kind(case.engine).expected(case)


# -- pytest side -------------------------------------------------------------------

SIM_DIR = Path(__file__).resolve().parent


@dataclass
class Bundle:
    """Several engines in one verilated model: ``model`` (a BuiltModel) and, per name, the engine and its spec."""

    model: object
    duts: dict
    specs: dict  # name -> (engine kind, layer, fold)


class _EngineBundle(Elaboratable):
    """An Elaboratable placing engines side by side; engine NAME's stream port PORT becomes NAME__PORT__valid, ...

    ``kinds``: name -> its :class:`~engine_kinds.EngineKind`, which names the
    input ports (driven from the pins) and the output port (driving them).
    """

    def __init__(self, duts: dict, kinds: dict[str, EngineKind]) -> None:
        from amaranth.hdl import Signal, Value

        self.duts = duts
        self.kinds = kinds
        self.pins = {}
        for name, dut in duts.items():
            pins = {}
            for port in (*kinds[name].inputs, kinds[name].output):
                width = len(Value.cast(getattr(dut, port).payload))
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
            kind, pins = self.kinds[name], self.pins[name]
            for port in kind.inputs:
                stream, (valid, ready, payload) = getattr(dut, port), pins[port]
                m.d.comb += [stream.valid.eq(valid), Value.cast(stream.payload).eq(payload), ready.eq(stream.ready)]
            stream, (valid, ready, payload) = getattr(dut, kind.output), pins[kind.output]
            m.d.comb += [valid.eq(stream.valid), payload.eq(Value.cast(stream.payload)), stream.ready.eq(ready)]
        return m


def build_bundle(folder: Path, specs: dict) -> Bundle:
    """One Verilog module ``engines`` holding an engine per ``specs`` entry (name -> (kind, layer, fold)), verilated.

    One Verilator build instead of one per engine: the quick tests share it.
    Each engine's ports are prefixed with its name; ``clk`` and ``rst`` are shared.
    """
    from amaranth.back import verilog

    from hwgen.sim.runner import build_model

    duts = {name: make_dut(kind, layer, fold) for name, (kind, layer, fold) in specs.items()}
    top = _EngineBundle(duts, {name: engine_kind(kind) for name, (kind, _, _) in specs.items()})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "engines.v"
    path.write_text(verilog.convert(top, name="engines", ports=top.ports()))
    return Bundle(model=build_model([path], "engines"), duts=duts, specs=specs)


def run_engine(folder: Path, engine: str, layer: Layer, fold: dict, inputs: np.ndarray, *,
               seed: int = 0, gap_p: float = 0.0, stall_p: float = 0.0, check_timing: bool = False,
               scoreboard_layer: Layer | None = None, waves: bool = True,
               bundle: Bundle | None = None, name: str | None = None, shortcut: np.ndarray | None = None):
    """Run the bench of the engine for ``layer`` + ``fold`` on ``inputs``; a BenchResult.

    The engine is built alone (cached), or taken from ``bundle`` under
    ``name`` (then ``engine``, ``layer`` and ``fold`` must be that entry's).
    ``scoreboard_layer``: the layer the bench's golden model uses (default
    ``layer``); pass a corrupted copy to check that the bench catches it.
    ``shortcut``: a join's shortcut bits (``inputs``: its accumulators).
    """
    from hwgen.sim.runner import build_model, run_bench

    kind = engine_kind(engine)
    if (shortcut is not None) != ("shortcut" in kind.inputs):
        raise ValueError(f"{engine}: shortcut bits are {'needed' if shortcut is None else 'not used'}")
    if bundle is not None:
        built_kind, built_layer, built_fold = bundle.specs[name]
        assert (built_kind, built_fold) == (engine, fold) and built_layer is layer, "not the bundle's engine"
        dut, model, prefix = bundle.duts[name], bundle.model, f"{name}__"
    else:
        dut, prefix = kind.make_dut(layer, fold), ""
    figures = {**kind.figures(dut), "cycles_per_frame": kind.cycles_per_frame(dut, layer)}
    params = {"engine": engine, **fold, **figures, "seed": seed, "gap_p": gap_p, "stall_p": stall_p,
              "check_timing": check_timing, "prefix": prefix}
    save_case(folder, scoreboard_layer if scoreboard_layer is not None else layer, inputs, params, shortcut)
    if bundle is None:
        model = build_model([export_verilog(dut, engine, folder / f"{engine}.v")], engine)
    return run_bench(model, f"bench_{engine}", folder / "run", env={"HWGEN_SIM_CASE": str(folder)},
                     module_paths=[SIM_DIR], waves=waves, seed=seed)
