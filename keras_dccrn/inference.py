"""Enhancement runtime: model loading and chunked, streaming enhancement of arrays and files.

The models work on 16 kHz mono waveforms. :func:`enhance` and
:func:`enhance_file` accept any rate and channel count: every channel is
resampled to 16 kHz, enhanced separately (channels are stacked on the batch
axis) and resampled back to the input rate.

Long signals are processed in fixed-size windows so that memory stays bounded
(an hour-long file needs the same memory as a 20 s one). Window ``k`` covers
``context + chunk + fade + look-ahead`` input samples; the model sees
``context`` seconds of audio before the chunk so that its recurrent state has
settled, plus the model's look-ahead after it, and only the chunk (plus a
short cross-fade region shared with the next window) is kept. Window starts
are aligned to whole STFT hops at 16 kHz, so for a causal model the chunked
output equals the whole-signal output up to the effect of the truncated
recurrent history, which decays within the context.

This module is an entry-point runtime (like ``export``): it uses TensorFlow
directly (``tf.function``, ``tf.saved_model.load``).
"""

import math
import os
import weakref
import zipfile

import numpy as np
import soundfile as sf

from keras_dccrn.audio import (
    SAMPLE_RATE,
    AudioError,
    audio_info,
    make_temp,
    publish,
    remove_temp,
    resample,
    sf_path,
)

# Folder of shipped models: saved_models/<name>/ next to the package (a source checkout or an editable
# install). Also searched: $KERAS_DCCRN_MODELS and ./saved_models (a non-editable install run from a checkout).
SHIPPED_MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
MODELS_ENV = "KERAS_DCCRN_MODELS"


def shipped_model_dirs():
    """The folders searched for shipped models, in order: ``$KERAS_DCCRN_MODELS``, the checkout, ``./saved_models``."""
    dirs = []
    for folder in (os.environ.get(MODELS_ENV), SHIPPED_MODELS_DIR, os.path.abspath("saved_models")):
        if folder and os.path.isdir(folder) and os.path.realpath(folder) not in map(os.path.realpath, dirs):
            dirs.append(folder)
    return dirs


# Name (in the shipped-model folders) of the model used when none is given: the Distil-DCCRN student
# distilled with AT-KL (saved_models/distil_dccrn/, see its MODEL_CARD.md).
DEFAULT_MODEL = "distil_dccrn"


def no_default_message():
    """One-line reason why the default model cannot be found (names the folders searched)."""
    searched = ", ".join([f"${MODELS_ENV}", SHIPPED_MODELS_DIR, os.path.abspath("saved_models")])
    return (
        f"the default model '{DEFAULT_MODEL}' is not in any shipped-model folder ({searched}); run from a "
        f"keras-dccrn checkout (pip install -e .), set {MODELS_ENV} to its saved_models folder, or pass a "
        ".keras file, a TF SavedModel directory or a .tflite file"
    )


DEFAULT_CHUNK_SECONDS = 20.0
DEFAULT_CONTEXT_SECONDS = 2.0
DEFAULT_FADE_SECONDS = 0.1
# Upper limits of the window geometry. Memory grows with the window (measured with distil_dccrn on one
# channel: about 1.2 GB at 10 s, 2.6 GB at 60 s, i.e. ~25 MB per second of window plus TensorFlow), and
# channels are processed together, so a longer window buys nothing but the risk of running out of memory.
MAX_CHUNK_SECONDS = 120.0
MAX_CONTEXT_SECONDS = 30.0
# Used when a backend does not say how far it looks ahead / what its STFT hop is.
DEFAULT_LOOKAHEAD_SAMPLES = 1600
DEFAULT_ALIGNMENT = 6400
_RESAMPLER_MARGIN = 64  # 16 kHz samples disturbed by resample_poly at a window edge (~10 needed)


class ModelLoadError(ValueError):
    """``--model`` / ``model=`` could not be turned into an enhancer; one-line message."""


