"""Deployment: SavedModel for TF Serving, TFLite (LiteRT) offline and streaming models.

* :func:`export_saved_model` writes ``<export_dir>/<version>/`` (the layout
  TF Serving watches) with two signatures:

  - ``serving_default``: ``noisy`` float32 ``[batch, samples]`` (both
    dynamic) -> ``enhanced`` of the same shape;
  - ``enhance_wav``: ``wav_bytes`` string ``[batch]`` (WAV files, decoded by
    ``tf.audio.decode_wav``, i.e. 16-bit PCM, any channel count, mixed to
    mono; the rate **must** equal the model's 16 kHz, else the request fails
    with ``enhance_wav: the WAV sample rate must be 16000 Hz``) ->
    ``enhanced_wav_bytes`` string ``[batch]`` (16-bit PCM mono WAV). The
    ``_bytes`` suffixes make TF Serving's REST API exchange them as
    ``{"b64": ...}``.

* :func:`export_tflite` writes a ``.tflite`` file that uses TFLite builtin ops
  only (checked after conversion), either

  - ``mode="offline"``: ``noisy`` ``[1, chunk_samples]`` -> ``enhanced``
    ``[1, chunk_samples]``, the whole model on a fixed-length chunk;
  - ``mode="streaming"``: one hop in, one hop out, with explicit state
    (see :mod:`keras_dccrn.streaming`): inputs ``audio`` ``[1, hop]``,
    ``input_buffer``, ``ola_buffer``, ``state``; outputs ``enhanced``,
    ``next_input_buffer``, ``next_ola_buffer``, ``next_state``.

  Quantizations: ``"float32"``; ``"dynamic_int8"`` (int8 weights, float
  activations); ``"float16"`` (float16 weights, computed in float32 on CPU);
  ``"int8"``, streaming only (weights and activations int8 after
  calibration on ``representative_data``; inputs and outputs stay float32
  and ops the int8 kernel set lacks, if any, fall back to float builtins:
  the STFT and inverse STFT matrix products are quantized like every other
  layer, and the packed ``state`` vector shares one scale). Offline full
  int8 is refused: LiteRT's calibrator crashes on the LSTM ``WHILE`` loop.

  Every converted file is checked for non-builtin (Flex/custom) ops and run
  once on a test tone (non-finite output is refused) before it is written.

* :class:`TFLiteEnhancer` runs either kind of file on a whole signal.
"""

import math
import os
import shutil
import tempfile

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE

MODES = ("offline", "streaming")
QUANTIZATIONS = ("float32", "dynamic_int8", "float16", "int8")
DEFAULT_CHUNK_SAMPLES = 4 * SAMPLE_RATE
STREAM_INPUTS = ("audio", "input_buffer", "ola_buffer", "state")


def _tf():
    import tensorflow as tf

    return tf


