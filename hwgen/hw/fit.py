"""``hwgen build --fit``: the fastest balanced folding that fits the target by the cost model.

A folding *fits* when the whole design's estimates (:func:`design_cost`, the
build report's rows summed) stay within the device: LUT4 (ECP5; iCE40 logic
cells) <= :data:`LUT_FILL` (85 %) of the target's, block RAM <= 100 % of its
blocks, DSP multipliers (k-bit MAC lanes, the score unit) <= its DSPs.

Candidates: every cycles-per-frame value T that some layer reaches at a legal
(PE, SIMD), no faster than the pipeline's floor, ascending. The floor
(:func:`~hwgen.hw.folding.fastest_cycles`) is the largest of the fixed
stages' cycles (the input stream and the score unit) and every layer's fastest folding (C_out PEs, the largest
legal SIMD; e.g. CNV's conv0: SIMD divides C_in = 3, so at least 1 x 9 x 900
= 8,100 cycles), or an overridden layer's cycles. At T every layer gets the fewest lanes reaching T
(:func:`~hwgen.hw.folding.fewest_lanes`, the ``--fps`` rule), per-layer overrides kept as given; the folding
found gets the equal-lane choice (:func:`cheapest_ties`, which keeps a fitting folding fitting). The search
itself does not apply it: at every candidate it would cost seconds (CNV on the 45F, which fits nowhere but
passes the weight bound below, tries all 48 samples), and it only ever lowers the cost, so a candidate the
search skips could fit with it; such a faster folding is not looked for.

Where weights live: a weight ROM of NF * SF words of PE * SIMD fields is
forced into block RAM when deeper than the memory map's
``rom_lut_max_depth`` (:class:`~hwgen.hw.families.MemoryMap`). A block RAM
reads at most ``max_width`` bits per cycle (ECP5: 36), so a wide, shallow ROM
of a fast folding takes one block per 36 bits however few words it holds
(CNV conv1 at PE 64 x SIMD 64: 9 words of 4,096 bits, 114 EBR); in LUTs it
costs ``ceil(depth / 16)`` LUT4 per bit (:func:`hwgen.hw.cost.lut_rom_lut4`).
For each T the solver tries the depths :data:`ROM_LUT_DEPTHS` in order (the
family's own first) and takes the first that fits. A ROM no deeper than that
is left to Yosys, which keeps it in logic: memory_libmap costs a ROM in logic
at bits / 16 against 128 per DP16KD, so any ROM under about 57 words is
cheaper in logic (``share/lattice/brams_16kd.txt``), hence depths up to 48.
Deeper LUT ROMs were tried and dropped: CNV with XNOR-Net++ Gamma shape 4
at ``--pe 16`` with conv2's and conv3's 144-word weight ROMs (512 and 1,024
bits wide) forced into logic (``ram_style = "logic"``) fits by the estimate
(166 EBR, 31k LUT4) and placed, but nextpnr's router2 still had 53,451
overused wires after three iterations (about 13 minutes, falling by about
10 % per iteration), so it would not route in useful time.

Equal lanes, different costs (:func:`cheapest_ties`): the foldings of a layer with the same PE * SIMD take
the same cycles, but not the same logic. A wide SIMD needs a wide input word (a gathering converter's
register, the vector FIFO, the input buffer's multiplexer: per SIMD bit), many PEs need accumulators and
threshold compares (per PE), and one layer's PE is the next one's input beat. So after the fewest lanes are
found, each layer's (PE, SIMD) is chosen again among its equal-lane foldings (:func:`~hwgen.hw.folding.
equal_lane_foldings`) for the smallest whole-design LUT4 estimate that still fits (block RAM and DSP
included), layer by layer in pipeline order and again until no layer changes, taking a change only when it
saves at least :data:`TIE_MIN_SAVING` of the design (smaller differences are within the model's error);
layers the user fixed (``--pe``'s heaviest layer, ``--folding`` overrides) keep theirs. LFC ``--fps
25000``: fc0 PE 2 x SIMD 112 -> 8 x 28, fc1 and fc2 1 x 512 -> 8 x 64, 25,097 -> 13,472 LUT4 estimated
(docs/synth.md has the placed counts).

Search: the candidates are sampled (:data:`SAMPLES` of them, evenly, fastest
first) until one fits, then bisected between it and the sample before it,
which assumes the cost does not grow with T between two samples (fewer lanes
per layer, narrower ROM words). Block RAM is not monotone over the whole range
(the slowest foldings have deep ROMs of 1-bit words, a block per 16K bits of
each), hence no bisection from the slowest. None fits: BuildError naming the
slowest one's estimates.

Refused before the search (:func:`weight_capacity`): every folding holds each weight ROM e, of b_e = C_out
* F * field bits whatever its PE and SIMD, either in block RAM or in LUTs. In block RAM its blocks
(:meth:`~hwgen.hw.families.MemoryMap.rom_blocks`, :meth:`~hwgen.hw.families.BlockRam.blocks_for` per bank
and slice) are at least b_e / Q, Q the most bits one block holds in any configuration (ECP5 512 x 36 =
18,432, iCE40 4,096); in LUTs it costs :func:`~hwgen.hw.cost.lut_rom_lut4`, ``width * ceil(depth / 16)``
>= b_e / 16 LUT4, times the family's ``scale``, in its engine's row, whose other terms are not negative
and which is rounded once (at most 1/2 lost). So a design of L LUT4 and B block RAMs with n weight ROMs
holds at most W(L, B) = Q * B + 16 * (L + n / 2) / scale weight bits, whatever else it spends them on
(thresholds, buffers and logic are not counted), and W grows with L and B: when sum(b_e) > W(LUT_FILL *
LUT4, blocks) of the target, no folding fits under any memory map, and the network is refused without a
sample (CNV on the 25F: 1,542,848 weight bits against 56 x 18,432 = 1,032,192 of block RAM plus 330,389
in 20,645 LUT4; the 48 samples took 30-80 s). A network within W still gets the whole search.
"""

