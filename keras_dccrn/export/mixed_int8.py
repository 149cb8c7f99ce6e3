"""Mixed int8: dynamic-range int8 with the few ops int8 activations cannot carry kept in float32.

Dynamic-range int8 stores each large weight tensor in int8 (a scale per output channel) and, at run
time, quantizes each such op's float input to int8 on the fly (one asymmetric scale per batch row, i.e.
per frame here). Weights are not what costs quality: the error comes from the inputs with a large
dynamic range, where the quiet part of a frame falls below one int8 step. On the shipped Distil-DCCRN
(one op group at a time in int8, the rest in float32: ``benchmarks/mixed_int8.py`` writes the figures
into ``docs/benchmarks/mixed_int8.md``) the inverse DFT of the synthesis (its input: the masked spectrum
of a frame) makes the PESQ-WB cost, the encoder's first int8 convolutions (their input: the spectrum,
with the dynamic range of speech across frequency) and the analysis DFT (the waveform frame) most of
the output error, and every other op little; with int8 weights but float inputs (the weights
dequantized) the first encoder convolution's error stays the same: the input quantization makes it,
not the weights.

:func:`keep_float` restores the float32 weights of chosen ops (those ops then run in float32) in the
dynamic-int8 flatbuffer, taking them from a float32 conversion of the same SavedModel (the two
conversions produce the same ops in the same order, which is checked); :func:`mixed_float_ops` chooses
them: the int8 ops under the :data:`~keras_dccrn.models.base.ANALYSIS_SCOPE` and
:data:`~keras_dccrn.models.base.SYNTHESIS_SCOPE` name scopes, and the first ``encoder_ops`` other int8
ops in execution order (the encoder's first quantized convolutions: in a DCCRN's graph nothing but the
analysis precedes the encoder).

For the diagnosis, :func:`layer_groups` groups a file's int8 ops by the layer they belong to (the name
scopes of the streaming step) and :func:`dequantize` stores chosen int8 weights as float32 values (the
int8 values times their scales: int8 weights with float inputs).
"""

import re

import numpy as np

# First int8 ops of the encoder kept in float by default (the speed and cost of 0 to 3:
# benchmarks/mixed_int8.py).
DEFAULT_ENCODER_OPS = 2


def check_encoder_ops(encoder_ops):
    """Raises ValueError unless ``encoder_ops`` is a non-negative integer."""
    if not isinstance(encoder_ops, (int, np.integer)) or isinstance(encoder_ops, bool) or encoder_ops < 0:
        raise ValueError(f"`encoder_ops` must be a non-negative integer; received {encoder_ops!r}.")


def _schema():
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    return schema, flatbuffer_utils


def _int8_weights(model, subgraph, op):
    """Positions of ``op``'s constant int8 inputs (its dynamic-range weights)."""
    schema, _ = _schema()
    positions = []
    for pos, index in enumerate(op.inputs):
        if index < 0:
            continue
        tensor = subgraph.tensors[index]
        if tensor.type == schema.TensorType.INT8 and model.buffers[tensor.buffer].data is not None:
            positions.append(pos)
    return positions


def _parts(subgraph, op):
    """The TF op names of ``op``'s outputs (a fused op is named ``"a;b;c"`` after every op it replaces)."""
    return [p for i in op.outputs for p in subgraph.tensors[i].name.decode().split(";")]


def int8_ops(content):
    """Indices of the ops with int8 weights in the main subgraph of a ``.tflite`` flatbuffer, in order."""
    _, flatbuffer_utils = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    subgraph = model.subgraphs[0]
    return [i for i, op in enumerate(subgraph.operators) if _int8_weights(model, subgraph, op)]


def _scope_of(parts, scopes):
    """The first of ``scopes`` that leads one of the op names ``parts`` (TF may suffix it ``_<n>``)."""
    leads = [p.split("/")[0] for p in parts if "/" in p]
    for lead in leads:
        if lead in scopes:
            return lead
    for lead in leads:
        for scope in scopes:
            if re.fullmatch(re.escape(scope) + r"_\d+", lead):
                return scope
    return None


