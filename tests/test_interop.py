"""QONNX import: tiny Brevitas networks exported, imported and compared with qonnx's executor and Brevitas itself.

The references are independent of the importer: qonnx's ``execute_onnx``
on the exported file and the Brevitas model's own PyTorch forward. Random
networks (hypothesis) vary shapes, kernels, padding, pools, BatchNorm
statistics (negative and zero gammas), first / last layer precision and the
input quantizer (8-bit CNV style or 1-bit FC style).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from brevitas_nets import export, tiny_net, torch_scores
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.compile.artifact import load_network, save_network
from hwgen.compile.golden import run_network
from hwgen.errors import CompileError
from hwgen.interop.lower import import_qonnx
from hwgen.interop.qonnx_model import PixelMapping
from hwgen.interop.reference import compare_with_executor, execute


@st.composite
def tiny_specs(draw) -> dict:
    channels = draw(st.sampled_from([1, 3]))
    size = draw(st.integers(4, 8))
    convs, side = [], size
    for _ in range(draw(st.integers(0, 2))):
        kernel = draw(st.integers(1, min(3, side)))
        padding = draw(st.integers(0, 1))
        side = side + 2 * padding - kernel + 1
        pool = side >= 2 and draw(st.booleans())
        convs.append({"out": draw(st.integers(1, 8)), "kernel": kernel, "padding": padding, "pool": pool})
        side = side // 2 if pool else side
    return {"seed": draw(st.integers(0, 10_000)), "in_shape": (channels, size, size), "convs": convs,
            "hidden": draw(st.lists(st.integers(2, 12), max_size=2)), "classes": draw(st.integers(2, 6)),
            "input_bits": draw(st.sampled_from([1, 8])), "first_bits": draw(st.sampled_from([1, 4, 8])),
            "last_bits": draw(st.sampled_from([1, 8])), "negative_tensor_norm": draw(st.booleans())}


def _images(shape, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=tiny_specs())
def test_random_brevitas_networks_match_qonnx_and_brevitas(spec: dict, tmp_path_factory) -> None:
    path = export(tiny_net(**spec), spec["in_shape"], tmp_path_factory.mktemp("q") / "net.onnx", dynamo=False)
    net = import_qonnx(path)
    images = _images(spec["in_shape"], 200, spec["seed"])
    result = compare_with_executor(path, net, images)
    assert not result.mismatches, result.mismatches[:3]
    assert result.same_prediction + sum(not t["same_prediction"] for t in result.float_ties) == len(images)
    # Brevitas's own forward: the golden top-1 equals it except on the executor's documented float ties
    # and on exact ties (equal integer scores: the golden model takes the lowest index, float rounding either)
    tied = {t["image"] for t in result.float_ties}
    torch_pred = torch_scores(tiny_net(**spec), images).argmax(axis=1)
    golden = run_network(net, images)
    top = golden.scores.max(axis=1)
    assert all(golden.scores[i, torch_pred[i]] == top[i] for i in range(len(images)) if i not in tied)


def test_dynamo_export_with_external_data_is_read(tmp_path) -> None:
    """Brevitas 0.13's default exporter: weights behind Slice nodes, tensors in NET.onnx.data."""
    spec = dict(seed=3, in_shape=(3, 8, 8), convs=[{"out": 6, "kernel": 3, "padding": 1, "pool": True}],
                hidden=[5], classes=3)
    net_t = tiny_net(**spec)
    path = export(net_t, spec["in_shape"], tmp_path / "net.onnx", dynamo=True)
    assert (tmp_path / "net.onnx.data").is_file()
    net = import_qonnx(path)
    images = _images(spec["in_shape"], 300)
    result = compare_with_executor(path, net, images)
    assert result.ok and result.identical == 300
    assert np.array_equal(run_network(net, images).predictions, torch_scores(net_t, images).argmax(axis=1))