class Enhancer:
    """A 16 kHz enhancement backend: ``[channels, samples]`` float32 -> same shape.

    Attributes:
        name: short description (file name).
        lookahead_samples: future input samples an output sample depends on.
        alignment: STFT hop in samples (window starts are multiples of it).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, name, lookahead_samples=None, alignment=None):
        self.name = name
        self.lookahead_samples = int(lookahead_samples or DEFAULT_LOOKAHEAD_SAMPLES)
        self.alignment = int(alignment or DEFAULT_ALIGNMENT)

    def run(self, batch):
        raise NotImplementedError

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 2:
            raise ValueError(f"Enhancer input must be [channels, samples]; received shape {batch.shape}.")
        out = np.asarray(self.run(batch), dtype=np.float32)
        if out.shape != batch.shape:
            raise ValueError(f"{self.name}: model returned shape {out.shape} for input {batch.shape}.")
        return out


class KerasEnhancer(Enhancer):
    """Runs a Keras waveform model through one ``tf.function`` (batch and length dynamic, traced once).

    Args:
        model: ``keras.Model`` mapping ``[batch, samples]`` to the same shape.
        name: description used in messages.
    """

    def __init__(self, model, name=None):
        super().__init__(
            name or model.name,
            getattr(model, "lookahead_samples", None),
            getattr(model, "frame_step", None),
        )
        import tensorflow as tf

        self.model = model
        self._dynamic = tf.function(
            self._forward, input_signature=[tf.TensorSpec([None, None], tf.float32)], jit_compile=False
        )
        self._static = None
        self._dynamic_ok = False

    def _forward(self, x):
        return self.model(x, training=False)

    def run(self, batch):
        if self._static is None:
            if self._dynamic_ok:
                return self._dynamic(batch).numpy()
            try:
                out = self._dynamic(batch).numpy()
                self._dynamic_ok = True
                return out
            except Exception:
                # A model that cannot be traced with an unknown length: one trace per window shape (the
                # chunked runner only uses a couple of shapes).
                import tensorflow as tf

                self._static = tf.function(self._forward, reduce_retracing=True)
        return self._static(batch).numpy()


class SavedModelEnhancer(Enhancer):
    """A TF SavedModel whose ``serving_default`` maps ``noisy`` [batch, samples] to ``enhanced``.

    Optional attributes of the loaded object ``lookahead_samples`` and
    ``frame_step`` (ints or scalar variables) are used for chunking.
    """

    def __init__(self, path):
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(path)
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot load the SavedModel ({_one_line(exc)})") from None
        signatures = getattr(loaded, "signatures", {})
        if "serving_default" not in signatures:
            raise ModelLoadError(f"{path}: SavedModel has no 'serving_default' signature")
        fn = signatures["serving_default"]
        inputs = fn.structured_input_signature[1]
        if "noisy" not in inputs or "enhanced" not in fn.structured_outputs:
            raise ModelLoadError(
                f"{path}: 'serving_default' must take 'noisy' and return 'enhanced'; it takes "
                f"{sorted(inputs)} and returns {sorted(fn.structured_outputs)}"
            )
        shape = inputs["noisy"].shape
        self.fixed_length = shape[-1] if shape.rank == 2 and shape[-1] is not None else None
        super().__init__(
            os.path.basename(os.path.normpath(path)),
            _scalar(getattr(loaded, "lookahead_samples", None)),
            _scalar(getattr(loaded, "frame_step", None)),
        )
        self._loaded = loaded  # keeps the variables alive
        self._fn = fn

    def run(self, batch):
        import tensorflow as tf

        n = batch.shape[1]
        if self.fixed_length is not None:
            if n > self.fixed_length:
                raise ValueError(
                    f"{self.name}: the SavedModel takes at most {self.fixed_length} samples; "
                    f"received {n} (use a shorter chunk)"
                )
            batch = np.pad(batch, [(0, 0), (0, self.fixed_length - n)])
        out = self._fn(noisy=tf.constant(batch))["enhanced"].numpy()
        return out[:, :n]


class PerChannelEnhancer(Enhancer):
    """Wraps a callable on one 1-D 16 kHz signal (e.g. ``export.TFLiteEnhancer``); loops over channels."""

    def __init__(self, fn, name=None):
        super().__init__(
            name or type(fn).__name__,
            _scalar(getattr(fn, "lookahead_samples", None)),
            _scalar(getattr(fn, "frame_step", None)),
        )
        self.fn = fn

    def run(self, batch):
        return np.stack([np.asarray(self.fn(channel), dtype=np.float32) for channel in batch])


def _scalar(value):
    if value is None:
        return None
    try:
        return int(np.asarray(value.numpy() if hasattr(value, "numpy") else value))
    except (TypeError, ValueError):
        return None


def _one_line(exc):
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def shipped_models():
    """``{name: folder}`` of the shipped models (folders holding a model file) in :func:`shipped_model_dirs`.

    A name found in an earlier folder wins.
    """
    found = {}
    for base in shipped_model_dirs():
        for name in sorted(os.listdir(base)):
            folder = os.path.join(base, name)
            if name not in found and os.path.isdir(folder) and _model_in_folder(folder):
                found[name] = folder
    return found


def _model_in_folder(folder):
    """The loadable model inside a shipped-model folder, or None."""
    if _savedmodel_dir(folder):
        return folder
    for ext in (".keras", ".tflite"):
        files = sorted(f for f in os.listdir(folder) if f.endswith(ext))
        if files:
            return os.path.join(folder, files[0])
    return None


def _savedmodel_dir(path):
    """``path`` itself, or its highest integer version (TF-Serving layout), if it holds saved_model.pb."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit() and os.path.isdir(os.path.join(path, d))]
    for version in sorted(versions, key=int, reverse=True):
        candidate = os.path.join(path, version)
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    return None