from __future__ import annotations

import dataclasses
import gc
import warnings
from dataclasses import dataclass

from hwgen.compile.ir import Network
from hwgen.errors import BuildError
from hwgen.hw.cost import LUT_ROM_WORDS
from hwgen.hw.families import MemoryMap
from hwgen.hw.folding import (PIXEL_BITS, LayerFold, check_overrides, equal_lane_foldings, fastest_cycles, fewest_lanes,
                              layer_shapes)
from hwgen.hw.targets import Target

__all__ = ["LUT_FILL", "ROM_LUT_DEPTHS", "TIE_MIN_SAVING", "TIE_PASSES", "Fit", "balanced_folds", "candidate_cycles",
           "cheapest_ties", "design_cost", "design_estimates", "design_rows", "fit_folding", "place_weights",
           "weight_capacity"]

#: The share of the device's LUT4s (logic cells) a fitted design may take by the estimate.
LUT_FILL = 0.85
#: Weight-ROM depths (words) up to which ROMs are left to LUTs, tried in order after the family's own.
ROM_LUT_DEPTHS = (16, 32, 48)
#: Candidates sampled before the bisection.
SAMPLES = 48
#: Passes of :func:`cheapest_ties` over the layers at most (it stops at the first pass that changes none).
TIE_PASSES = 3
#: The share of the design's LUT4 estimate a refolding must save to be taken: smaller differences are within
#: what the model gets wrong between two shapes of one layer (LFC's fc1, 1 x 512 -> 8 x 64: 3,785 LUT4 saved
#: by the estimate, about 2,000 placed).
TIE_MIN_SAVING = 0.05


@dataclass(frozen=True)
class Fit:
    """A fitted folding: the folds, the memory map the engines get, and the design's estimates."""

    folds: list[LayerFold]
    memory: MemoryMap
    lut4: int
    bram_blocks: int
    dsp: int = 0

    def fits(self, target: Target) -> bool:
        """Within the device (see the module docstring)."""
        return self.lut4 <= LUT_FILL * target.lut4 and self.bram_blocks <= target.bram_blocks and self.dsp <= target.dsp


def design_cost(net: Network, folds: list[LayerFold], target: Target, memory: MemoryMap,
                in_width: int = PIXEL_BITS) -> tuple[int, int]:
    """(LUT4, block RAMs) of the whole design as ``hwgen build`` reports them (its rows, summed)."""
    return design_estimates(net, folds, target, memory, in_width)[:2]


def design_estimates(net: Network, folds: list[LayerFold], target: Target,
                     memory: MemoryMap, in_width: int = PIXEL_BITS) -> tuple[int, int, int]:
    """(LUT4, block RAMs, DSP multipliers) of the whole design as ``hwgen build`` reports them, at ``in_width``
    bits of ``s_axis_tdata``: :func:`design_rows`, summed."""
    rows = design_rows(net, folds, target, memory, in_width)
    return tuple(sum(r[key] for r in rows) for key in ("lut4_estimate", "bram_blocks_estimate", "dsp_estimate"))


