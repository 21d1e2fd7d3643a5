"""``compile_checkpoint``: the pass pipeline from a trained checkpoint to the integer IR.

    read_stages                       checkpoint -> float nodes: stages (integer weights, affine maps),
                                      residual joins, pools of complete values
    fold_batchnorm_into_thresholds    every stage but the last and the joins' main branches -> thresholds
                                      (+ OR/AND pool)
    fold_join_into_threshold_pairs    residual join -> main branch's accumulator + two thresholds per channel
    fold_pool_of_bits                 max-pool of a join's (or BatchNorm's) output -> OR pool of its bits
    fold_last_stage_into_scores       last stage -> integer class scores
    flip_negative_channels            all-"<=" channels -> weights and thresholds negated, ">="

Nodes list their ``inputs`` only where they do not read the previous node, so a chain compiles to the
same IR as before graphs existed.

``compile_stages`` runs the last three on float stages from anywhere: a checkpoint
(``read_stages``) or a QONNX graph (:func:`hwgen.interop.lower.lower_qonnx`).
"""

from __future__ import annotations

import numpy as np

from dataclasses import replace

from hwgen.compile.fold import (
    flip_negative_channels,
    fold_batchnorm_into_thresholds,
    fold_join_into_threshold_pairs,
    fold_last_stage_into_scores,
    fold_pool_of_bits,
)
from hwgen.compile.ir import INPUT, Layer, Network
from hwgen.compile.stages import FloatJoin, FloatNode, FloatPool, read_stages
from hwgen.train.architecture import Architecture
from hwgen.train.checkpoint import Checkpoint


def compile_stages(stages: list[FloatNode], *, name: str, input_shape: tuple[int, int, int], num_classes: int,
                   flip: bool = True) -> Network:
    """The folding passes over float nodes (from a checkpoint or a QONNX graph) -> the IR."""
    layers: list[Layer] = []
    for node in stages[:-1]:
        if isinstance(node, FloatJoin):
            layers.extend(fold_join_into_threshold_pairs(node))
        elif isinstance(node, FloatPool):
            layers.append(fold_pool_of_bits(node))
        elif node.join is None:  # a join's main branch is folded with its join
            layers.extend(fold_batchnorm_into_thresholds(node))
    layers.append(fold_last_stage_into_scores(stages[-1]))
    net = Network(name=name, input_shape=tuple(input_shape), layers=_default_inputs(layers),
                  num_classes=num_classes)
    return flip_negative_channels(net) if flip else net


def _default_inputs(layers: list[Layer]) -> list[Layer]:
    """Drop ``inputs`` that name the previous node (the network input for the first): the IR's default."""
    out = []
    for i, layer in enumerate(layers):
        previous = (layers[i - 1].name if i else INPUT,)
        out.append(replace(layer, inputs=()) if tuple(layer.inputs) == previous else layer)
    return out


def compile_architecture(arch: Architecture, state: dict[str, np.ndarray], *, flip: bool = True) -> Network:
    """Lower an architecture and its state dict (numpy arrays) to the IR."""
    return compile_stages(read_stages(arch, state), name=arch.name, input_shape=arch.input.shape,
                          num_classes=arch.num_classes, flip=flip)


def compile_checkpoint(ckpt: Checkpoint, source: str) -> Network:
    """Compile a loaded checkpoint; ``source`` (its path) is recorded in the IR's metadata."""
    state = {k: v.detach().double().numpy() for k, v in ckpt.model_state.items() if v.is_floating_point()}
    net = compile_architecture(ckpt.architecture, state)
    net.metadata = {"source": source, "train_metrics": ckpt.metrics,
                    "dataset": ckpt.train_config.get("dataset"), "data_dir": ckpt.train_config.get("data_dir")}
    return net


def compile_initialised(arch: Architecture, seed: int = 0) -> Network:
    """Compile a freshly initialised (untrained) model of ``arch``: the shapes, foldings and memory of a
    real build, for benchmarks and tests that do not depend on trained values."""
    import torch

    from hwgen.train.network import BinaryNet

    torch.manual_seed(seed)
    state = {k: v.double().numpy() for k, v in BinaryNet(arch).state_dict().items() if v.is_floating_point()}
    return compile_architecture(arch, state)