def load_enhancer(spec=None):
    """Turns a model specification into an :class:`Enhancer`.

    Args:
        spec: one of

            * an :class:`Enhancer` or a ``keras.Model`` (used as is);
            * a ``.keras`` file (``keras.saving.load_model``);
            * a TF SavedModel directory with a ``serving_default`` signature
              ``noisy`` [batch, samples] -> ``enhanced``, or a TF-Serving
              folder ``dir/<version>/saved_model.pb`` (highest version used);
            * a ``.tflite`` file (``keras_dccrn.export.TFLiteEnhancer``);
            * the name of a shipped model in ``saved_models/<name>/``;
            * ``None``: :data:`DEFAULT_MODEL`, the shipped Distil-DCCRN student.

    Returns:
        An :class:`Enhancer`.

    Raises:
        ModelLoadError: one-line message naming the problem.
    """
    if isinstance(spec, Enhancer):
        return spec
    if spec is None:
        if DEFAULT_MODEL not in shipped_models():
            raise ModelLoadError(no_default_message())
        spec = DEFAULT_MODEL
    import keras

    if isinstance(spec, keras.Model):
        if spec not in _WRAPPED:  # one tf.function (one trace) per model object
            _WRAPPED[spec] = KerasEnhancer(spec)
        return _WRAPPED[spec]
    if not isinstance(spec, (str, os.PathLike)):
        raise ModelLoadError(f"cannot use {type(spec).__name__} as a model; pass a path or a keras.Model")
    path = os.fspath(spec)
    key = _cache_key(path)
    if key is not None and key in _LOADED:
        return _LOADED[key]
    enhancer = _load_path(path, keras)
    if key is not None:
        while len(_LOADED) >= _CACHE_SIZE:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = enhancer
    return enhancer


# Loaded enhancers by (path, modification time, size), so that repeated ``enhance(..., model="x.keras")``
# calls do not reload and retrace the model.
_LOADED = {}
_CACHE_SIZE = 4
_WRAPPED = weakref.WeakKeyDictionary()


def _cache_key(path):
    probe = os.path.join(path, "saved_model.pb") if os.path.isdir(path) else path
    try:
        stat = os.stat(probe)
    except OSError:
        return None
    return os.path.realpath(path), stat.st_mtime_ns, stat.st_size


def _load_path(path, keras):
    if not os.path.exists(path):
        shipped = shipped_models()
        if path in shipped:
            return load_enhancer(_model_in_folder(shipped[path]))
        names = ", ".join(shipped) or "none found"
        raise ModelLoadError(
            f"{path}: no such model file or directory, and not a shipped model name (available: {names})"
        )
    if os.path.isdir(path):
        saved = _savedmodel_dir(path)
        if saved is None:
            inner = _model_in_folder(path)
            if inner is None:
                raise ModelLoadError(
                    f"{path}: directory holds no saved_model.pb (nor <version>/saved_model.pb), .keras or "
                    ".tflite model"
                )
            return load_enhancer(inner)
        return SavedModelEnhancer(saved)
    lower = path.lower()
    if lower.endswith(".keras"):
        return KerasEnhancer(load_keras_model(path), name=os.path.basename(path))
    if lower.endswith(".tflite"):
        from keras_dccrn import extras

        try:
            extras.require(["ai_edge_litert"], f"{path}: running a .tflite model")
        except extras.MissingExtraError as exc:
            raise ModelLoadError(str(exc)) from None
        from keras_dccrn.export import TFLiteEnhancer

        try:
            runner = TFLiteEnhancer(path)
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot load the TFLite model ({_one_line(exc)})") from None
        return PerChannelEnhancer(runner, name=os.path.basename(path))
    raise ModelLoadError(
        f"{path}: unsupported model file (expected a .keras or .tflite file or a SavedModel directory)"
    )