def _atomic_dir(final_dir, write, overwrite):
    """Calls ``write(tmp_dir)`` then renames ``tmp_dir`` to ``final_dir``."""
    parent = os.path.dirname(os.path.abspath(final_dir))
    os.makedirs(parent, exist_ok=True)
    if os.path.exists(final_dir):
        if not overwrite:
            raise ValueError(f"{final_dir}: already exists (pass overwrite=True to replace it)")
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    try:
        write(tmp)
        if os.path.exists(final_dir):
            shutil.rmtree(final_dir)
        os.replace(tmp, final_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _check_version(version):
    if not isinstance(version, (int, np.integer)) or isinstance(version, bool) or version <= 0:
        raise ValueError(
            f"`version` must be a positive integer (TF Serving version folder); received {version!r}."
        )


def _archive(model, endpoints):
    """``keras.export.ExportArchive`` tracking ``model`` with ``[(name, fn, signature)]``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn, signature in endpoints:
        archive.add_endpoint(name=name, fn=fn, input_signature=signature)
    return archive


def serving_endpoints(model, sample_rate=SAMPLE_RATE):
    """``[(name, fn, input_signature)]`` of the two TF Serving signatures."""
    tf = _tf()

    def enhance(noisy):
        return {"enhanced": model(noisy, training=False)}

    def enhance_one(wav):
        audio, rate = tf.audio.decode_wav(wav)  # [samples, channels], scalar int32
        check = tf.debugging.assert_equal(
            rate,
            tf.constant(sample_rate, tf.int32),
            message=f"enhance_wav: the WAV sample rate must be {sample_rate} Hz",
        )
        with tf.control_dependencies([check]):
            mono = tf.reduce_mean(audio, axis=1)[None, :]  # [samples, ch] -> [1, samples]
        enhanced = model(mono, training=False)
        # [1, samples] -> [samples, 1] as encode_wav wants
        return tf.audio.encode_wav(tf.transpose(enhanced), sample_rate)

    def enhance_wav(wav_bytes):
        out = tf.map_fn(enhance_one, wav_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {"enhanced_wav_bytes": out}

    return [
        ("serving_default", enhance, [tf.TensorSpec([None, None], tf.float32, name="noisy")]),
        ("enhance_wav", enhance_wav, [tf.TensorSpec([None], tf.string, name="wav_bytes")]),
    ]


def export_saved_model(model, export_dir, version=1, sample_rate=SAMPLE_RATE, overwrite=False):
    """Writes a TF Serving SavedModel to ``<export_dir>/<version>/``.

    The folder is written under a temporary name and renamed when complete,
    so a crashed export never leaves a version TF Serving would load.

    Args:
        model: a built Keras model, waveform ``[batch, samples]`` -> same.
        export_dir: model base path (TF Serving ``--model_base_path``).
        version: positive integer version folder.
        sample_rate: the rate ``enhance_wav`` accepts and writes.
        overwrite: replace an existing version folder.

    Returns:
        The version folder's path.
    """
    _check_version(version)
    if not getattr(model, "built", False):
        raise ValueError("The model must be built (called once) before export.")
    final = os.path.join(os.fspath(export_dir), str(int(version)))
    archive = _archive(model, serving_endpoints(model, sample_rate))
    _atomic_dir(final, lambda tmp: archive.write_out(tmp, verbose=False), overwrite)
    return final


# ---------------------------------------------------------------------------------------------- TFLite
def _tflite_endpoint(model, mode, chunk_samples):
    tf = _tf()
    if mode == "offline":
        if not isinstance(chunk_samples, (int, np.integer)) or chunk_samples < model.frame_step:
            raise ValueError(
                f"`chunk_samples` must be an integer >= frame_step ({model.frame_step}); received {chunk_samples!r}."
            )

        def enhance(noisy):
            return {"enhanced": model(noisy, training=False)}

        return enhance, [tf.TensorSpec([1, int(chunk_samples)], tf.float32, name="noisy")], None
    from keras_dccrn.streaming import StreamingDCCRN

    stream = StreamingDCCRN(model)

    def step(audio, input_buffer, ola_buffer, state):
        return stream(audio, input_buffer, ola_buffer, state)

    signature = [
        tf.TensorSpec([1, stream.hop], tf.float32, name="audio"),
        tf.TensorSpec([1, stream.input_size], tf.float32, name="input_buffer"),
        tf.TensorSpec([1, stream.ola_size], tf.float32, name="ola_buffer"),
        tf.TensorSpec([1, stream.state_size], tf.float32, name="state"),
    ]
    return step, signature, stream


def _representative(mode, data, chunk_samples, stream, max_samples=200):
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
        step = tf.function(stream.__call__)
        for x in signals:
            hops = x.size // stream.hop
            buf, ola, state = stream.initial_state()
            for k in range(hops):
                audio = x[None, k * stream.hop : (k + 1) * stream.hop]
                samples.append({"audio": audio, "input_buffer": buf, "ola_buffer": ola, "state": state})
                res = step(audio, buf, ola, state)
                buf, ola, state = (
                    res["next_input_buffer"].numpy(),
                    res["next_ola_buffer"].numpy(),
                    res["next_state"].numpy(),
                )
    if len(samples) > max_samples:
        keep = np.linspace(0, len(samples) - 1, max_samples).round().astype(int)
        samples = [samples[i] for i in keep]

    def generator():
        yield from samples

    return generator


def tflite_op_names(path_or_bytes):
    """Set of operator names in a ``.tflite`` model (e.g. ``{"CONV_2D", ...}``)."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(path_or_bytes, (bytes, bytearray)):
        interpreter = Interpreter(model_content=bytes(path_or_bytes))
    else:
        interpreter = Interpreter(model_path=os.fspath(path_or_bytes))
    return {op["op_name"] for op in interpreter._get_ops_details()}


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


def load_interpreter(model_path=None, model_content=None, num_threads=1):
    """LiteRT interpreter with tensors allocated: ``(interpreter, uses_xnnpack)``.

    The XNNPACK delegate is tried first; some full-int8 graphs (quantization
    parameters XNNPACK cannot take) make it fail to prepare, in which case the
    builtin reference kernels are used instead.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    args = dict(model_path=model_path, model_content=model_content, num_threads=num_threads)
    try:
        interpreter = Interpreter(**args)
        interpreter.allocate_tensors()
        return interpreter, True
    except RuntimeError as exc:
        if "XNNPACK" not in str(exc):
            raise
    interpreter = Interpreter(
        **args, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    return interpreter, False


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
):
    """Converts ``model`` to a builtin-ops-only ``.tflite`` file.

    Args:
        model: a built DCCRN (``keras_dccrn.models.dccrn.DCCRN``); for
            ``mode="streaming"`` it must be causal (``time_crop="causal"``).
        path: output file, written atomically.
        mode: ``"offline"`` (fixed chunks of ``chunk_samples``) or
            ``"streaming"`` (one hop per call with explicit state).
        quantization: ``"float32"``, ``"dynamic_int8"``, ``"float16"`` or
            ``"int8"``.
        representative_data: for ``"int8"`` only (required there): an
            iterable of 1-D float32 16 kHz signals used to calibrate the
            activation ranges (offline: cut into chunks; streaming: run
            through the Keras stream so the calibration states are real).
        chunk_samples: offline chunk length in samples.

    Returns:
        ``path``.
    """
    tf = _tf()
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}; received {mode!r}.")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}; received {quantization!r}.")
    if quantization == "int8" and mode == "offline":
        # LiteRT's calibrator crashes (segfault, TF 2.21) on the LSTM's WHILE loop of the offline graph;
        # the streaming graph has no loop and quantizes fine.
        raise ValueError(
            "quantization='int8' is supported for mode='streaming' only (use 'dynamic_int8' offline)."
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs `representative_data` (an iterable of 1-D signals).")
    if not getattr(model, "built", False):
        raise ValueError("The model must be built (called once) before export.")
    fn, signature, stream = _tflite_endpoint(model, mode, chunk_samples)
    path = os.fspath(path)
    with tempfile.TemporaryDirectory(prefix="dccrn-tflite-") as tmp:
        _archive(model, [("serving_default", fn, signature)]).write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.representative_dataset = _representative(
                mode, representative_data, int(chunk_samples), stream
            )
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        try:
            content = converter.convert()
        except Exception as exc:  # the converter's own message is many lines of MLIR
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path}: TFLite conversion failed ({first})") from exc
    _check_builtin(content, path)
    _check_finite(content, path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_file = tempfile.mkstemp(prefix=".tmp-", suffix=".tflite", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp_file, path)
    finally:
        if os.path.exists(tmp_file):
            os.remove(tmp_file)
    return path


class TFLiteEnhancer:
    """Enhances whole 16 kHz signals with an exported ``.tflite`` model.

    The kind of file is detected from its ``serving_default`` signature:
    ``noisy`` -> offline (the signal is cut into chunks of the model's
    length, the last one zero-padded; chunks are enhanced independently,
    so the recurrent state restarts at every chunk boundary), or ``audio`` +
    ``input_buffer`` + ``ola_buffer`` + ``state`` -> streaming (hop loop
    carrying the state; the fixed delay of ``input_buffer``'s length is
    compensated by feeding that many trailing zeros and dropping as many
    leading outputs).

    Args:
        path: ``.tflite`` file written by :func:`export_tflite`.
        num_threads: LiteRT CPU threads.

    Call arguments:
        audio: 1-D float32 signal at the model's 16 kHz rate.

    Returns:
        float32 ``[samples]``, the enhanced signal, same length as ``audio``.

    Attributes:
        mode: ``"offline"`` or ``"streaming"``.
        delay_samples: streaming delay compensated (0 offline).
        uses_xnnpack: whether LiteRT's XNNPACK delegate runs the graph (see
            :func:`load_interpreter`).
    """

    def __init__(self, path, num_threads=1):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such TFLite file")
        if not isinstance(num_threads, int) or num_threads <= 0:
            raise ValueError(f"`num_threads` must be a positive integer; received {num_threads!r}.")
        try:
            self.interpreter, self.uses_xnnpack = load_interpreter(model_path=path, num_threads=num_threads)
            signatures = self.interpreter.get_signature_list()
        except Exception as exc:
            raise ValueError(f"{path}: not a readable TFLite model ({str(exc).strip()[:200]})") from None
        if "serving_default" not in signatures:
            raise ValueError(f"{path}: no 'serving_default' signature (found {sorted(signatures)})")
        self.path = path
        self.runner = self.interpreter.get_signature_runner("serving_default")
        inputs = self.runner.get_input_details()
        names = set(inputs)
        if names == {"noisy"}:
            self.mode = "offline"
            self.chunk_samples = int(inputs["noisy"]["shape"][1])
            self.delay_samples = 0
        elif names == set(STREAM_INPUTS):
            self.mode = "streaming"
            self.hop = int(inputs["audio"]["shape"][1])
            self.delay_samples = int(inputs["input_buffer"]["shape"][1])
            self._zeros = {
                name: np.zeros(inputs[name]["shape"], "float32")
                for name in ("input_buffer", "ola_buffer", "state")
            }
            self._index_in = {name: inputs[name]["index"] for name in STREAM_INPUTS}
            outputs = self.runner.get_output_details()
            self._index_out = {name: outputs[name]["index"] for name in outputs}
            # The hop loop uses set_tensor / invoke / get_tensor on the tensor indices (less per-call
            # overhead); a live signature runner holds buffer references that make invoke() refuse.
            self.runner = None
        else:
            raise ValueError(
                f"{path}: unknown signature inputs {sorted(names)}; not written by export_tflite"
            )

    def _offline(self, audio):
        n = self.chunk_samples
        chunks = max(1, math.ceil(audio.size / n))
        padded = np.zeros(chunks * n, "float32")
        padded[: audio.size] = audio
        out = np.empty_like(padded)
        for k in range(chunks):
            res = self.runner(noisy=padded[None, k * n : (k + 1) * n])
            out[k * n : (k + 1) * n] = res["enhanced"][0]
        return out[: audio.size]

    def _streaming(self, audio):
        hop, delay = self.hop, self.delay_samples
        hops = -(-(audio.size + delay) // hop)
        padded = np.zeros(hops * hop, "float32")
        padded[: audio.size] = audio
        out = np.empty_like(padded)
        it = self.interpreter
        i_audio, i_buf, i_ola, i_state = (self._index_in[k] for k in STREAM_INPUTS)
        o_enh = self._index_out["enhanced"]
        o_buf = self._index_out["next_input_buffer"]
        o_ola = self._index_out["next_ola_buffer"]
        o_state = self._index_out["next_state"]
        buf, ola, state = (self._zeros[k] for k in ("input_buffer", "ola_buffer", "state"))
        frames = padded.reshape(hops, 1, hop)
        for k in range(hops):
            it.set_tensor(i_audio, frames[k])
            it.set_tensor(i_buf, buf)
            it.set_tensor(i_ola, ola)
            it.set_tensor(i_state, state)
            it.invoke()
            out[k * hop : (k + 1) * hop] = it.get_tensor(o_enh)[0]
            buf, ola, state = it.get_tensor(o_buf), it.get_tensor(o_ola), it.get_tensor(o_state)
        return out[delay : delay + audio.size]

    def __call__(self, audio):
        audio = np.asarray(audio, dtype="float32")
        if audio.ndim != 1:
            raise ValueError(f"TFLiteEnhancer expects a 1-D signal; received shape {audio.shape}.")
        if audio.size == 0:
            return audio.copy()
        if self.mode == "offline":
            return self._offline(audio)
        return self._streaming(audio)
