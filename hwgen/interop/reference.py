"""qonnx's executor as the float reference of an imported model, compared with the golden model.

:func:`execute` runs ``qonnx.core.onnx_exec.execute_onnx`` on uint8 images
(mapped to floats by the :class:`~hwgen.interop.qonnx_model.PixelMapping`),
``batch`` images per call (the graph's batch size is changed by qonnx's
cleanup), and returns the float32 scores and the inputs of every sign.

:func:`compare_with_executor` is rung 1 of the verification ladder for a
QONNX model, as :mod:`hwgen.compile.verify` is for a checkpoint: per image,
every stage's bits (the executor's ``[u / s >= 0]`` against the golden
model's) and the top-1. A difference is a *float tie* when the float64 value
of the same pre-activation, ``u = a * acc + b`` from the golden model's
integer accumulator and the stage's affine (:func:`hwgen.compile.fold.stage_affine`),
lies within float32 rounding of zero: ``|u| <= TIE_ATOL + TIE_RTOL * (|a * acc| + |b|)``;
or, for the scores, when the float64 scores of the executor's and the golden
model's top classes, from the golden integer accumulators and the last stage's
affine, are within the same rounding of each other. Any other first difference is a
mismatch (a bug). A stage with its pool before the sign is checked on its
pooled bits and a difference there counts as a mismatch (no tie analysis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwgen.compile.compiler import compile_stages
from hwgen.compile.fold import stage_affine
from hwgen.compile.golden import run_network
from hwgen.compile.ir import Network
from hwgen.interop.lower import LoweredGraph, lower_qonnx
from hwgen.interop.qonnx_model import PixelMapping, load_qonnx

__all__ = ["ExecutorAgreement", "compare_with_executor", "execute"]

TIE_RTOL = 1e-5  # float32 has 24 bits: relative rounding of a few terms stays well below this
TIE_ATOL = 1e-6


@dataclass
class ExecutorAgreement:
    images: int
    same_prediction: int = 0
    float_ties: list[dict] = field(default_factory=list)
    mismatches: list[dict] = field(default_factory=list)
    executor_correct: int = 0
    golden_correct: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def identical(self) -> int:
        """Images identical in every layer: each other image is a float tie or a mismatch."""
        return self.images - len(self.float_ties) - len(self.mismatches)


def execute(path, images: np.ndarray, mapping: PixelMapping | None = None, *, batch: int = 500,
            capture: tuple[str, ...] = ()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(float32 scores (N, classes), {tensor name: float32 (N, ...)} for ``capture``) from qonnx's executor."""
    from qonnx.core.onnx_exec import execute_onnx

    mapping = mapping or PixelMapping()
    n = len(images)
    b = max(1, min(batch, n))
    model = load_qonnx(path, batch=b)
    in_name, out_name = model.graph.input[0].name, model.graph.output[0].name
    scores, captured = [], {name: [] for name in capture}
    for start in range(0, n, b):
        chunk = images[start:start + b]
        pad = b - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), dtype=chunk.dtype)])
        ctx = execute_onnx(model, {in_name: mapping.floats(chunk)}, return_full_exec_context=bool(capture))
        scores.append(np.asarray(ctx[out_name])[:b - pad])
        for name in capture:
            captured[name].append(np.asarray(ctx[name])[:b - pad])
    return np.concatenate(scores), {k: np.concatenate(v) for k, v in captured.items()}


def _stage_keys(lowered: LoweredGraph) -> list[str]:
    """The golden intermediate of each binarized stage: the pool's bits for a pool before the sign."""
    keys = []
    for stage in lowered.stages[:-1]:
        before = stage.pool is not None and stage.pool_use_and is None
        keys.append(stage.pool_name if before else stage.name)
    return keys