def _keras_file_problem(path):
    """Why ``path`` cannot be a ``.keras`` archive (a zip holding ``config.json``), or None if it may be."""
    size = os.path.getsize(path)
    if size == 0:
        return "empty file (0 bytes), not a Keras model"
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (legacy .h5 model or a .weights.h5 file), not a .keras archive"
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK\x03\x04"):
            return (
                f"truncated or corrupt .keras archive ({size} bytes; the zip directory at its end is missing)"
            )
        return "not a Keras model: a .keras file is a zip archive and this is not one"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"corrupt .keras archive ({exc})"
    if bad is not None:
        return f"corrupt .keras archive (member {bad} fails its CRC check)"
    if "config.json" not in names:
        return "a zip archive without config.json, not a Keras model"
    return None


def load_keras_model(path):
    """Loads a ``.keras`` file (``keras.saving.load_model``, no optimizer); one truthful line on failure.

    Args:
        path: the ``.keras`` file.

    Returns:
        The ``keras.Model``.

    Raises:
        ModelLoadError: ``<path>: <reason>``: missing, empty, truncated, not a zip, an HDF5 file, a zip
            without ``config.json``, or the loader's own first line (e.g. an unknown layer class).
    """
    import keras

    import keras_dccrn.models  # noqa: F401  (registers the custom classes)

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ModelLoadError(f"{path}: is a directory, not a .keras file")
    try:
        problem = _keras_file_problem(path)
    except OSError as exc:
        problem = f"cannot read the file ({exc.strerror or exc})"
    if problem is not None:
        raise ModelLoadError(f"{path}: {problem}")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot load the Keras model ({_one_line(exc)})") from None


