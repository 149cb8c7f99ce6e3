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
  - ``mode="streaming"``: one hop in, one hop out, with explicit state: the
    model's own ``step`` (see :mod:`keras_dccrn.streaming`); inputs ``audio``
    ``[1, hop]`` and every state of ``model.initial_states(1)``
    (``input_buffer``, ``ola_buffer`` and one tensor per stateful layer, e.g.
    ``enc_conv_0``, ``clstm_0``); outputs ``enhanced`` and
    ``next_<input name>`` for each state.

  Quantizations: ``"float32"``; ``"dynamic_int8"`` (int8 weights, float
  activations); ``"float16"`` (float16 weights, computed in float32 on CPU);
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
  noisy speech, or :func:`speech_like_signals`). Offline full int8 is
  refused: the TF 2.21 converter crashes (segfault) calibrating the LSTM
  ``WHILE`` loop of the offline graph; run the streaming int8 file through
  :class:`TFLiteEnhancer` to process whole files.

  Every converted file is checked for non-builtin (Flex/custom) ops and run
  once on a test tone (non-finite output is refused) before it is written.

* :class:`TFLiteEnhancer` runs either kind of file on a whole signal.
"""

import math
import os
import shutil
import tempfile

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE, atomic_output, make_temp, publish, remove_temp

MODES = ("offline", "streaming")
QUANTIZATIONS = ("float32", "dynamic_int8", "float16", "int8")
DEFAULT_CHUNK_SAMPLES = 4 * SAMPLE_RATE
STREAM_INPUTS = ("audio", "input_buffer", "ola_buffer")


def _tf():
    import tensorflow as tf

    return tf


def _atomic_dir(final_dir, write, overwrite):
    """Calls ``write(tmp_dir)`` then renames ``tmp_dir`` to ``final_dir``.

    ``tmp_dir`` is a :func:`keras_dccrn.audio.make_temp` folder next to ``final_dir``: removed on any
    exception or interruption, and by the next export into that folder after a SIGKILL.
    """
    parent = os.path.dirname(os.path.abspath(final_dir))
    if os.path.exists(final_dir):
        if not overwrite:
            raise ValueError(f"{final_dir}: already exists (pass overwrite=True to replace it)")
    tmp = make_temp(parent, suffix="-export", directory=True)
    try:
        write(tmp)
        if os.path.exists(final_dir):
            shutil.rmtree(final_dir)
        publish(tmp, final_dir)
    finally:
        remove_temp(tmp)


def _check_version(version):
    if not isinstance(version, (int, np.integer)) or isinstance(version, bool) or version <= 0:
        raise ValueError(
            f"`version` must be a positive integer (TF Serving version folder); received {version!r}."
        )


def _archive(endpoints):
    """``keras.export.ExportArchive`` with ``[(name, fn, signature)]`` endpoints.

    No model is ``track``-ed: the endpoints' traced functions already capture (and the archive
    saves) every variable they use, and tracking the model as well stores each weight a second time
    under other checkpoint keys (keras-team/keras#23553: twice the size on disk and in TF Serving's
    memory).
    """
    import keras

    archive = keras.export.ExportArchive()
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
    archive = _archive(serving_endpoints(model, sample_rate))
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

        return enhance, [tf.TensorSpec([1, int(chunk_samples)], tf.float32, name="noisy")]
    from keras_dccrn.streaming import check_streamable

    check_streamable(model)
    initial = model.initial_states(1)
    names = list(initial)

    def step(audio, *states):
        enhanced, new = model.step(audio, dict(zip(names, states, strict=True)))
        return {"enhanced": enhanced, **{f"next_{name}": new[name] for name in names}}

    signature = [tf.TensorSpec([1, int(model.frame_step)], tf.float32, name="audio")] + [
        tf.TensorSpec(tuple(initial[name].shape), tf.float32, name=name) for name in names
    ]
    return step, signature


def speech_like_signals(count=8, seconds=2.0, seed=0, sample_rate=SAMPLE_RATE):
    """Synthetic noisy speech-like signals for int8 calibration when no real audio is at hand.

    Each signal is a sequence of 120-320 ms syllables separated by short
    pauses: voiced ones are a pulse train with a drifting 90-240 Hz pitch
    through three formant resonators (a random vowel per syllable),
    unvoiced ones are 2-6 kHz band-passed noise; each syllable has a smooth
    attack and decay. The speech is scaled to an active RMS of -30..-18 dBFS
    and white or pink noise at -35..-15 dBFS RMS is added, so calibration
    sees the level range and the onset/pause dynamics of real noisy speech,
    over many hops. Real recordings remain the better choice.

    Args:
        count: number of signals.
        seconds: length of each signal.
        seed: NumPy random seed.
        sample_rate: sampling rate in Hz.

    Returns:
        list of float32 1-D arrays in [-1, 1].
    """
    from scipy import signal as sps

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]
    out = []
    for _ in range(count):
        speech = np.zeros(n)
        pos = int(rng.integers(0, sample_rate // 10))
        while pos < n:
            length = min(int(rng.uniform(0.12, 0.32) * sample_rate), n - pos)
            t = np.arange(length) / sample_rate
            if rng.random() < 0.75:
                f0 = rng.uniform(90, 240) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
                phase = np.cumsum(f0) / sample_rate
                source = np.diff(np.floor(phase), prepend=0.0)  # one impulse per pitch period
                seg = np.zeros(length)
                for formant, bandwidth in zip(vowels[rng.integers(len(vowels))], (80, 100, 150), strict=True):
                    radius = np.exp(-np.pi * bandwidth / sample_rate)
                    theta = 2 * np.pi * formant * rng.uniform(0.9, 1.1) / sample_rate
                    seg += sps.lfilter([1 - radius], [1, -2 * radius * np.cos(theta), radius**2], source)
            else:
                sos = sps.butter(4, [2000, 6000], btype="bandpass", fs=sample_rate, output="sos")
                seg = sps.sosfilt(sos, rng.standard_normal(length))
            ramp = min(length // 3, sample_rate // 50)
            envelope = np.ones(length)
            envelope[:ramp] = np.sin(np.linspace(0, np.pi / 2, ramp)) ** 2
            envelope[length - ramp :] = envelope[:ramp][::-1]
            speech[pos : pos + length] = seg * envelope * rng.uniform(0.3, 1.0)
            pos += length + int(rng.uniform(0.03, 0.25) * sample_rate)
        active = speech[np.abs(speech) > 1e-4 * np.abs(speech).max()]
        speech *= 10 ** (rng.uniform(-30, -18) / 20) / np.sqrt(np.mean(active**2))
        noise = rng.standard_normal(n)
        if rng.random() < 0.5:  # pink: -3 dB / octave
            noise = sps.lfilter(
                [0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189], noise
            )
        noise *= 10 ** (rng.uniform(-35, -15) / 20) / np.sqrt(np.mean(noise**2))
        out.append(np.clip(speech + noise, -1, 1).astype("float32"))
    return out


def _representative(mode, data, chunk_samples, model, max_samples=400):
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
        from keras_dccrn.streaming import run_hops

        step = tf.function(model.step)
        hop = int(model.frame_step)
        initial = model.initial_states(1)
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
        model: a built DCCRN or Uformer; for ``mode="streaming"`` it must
            support streaming (``model.supports_streaming``: a causal DCCRN).
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

    Raises:
        keras_dccrn.extras.MissingExtraError: ``ai-edge-litert`` (the ``[tflite]`` extra), which checks
            the converted file, is not installed.
    """
    from keras_dccrn import extras

    extras.require(["ai_edge_litert"], f"{path}: writing a .tflite model")
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
    fn, signature = _tflite_endpoint(model, mode, chunk_samples)
    path = os.fspath(path)
    with tempfile.TemporaryDirectory(prefix="dccrn-tflite-") as tmp:
        _archive([("serving_default", fn, signature)]).write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.representative_dataset = _representative(
                mode, representative_data, int(chunk_samples), model
            )
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        try:
            content = _quantize_network_only(converter) if quantization == "int8" else converter.convert()
        except Exception as exc:  # the converter's own message is many lines of MLIR
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path}: TFLite conversion failed ({first})") from exc
    _check_builtin(content, path)
    _check_finite(content, path)
    with atomic_output(path) as tmp_file:
        with open(tmp_file, "wb") as f:
            f.write(content)
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
        from keras_dccrn import extras

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such TFLite file")
        if not isinstance(num_threads, int) or num_threads <= 0:
            raise ValueError(f"`num_threads` must be a positive integer; received {num_threads!r}.")
        extras.require(["ai_edge_litert"], f"{path}: running a .tflite model")
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
        elif set(STREAM_INPUTS) <= names and self._carried(names, self.runner.get_output_details()):
            self.mode = "streaming"
            self.hop = int(inputs["audio"]["shape"][1])
            self.delay_samples = int(inputs["input_buffer"]["shape"][1])
            outputs = self.runner.get_output_details()
            carried = sorted(names - {"audio"})
            # (input index, output index, initial zeros) of every tensor carried from hop to hop
            self._carry = [
                (inputs[n]["index"], outputs[f"next_{n}"]["index"], np.zeros(inputs[n]["shape"], "float32"))
                for n in carried
            ]
            self._index_audio = inputs["audio"]["index"]
            self._index_enhanced = outputs["enhanced"]["index"]
            # The hop loop uses set_tensor / invoke / get_tensor on the tensor indices (less per-call
            # overhead); a live signature runner holds buffer references that make invoke() refuse.
            self.runner = None
        else:
            raise ValueError(
                f"{path}: unknown signature inputs {sorted(names)}; not written by export_tflite"
            )

    @staticmethod
    def _carried(names, outputs):
        """Whether every input but ``audio`` has its ``next_<name>`` output, plus ``enhanced``."""
        return "enhanced" in outputs and all(f"next_{n}" in outputs for n in names - {"audio"})

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
        i_audio, o_enh = self._index_audio, self._index_enhanced
        pairs = [(i, o) for i, o, _ in self._carry]
        values = [zeros for _, _, zeros in self._carry]
        frames = padded.reshape(hops, 1, hop)  # [hops * hop] -> [hops, 1, hop]
        for k in range(hops):
            it.set_tensor(i_audio, frames[k])
            for (i, _), value in zip(pairs, values, strict=True):
                it.set_tensor(i, value)
            it.invoke()
            out[k * hop : (k + 1) * hop] = it.get_tensor(o_enh)[0]
            values = [it.get_tensor(o) for _, o in pairs]
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
