"""TFLite (LiteRT) export: offline and streaming models, quantisation and calibration.

:func:`export_tflite` writes a ``.tflite`` file that uses TFLite builtin ops
only (checked after conversion), either

- ``mode="offline"``: ``noisy`` ``[1, chunk_samples]`` -> ``enhanced``
  ``[1, chunk_samples]``, the whole model on a fixed-length chunk;
- ``mode="streaming"``: one hop in, one hop out, with explicit state: the
  model's own ``step`` (see :mod:`keras_dccrn.streaming`); inputs ``audio``
  ``[1, hop]`` and every state of ``model.initial_states(1)``
  (``input_buffer``, ``ola_buffer`` and one tensor per stateful layer, e.g.
  ``enc_conv_0``, ``clstm_0``); outputs ``enhanced`` and
  ``next_<input name>`` for each state.

Quantizations: ``"float32"``; ``"dynamic_int8"`` (int8 weights, float
activations quantized to int8 on the fly); ``"mixed_int8"``, streaming only:
``"dynamic_int8"`` with the analysis DFT, the inverse DFT and the first
``mixed_encoder_ops`` int8 convolutions of the encoder in float32 (their
inputs' dynamic range is what dynamic-range int8 loses;
:mod:`keras_dccrn.export.mixed_int8`); ``"float16"`` (float16 weights,
computed in float32 on CPU);
``"int8"``, streaming only: weights and activations of the network
(encoder, LSTMs, decoder) in int8 after calibration on
``representative_data``, each state tensor with its own scale; the inputs
and outputs, the framing and DFT, the mask application, the inverse DFT
and the overlap-add stay float32. Quantizing those too (one scale for the
waveform and the overlap-add buffer, 256 levels of the calibration peak)
and packing all states into one vector (one scale for conv caches and LSTM
cell states) made the output unusable (about -19 dB SI-SNR against
float32). Quality is limited by the int8 linear-amplitude spectrum at the
encoder input: calibrate on audio at the levels you will process (real
noisy speech, or :func:`keras_dccrn.signals.speech_like_signals`). Offline full int8 is
refused: the TF 2.21 converter crashes (segfault) calibrating the LSTM
``WHILE`` loop of the offline graph; run the streaming int8 file through
:class:`~keras_dccrn.runtime.litert.TFLiteEnhancer` to process whole files.

Every converted file is checked for non-builtin (Flex/custom) ops and run
once on a test tone (non-finite output is refused) before it is written.

Every file carries the model's ``lookahead_samples``, ``frame_step`` and ``sample_rate`` in a
``keras_dccrn`` flatbuffer metadata entry (JSON; :func:`keras_dccrn.runtime.litert.read_metadata`).
:class:`keras_dccrn.runtime.litert.TFLiteEnhancer` runs the files.
"""

import json
import os
import tempfile

import numpy as np

from keras_dccrn.atomic import atomic_output
from keras_dccrn.audio import SAMPLE_RATE
from keras_dccrn.errors import first_line
from keras_dccrn.export.mixed_int8 import DEFAULT_ENCODER_OPS, check_encoder_ops, keep_float, mixed_float_ops
from keras_dccrn.export.savedmodel import export_archive, model_metadata
from keras_dccrn.runtime.litert import METADATA_NAME, load_interpreter, tflite_op_names

MODES = ("offline", "streaming")
QUANTIZATIONS = ("float32", "dynamic_int8", "mixed_int8", "float16", "int8")
# quantizations with one scale per state tensor or op list that only the hop graph has
STREAMING_ONLY = ("int8", "mixed_int8")
# quantizations that scale an op's input at run time (per batch row)
DYNAMIC_RANGE = ("dynamic_int8", "mixed_int8")
DEFAULT_CHUNK_SAMPLES = 4 * SAMPLE_RATE
MAX_HOPS_PER_CALL = 64


def _tf():
    import tensorflow as tf

    return tf


# ---------------------------------------------------------------------------------------------- TFLite


def _tflite_endpoint(model, mode, chunk_samples, hops_per_call=1, frame_rows=False):
    tf = _tf()
    if mode == "offline":
        if not isinstance(chunk_samples, (int, np.integer)) or chunk_samples < model.frame_step:
            raise ValueError(
                f"`chunk_samples` must be an integer >= frame_step ({model.frame_step}); received {chunk_samples!r}."
            )

        def enhance(noisy):
            return {"enhanced": model(noisy, training=False)}

        return enhance, [tf.TensorSpec([1, int(chunk_samples)], tf.float32, name="noisy")]
    from keras_dccrn.streaming import check_streamable

    check_streamable(model)
    initial = model.initial_states(1)
    names = list(initial)

    def step(audio, *states):
        enhanced, new = model.step(audio, dict(zip(names, states, strict=True)), frame_rows=frame_rows)
        return {"enhanced": enhanced, **{f"next_{name}": new[name] for name in names}}

    signature = [tf.TensorSpec([1, hops_per_call * int(model.frame_step)], tf.float32, name="audio")] + [
        tf.TensorSpec(tuple(initial[name].shape), tf.float32, name=name) for name in names
    ]
    return step, signature