def design_rows(net: Network, folds: list[LayerFold], target: Target, memory: MemoryMap,
                in_width: int = PIXEL_BITS) -> list[dict]:
    """The build report's rows of the design (:func:`~hwgen.hw.report.layer_rows`: per stage its weight bits,
    LUT4, block RAM and DSP estimates).

    The accelerator is built only to be costed, never elaborated: Amaranth's warning that its engines
    went unused (given when they are freed) is silenced here rather than printed on every build."""
    from amaranth.hdl import UnusedElaboratable

    from hwgen.hw.accelerator import Accelerator
    from hwgen.hw.report import layer_rows

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        acc = Accelerator(net, folds, ecp5_cells=bool(target.spec.cells), memory=memory, in_width=in_width)
        rows = layer_rows(acc, folds, target)
        del acc
        gc.collect()  # free the engines (and their warnings) inside the filter
    return rows


def weight_capacity(target: Target, lut4: float, bram_blocks: int, roms: int) -> float:
    """The most weight-ROM bits a design of ``lut4`` LUT4 (the target's unit) and ``bram_blocks`` block RAMs,
    with ``roms`` weight ROMs, holds by the cost model: W = Q * B + 16 * (L + n / 2) / scale (see the module
    docstring). Q: the most bits one block holds in any of its configurations; 16: words per LUT4 of a LUT
    ROM (:data:`~hwgen.hw.cost.LUT_ROM_WORDS`); scale: the family's ``LogicCost.scale``; n / 2: each weight
    ROM's row rounded once."""
    per_block = max(width * depth for width, depth in target.bram_shapes)
    return per_block * bram_blocks + LUT_ROM_WORDS * (lut4 + roms / 2) / target.spec.cost.scale


def _memories(target: Target) -> list[MemoryMap]:
    own = target.spec.memory
    return [own] + [dataclasses.replace(own, rom_lut_max_depth=d) for d in ROM_LUT_DEPTHS
                    if d > own.rom_lut_max_depth]


def place_weights(net: Network, folds: list[LayerFold], target: Target, in_width: int = PIXEL_BITS) -> Fit:
    """The folding with the first memory map of :data:`ROM_LUT_DEPTHS` (the family's own first) under which
    the design fits ``target``; the family's own when none does. ``hwgen build`` places the weights of every
    folding (``--pe``, ``--fps``, ``--fit``) this way, so a design the family's own map does not fit in block
    RAM gets its shallow ROMs in LUTs instead of a refusal; one that fits is built as before."""
    own = None
    for memory in _memories(target):
        fit = Fit(folds, memory, *design_estimates(net, folds, target, memory, in_width))
        own = own or fit
        if fit.fits(target):
            return fit
    return own


def cheapest_ties(net: Network, folds: list[LayerFold], target: Target, *, fixed: frozenset[str] = frozenset(),
                  in_width: int = PIXEL_BITS) -> Fit:
    """``folds`` with each layer not in ``fixed`` refolded among its equal-lane foldings for the smallest
    whole-design LUT4 estimate, placed by :func:`place_weights` (see the module docstring).

    Per layer the cheapest of its equal-lane foldings (fitting first, then the smallest LUT4 estimate) is
    taken when it makes a folding that did not fit fit, or keeps it fitting (or not) and lowers the LUT4
    estimate by at least :data:`TIE_MIN_SAVING` of it. Coordinate descent: one layer at a time, the others as
    they stand, in pipeline order, for at most :data:`TIE_PASSES` passes; each try is one
    :func:`design_estimates` (about 0.1 s for CNV), with the memory map ``place_weights`` chose for ``folds``.
    """
    start = best = place_weights(net, folds, target, in_width)
    memory = start.memory

    def better(fit: Fit, than: Fit) -> bool:
        if fit.fits(target) != than.fits(target):
            return fit.fits(target)
        return fit.lut4 <= (1 - TIE_MIN_SAVING) * than.lut4

    for _ in range(TIE_PASSES):
        changed = False
        for index, fold in enumerate(best.folds):
            if fold.layer.name in fixed:
                continue
            trials = []
            for pe, simd in equal_lane_foldings(fold.layer, fold.lanes):
                if (pe, simd) != (fold.pe, fold.simd):
                    trial = list(best.folds)
                    trial[index] = LayerFold(layer=fold.layer, pe=pe, simd=simd)
                    trials.append(Fit(trial, memory, *design_estimates(net, trial, target, memory, in_width)))
            cheapest = min(trials, key=lambda fit: (not fit.fits(target), fit.lut4), default=None)
            if cheapest is not None and better(cheapest, best):
                best, changed = cheapest, True
        if not changed:
            break
    return start if best is start else place_weights(net, best.folds, target, in_width)