def test_cnv_input_table_is_the_exact_brevitas_mapping(tmp_path) -> None:
    spec = dict(seed=4, in_shape=(3, 5, 5), convs=[{"out": 4, "kernel": 3, "padding": 0}], hidden=[], classes=2)
    net = import_qonnx(export(tiny_net(**spec), spec["in_shape"], tmp_path / "n.onnx", dynamo=False))
    v = np.arange(256, dtype=np.float32) / np.float32(255)
    expected = np.clip(np.round(128 * (2 * v - 1).astype(np.float32)), -128, 127).astype(np.int64)
    first = net.layers[0]
    assert first.input_offset is None
    assert np.array_equal(first.input_table, np.broadcast_to(expected, (3, 256)))
    # not an offset: 0 -> -128, 255 -> 127, and 127/128 are the two sides of 0
    assert (expected[0], expected[127], expected[128], expected[255]) == (-128, -1, 1, 127)


def test_fc_input_quantizer_is_a_binary_table(tmp_path) -> None:
    spec = dict(seed=5, in_shape=(1, 4, 4), convs=[], hidden=[6], classes=3, input_bits=1)
    net = import_qonnx(export(tiny_net(**spec), spec["in_shape"], tmp_path / "n.onnx", dynamo=False))
    table = net.layers[0].input_table
    # sign(2v/255 - 1) with sign(0) = +1: v >= 128 (127.5 is the midpoint)
    assert np.array_equal(table[0], np.where(np.arange(256) >= 128, 1, -1))


def test_the_ir_with_its_table_round_trips(tmp_path) -> None:
    spec = dict(seed=6, in_shape=(3, 6, 6), convs=[{"out": 5, "kernel": 3, "padding": 1, "pool": True}],
                hidden=[4], classes=3)
    net = import_qonnx(export(tiny_net(**spec), spec["in_shape"], tmp_path / "n.onnx", dynamo=False))
    save_network(tmp_path / "n.hwir", net)
    back = load_network(tmp_path / "n.hwir")
    assert np.array_equal(back.layers[0].input_table, net.layers[0].input_table)
    images = _images(spec["in_shape"], 100)
    assert np.array_equal(run_network(back, images).scores, run_network(net, images).scores)


def test_a_wrong_input_table_is_caught(tmp_path) -> None:
    """The comparison must fail when the table is the naive offset form v - 128 instead of the exact map."""
    spec = dict(seed=7, in_shape=(3, 6, 6), convs=[{"out": 8, "kernel": 3, "padding": 0}], hidden=[], classes=4)
    path = export(tiny_net(**spec), spec["in_shape"], tmp_path / "n.onnx", dynamo=False)
    net = import_qonnx(path)
    net.layers[0].input_table = np.broadcast_to(np.arange(256) - 128, (3, 256)).copy()
    result = compare_with_executor(path, net, _images(spec["in_shape"], 300))
    assert result.mismatches


def test_pixel_mapping_changes_the_table(tmp_path) -> None:
    spec = dict(seed=8, in_shape=(1, 4, 4), convs=[], hidden=[], classes=2, input_bits=1)
    path = export(tiny_net(**spec), spec["in_shape"], tmp_path / "n.onnx", dynamo=False)
    mapping = PixelMapping(mean=(0.25,), std=(0.5,))  # x = (v/255 - 0.25) / 0.5, sign(2x - 1): v/255 >= 0.5
    net = import_qonnx(path, mapping)
    assert np.array_equal(net.layers[0].input_table[0], np.where(np.arange(256) / 255 >= 0.5, 1, -1))
    images = _images(spec["in_shape"], 200)
    scores, _ = execute(path, images, mapping)
    assert compare_with_executor(path, net, images, mapping=mapping).ok
    assert scores.shape == (200, 2)


def _edit(path, tmp_path, change) -> str:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    change(model)
    out = str(tmp_path / "edited.onnx")
    model.save(out)
    return out