def layer_groups(content, layer_names):
    """The int8 ops of a dynamic-int8 streaming file grouped by the layer they belong to.

    Args:
        content: the dynamic-int8 streaming ``.tflite`` flatbuffer.
        layer_names: the model's stateful layers (``[l.name for l in model.stateful_layers()]``), whose
            streaming steps run under their names' scopes; the analysis and synthesis scopes are added.

    Returns:
        ``{group: [op index, ...]}`` in the execution order of each group's first op; a group is
        :data:`~keras_dccrn.models.base.ANALYSIS_SCOPE`, :data:`~keras_dccrn.models.base.SYNTHESIS_SCOPE`
        or a layer name, and holds every int8 op under that name scope.

    Raises:
        ValueError: an int8 op is under none of these name scopes.
    """
    from keras_dccrn.models.base import ANALYSIS_SCOPE, SYNTHESIS_SCOPE

    _, flatbuffer_utils = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    subgraph = model.subgraphs[0]
    scopes = [ANALYSIS_SCOPE, *layer_names, SYNTHESIS_SCOPE]
    groups = {}
    for index, op in enumerate(subgraph.operators):
        if not _int8_weights(model, subgraph, op):
            continue
        parts = _parts(subgraph, op)
        scope = _scope_of(parts, scopes)
        if scope is None:
            raise ValueError(f"int8 op {index} ({parts[0]!r}) is under none of the name scopes {scopes}")
        groups.setdefault(scope, []).append(index)
    return groups


def _op_key(model, subgraph, op):
    code = model.operatorCodes[op.opcodeIndex]
    names = tuple(subgraph.tensors[i].name for i in op.outputs)
    return max(code.builtinCode, code.deprecatedBuiltinCode), names


def mixed_float_ops(content, encoder_ops=DEFAULT_ENCODER_OPS):
    """Indices of the ops of a dynamic-int8 streaming file to keep in float (main subgraph).

    Args:
        content: the dynamic-int8 ``.tflite`` flatbuffer.
        encoder_ops: how many int8 ops after the analysis (in execution order) to keep in float too.

    Returns:
        sorted ``[op index]``: the int8 ops of the analysis and synthesis name scopes and the first
        ``encoder_ops`` other int8 ops.

    Raises:
        ValueError: ``encoder_ops`` is not a non-negative integer, or no int8 op is in either scope.
    """
    from keras_dccrn.models.base import ANALYSIS_SCOPE, SYNTHESIS_SCOPE

    check_encoder_ops(encoder_ops)
    _, flatbuffer_utils = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    subgraph = model.subgraphs[0]
    scoped, others = [], []
    for index, op in enumerate(subgraph.operators):
        if not _int8_weights(model, subgraph, op):
            continue
        parts = _parts(subgraph, op)
        if any(p.startswith((f"{ANALYSIS_SCOPE}/", f"{SYNTHESIS_SCOPE}/")) for p in parts):
            scoped.append(index)
        else:
            others.append(index)
    if not scoped:
        raise ValueError(f"no int8 op under the {ANALYSIS_SCOPE!r} or {SYNTHESIS_SCOPE!r} name scopes")
    return sorted(scoped + others[: int(encoder_ops)])