def configure_threads(num_threads):
    """Limits TensorFlow to ``num_threads`` intra-op threads and one inter-op thread (0: TF default).

    Must run before TensorFlow executes anything; returns False if it was too late.
    """
    if not num_threads:
        return True
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(num_threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------
# Chunk planning and the streaming loop (shared by arrays and files).


def _ceil_to(x, unit):
    return int(math.ceil(x / unit - 1e-9)) * unit


class _Plan:
    """Window geometry in input-rate samples for one sample rate and enhancer."""

    def __init__(self, sample_rate, enhancer, chunk_seconds, context_seconds, fade_seconds):
        for name, value, limit in (
            ("chunk_seconds", chunk_seconds, MAX_CHUNK_SECONDS),
            ("context_seconds", context_seconds, MAX_CONTEXT_SECONDS),
        ):
            if value is not None and (not math.isfinite(value) or value < 0 or value > limit):
                raise ValueError(f"`{name}` must be a number between 0 and {limit:g}; received {value!r}.")
        if chunk_seconds is not None and chunk_seconds <= 0:
            raise ValueError(f"`chunk_seconds` must be positive or None; received {chunk_seconds!r}.")
        sr = int(sample_rate)
        g = math.gcd(sr, SAMPLE_RATE)
        a, b = sr // g, SAMPLE_RATE // g  # a input samples <-> b model samples
        hop = enhancer.alignment
        k = hop // math.gcd(b, hop)
        self.unit = a * k  # window starts are multiples of this (an integer number of model hops)
        self.whole = chunk_seconds is None
        if self.whole:
            return
        to_in = sr / SAMPLE_RATE
        margin16 = enhancer.lookahead_samples + (_RESAMPLER_MARGIN if sr != SAMPLE_RATE else 0)
        self.chunk = max(self.unit, _ceil_to(chunk_seconds * sr, self.unit))
        self.context = _ceil_to(context_seconds * sr, self.unit)
        self.fade = min(self.chunk, _ceil_to(fade_seconds * sr, self.unit)) if fade_seconds > 0 else 0
        self.margin = _ceil_to(margin16 * to_in, self.unit)
        self.window = self.context + self.chunk + self.fade + self.margin


def _run_window(enhancer, x, sample_rate):
    """``[C, n]`` at ``sample_rate`` -> enhanced ``[C, n]`` at ``sample_rate``."""
    n = x.shape[1]
    x16 = resample(x, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else x
    y16 = enhancer(x16)
    y = resample(y16, SAMPLE_RATE, sample_rate) if sample_rate != SAMPLE_RATE else y16
    if y.shape[1] < n:
        y = np.pad(y, [(0, 0), (0, n - y.shape[1])])
    return np.clip(y[:, :n], -1.0, 1.0)


def _stream(enhancer, read, total, sample_rate, write, plan, progress=None):
    """Enhances ``total`` samples delivered by ``read(start, stop) -> [C, stop - start]``.

    ``read`` zero-pads outside ``[0, total)``; ``write([C, n])`` receives the
    output in order, exactly ``total`` samples in all.
    """
    if plan.whole or total <= plan.window:
        write(_run_window(enhancer, read(0, total), sample_rate))
        if progress:
            progress(total, total)
        return
    start, pending, first = 0, None, True
    while start < total:
        window_start = 0 if first else start - plan.context
        # The last window stops at the end of the signal (like whole-signal processing does).
        stop = min(window_start + plan.window, total)
        y = _run_window(enhancer, read(window_start, stop), sample_rate)
        end = window_start + plan.window - plan.margin - plan.fade  # end of this window's chunk
        out = y[:, start - window_start : min(end + plan.fade, total) - window_start]
        if pending is not None:  # cross-fade with the previous window's tail
            n = pending.shape[1]
            ramp = (np.arange(n, dtype=np.float32) + 0.5) / n
            out[:, :n] = pending * (1.0 - ramp) + out[:, :n] * ramp
        if end >= total:
            write(out)
            break
        write(out[:, : end - start])
        pending = out[:, end - start :]
        start, first = end, False
        if progress:
            progress(start, total)
    if progress:
        progress(total, total)


def enhance(
    audio,
    sample_rate,
    model=None,
    chunk_seconds=DEFAULT_CHUNK_SECONDS,
    context_seconds=DEFAULT_CONTEXT_SECONDS,
    fade_seconds=DEFAULT_FADE_SECONDS,
):
    """Enhances (denoises) audio at any sample rate.

    Every channel is resampled to 16 kHz, enhanced separately and resampled
    back, so the output has the input's rate, shape and length. Long signals
    are processed in windows of ``chunk_seconds`` (plus ``context_seconds``
    of history and the model's look-ahead) that are cross-faded over
    ``fade_seconds``; signals that fit in one window are processed whole.

    Args:
        audio: float array ``[samples]`` (mono) or ``[channels, samples]``.
        sample_rate: rate of ``audio`` in Hz (any positive integer).
        model: anything :func:`load_enhancer` accepts: a ``keras.Model``, a
            ``.keras`` / ``.tflite`` file, a SavedModel directory, or a
            shipped model name; ``None`` (default): the shipped Distil-DCCRN
            student (:data:`DEFAULT_MODEL`).
        chunk_seconds: audio kept from each window; ``None`` processes the
            whole signal at once (memory grows with the length).
        context_seconds: history prepended to each window (discarded).
        fade_seconds: cross-fade between consecutive windows.

    Returns:
        float32 array with the shape of ``audio``, in [-1, 1].

    Raises:
        ValueError: empty, non-finite or badly shaped audio, bad rate.
        ModelLoadError: ``model`` missing or unusable.

    Example::

        import soundfile as sf
        import keras_dccrn

        noisy, rate = sf.read("noisy.wav", dtype="float32")      # [samples, channels] or [samples]
        clean = keras_dccrn.enhance(noisy.T, rate, model="student.keras").T
        sf.write("enhanced.wav", clean, rate)
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"`audio` must be [samples] or [channels, samples]; received shape {audio.shape}.")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"`sample_rate` must be a positive integer; received {sample_rate!r}.")
    sample_rate = int(sample_rate)
    batch = audio[None] if audio.ndim == 1 else audio
    total = batch.shape[1]
    if total == 0 or batch.shape[0] == 0:
        raise ValueError(f"`audio` is empty; received shape {audio.shape}.")
    if not np.all(np.isfinite(batch)):
        raise ValueError("`audio` contains NaN or infinite samples.")
    enhancer = load_enhancer(model)
    plan = _Plan(sample_rate, enhancer, chunk_seconds, context_seconds, fade_seconds)

    def read(start, stop):
        block = np.zeros((batch.shape[0], stop - start), np.float32)
        lo, hi = max(start, 0), min(stop, total)
        block[:, lo - start : hi - start] = batch[:, lo:hi]
        return block

    pieces = []
    _stream(enhancer, read, total, sample_rate, pieces.append, plan)
    out = np.concatenate(pieces, axis=1)
    return out[0] if audio.ndim == 1 else out


# --------------------------------------------------------------------------------------------------------
# Files.

_EXTENSION_FORMATS = {
    "wav": "WAV",
    "flac": "FLAC",
    "ogg": "OGG",
    "oga": "OGG",
    "opus": "OGG",
    "mp3": "MP3",
    "aif": "AIFF",
    "aiff": "AIFF",
    "aifc": "AIFF",
    "au": "AU",
    "snd": "AU",
    "caf": "CAF",
    "w64": "W64",
    "rf64": "RF64",
}


def audio_extensions():
    """Lower-case file extensions (no dot) treated as audio when scanning folders."""
    formats = {name.lower() for name in sf.available_formats()}
    return sorted(
        {ext for ext, fmt in _EXTENSION_FORMATS.items() if fmt.lower() in formats} | {"wav", "flac"}
    )


# Lossy codecs: kept only when the output is in the input's own container; a lossless container gets PCM.
_LOSSY_SUBTYPES = {"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "VORBIS", "OPUS", "GSM610"}
# Nearest PCM depth for subtypes a container may lack (e.g. FLAC has no float): tried after the input's own.
_NEAREST_PCM = {
    "FLOAT": "PCM_24",
    "DOUBLE": "PCM_24",
    "PCM_32": "PCM_24",
    "PCM_U8": "PCM_S8",
    "PCM_S8": "PCM_U8",
}


def _output_format(info, input_path, output_path):
    """``(format, [subtypes to try, best first])`` for an output of the input's audio.

    The format follows the output extension (the input's when the extensions match). The subtype is
    the input's where the output container can hold it, else the nearest PCM depth, PCM_16, then the
    container's default: MP3/Opus/Vorbis input written as WAV or FLAC becomes PCM_16.
    """
    in_ext = os.path.splitext(input_path)[1].lower().lstrip(".")
    out_ext = os.path.splitext(output_path)[1].lower().lstrip(".")
    fmt = info.format
    if out_ext != in_ext:
        fmt = _EXTENSION_FORMATS.get(out_ext)
        if fmt is None:
            raise AudioError(f"{output_path}: unsupported output extension '.{out_ext}'")
    wanted = [info.subtype, _NEAREST_PCM.get(info.subtype), "PCM_16", sf.default_subtype(fmt)]
    if info.subtype in _LOSSY_SUBTYPES and fmt != info.format:
        wanted = wanted[1:]
    subtypes = []
    for subtype in wanted:
        if subtype and subtype not in subtypes and sf.check_format(fmt, subtype):
            subtypes.append(subtype)
    if not subtypes:
        raise AudioError(f"{output_path}: cannot write the {fmt} format")
    return fmt, subtypes


def _open_output(tmp, output_path, rate, channels, fmt, subtypes):
    """Opens ``tmp`` for writing with the first subtype libsndfile accepts; errors name ``output_path``."""
    error = None
    for subtype in subtypes:
        try:
            return sf.SoundFile(sf_path(tmp), "w", rate, channels, subtype=subtype, format=fmt)
        except Exception as exc:  # e.g. "Supported file format but unsupported encoding"
            error = exc
    message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    message = message.split("': ", 1)[-1]  # soundfile prefixes "Error opening '<temporary file>': "
    raise AudioError(
        f"{output_path}: cannot write {fmt} audio at {rate} Hz, {channels} channel(s) ({message})"
    )


def _same_file(a, b):
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def enhance_file(
    model,
    input_path,
    output_path,
    chunk_seconds=DEFAULT_CHUNK_SECONDS,
    context_seconds=DEFAULT_CONTEXT_SECONDS,
    fade_seconds=DEFAULT_FADE_SECONDS,
    overwrite=False,
    progress=None,
):
    """Enhances one audio file into another, streaming in windows (bounded memory).

    The output keeps the input's sample rate, channel count, format and
    subtype (when the output extension differs from the input's, the format
    follows the output extension and the subtype is the input's if that
    container holds it, else the nearest PCM depth or PCM_16, e.g. for MP3
    into WAV). It is written to a temporary file ``.tmp-<pid>-*`` in the
    output folder and renamed when complete, so a failure or an interruption
    (any exception, including ``KeyboardInterrupt``) never leaves a partial
    file; leftovers of a killed process are removed by the next call that
    writes into the same folder. Whole-file processing (``chunk_seconds``
    ``None``) is refused for files longer than :data:`MAX_CHUNK_SECONDS`.

    Args:
        model: anything :func:`load_enhancer` accepts (load it once with
            :func:`load_enhancer` when processing many files).
        input_path: audio file (any format libsndfile reads).
        output_path: destination file; its folder is created.
        chunk_seconds, context_seconds, fade_seconds: see :func:`enhance`
            (at most :data:`MAX_CHUNK_SECONDS` and :data:`MAX_CONTEXT_SECONDS`).
        overwrite: replace an existing output; needed to write over the
            input itself (safe: the input is fully read before the rename).
        progress: optional ``progress(done_frames, total_frames)``.

    Returns:
        ``soundfile.info`` of the input.

    Raises:
        AudioError: one-line message starting with the offending path.
    """
    enhancer = load_enhancer(model)
    info = audio_info(input_path)
    total, channels, rate = info.frames, info.channels, info.samplerate
    if total <= 0:
        raise AudioError(f"{input_path}: contains no samples")
    if os.path.exists(output_path) and not overwrite:
        if _same_file(input_path, output_path):
            raise AudioError(f"{input_path}: output is the input file; pass --overwrite to replace it")
        raise AudioError(f"{output_path}: output exists; pass --overwrite to replace it")
    if os.path.isdir(output_path):
        raise AudioError(f"{output_path}: output is a directory")
    fmt, subtypes = _output_format(info, input_path, output_path)
    plan = _Plan(rate, enhancer, chunk_seconds, context_seconds, fade_seconds)
    if plan.whole and total > MAX_CHUNK_SECONDS * rate:
        raise AudioError(
            f"{input_path}: {total / rate:.0f} s is too long to process whole (at most "
            f"{MAX_CHUNK_SECONDS:g} s); process it in chunks (chunk_seconds > 0)"
        )
    folder = os.path.dirname(os.path.abspath(output_path))
    tmp = make_temp(folder, suffix=os.path.splitext(output_path)[1])
    try:
        try:
            src = sf.SoundFile(sf_path(input_path))
        except Exception as exc:
            raise AudioError(f"{input_path}: not a readable audio file ({_one_line(exc)})") from None
        with src:
            with _open_output(tmp, output_path, rate, channels, fmt, subtypes) as dst:

                def read(start, stop):
                    lo, hi = max(start, 0), min(stop, total)
                    block = np.zeros((channels, stop - start), np.float32)
                    if hi > lo:
                        try:
                            src.seek(lo)
                            data = src.read(hi - lo, dtype="float32", always_2d=True)
                        except Exception as exc:
                            raise AudioError(
                                f"{input_path}: cannot decode audio ({_one_line(exc)})"
                            ) from None
                        if not np.all(np.isfinite(data)):
                            raise AudioError(f"{input_path}: contains NaN or infinite samples")
                        block[:, lo - start : lo - start + data.shape[0]] = data.T  # [n, C] -> [C, n]
                    return block

                def write(block):
                    try:
                        dst.write(block.T)  # [C, n] -> [n, C]
                    except Exception as exc:
                        raise AudioError(f"{output_path}: cannot write audio ({_one_line(exc)})") from None

                try:
                    _stream(enhancer, read, total, rate, write, plan, progress)
                except AudioError:
                    raise
                except Exception as exc:
                    raise AudioError(f"{input_path}: enhancement failed ({_one_line(exc)})") from None
        publish(tmp, output_path)
    finally:
        remove_temp(tmp)
    return info
