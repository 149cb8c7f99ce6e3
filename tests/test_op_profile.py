import re

import numpy as np
import pytest

from keras_dccrn.op_profile import OpRun, layer, op_shares, op_type, phase, read_xplane, trace_ops

RUNS = [
    OpRun("student_1/enc_conv_3_1/add_1", "_MklNativeFusedConv2D", 0.3),
    OpRun("gradient_tape/student_1/enc_conv_3_1/convolution/Conv2DBackpropFilter", "_MklNativeConv2DBackpropFilter", 0.5),
    OpRun("student_1/clstm_0_1/while/body/_1/student_1/clstm_0_1/while/MatMul", "_MklBatchMatMulV2", 0.1),
    OpRun("compile_loss/si_snr_spectral_loss/Pow", "Pow", 0.04),
    OpRun("AddN_34", "AddN", 0.05),
    OpRun("adam/sub_3", "Sub", 0.01),
    OpRun("student_1/sub", "Sub", 0.01),
]  # fmt: skip


def test_layer_phase_and_type_of_op_names():
    assert [layer(r, "student") for r in RUNS] == [
        "enc_conv_3", "enc_conv_3", "clstm_0", "loss", "AddN", "adam", "student (own ops)"
    ]  # fmt: skip
    assert [phase(r) for r in RUNS] == [
        "forward", "backward", "forward", "forward", "backward", "optimizer", "forward"
    ]  # fmt: skip
    assert (
        op_type(RUNS[0]) == "FusedConv2D"
        and op_type(RUNS[2]) == "BatchMatMulV2"
        and op_type(RUNS[3]) == "Pow"
    )


def test_shares_per_step_most_time_first():
    rows = op_shares(RUNS + RUNS, op_type, steps=2)
    groups = [g for g, *_ in rows]
    assert groups[:3] == ["Conv2DBackpropFilter", "FusedConv2D", "BatchMatMulV2"]
    by_group = {g: (s, share, n) for g, s, share, n in rows}
    np.testing.assert_allclose(by_group["Sub"], (0.02, 0.02 / 1.01, 2.0), rtol=1e-9)
    np.testing.assert_allclose(sum(share for _, _, share, _ in rows), 1.0, rtol=1e-12)


def test_a_file_that_is_no_profile_is_one_line(tmp_path):
    bad = tmp_path / "x.xplane.pb"
    bad.write_bytes(b"\xff\xff not a protobuf")
    with pytest.raises(ValueError, match=f"{bad}: not an XSpace profile"):
        read_xplane(str(bad))


def test_traces_the_kernels_of_a_function():
    import tensorflow as tf

    a = tf.constant(np.ones((64, 64), np.float32))

    @tf.function
    def step():
        return tf.matmul(a, a, name="product") * 2.0

    step()
    runs = trace_ops(step, steps=2)
    products = [r for r in runs if r.name == "product"]
    assert len(products) == 2 and all("MatMul" in r.type and r.seconds > 0 for r in products)


def test_ops_of_a_written_out_gradient_count_as_backward(rng):
    import tensorflow as tf

    from keras_dccrn.layers import BatchNormalization, PReLU

    norm, act = BatchNormalization(), PReLU(shared_axes=[1, 2])
    x = tf.constant(rng.standard_normal((4, 8, 6)).astype("float32"))
    norm.build(x.shape)
    act.build(x.shape)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(act(norm(x, training=True), training=True))
        return tape.gradient(loss, norm.trainable_weights + act.trainable_weights)

    step()
    runs = trace_ops(step)
    roots = {r.name.split("/")[0] for r in runs if phase(r) == "backward"}
    assert "prelu_gradient" in {re.sub(r"_\d+$", "", root) for root in roots}, roots
    # the batch norm's fused gradient kernel (keras_dccrn.layers.batch_norm) is a gradient_tape/ op
    norm_grads = [r for r in runs if "FusedBatchNormGrad" in r.type]
    assert norm_grads and all(phase(r) == "backward" for r in norm_grads), [(r.name, r.type) for r in runs]