def keep_float(quantized, reference, ops):
    """``quantized`` with the weights of ``ops`` replaced by their float32 values from ``reference``.

    Args:
        quantized: a dynamic-int8 ``.tflite`` flatbuffer (bytes).
        reference: the float32 conversion of the same SavedModel (bytes).
        ops: op indices in the main subgraph whose int8 weights become float32 (those ops then run in
            float32; any other op using the same weight tensor too).

    Returns:
        the mixed flatbuffer (bytes); everything else is kept.

    Raises:
        ValueError: the two files do not have the same ops (type and output names) in the same order, a
            restored weight's shape differs, or an index is not an op with int8 weights.
    """
    schema, flatbuffer_utils = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(quantized))
    floats = flatbuffer_utils.read_model_from_bytearray(bytearray(reference))
    subgraph, float_subgraph = model.subgraphs[0], floats.subgraphs[0]
    if len(subgraph.operators) != len(float_subgraph.operators):
        raise ValueError(
            f"the int8 and float32 conversions differ: {len(subgraph.operators)} and "
            f"{len(float_subgraph.operators)} ops"
        )
    restored = {}
    for index in ops:
        if not 0 <= index < len(subgraph.operators):
            raise ValueError(f"op {index!r} is not in the graph ({len(subgraph.operators)} ops)")
        op, float_op = subgraph.operators[index], float_subgraph.operators[index]
        if _op_key(model, subgraph, op) != _op_key(floats, float_subgraph, float_op):
            raise ValueError(f"the int8 and float32 conversions differ at op {index}")
        positions = _int8_weights(model, subgraph, op)
        if not positions:
            raise ValueError(f"op {index} has no int8 weights to restore")
        for pos in positions:
            tensor = subgraph.tensors[op.inputs[pos]]
            source = float_subgraph.tensors[float_op.inputs[pos]]
            if list(tensor.shape) != list(source.shape) or source.type != schema.TensorType.FLOAT32:
                raise ValueError(
                    f"op {index}: int8 weight {list(tensor.shape)} has no float32 counterpart "
                    f"(found {list(source.shape)})"
                )
            restored[op.inputs[pos]] = np.asarray(floats.buffers[source.buffer].data, np.uint8)
    return _store_float(model, restored)


def dequantize(quantized, ops):
    """``quantized`` with the int8 weights of ``ops`` stored as float32: the int8 values times their scales.

    Those ops then run in float32 on the int8 weights' values: what int8 weights cost without the
    quantization of the ops' inputs.

    Args:
        quantized: a dynamic-int8 ``.tflite`` flatbuffer (bytes).
        ops: op indices in the main subgraph with int8 weights.

    Returns:
        the flatbuffer (bytes); everything else is kept.

    Raises:
        ValueError: an index is not an op with int8 weights.
    """
    _, flatbuffer_utils = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(quantized))
    subgraph = model.subgraphs[0]
    values = {}
    for index in ops:
        if not 0 <= index < len(subgraph.operators):
            raise ValueError(f"op {index!r} is not in the graph ({len(subgraph.operators)} ops)")
        op = subgraph.operators[index]
        positions = _int8_weights(model, subgraph, op)
        if not positions:
            raise ValueError(f"op {index} has no int8 weights to dequantize")
        for pos in positions:
            tensor = subgraph.tensors[op.inputs[pos]]
            q = tensor.quantization
            weights = np.asarray(model.buffers[tensor.buffer].data, np.uint8).view(np.int8)
            weights = weights.reshape(tensor.shape).astype(np.float32)
            shape = [1] * weights.ndim  # the scales along the quantized axis, broadcast over the others
            shape[q.quantizedDimension if len(q.scale) > 1 else 0] = -1
            zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float32).reshape(shape)
            real = (weights - zero) * np.asarray(q.scale, np.float32).reshape(shape)
            values[op.inputs[pos]] = real.astype(np.float32).reshape(-1).view(np.uint8)
    return _store_float(model, values)


def _store_float(model, values):
    """The flatbuffer of ``model`` with tensors ``{index: float32 bytes}`` of the main subgraph as float32."""
    schema, flatbuffer_utils = _schema()
    subgraph = model.subgraphs[0]
    for index, data in values.items():
        tensor = subgraph.tensors[index]
        others = [t for s in model.subgraphs for t in s.tensors if t.buffer == tensor.buffer]
        if len(others) == 1:
            model.buffers[tensor.buffer].data = data.copy()
        else:  # a buffer shared with another tensor stays as it is for that tensor
            buffer = schema.BufferT()
            buffer.data = data.copy()
            model.buffers.append(buffer)
            tensor.buffer = len(model.buffers) - 1
        tensor.type = schema.TensorType.FLOAT32
        tensor.quantization = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