def _representative(mode, data, chunk_samples, model, hops_per_call=1, max_samples=400):
    """Calibration samples (dicts keyed by input name) for full-int8 conversion."""
    tf = _tf()
    signals = [np.asarray(x, "float32").reshape(-1) for x in data]
    if not signals or any(x.size == 0 for x in signals):
        raise ValueError("`representative_data` must be a non-empty iterable of non-empty 1-D signals.")
    samples = []
    if mode == "offline":
        for x in signals:
            for start in range(0, x.size, chunk_samples):
                chunk = np.zeros((1, chunk_samples), "float32")
                part = x[start : start + chunk_samples]
                chunk[0, : part.size] = part
                samples.append({"noisy": chunk})
    else:
        from keras_dccrn.runtime.hops import run_hops
        from keras_dccrn.streaming import numpy_step

        step, initial = numpy_step(tf.function(model.step), model.initial_states(1))
        hop = hops_per_call * int(model.frame_step)
        for x in signals:
            # whole hops of the signal only, no delay compensation: the states are what matters
            run_hops(
                step,
                initial,
                x[: x.size // hop * hop],
                hop,
                delay=0,
                observe=lambda audio, states: samples.append({"audio": audio, **states}),
            )
    if len(samples) > max_samples:
        keep = np.linspace(0, len(samples) - 1, max_samples).round().astype(int)
        samples = [samples[i] for i in keep]

    def generator():
        yield from samples

    return generator


def _float_nodes(content):
    """Output tensor names of the ops built under the streaming analysis/synthesis name scopes."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_dccrn.models.base import ANALYSIS_SCOPE, SYNTHESIS_SCOPE

    interpreter = Interpreter(model_content=content)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    outputs = interpreter.get_signature_runner("serving_default").get_output_details()
    # the ops producing these outputs lose their scoped name to the signature's output name
    audio_outputs = {outputs[k]["index"] for k in ("enhanced", "next_input_buffer", "next_ola_buffer")}
    scoped = []
    for op in interpreter._get_ops_details():
        for index in op["outputs"]:
            # fused ops are named "a;b;c" after every TF op they replace
            parts = names.get(index, "").split(";")
            in_scope = any(p.startswith((f"{ANALYSIS_SCOPE}/", f"{SYNTHESIS_SCOPE}/")) for p in parts)
            if in_scope or index in audio_outputs:
                scoped.append(names[index])
    return scoped


def _quantize_network_only(converter):
    """Full-int8 streaming conversion with the analysis/synthesis ends left in float.

    The converter is calibrated once (``QuantizationDebugger`` runs the
    representative dataset), then quantized with the ops of the
    :data:`~keras_dccrn.models.base.ANALYSIS_SCOPE` and
    :data:`~keras_dccrn.models.base.SYNTHESIS_SCOPE` name scopes denylisted:
    framing, DFT, mask application, inverse DFT and overlap-add run in
    float32 (int8 would quantize the waveform and the overlap-add buffer to
    256 levels of the calibration's peak), everything between them in int8.
    """
    tf = _tf()
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset
    )
    nodes = _float_nodes(debugger.calibrated_model)
    if not nodes:
        raise ValueError("no analysis/synthesis ops found to keep in float")
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
    return debugger.get_nondebug_quantized_model()


def _converter(
    saved_model, mode, quantization, representative_data=None, chunk_samples=0, model=None, hops=1
):
    """The TFLite converter of ``saved_model``'s ``serving_default`` for ``quantization``."""
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = _representative(
            mode, representative_data, int(chunk_samples), model, hops
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return converter


def _check_builtin(content, path):
    bad = sorted(
        op for op in tflite_op_names(content) if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")
    )
    # DELEGATE only appears after the XNNPACK delegate is applied at run time, never in the flatbuffer
    bad = [op for op in bad if op != "DELEGATE"]
    if bad:
        raise ValueError(
            f"{path}: converted model contains non-builtin ops {bad}; it would not run in LiteRT."
        )


def _check_finite(content, path):
    """Runs the converted model on a short test tone; refuses NaN/inf output."""
    runner = load_interpreter(model_content=content)[0].get_signature_runner("serving_default")
    inputs = runner.get_input_details()
    feed = {name: np.zeros(d["shape"], "float32") for name, d in inputs.items()}
    main = "noisy" if "noisy" in feed else "audio"
    n = feed[main].shape[1]
    feed[main] = (0.1 * np.sin(2 * np.pi * 440 / SAMPLE_RATE * np.arange(n))).astype("float32")[None]
    out = runner(**feed)
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise ValueError(f"{path}: converted model outputs NaN/inf on a test tone; not written")


def export_tflite(
    model,
    path,
    mode="offline",
    quantization="float32",
    representative_data=None,
    chunk_samples=DEFAULT_CHUNK_SAMPLES,
    hops_per_call=1,
    mixed_encoder_ops=DEFAULT_ENCODER_OPS,
    frame_rows=None,
):
    """Converts ``model`` to a builtin-ops-only ``.tflite`` file.

    Args:
        model: a built DCCRN or Uformer; for ``mode="streaming"`` it must
            support streaming (``model.supports_streaming``: a causal DCCRN).
        path: output file, written atomically.
        mode: ``"offline"`` (fixed chunks of ``chunk_samples``) or
            ``"streaming"`` (one hop per call with explicit state).
        quantization: ``"float32"``, ``"dynamic_int8"``, ``"mixed_int8"``,
            ``"float16"`` or ``"int8"``.
        representative_data: for ``"int8"`` only (required there): an
            iterable of 1-D float32 16 kHz signals used to calibrate the
            activation ranges (offline: cut into chunks; streaming: run
            through the Keras stream so the calibration states are real).
        chunk_samples: offline chunk length in samples.
        hops_per_call: streaming only: STFT hops per call (``audio`` is
            ``[1, hops_per_call * frame_step]``). More hops per call run the
            same computation in fewer, larger ops (faster per hop) at
            ``hops_per_call - 1`` hops of extra latency.
        mixed_encoder_ops: ``"mixed_int8"`` only: how many of the encoder's
            first int8 ops stay in float32 (besides the analysis and inverse
            DFTs); 0 keeps only the DFTs in float.
        frame_rows: streaming only: compute the convolutions one output frame
            per batch row (``model.step(..., frame_rows=True)``; the same
            outputs, more copying). Dynamic-range int8 scales a convolution's
            input once per batch row, so with several hops per call this gives
            every frame its own scale, as one hop per call does; without it
            the frames of a call share one scale (faster, and quieter frames
            lose precision). ``None`` (default): on for ``"dynamic_int8"`` and
            ``"mixed_int8"`` files of several hops per call, else off.

    Returns:
        ``path``.

    Raises:
        keras_dccrn.extras.MissingExtraError: ``ai-edge-litert`` (the ``[tflite]`` extra), which checks
            the converted file, is not installed.
    """
    from keras_dccrn import extras

    extras.require(["ai_edge_litert"], f"{path}: writing a .tflite model")
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}; received {mode!r}.")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}; received {quantization!r}.")
    if quantization in STREAMING_ONLY and mode == "offline":
        # int8: LiteRT's calibrator crashes (segfault, TF 2.21) on the LSTM's WHILE loop of the offline
        # graph; the streaming graph has no loop and quantizes fine. mixed_int8: its op choice was measured
        # on the streaming graph.
        raise ValueError(
            f"quantization={quantization!r} is supported for mode='streaming' only (use 'dynamic_int8' offline)."
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs `representative_data` (an iterable of 1-D signals).")
    if not getattr(model, "built", False):
        raise ValueError("The model must be built (called once) before export.")
    if not isinstance(hops_per_call, (int, np.integer)) or not 1 <= hops_per_call <= MAX_HOPS_PER_CALL:
        raise ValueError(
            f"`hops_per_call` must be an integer in [1, {MAX_HOPS_PER_CALL}]; received {hops_per_call!r}."
        )
    if hops_per_call != 1 and mode != "streaming":
        raise ValueError(f"`hops_per_call` applies to mode='streaming' only; received mode={mode!r}.")
    hops_per_call = int(hops_per_call)
    check_encoder_ops(mixed_encoder_ops)
    if frame_rows is None:
        frame_rows = hops_per_call > 1 and quantization in DYNAMIC_RANGE
    elif not isinstance(frame_rows, bool):
        raise ValueError(f"`frame_rows` must be None, True or False; received {frame_rows!r}.")
    elif frame_rows and mode != "streaming":
        raise ValueError(f"`frame_rows` applies to mode='streaming' only; received mode={mode!r}.")
    fn, signature = _tflite_endpoint(model, mode, chunk_samples, hops_per_call, frame_rows)
    path = os.fspath(path)
    with tempfile.TemporaryDirectory(prefix="dccrn-tflite-") as tmp:
        export_archive([("serving_default", fn, signature)]).write_out(tmp, verbose=False)
        converter = _converter(
            tmp, mode, quantization, representative_data, chunk_samples, model, hops_per_call
        )
        try:
            if quantization == "int8":
                content = _quantize_network_only(converter)
            elif quantization == "mixed_int8":
                reference = _converter(tmp, mode, "float32").convert()
                quantized = converter.convert()
                content = keep_float(quantized, reference, mixed_float_ops(quantized, mixed_encoder_ops))
            else:
                content = converter.convert()
        except Exception as exc:  # the converter's own message is many lines of MLIR
            raise ValueError(f"{path}: TFLite conversion failed ({first_line(exc)})") from exc
    content = add_metadata(content, model_metadata(model))
    _check_builtin(content, path)
    _check_finite(content, path)
    with atomic_output(path) as tmp_file:
        with open(tmp_file, "wb") as f:
            f.write(content)
    return path


def add_metadata(content, values):
    """``content`` (a ``.tflite`` flatbuffer) with ``values`` as its :data:`METADATA_NAME` entry (JSON).

    An existing entry of that name is replaced; everything else is kept.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(values, sort_keys=True).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