def test_refusals_name_the_node_and_what_is_supported(tmp_path) -> None:
    spec = dict(seed=9, in_shape=(1, 6, 6), convs=[{"out": 4, "kernel": 3, "padding": 0, "pool": True}],
                hidden=[5], classes=3)
    path = export(tiny_net(**spec), spec["in_shape"], tmp_path / "n.onnx", dynamo=False)

    def avgpool(model):
        node = model.get_nodes_by_op_type("MaxPool")[0]
        node.op_type = "AveragePool"
        del node.attribute[:]
        node.attribute.extend([onnx.helper.make_attribute("kernel_shape", [2, 2]),
                               onnx.helper.make_attribute("strides", [2, 2])])

    with pytest.raises(CompileError, match=r"node '\w+' \(AveragePool\): average pooling .* supported ops"):
        import_qonnx(_edit(path, tmp_path, avgpool))

    def two_bit_activations(model):
        node = model.get_nodes_by_op_type("BipolarQuant")[-1]  # the hidden FC layer's activation
        zero = onnx.numpy_helper.from_array(np.zeros((), np.float32), node.name + "_zp")
        bits = onnx.numpy_helper.from_array(np.array(2, np.float32), node.name + "_bits")
        model.graph.initializer.extend([zero, bits])
        node.op_type = "Quant"
        node.input.extend([zero.name, bits.name])
        node.attribute.extend([onnx.helper.make_attribute("signed", 1), onnx.helper.make_attribute("narrow", 0),
                               onnx.helper.make_attribute("rounding_mode", "ROUND")])

    with pytest.raises(CompileError, match=r"\(Quant\): 2-bit signed activations; .*1-bit"):
        import_qonnx(_edit(path, tmp_path, two_bit_activations))

    def missing_variance(model):
        node = model.get_nodes_by_op_type("BatchNormalization")[0]
        node.input[4] = ""

    with pytest.raises(CompileError, match=r"\(BatchNormalization\): a BatchNormalization statistic is missing"):
        import_qonnx(_edit(path, tmp_path, missing_variance))

    def float_weights(model):
        fc = next(n for n in model.graph.node if n.op_type in ("Gemm", "MatMul"))
        quant = model.find_producer(fc.input[1])
        fc.input[1] = quant.input[0]

    with pytest.raises(CompileError, match=r"\((Gemm|MatMul)\): float weights"):
        import_qonnx(_edit(path, tmp_path, float_weights))

    def branch(model):
        bn = model.get_nodes_by_op_type("BatchNormalization")[0]
        add = onnx.helper.make_node("Add", [bn.output[0], bn.output[0]], ["dup"], name="Residual")
        model.graph.node.append(add)

    with pytest.raises(CompileError, match=r"no branches or residual adds"):
        import_qonnx(_edit(path, tmp_path, branch))


def test_a_missing_file_is_one_line(tmp_path) -> None:
    with pytest.raises(CompileError, match="does not exist"):
        import_qonnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(CompileError, match="not a readable ONNX model"):
        import_qonnx(bad)


def _same_ir(a, b) -> bool:
    """Equal networks apart from layer names (qonnx's cleanup renames nodes)."""
    from hwgen.compile.ir import ConvLayer, input_values

    if (a.input_shape, a.num_classes, len(a.layers)) != (b.input_shape, b.num_classes, len(b.layers)):
        return False
    for x, y in zip(a.layers, b.layers):
        if type(x) is not type(y) or tuple(x.in_shape) != tuple(y.in_shape):
            return False
        if not isinstance(x, ConvLayer):
            if (x.kernel, x.stride) != (y.kernel, y.stride) or not np.array_equal(x.use_and, y.use_and):
                return False
            continue
        if ((x.weight_bits, x.stride, x.padding, x.input_kind) != (y.weight_bits, y.stride, y.padding, y.input_kind)
                or not np.array_equal(x.weights, y.weights) or type(x.output) is not type(y.output)):
            return False
        if x.input_kind == "uint8" and not np.array_equal(input_values(x), input_values(y)):
            return False
        fields = ("thresholds", "direction") if hasattr(x.output, "thresholds") else ("scale", "bias")
        if not all(np.array_equal(getattr(x.output, f), getattr(y.output, f)) for f in fields):
            return False
    return True


