import keras
import numpy as np
import pytest

from keras_dccrn import build_model
from keras_dccrn.export import export_tflite
from keras_dccrn.export.mixed_int8 import dequantize, int8_ops, keep_float, layer_groups, mixed_float_ops
from keras_dccrn.runtime.litert import load_interpreter

# one worker builds the module's conversions (about 35 s) instead of each worker that runs a test of it
pytestmark = pytest.mark.xdist_group("mixed_int8")


@pytest.fixture(scope="module")
def conversions(tmp_path_factory):
    """``{quantization: flatbuffer bytes}`` of a streaming DCCRN with int8 encoder and decoder weights."""
    keras.utils.set_random_seed(0)
    model = build_model("tiny", time_crop="causal", channels=[4, 16, 16, 16, 16, 16])
    base = tmp_path_factory.mktemp("mixed")
    out = {"layers": [layer.name for layer in model.stateful_layers()]}
    for q in ("float32", "dynamic_int8"):
        out[q] = _read(export_tflite(model, base / f"{q}.tflite", mode="streaming", quantization=q))
    out["offline"] = _read(export_tflite(model, base / "offline.tflite", chunk_samples=1600))
    return out


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _int8_ops(content):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    return [
        i
        for i, op in enumerate(graph.operators)
        if any(
            t >= 0
            and graph.tensors[t].type == schema.TensorType.INT8
            and model.buffers[graph.tensors[t].buffer].data is not None
            for t in op.inputs
        )
    ]


def _run(content, hops=30, seed=0):
    """Outputs of ``hops`` invokes of a streaming flatbuffer on noise, the states carried."""
    runner = load_interpreter(model_content=content)[0].get_signature_runner("serving_default")
    inputs = runner.get_input_details()
    feed = {n: np.zeros(d["shape"], "float32") for n, d in inputs.items()}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(hops):
        feed["audio"] = (0.1 * rng.standard_normal(feed["audio"].shape)).astype("float32")
        result = runner(**feed)
        feed.update({n: result[f"next_{n}"] for n in feed if n != "audio"})
        out.append(result["enhanced"])
    return np.concatenate(out, axis=1)


def test_the_dfts_and_the_first_encoder_ops_are_chosen(conversions):
    dynamic = conversions["dynamic_int8"]
    int8 = _int8_ops(dynamic)
    # analysis DFT, encoder convolutions 2 to 5, the complex LSTM's input projection, eight decoder
    # convolutions, inverse DFT
    assert len(int8) == 15
    assert mixed_float_ops(dynamic, 0) == [int8[0], int8[-1]]
    assert mixed_float_ops(dynamic) == [int8[0], int8[1], int8[2], int8[-1]]
    assert mixed_float_ops(dynamic, 100) == int8
    with pytest.raises(ValueError, match="received 1.5"):
        mixed_float_ops(dynamic, 1.5)
    with pytest.raises(ValueError, match="received True"):
        mixed_float_ops(dynamic, True)
    with pytest.raises(ValueError, match="no int8 op under the 'dccrn_analysis' or 'dccrn_synthesis'"):
        mixed_float_ops(conversions["float32"])


def test_keep_float_restores_exactly_the_chosen_weights(conversions):
    dynamic, reference = conversions["dynamic_int8"], conversions["float32"]
    int8 = _int8_ops(dynamic)
    chosen = mixed_float_ops(dynamic)
    mixed = keep_float(dynamic, reference, chosen)
    assert _int8_ops(mixed) == [i for i in int8 if i not in chosen]
    # every int8 op restored: the float32 file's outputs (same ops, same weights)
    everything = keep_float(dynamic, reference, int8)
    assert _int8_ops(everything) == []
    np.testing.assert_allclose(_run(everything), _run(reference), rtol=0, atol=1e-6)
    # nothing restored: the dynamic-int8 file's outputs
    np.testing.assert_array_equal(_run(keep_float(dynamic, reference, [])), _run(dynamic))


def test_keep_float_refuses_files_that_do_not_correspond(conversions):
    dynamic, reference = conversions["dynamic_int8"], conversions["float32"]
    int8 = _int8_ops(dynamic)
    with pytest.raises(ValueError, match="the int8 and float32 conversions differ: .* ops"):
        keep_float(dynamic, conversions["offline"], int8[:1])
    from ai_edge_litert.tools import flatbuffer_utils

    renamed = flatbuffer_utils.read_model_from_bytearray(bytearray(reference))
    graph = renamed.subgraphs[0]
    graph.tensors[graph.operators[int8[1]].outputs[0]].name = b"another_op"
    renamed = bytes(flatbuffer_utils.convert_object_to_bytearray(renamed))
    with pytest.raises(ValueError, match=f"the int8 and float32 conversions differ at op {int8[1]}"):
        keep_float(dynamic, renamed, int8[:2])
    not_int8 = next(i for i in range(len(int8) + 1) if i not in int8)
    with pytest.raises(ValueError, match=f"op {not_int8} has no int8 weights to restore"):
        keep_float(dynamic, reference, [not_int8])
    with pytest.raises(ValueError, match="op 100000 is not in the graph"):
        keep_float(dynamic, reference, [100000])