def candidate_cycles(net: Network, overrides: dict[str, tuple[int, int]] | None = None,
                     in_width: int = PIXEL_BITS) -> list[int]:
    """The search's candidates, ascending: every cycles-per-frame value some free layer reaches at a legal
    (PE, SIMD), no faster than the floor (see the module docstring)."""
    overrides = dict(overrides or {})
    shapes = layer_shapes(net, in_width)
    check_overrides(shapes, overrides)
    free = [s for s in shapes if s.name not in overrides]
    floor = max([fastest_cycles(net, in_width)[0]] + [s.cycles(*overrides[s.name]) for s in shapes if s.name in overrides])
    return sorted({s.cycles(pe, simd) for s in free for pe in s.legal_pe() for simd in s.legal_simd()
                   if s.cycles(pe, simd) >= floor} | {floor})


def balanced_folds(net: Network, cycles: int, overrides: dict[str, tuple[int, int]] | None = None,
                   in_width: int = PIXEL_BITS) -> list[LayerFold]:
    """Every layer at the fewest lanes reaching ``cycles`` (:func:`~hwgen.hw.folding.fewest_lanes`), the
    overridden ones as given."""
    overrides = overrides or {}
    return [LayerFold(layer=s, pe=p, simd=q) for s in layer_shapes(net, in_width)
            for p, q in [overrides.get(s.name) or fewest_lanes(s, cycles)]]


def _refuse_by_weights(net: Network, target: Target, folds: list[LayerFold], in_width: int) -> None:
    """BuildError when the network's weight ROMs (their bits from ``folds``' rows: the same at every folding)
    exceed :func:`weight_capacity` at the target's whole budget, so that no folding fits (see the module
    docstring)."""
    weights = [r["weights_bits"] for r in design_rows(net, folds, target, target.spec.memory, in_width)
               if r.get("weights_bits")]
    budget = LUT_FILL * target.lut4
    if sum(weights) <= weight_capacity(target, budget, target.bram_blocks, len(weights)):
        return
    ram, per_block = weight_capacity(target, 0, target.bram_blocks, 0), weight_capacity(target, 0, 1, 0)
    rom = weight_capacity(target, budget, 0, len(weights))
    raise BuildError(
        f"{net.name} does not fit {target.name} at any balanced folding: its {sum(weights):,} weight bits are more "
        f"than its block RAM holds ({target.bram_blocks} x {per_block:,.0f} = {ram:,.0f} bits) plus what its LUT4 "
        f"budget ({round(budget):,}, {LUT_FILL:.0%} of {target.lut4:,}) can hold as LUT ROM "
        f"({rom:,.0f} bits, {LUT_ROM_WORDS / target.spec.cost.scale:g} per LUT4), {ram + rom:,.0f} in all; "
        f"choose a larger --target")


def fit_folding(net: Network, target: Target, overrides: dict[str, tuple[int, int]] | None = None,
                in_width: int = PIXEL_BITS) -> Fit:
    """The fastest balanced folding of ``net`` that fits ``target`` at ``in_width`` bits of input (see the
    module docstring); refused at once when even its weights cannot fit (:func:`weight_capacity`)."""
    overrides = dict(overrides or {})
    candidates = candidate_cycles(net, overrides, in_width)

    def at(cycles: int) -> Fit:
        return place_weights(net, balanced_folds(net, cycles, overrides, in_width), target, in_width)

    _refuse_by_weights(net, target, balanced_folds(net, candidates[0], overrides, in_width), in_width)

    step = max(1, len(candidates) // SAMPLES)
    sampled = sorted(set(range(0, len(candidates), step)) | {len(candidates) - 1})
    previous = -1
    for index in sampled:
        fit = at(candidates[index])
        if fit.fits(target):
            break
        previous = index
    else:
        raise BuildError(
            f"{net.name} does not fit {target.name} at any balanced folding: at {candidates[-1]:,} cycles per frame "
            f"it needs about {fit.lut4:,} LUT4 (of {round(LUT_FILL * target.lut4):,}, {LUT_FILL:.0%} of "
            f"{target.lut4:,}), {fit.bram_blocks} block RAMs (of {target.bram_blocks}) and {fit.dsp} DSPs (of "
            f"{target.dsp}); choose a larger --target")
    lo, hi, best = previous + 1, index, fit
    while lo < hi:
        mid = (lo + hi) // 2
        fit = at(candidates[mid])
        if fit.fits(target):
            best, hi = fit, mid
        else:
            lo = mid + 1
    return cheapest_ties(net, best.folds, target, fixed=frozenset(overrides), in_width=in_width)
