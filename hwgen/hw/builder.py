"""``hwgen build``: compile (if needed) + fold + generate, into one build folder.

Steps: read the model (a ``.ckpt`` is compiled, a ``.hwir`` is loaded) ->
solve the folding -> construct the :class:`~hwgen.hw.accelerator.Accelerator`
(every engine validates its parameters) -> check weight + threshold memory
against the target's block RAM (refuse before generating) -> write

* ``top.v``: Verilog of module ``hwgen_top`` from Amaranth's back end (the
  weight and threshold ROM contents are inline ``initial`` blocks);
* ``top_sim.v`` (ECP5 targets whose MVTUs count matches in cells): the same
  design for simulation, the match counts as their simulation model
  (:mod:`hwgen.sim.match_counts`), which ``hwgen sim`` compiles instead;
* ``mem/LAYER.weights.hex`` / ``mem/LAYER.thresholds.hex``: the same ROM
  contents, one word per line (hex, word 0 first), for inspection and other tools
  (a residual join's threshold ROM too);
* ``net.hwir``: the IR the design was generated from, after the flip pass the
  accelerator runs (the golden model's input; the same bits as the model's);
* ``report.json`` + ``report.md`` (:mod:`hwgen.hw.report`);
* the toolchain scripts and Makefile for ``hwgen synth`` (rendered from templates/).

The output is deterministic: the same model and options give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwgen import __version__
from hwgen.hw.accelerator import TOP_MODULE, Accelerator
from hwgen.hw.engines import popcount
from hwgen.hw.fit import cheapest_ties, fit_folding
from hwgen.hw.folding import (INPUT_STAGE, PIXEL_BITS, SCORE_STAGE, fixed_stages, heaviest_layer, input_stream_bits,
                               layer_shapes, solve_folding, summarize)
from hwgen.hw.report import budget_bits, format_markdown, layer_rows
from hwgen.hw.families import MemoryMap
from hwgen.hw.targets import Target, get_target
from hwgen.compile.ir import Network
from hwgen.errors import BuildError

__all__ = ["SIM_VERILOG", "BuildOptions", "BuildResult", "build", "load_model", "plan_accelerator", "read_overrides"]

#: The build folder's Verilog for simulation, where it differs from top.v (``top_sim.v`` above).
SIM_VERILOG = "top_sim.v"

DEFAULT_TARGET = "ecp5-85k"
DEFAULT_CLOCK_MHZ = 100.0


@dataclass(frozen=True)
class BuildOptions:
    """What ``hwgen build`` was asked for: exactly one of ``pe``, ``fps`` and ``fit`` (:mod:`hwgen.hw.fit`);
    ``simd`` (with ``pe``) and ``overrides`` refine it."""

    pe: int | None = None
    simd: int | None = None
    fps: float | None = None
    fit: bool = False
    overrides: dict[str, tuple[int, int]] = field(default_factory=dict)
    target: str = DEFAULT_TARGET
    clock_mhz: float = DEFAULT_CLOCK_MHZ
    check_memory: bool = True
    in_width: int = PIXEL_BITS  # bits of s_axis_tdata

    def describe(self) -> str:
        parts = [f"--pe {self.pe}" if self.pe is not None else "--fit" if self.fit else f"--fps {self.fps:g}"]
        if self.simd is not None:
            parts.append(f"--simd {self.simd}")
        if self.in_width != PIXEL_BITS:
            parts.append(f"--in-width {self.in_width}")
        if self.overrides:
            parts.append("overrides " + ", ".join(f"{k}=({pe}, {simd})" for k, (pe, simd) in self.overrides.items()))
        return " ".join(parts)


@dataclass
class BuildResult:
    out_dir: Path
    report: dict
    seconds: dict[str, float]


def load_model(path: Path) -> tuple[Network, str]:
    """(IR, the source file's SHA-256): a ``.hwir`` is loaded, a ``.onnx`` imported (QONNX, pixels / 255),
    anything else is read as a checkpoint and compiled."""
    from hwgen.compile.artifact import load_network
    from hwgen.compile.compiler import compile_checkpoint
    from hwgen.train.checkpoint import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise BuildError(f"no such model file: {path} (give a .ckpt checkpoint, a .hwir IR file or a .onnx "
                         f"QONNX file)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.suffix == ".hwir":
        return load_network(path), digest
    if path.suffix == ".onnx":
        from hwgen.interop.lower import import_qonnx

        return import_qonnx(path), digest
    return compile_checkpoint(load_checkpoint(path), str(path)), digest


def read_overrides(path: Path) -> dict[str, tuple[int, int]]:
    """A per-layer folding file: JSON ``{"layer": {"pe": P, "simd": S}, ...}`` (or ``[P, S]`` per layer)."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BuildError(f"no such folding file: {path}") from None
    except json.JSONDecodeError as exc:
        raise BuildError(f"folding file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BuildError(f"folding file {path} must map layer names to {{\"pe\": P, \"simd\": S}}")
    out = {}
    for name, value in raw.items():
        if isinstance(value, dict) and set(value) == {"pe", "simd"}:
            pe, simd = value["pe"], value["simd"]
        elif isinstance(value, list) and len(value) == 2:
            pe, simd = value
        else:
            raise BuildError(f"folding file {path}: layer {name!r} needs {{\"pe\": P, \"simd\": S}}, not {value!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (pe, simd)):
            raise BuildError(f"folding file {path}: layer {name!r}: PE and SIMD must be positive integers")
        out[name] = (pe, simd)
    return out


def _check_memory(name: str, target: Target, memory: dict[str, int]) -> None:
    """BuildError unless the budgeted memory (:func:`~hwgen.hw.report.budget_bits` of the report's ``memory``)
    fits the target's block RAM."""
    total = budget_bits(memory)
    if total > target.bram_bits:
        weights, thresholds, skips = memory["weights_bits"], memory["thresholds_bits"], memory["skip_bits"]
        skip = f" + skip buffers {skips:,}" if skips else ""
        raise BuildError(
            f"{name} does not fit {target.name}: weights {weights:,} + thresholds {thresholds:,}{skip} = {total:,} bits "
            f"of on-chip memory, but the {target.part} has {target.bram_bits:,} bits of block RAM "
            f"({target.bram_blocks} x {target.bram_block_bits:,}); choose a larger target, a narrower model "
            f"(e.g. --width), or pass --no-memory-check to generate anyway")


def _check_blocks(name: str, target: Target, rows: list[dict], blocks: int) -> None:
    if blocks > target.bram_blocks:
        worst = max(rows, key=lambda r: r["bram_blocks_estimate"])
        words = f"words of {worst['lanes'] * worst['weight_field_bits']:,} weight bits"
        if worst["input_word_bits"]:
            words += f" and buffers of {worst['input_word_bits']:,}-bit input words"
        raise BuildError(
            f"{name} at this folding needs about {blocks} block RAMs for its weight and threshold ROMs, input buffers "
            f"and vector FIFOs, but the {target.part} has {target.bram_blocks}: a block RAM port is at most "
            f"{target.bram_max_width} bits wide, so memories of wide words take many of them ({worst['name']}: PE "
            f"{worst['pe']} x SIMD {worst['simd']} -> {worst['bram_blocks_estimate']}: {words}); choose a smaller "
            f"--simd or --pe, or pass --no-memory-check")


def _check_logic(name: str, target: Target, rows: list[dict], estimate: int) -> None:
    if estimate > target.lut4:
        worst = max(rows, key=lambda r: r["lut4_estimate"])
        unit = "logic cells" if target.spec.cost.glue else "LUT4"
        raise BuildError(
            f"{name} at this folding needs about {estimate:,} {unit}, but the {target.part} has {target.lut4:,} "
            f"({worst['name']}: {worst['lut4_estimate']:,}); choose a smaller --pe or --simd, a larger --target, "
            f"or pass --no-memory-check")


def _check_dsp(name: str, target: Target, rows: list[dict], dsp: int) -> None:
    if dsp > target.dsp:
        worst = max(rows, key=lambda r: r["dsp_estimate"])
        raise BuildError(
            f"{name} at this folding needs {dsp} DSP multipliers (one per lane of k-bit weights times pixels, one per "
            f"PE with factored per-position thresholds, and the score unit's), but "
            f"the {target.part} has {target.dsp} ({worst['name']}: {worst['dsp_estimate']}); choose a smaller "
            f"--pe or --simd for it, a larger --target, or pass --no-memory-check")


def _hex_words(words: list[int], bits: int) -> str:
    digits = max(1, (bits + 3) // 4)
    return "".join(f"{w:0{digits}x}\n" for w in words)


def plan_accelerator(net: Network, options: BuildOptions, target: Target) -> tuple[Accelerator, list, MemoryMap]:
    """The accelerator :func:`build` generates for ``net`` on ``target``, its layers' folding (fitted to the
    device with ``options.fit``, else solved from ``--pe`` / ``--fps``) and the memory map that places its
    weights."""
    if options.fit:
        fitted = fit_folding(net, target, options.overrides, in_width=options.in_width)
        folds, memory_map = fitted.folds, fitted.memory
    else:
        folds = solve_folding(net, pe=options.pe, simd=options.simd, fps=options.fps,
                              clock_hz=options.clock_mhz * 1e6, overrides=options.overrides,
                              in_width=options.in_width)
        fixed = set(options.overrides)
        if options.pe is not None:
            fixed.add(heaviest_layer(layer_shapes(net, options.in_width)).name)
        fitted = cheapest_ties(net, folds, target, fixed=frozenset(fixed), in_width=options.in_width)
        folds, memory_map = fitted.folds, fitted.memory
    acc = Accelerator(net, folds, ecp5_cells=bool(target.spec.cells), memory=memory_map, in_width=options.in_width)
    return acc, folds, memory_map


def build(model_path: Path, out_dir: Path, options: BuildOptions, *, name: str | None = None,
          log=print) -> BuildResult:
    """Run the whole build (see the module docstring); returns the report dict and per-step seconds."""
    from amaranth.back import verilog

    from hwgen.compile.artifact import save_network

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    target = get_target(options.target)
    if options.clock_mhz <= 0:
        raise BuildError(f"--clock must be positive, not {options.clock_mhz}")
    net, digest = load_model(Path(model_path))
    name = name or Path(out_dir).name or net.name
    seconds["compile"] = time.perf_counter() - started

    t = time.perf_counter()
    acc, folds, memory_map = plan_accelerator(net, options, target)
    rows = layer_rows(acc, folds, target)
    memory = {f"{k}_bits": sum(r[f"{k}_bits"] for r in rows) for k in ("weights", "thresholds", "buffers")}
    memory["skip_bits"] = sum(r["skip_buffer"]["bits"] for r in rows if r.get("skip_buffer"))
    blocks = sum(r["bram_blocks_estimate"] for r in rows)
    dsp = sum(r["dsp_estimate"] for r in rows)
    if options.check_memory:
        _check_memory(net.name, target, memory)
        _check_dsp(net.name, target, rows, dsp)  # the same under every memory map: the cause to name first
        _check_blocks(net.name, target, rows, blocks)
        _check_logic(net.name, target, rows, sum(r["lut4_estimate"] for r in rows))
    stage_floors = fixed_stages(net, options.in_width)
    summary = summarize(folds, stage_floors)
    seconds["fold"] = time.perf_counter() - t

    log(f"generating Verilog for {len(acc.stages)} engines ({summary.total_lanes:,} lanes) ...")
    t = time.perf_counter()
    text = verilog.convert(acc, name=TOP_MODULE, emit_src=False)
    header = (f"// Generated by hwgen {__version__} from {Path(model_path).name} (sha256 {digest[:16]}), "
              f"{options.describe()}. Do not edit.\n")
    sim_text = None
    if acc.counts_matches_in_cells:
        sim_acc = Accelerator(net, folds, ecp5_cells=True, match_count_model=True, memory=memory_map,
                              in_width=options.in_width)
        sim_text = verilog.convert(sim_acc, name=TOP_MODULE, emit_src=False)
    seconds["verilog"] = time.perf_counter() - t

    out = Path(out_dir)
    (out / "mem").mkdir(parents=True, exist_ok=True)
    (out / "top.v").write_text(header + text)
    if sim_text is None:
        (out / SIM_VERILOG).unlink(missing_ok=True)  # a stale one from an earlier build into this folder
    else:
        (out / SIM_VERILOG).write_text(header + "// For simulation only: top.v with each MVTU match count as the "
                                       "simulation model of its cells (hwgen/sim/match_counts.py).\n" + sim_text)
    for stage in acc.stages:
        for suffix, words, bits in stage.rom_files():
            (out / "mem" / f"{stage.layer_name}.{suffix}.hex").write_text(_hex_words(words, bits))
    save_network(out / "net.hwir", acc.net)  # flipped where the build flipped it: the same bits

    report = {
        "format": "hwgen-build", "version": 1, "hwgen": __version__,
        "name": name, "source": str(model_path), "source_sha256": digest,
        "top_module": TOP_MODULE, "verilog": "top.v", "ir": "net.hwir",
        "sim_verilog": SIM_VERILOG if sim_text is not None else None,
        "match_count_code": popcount.source_digest() if sim_text is not None else None,
        "input_shape": list(net.input_shape), "num_classes": net.num_classes,
        "dataset": net.metadata.get("dataset"), "data_dir": net.metadata.get("data_dir"),
        "folding": {"request": options.describe(), "pe": options.pe, "simd": options.simd, "fps": options.fps,
                    "overrides": {k: list(v) for k, v in options.overrides.items()},
                    "weight_rom_lut_max_depth": memory_map.rom_lut_max_depth},
        "target": {"name": target.name, "part": target.part, "lut4": target.lut4, "bram_bits": target.bram_bits,
                   "bram_blocks": target.bram_blocks, "dsp": target.dsp},
        "clock_mhz": options.clock_mhz,
        "in_width": options.in_width,
        "input_stream_bits": input_stream_bits(net, options.in_width),
        "input_cycles": stage_floors[INPUT_STAGE],
        "score_cycles": stage_floors[SCORE_STAGE],
        "cycles_per_frame": summary.cycles_per_frame,
        "summary": {"bottleneck": summary.bottleneck, "cycles_per_frame": summary.cycles_per_frame,
                    "ideal_cycles": summary.ideal_cycles, "balance": summary.balance,
                    "total_lanes": summary.total_lanes, "fps": summary.fps(options.clock_mhz * 1e6)},
        "memory": {**memory, "target_bram_bits": target.bram_bits},
        "lut4_estimate": sum(r["lut4_estimate"] for r in rows),
        "bram_blocks_estimate": blocks,
        "dsp_estimate": dsp,
        "layers": rows,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(format_markdown(report))
    _render_scripts(out, target, options, report["lut4_estimate"])
    seconds["total"] = time.perf_counter() - started
    return BuildResult(out_dir=out, report=report, seconds=seconds)


def _render_scripts(out: Path, target: Target, options: BuildOptions, lut4_estimate: int) -> None:
    from hwgen.synth.routers import choose_router
    from hwgen.synth.scripts import render_toolchain_scripts

    render_toolchain_scripts(out, top=TOP_MODULE, verilog="top.v", target=target, freq_mhz=options.clock_mhz, seed=1,
                             router=choose_router(lut4_estimate))
