import keras
import numpy as np
import pytest

from keras_dccrn import build_model
from keras_dccrn.export import export_tflite
from keras_dccrn.export.mixed_int8 import keep_float, mixed_float_ops
from keras_dccrn.runtime.litert import load_interpreter


@pytest.fixture(scope="module")
def conversions(tmp_path_factory):
    """``{quantization: flatbuffer bytes}`` of a streaming DCCRN with int8 encoder and decoder weights."""
    keras.utils.set_random_seed(0)
    model = build_model("tiny", time_crop="causal", channels=[4, 16, 16, 16, 16, 16])
    base = tmp_path_factory.mktemp("mixed")
    out = {}
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
    # analysis DFT, encoder convolutions 1 to 4, ten decoder convolutions, inverse DFT
    assert len(int8) == 16
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
