"""Scoreboards: RTL outputs against the golden model, with the first mismatch explained.

The expected values always come from :mod:`hwgen.compile.golden` (the
definition of what the hardware computes); this module only compares and
describes.

* :func:`compare_maps`: an engine's output (N, C, H, W) (bits, accumulators)
  against the golden model's, in stream order; the first differing position
  with both channel vectors.
* :func:`check_accelerator`: the accelerator's per-frame scores and class
  against :func:`hwgen.compile.golden.run_network`. For the first mismatching
  image it reruns the golden model layer by layer (``keep_intermediates``) and
  lists, per class, the score, the golden score and the last layer's
  accumulator the RTL score implies (``(score - bias) / scale``), so a report
  says which class scores differ and by how many accumulator steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwgen.compile.golden import GoldenResult, run_network
from hwgen.compile.ir import ConvLayer, Network, ScoreOutput

__all__ = ["AcceleratorCheck", "MapMismatch", "check_accelerator", "compare_maps"]


@dataclass
class MapMismatch:
    """The first difference between an engine's output maps and the golden model's."""

    what: str
    frame: int
    y: int
    x: int
    channels: list[int]   # channels that differ at (frame, y, x)
    got: list[int]        # the whole channel vector at that position
    expected: list[int]
    total: int            # differing elements over all frames

    def describe(self) -> str:
        diff = ", ".join(f"c{c}: {self.got[c]} != {self.expected[c]}" for c in self.channels[:8])
        more = f" (+{len(self.channels) - 8} channels)" if len(self.channels) > 8 else ""
        return (f"{self.what}: first mismatch at frame {self.frame}, position (y={self.y}, x={self.x}): "
                f"{diff}{more}; {self.total} differing values in all. RTL {self.got} vs golden {self.expected}")


def compare_maps(got: np.ndarray, expected: np.ndarray, what: str) -> MapMismatch | str | None:
    """``None`` when equal; a shape message (missing / extra frames) or the first :class:`MapMismatch`.

    Both (N, C, H, W); positions are scanned in stream order (frame, y, x).
    """
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape[1:] != expected.shape[1:]:
        return f"{what}: RTL output maps {got.shape[1:]} but the golden model gives {expected.shape[1:]}"
    n = min(len(got), len(expected))
    diff = got[:n] != expected[:n]
    if diff.any():
        pos = np.argwhere(diff.transpose(0, 2, 3, 1))[0]  # first in (frame, y, x, c) order
        f, y, x = (int(v) for v in pos[:3])
        chans = [int(c) for c in np.flatnonzero(diff[f, :, y, x])]
        return MapMismatch(what=what, frame=f, y=y, x=x, channels=chans,
                           got=[int(v) for v in got[f, :, y, x]],
                           expected=[int(v) for v in expected[f, :, y, x]], total=int(diff.sum()))
    if len(got) != len(expected):
        return f"{what}: RTL produced {len(got)} frames, the golden model {len(expected)}"
    return None


@dataclass
class AcceleratorCheck:
    """Per-image agreement of the RTL with the golden model.

    ``scores`` / ``golden_scores``: int64 (N, K); ``classes`` / ``golden_classes``:
    int64 (N,); ``agree``: bool (N,), scores and class word both equal.
    ``labels``: the dataset's labels (N,) or None. ``first_mismatch``: a
    multi-line description of the first disagreeing image (None when all agree).
    """

    scores: np.ndarray
    classes: np.ndarray
    golden_scores: np.ndarray
    golden_classes: np.ndarray
    agree: np.ndarray
    labels: np.ndarray | None = None
    first_mismatch: str | None = None
    protocol_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.agree.all()) and not self.protocol_errors

    @property
    def mismatches(self) -> int:
        return int((~self.agree).sum())

    def accuracy(self, rtl: bool = True) -> float | None:
        if self.labels is None or len(self.labels) == 0:
            return None
        pred = self.classes if rtl else self.golden_classes
        return float((pred == self.labels).mean())

    def summary(self) -> str:
        n = len(self.agree)
        text = f"{n - self.mismatches}/{n} images agree with the golden model (scores and class)"
        if self.protocol_errors:
            text += "; stream protocol errors: " + "; ".join(self.protocol_errors[:5])
        return text


def check_accelerator(net: Network, images: np.ndarray, scores: np.ndarray, classes: np.ndarray, *,
                      labels: np.ndarray | None = None, golden: GoldenResult | None = None,
                      protocol_errors: list[str] | None = None) -> AcceleratorCheck:
    """Compare RTL scores (N, K) and class words (N,) with the golden model on ``images`` (N, C, H, W).

    ``golden``: a precomputed ``run_network(net, images)`` (else computed
    here). Frames the RTL did not produce (fewer rows than images) count as
    mismatches.
    """
    images = np.asarray(images)
    if golden is None:
        golden = run_network(net, images)
    n = len(images)
    k = net.num_classes
    got_scores = np.zeros((n, k), dtype=np.int64)
    got_classes = np.full(n, -1, dtype=np.int64)
    m = min(n, len(scores))
    got_scores[:m], got_classes[:m] = np.asarray(scores)[:m], np.asarray(classes)[:m]
    agree = np.zeros(n, dtype=bool)
    agree[:m] = (got_scores[:m] == golden.scores[:m]).all(axis=1) & (got_classes[:m] == golden.predictions[:m])
    check = AcceleratorCheck(scores=got_scores, classes=got_classes, golden_scores=golden.scores,
                             golden_classes=golden.predictions, agree=agree,
                             labels=None if labels is None else np.asarray(labels)[:n],
                             protocol_errors=list(protocol_errors or []))
    bad = np.flatnonzero(~agree)
    if len(bad):
        i = int(bad[0])
        check.first_mismatch = (f"image {i}: the RTL gave no output (only {m} of {n} frames came out)"
                                if i >= m else describe_image_mismatch(net, images[i], i, got_scores[i],
                                                                        int(got_classes[i])))
    return check


def describe_image_mismatch(net: Network, image: np.ndarray, index: int, scores: np.ndarray, cls: int) -> str:
    """A per-class table for one image: RTL score, golden score, and the last layer's accumulators.

    Reruns the golden model on this image layer by layer; the RTL accumulator
    is the one its score implies, ``(score - bias) / scale`` (shown as '?'
    when that is not an integer: the score itself is corrupt, not the sum).
    """
    ref = run_network(net, image[None], keep_intermediates=True)
    last = net.layers[-1]
    assert isinstance(last, ConvLayer) and isinstance(last.output, ScoreOutput)
    golden_acc = ref.intermediates[f"{last.name}.acc"][0, :, 0, 0]
    scale, bias = last.output.scale.astype(np.int64), last.output.bias.astype(np.int64)
    gold_cls = int(ref.predictions[0])
    lines = [f"image {index}: RTL class {cls}, golden class {gold_cls}"
             + ("" if cls == gold_cls else " (CLASS DIFFERS)")]
    own = int(np.argmax(scores))
    if cls != own:
        lines.append(f"  the class word {cls} is not the argmax of the RTL's own scores ({own})")
    differ = [c for c in range(net.num_classes) if scores[c] != ref.scores[0, c]]
    if differ:
        lines.append(f"  scores differ for class(es) {', '.join(map(str, differ))} "
                     f"(last layer {last.name!r}: score = scale * acc + bias)")
    lines.append("  class   RTL score   golden score   RTL acc   golden acc")
    for c in range(net.num_classes):
        num = int(scores[c]) - int(bias[c])
        acc = str(num // int(scale[c])) if scale[c] != 0 and num % int(scale[c]) == 0 else "?"
        mark = "  <--" if c in differ else ""
        lines.append(f"  {c:5d}   {int(scores[c]):9d}   {int(ref.scores[0, c]):12d}   {acc:>7}   "
                     f"{int(golden_acc[c]):10d}{mark}")
    return "\n".join(lines)
