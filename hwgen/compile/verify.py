"""Rung 1 of the verification ladder: the PyTorch eval model against the golden model.

For every image, both models run and are compared layer by layer: a binary
layer's bits must equal ``sign(u) >= 0`` of the PyTorch pre-activation ``u``
(the output of the stage's BatchNorm, after its pool), and the predictions
must agree. A difference is a *float tie* when PyTorch's float32 value sits on
the threshold: ``|u| <= max(TIE_ATOL, TIE_RTOL * (|g z| + |h|))`` for a
BatchNorm ``u = g z + h`` (within 1e-6, or within float32 rounding of the
terms for large ones), or, for the
class scores, when the two competing float scores are within ``TIE_RTOL`` of
the largest score magnitude. The BatchNorm margin does not cover the
rounding of ``z`` itself (a float32 sum of hundreds of products), so an image
whose difference exceeds it is run again through a float64 copy of the
PyTorch model: when float64 agrees with the golden model in that layer, the
difference was float32 rounding of a value within about 1e-6 of the
threshold, and it counts as a float tie (``"float64_agrees": True``). An image
whose first difference is neither is a compiler bug.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hwgen.compile.golden import run_network
from hwgen.compile.ir import Network
from hwgen.compile.kinds import kind_of
from hwgen.train.network import BinaryNet
from hwgen.train.residual import Residual

TIE_RTOL = 1e-6
TIE_ATOL = 1e-6


@dataclass
class Agreement:
    """Outcome of :func:`compare_models` over ``images`` images."""

    images: int
    same_prediction: int
    float_ties: list[dict] = field(default_factory=list)  # images with a difference, the first one a tie
    mismatches: list[dict] = field(default_factory=list)  # images whose first difference is not a tie (bugs)
    torch_correct: int = 0
    golden_correct: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches


class _ModuleTypes:
    """The float model's modules by name, for :meth:`hwgen.compile.kinds.NodeKind.float_output`."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.modules = modules

    def first_pool(self, names: list[str]) -> str | None:
        return next((n for n in names if isinstance(self.modules[n], nn.MaxPool2d)), None)

    def first_batchnorm(self, names: list[str]) -> str:
        return next((n for n in names if isinstance(self.modules[n], (nn.BatchNorm1d, nn.BatchNorm2d))), "")


def _stage_outputs(model: BinaryNet, net: Network) -> list[tuple[str, nn.Module, str]]:
    """(golden key, module whose output is u, BN module or '') for every bit-producing node with a float
    counterpart (its kind's :meth:`~hwgen.compile.kinds.NodeKind.float_output`): threshold convs (u after
    their pool and BN) and residual joins (u = the join's output)."""
    modules = dict(model.layers.named_children())
    types = _ModuleTypes(modules)
    result = []
    for layer in net.layers:
        found = kind_of(layer).float_output(layer, types)
        if found is not None:
            key, module, bn = found
            result.append((key, modules[module], bn))
    return result


@torch.no_grad()
def compare_models(model: BinaryNet, net: Network, images: np.ndarray, labels: np.ndarray | None = None,
                   batch_size: int = 500) -> Agreement:
    """Run both models on uint8 ``images`` (N, C, H, W) and classify every disagreement."""
    model.eval()
    agreement = Agreement(images=len(images), same_prediction=0)
    stages = _stage_outputs(model, net)
    modules = dict(model.layers.named_children())
    model64 = None
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        scores, captured = _run_captured(model, stages, batch)
        golden = run_network(net, batch, keep_intermediates=True)
        torch_pred = scores.argmax(axis=1)
        agreement.same_prediction += int((torch_pred == golden.predictions).sum())
        if labels is not None:
            lab = labels[start:start + batch_size]
            agreement.torch_correct += int((torch_pred == lab).sum())
            agreement.golden_correct += int((golden.predictions == lab).sum())
        for i in range(len(batch)):
            verdict = _first_difference(i, stages, modules, captured, golden.intermediates, scores[i],
                                        int(golden.predictions[i]))
            if verdict is not None and not verdict["tie"] and verdict["layer"] != "scores":
                if model64 is None:
                    model64 = copy.deepcopy(model).double().eval()
                verdict.update(_float64_check(model64, net, stages, batch[i:i + 1], verdict["layer"]))
            if verdict is not None:
                verdict.update(image=start + i, same_prediction=bool(torch_pred[i] == golden.predictions[i]))
                (agreement.float_ties if verdict["tie"] else agreement.mismatches).append(verdict)
    return agreement


def _run_captured(model: BinaryNet, stages, batch: np.ndarray) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """(float scores, every stage's pre-activation u and BatchNorm input z) for a uint8 batch."""
    modules = dict(model.layers.named_children())
    captured: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda m, i, o, key=key, store=captured: store.__setitem__(key, o))
             for key, module, _ in stages]
    hooks += [modules[bn].register_forward_hook(
                  lambda m, i, o, key=key, store=captured: store.__setitem__(key + "/in", i[0]))
              for key, _, bn in stages if bn]
    try:
        scores = model(torch.from_numpy(batch)).double().numpy()
    finally:
        for hook in hooks:
            hook.remove()
    return scores, captured


def _float64_check(model64: BinaryNet, net: Network, stages, image: np.ndarray, key: str) -> dict:
    """Whether the float64 model's bits equal the golden bits in layer ``key`` for one image."""
    _, captured = _run_captured(model64, _stage_outputs(model64, net), image)
    golden = run_network(net, image, keep_intermediates=True).intermediates[key][0]
    u = captured[key][0].numpy()
    agrees = bool(np.array_equal(u >= 0, golden.reshape(u.shape).astype(bool)))
    return {"tie": agrees, "float64_agrees": agrees}


def _first_difference(i, stages, modules, captured, intermediates, scores, golden_pred) -> dict | None:
    """The first layer where image ``i`` differs between the models (None: every bit and the prediction agree)."""
    for key, _, bn in stages:
        u = captured[key][i].double().numpy()
        bits = intermediates[key][i].reshape(u.shape)
        differ = (u >= 0) != bits.astype(bool)
        if not differ.any():
            continue
        if bn:
            module = modules[bn]
            g = (module.weight / torch.sqrt(module.running_var + module.eps)).double().numpy()
            h = (module.bias.double().numpy() - module.running_mean.double().numpy() * g)
            shape = (-1,) + (1,) * (u.ndim - 1)
            z = captured[key + "/in"][i].double().numpy()
            terms = np.abs(g.reshape(shape) * z) + np.abs(h.reshape(shape))
            if isinstance(modules.get(key), Residual):  # a residual join: + g_s * s
                terms = terms + np.abs(modules[key].scale.double().numpy()).reshape(shape)
            margin = np.maximum(TIE_ATOL, TIE_RTOL * terms)
        else:
            margin = np.maximum(TIE_ATOL, TIE_RTOL * np.abs(u))
        worst = float(np.max(np.abs(u[differ]) - margin[differ]))
        return {"layer": key, "bits_differ": int(differ.sum()), "tie": worst <= 0,
                "max_abs_preactivation": float(np.max(np.abs(u[differ])))}
    gap = float(scores.max() - scores[golden_pred])
    if gap == 0:
        return None
    return {"layer": "scores", "bits_differ": 0, "tie": gap <= TIE_RTOL * float(np.max(np.abs(scores))),
            "score_gap": gap}
