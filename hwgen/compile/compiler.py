"""``compile_checkpoint``: the pass pipeline from a trained checkpoint to the integer IR.

    read_stages                       checkpoint -> float stages (integer weights, affine maps)
    fold_batchnorm_into_thresholds    every stage but the last -> thresholds (+ OR/AND pool)
    fold_last_stage_into_scores       last stage -> integer class scores
    flip_negative_channels            all-"<=" channels -> weights and thresholds negated, ">="

``compile_stages`` runs the last three on float stages from anywhere: a checkpoint
(``read_stages``) or a QONNX graph (:func:`hwgen.interop.lower.lower_qonnx`).
"""

from __future__ import annotations

import numpy as np

from hwgen.compile.fold import fold_batchnorm_into_thresholds, fold_last_stage_into_scores, flip_negative_channels
from hwgen.compile.ir import Layer, Network
from hwgen.compile.stages import FloatStage, read_stages
from hwgen.train.architecture import Architecture
from hwgen.train.checkpoint import Checkpoint


def compile_stages(stages: list[FloatStage], *, name: str, input_shape: tuple[int, int, int], num_classes: int,
                   flip: bool = True) -> Network:
    """The folding passes over float stages (from a checkpoint or a QONNX graph) -> the IR."""
    layers: list[Layer] = []
    for stage in stages[:-1]:
        layers.extend(fold_batchnorm_into_thresholds(stage))
    layers.append(fold_last_stage_into_scores(stages[-1]))
    net = Network(name=name, input_shape=tuple(input_shape), layers=layers, num_classes=num_classes)
    return flip_negative_channels(net) if flip else net


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