def compare_with_executor(path, net: Network, images: np.ndarray, labels: np.ndarray | None = None,
                          mapping: PixelMapping | None = None, *, batch: int = 500) -> ExecutorAgreement:
    """Run qonnx's executor and the golden model of ``net`` (imported from ``path``) on uint8 ``images``."""
    mapping = mapping or PixelMapping()
    lowered = lower_qonnx(load_qonnx(path), mapping)
    plain = compile_stages(lowered.stages, name=net.name, input_shape=lowered.input_shape,
                           num_classes=lowered.num_classes, flip=False)  # accumulators of the stages' own signs
    keys = _stage_keys(lowered)
    signs = [name for name in lowered.sign_inputs if name is not None]
    result = ExecutorAgreement(images=len(images))
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        scores, captured = execute(path, chunk, mapping, batch=batch, capture=tuple(signs))
        golden = run_network(net, chunk, keep_intermediates=True)
        pred = scores.argmax(axis=1)
        result.same_prediction += int((pred == golden.predictions).sum())
        if labels is not None:
            lab = labels[start:start + batch]
            result.executor_correct += int((pred == lab).sum())
            result.golden_correct += int((golden.predictions == lab).sum())
        differs = np.zeros(len(chunk), dtype=bool)
        stage_bits = []
        for k, (name, key) in enumerate(zip(signs, keys)):
            s = lowered.sign_scales[k].astype(np.float32)
            u = captured[name]
            g = golden.intermediates[key]
            s_b = s.reshape((1, -1) + (1,) * (u.ndim - 2))
            bits = (u / s_b >= 0).reshape(g.shape)
            diff = bits != g.astype(bool)
            stage_bits.append(diff)
            differs |= diff.reshape(len(chunk), -1).any(axis=1)
        differs |= pred != golden.predictions
        if not differs.any():
            continue
        idx = np.flatnonzero(differs)
        plain_run = run_network(plain, chunk[idx], keep_intermediates=True)
        for j, i in enumerate(idx):
            verdict = _first_difference(lowered, keys, stage_bits, plain_run, i, j, scores[i],
                                        int(golden.predictions[i]))
            verdict.update(image=start + int(i), same_prediction=bool(pred[i] == golden.predictions[i]))
            (result.float_ties if verdict["tie"] else result.mismatches).append(verdict)
    return result


def _first_difference(lowered: LoweredGraph, keys, stage_bits, plain_run, i: int, j: int, scores: np.ndarray,
                      golden_pred: int) -> dict:
    for k, key in enumerate(keys):
        diff = stage_bits[k][i]
        if not diff.any():
            continue
        stage = lowered.stages[k]
        if key != stage.name:
            return {"layer": key, "bits_differ": int(diff.sum()), "tie": False, "note": "pool before the sign"}
        a, b = stage_affine(stage)
        acc = plain_run.intermediates[f"{stage.name}.acc"][j].astype(np.float64)  # (C, H, W)
        shape = (-1,) + (1,) * (acc.ndim - 1)
        a = a if a.ndim == 3 else a.reshape(shape)
        b = b if b.ndim == 3 else b.reshape(shape)
        u = a * acc + b
        margin = TIE_ATOL + TIE_RTOL * (np.abs(a * acc) + np.abs(b))
        worst = float(np.max(np.abs(u)[diff] - margin[diff]))
        return {"layer": key, "bits_differ": int(diff.sum()), "tie": worst <= 0,
                "max_abs_preactivation": float(np.max(np.abs(u)[diff]))}
    return _scores_verdict(lowered.stages[-1], plain_run, j, int(np.argmax(scores)), golden_pred,
                           float(scores.max() - scores[golden_pred]))


def _scores_verdict(last, plain_run, j: int, executor_pred: int, golden_pred: int, gap: float) -> dict:
    """Top-1 differs with every bit equal: a tie when the float64 scores ``a * acc + b`` of the two
    classes (the golden model's integer accumulators, the last stage's affine) are within float32
    rounding of each other, ``|u_e - u_g| <= 2 * TIE_ATOL + TIE_RTOL * (|a acc|_e + |b|_e + |a acc|_g + |b|_g)``."""
    a, b = (np.broadcast_to(np.asarray(v, dtype=np.float64).reshape(-1), (len(plain_run.scores[j]),))
            for v in stage_affine(last))
    acc = plain_run.intermediates[f"{last.name}.acc"][j].astype(np.float64).reshape(-1)
    u, size = a * acc + b, np.abs(a * acc) + np.abs(b)
    e, g = executor_pred, golden_pred
    margin = 2 * TIE_ATOL + TIE_RTOL * (size[e] + size[g])
    return {"layer": "scores", "bits_differ": 0, "tie": bool(abs(u[e] - u[g]) <= margin), "score_gap": gap}