def test_int8_ops_are_the_ops_with_int8_weights(conversions):
    assert int8_ops(conversions["dynamic_int8"]) == _int8_ops(conversions["dynamic_int8"])
    assert int8_ops(conversions["float32"]) == []


def test_layer_groups_name_the_layer_of_every_int8_op(conversions):
    dynamic = conversions["dynamic_int8"]
    groups = layer_groups(dynamic, conversions["layers"])
    # the first encoder convolution (4 x 2 x 5 x 2 weights), the LSTM's recurrent matrices and the last
    # two decoder layers are below 1024 weights: float in every file; a decoder layer is two polyphase
    # convolutions
    assert list(groups) == [
        "dccrn_analysis",
        *[f"enc_conv_{i}" for i in range(2, 6)],
        "clstm_0",
        *[f"dec_conv_{i}" for i in range(4)],
        "dccrn_synthesis",
    ]
    assert [len(ops) for ops in groups.values()] == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 1]
    assert [i for ops in groups.values() for i in ops] == _int8_ops(dynamic)  # in execution order
    # the recipe's choice, by group: the DFTs and the first two int8 encoder layers
    chosen = [g for g, ops in groups.items() if set(ops) <= set(mixed_float_ops(dynamic))]
    assert chosen == ["dccrn_analysis", "enc_conv_2", "enc_conv_3", "dccrn_synthesis"]
    with pytest.raises(ValueError, match="int8 op .* is under none of the name scopes"):
        layer_groups(dynamic, ["enc_conv_2"])


def _weights(content, ops):
    """``{op: [(type, shape, values as float32 or int8, quantization)]}`` of the ops' constant inputs."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    out = {}
    for i in ops:
        rows = []
        for t in graph.operators[i].inputs:
            tensor = graph.tensors[t] if t >= 0 else None
            if tensor is None or model.buffers[tensor.buffer].data is None:
                continue
            raw = np.asarray(model.buffers[tensor.buffer].data, np.uint8)
            dtype = np.int8 if tensor.type == schema.TensorType.INT8 else np.float32
            rows.append(
                (tensor.type, list(tensor.shape), raw.view(dtype).reshape(tensor.shape), tensor.quantization)
            )
        out[i] = rows
    return out


def test_dequantize_stores_the_int8_values_times_their_scales(conversions):
    from ai_edge_litert import schema_py_generated as schema

    dynamic, reference = conversions["dynamic_int8"], conversions["float32"]
    int8 = _int8_ops(dynamic)
    chosen = [int8[0], int8[1], int8[-1]]
    restored = dequantize(dynamic, chosen)
    assert _int8_ops(restored) == [i for i in int8 if i not in chosen]
    before, after, floats = _weights(dynamic, chosen), _weights(restored, chosen), _weights(reference, chosen)
    for i in chosen:
        (q,) = [w for w in before[i] if w[0] == schema.TensorType.INT8]
        scale = np.asarray(q[3].scale, np.float32).reshape([-1] + [1] * (len(q[1]) - 1))
        assert q[3].quantizedDimension == 0 and not np.any(q[3].zeroPoint)
        (d,) = [w for w in after[i] if w[1] == q[1]]
        (f,) = [w for w in floats[i] if w[1] == q[1]]
        assert d[0] == schema.TensorType.FLOAT32
        np.testing.assert_allclose(d[2], q[2].astype(np.float32) * scale, rtol=1e-7, atol=0)
        # symmetric rounding: within half a step of the float32 weights
        assert np.all(np.abs(d[2] - f[2]) <= 0.5 * scale * (1 + 1e-5))
    # every int8 weight dequantized: close to the float32 file, not equal to it
    everything = dequantize(dynamic, int8)
    out, ref = _run(everything), _run(reference)
    error_db = 10 * np.log10(np.sum((out - ref) ** 2) / np.sum(ref**2))
    assert -80 < error_db < -20
    with pytest.raises(ValueError, match=f"op {next(i for i in range(300) if i not in int8)} has no int8"):
        dequantize(dynamic, [next(i for i in range(300) if i not in int8)])
