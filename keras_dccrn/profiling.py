"""Counting multiply-accumulates (MACs) from a model's traced TensorFlow graph.

The model is traced with a fixed input shape; every matrix product and
convolution in the graph (including the bodies of ``While`` loops, i.e. the
LSTM time loop, multiplied by their trip count) contributes its exact MAC
count from the static shapes. Elementwise ops (activations, norms, masks,
overlap-add) are not counted, as usual for MAC figures; ops whose results
no output depends on (pruned by TensorFlow at run time) are skipped.
"""

import numpy as np
import tensorflow as tf

_COUNTED = (
    "MatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Conv2D",
    "Conv2DBackpropInput",
    "DepthwiseConv2dNative",
)


def _shape(tensor):
    shape = tensor.shape
    if shape.rank is None or any(d is None for d in shape.as_list()):
        raise ValueError(f"Op input {tensor.name} has a dynamic shape {shape}; cannot count MACs.")
    return shape.as_list()


def _op_macs(op):
    t = op.type
    if t == "MatMul":
        a, b = _shape(op.inputs[0]), _shape(op.inputs[1])
        m = a[1] if op.get_attr("transpose_a") else a[0]
        k = a[0] if op.get_attr("transpose_a") else a[1]
        n = b[0] if op.get_attr("transpose_b") else b[1]
        return m * k * n
    if t.startswith("BatchMatMul"):
        out = _shape(op.outputs[0])
        a = _shape(op.inputs[0])
        k = a[-2] if op.get_attr("adj_x") else a[-1]
        return int(np.prod(out)) * k
    if t == "Conv2D":
        out = _shape(op.outputs[0])
        kh, kw, cin, _ = _shape(op.inputs[1])
        return int(np.prod(out)) * kh * kw * cin
    if t == "Conv2DBackpropInput":
        grad = _shape(op.inputs[2])  # the transposed conv's input [B, H, W, Cin]
        kh, kw, cout, _ = _shape(op.inputs[1])
        return int(np.prod(grad)) * kh * kw * cout
    if t == "DepthwiseConv2dNative":
        out = _shape(op.outputs[0])
        kh, kw, _, _ = _shape(op.inputs[1])
        return int(np.prod(out)) * kh * kw
    return 0


def _function_graph(graph, name):
    while graph is not None:
        fn = graph._get_function(name)  # noqa: SLF001 (no public accessor)
        if fn is not None:
            return fn.graph if hasattr(fn, "graph") else fn
        graph = getattr(graph, "outer_graph", None)
    raise ValueError(f"Function {name} not found in the graph library.")


def _trip_count(op):
    """Static trip count of a While op (Keras RNN loops over a known length)."""
    value = tf.get_static_value(op.inputs[1])  # while_v2: the maximum_iterations bound
    if value is not None and np.ndim(value) == 0 and value > 0:
        return int(value)
    # Keras' RNN loop iterates over a TensorList unstacked from the [T, B, D] sequence.
    for tensor in op.inputs:
        if tensor.op.type == "TensorListFromTensor":
            steps = tensor.op.inputs[0].shape[0]
            if steps is not None:
                return int(steps)
    raise ValueError(f"While op {op.name} has no static trip count.")


def _live_ops(graph):
    """Ops the graph's outputs depend on (TensorFlow prunes the rest at run time).

    Keras' RNN loop, for instance, traces one step outside the loop only to infer
    output shapes; that step never runs and must not be counted.
    """
    stack = [t.op for t in graph.outputs]
    live = set()
    while stack:
        op = stack.pop()
        if op.name in live:
            continue
        live.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return live


def _graph_macs(graph, counts):
    total = 0
    live = _live_ops(graph)
    for op in graph.get_operations():
        if op.name not in live:
            continue
        if op.type in _COUNTED:
            macs = _op_macs(op)
            counts[op.type] = counts.get(op.type, 0) + macs
            total += macs
        elif op.type in ("While", "StatelessWhile"):
            body = _function_graph(graph, op.get_attr("body").name)
            sub = {}
            body_macs = _graph_macs(body, sub)
            trips = _trip_count(op)
            for key, value in sub.items():
                counts[key] = counts.get(key, 0) + value * trips
            total += body_macs * trips
        elif op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            fn = _function_graph(graph, op.get_attr("f").name)
            total += _graph_macs(fn, counts)
    return total


def count_macs(model, num_samples=160000, return_breakdown=False):
    """Counts the MACs of one forward pass on ``[1, num_samples]``.

    Returns:
        Total MACs (int), or ``(total, {op_type: macs})`` with ``return_breakdown``.
    """

    @tf.function(input_signature=[tf.TensorSpec([1, num_samples], tf.float32)])
    def forward(x):
        return model(x, training=False)

    graph = forward.get_concrete_function().graph
    counts = {}
    total = _graph_macs(graph, counts)
    return (total, counts) if return_breakdown else total


def model_profile(model, seconds=10.0):
    """``dict(trainable, total, macs_per_second, lookahead_samples, frame_step)`` of a built model."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = sum(int(np.prod(w.shape)) for w in model.weights)
    macs = count_macs(model, int(round(seconds * 16000))) / seconds
    return dict(
        trainable=trainable,
        total=total,
        macs_per_second=macs,
        lookahead_samples=getattr(model, "lookahead_samples", None),
        frame_step=getattr(model, "frame_step", None),
        frame_length=getattr(model, "frame_length", None),
    )