@pytest.mark.parametrize("ckpt", ["tfc_mnist", "cnv_cifar10"])
def test_export_then_import_gives_the_same_ir_and_the_executor_the_golden_scores(ckpt: str, tmp_path) -> None:
    from pathlib import Path

    from hwgen.compile.compiler import compile_checkpoint
    from hwgen.interop.export import export_network
    from hwgen.train.checkpoint import load_checkpoint

    src = Path(__file__).parent.parent / "models" / f"{ckpt}.ckpt"
    net = compile_checkpoint(load_checkpoint(src), str(src))
    export_network(net, tmp_path / "net.onnx")
    back = import_qonnx(tmp_path / "net.onnx")
    assert _same_ir(net, back)
    images = _images(net.input_shape, 60)
    scores, _ = execute(tmp_path / "net.onnx", images, batch=60)
    golden = run_network(net, images)
    assert np.array_equal(scores, golden.scores.astype(np.float64))  # exact integers, not just the same top-1
    # the comparison can fail: a changed threshold changes the golden model, not the exported file
    first = net.layers[0]
    first.output.thresholds = first.output.thresholds + 25
    assert not _same_ir(net, back)
    assert not np.array_equal(run_network(net, images).scores, golden.scores)


def test_export_of_an_import_round_trips_tables_and_and_pools(tmp_path) -> None:
    """A Brevitas CNV-style import (8-bit input table, negative BatchNorm gammas: AND pools) survives export."""
    from hwgen.interop.export import export_network

    spec = dict(seed=11, in_shape=(3, 8, 8), convs=[{"out": 6, "kernel": 3, "padding": 1, "pool": False},
                                                    {"out": 6, "kernel": 3, "padding": 0, "pool": True}],
                hidden=[5], classes=4, last_bits=8)
    net = import_qonnx(export(tiny_net(**spec), spec["in_shape"], tmp_path / "b.onnx", dynamo=False))
    # make the pool AND some channels, as an imported pool-before-BatchNorm with a negative gamma does
    pool = next(layer for layer in net.layers if not hasattr(layer, "weights"))
    pool.use_and = np.arange(len(pool.use_and)) % 2 == 1
    export_network(net, tmp_path / "e.onnx")
    back = import_qonnx(tmp_path / "e.onnx")
    assert _same_ir(net, back)
    images = _images(spec["in_shape"], 100)
    scores, _ = execute(tmp_path / "e.onnx", images)
    assert np.array_equal(scores, run_network(net, images).scores.astype(np.float64))


def test_cli_import_export_and_eval(tmp_path, capsys) -> None:
    from pathlib import Path

    from hwgen.cli import main

    ckpt = Path(__file__).parent.parent / "models" / "tfc_mnist.ckpt"
    assert main(["export", str(ckpt), "-o", str(tmp_path / "tfc.onnx")]) == 0
    assert main(["import", str(tmp_path / "tfc.onnx"), "-o", str(tmp_path / "tfc.hwir")]) == 0
    out = capsys.readouterr().out
    assert "fc 28x28 W1A8" in out and "total" in out and (tmp_path / "tfc.hwir").is_file()
    good = (tmp_path / "tfc.hwir").read_bytes()
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    assert main(["import", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "tfc.hwir")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "tfc.hwir").read_bytes() == good  # the earlier good output is kept
    assert main(["import", str(tmp_path / "tfc.onnx"), "-o", str(tmp_path / "x.hwir"), "--input-std", "a"]) == 2
    assert "--input-std must be a comma-separated list" in capsys.readouterr().err
