"""Enhancement backends: a 16 kHz ``[channels, samples]`` -> same-shape callable per kind of model file.

* :class:`KerasEnhancer`: a ``keras.Model`` (``.keras`` files) through one ``tf.function``;
* :class:`SavedModelEnhancer`: a TF SavedModel's ``serving_default`` signature;
* :class:`PerChannelEnhancer`: a callable on one 1-D signal (the LiteRT runner of
  :mod:`keras_dccrn.runtime.litert`), looped over channels.

A backend whose model streams (:attr:`Enhancer.streams`: a streaming ``.tflite`` file) also opens
streams (:meth:`Enhancer.open_stream`) that enhance a signal piece by piece with the state carried,
which the chunked runner uses instead of windows.

Every backend says how far it looks ahead (``lookahead_samples``) and what its STFT hop is
(``alignment``), which the chunked runner (:mod:`keras_dccrn.runtime.chunking`) uses to place its
windows. Keras models carry both as attributes; SavedModels and ``.tflite`` files written by
:mod:`keras_dccrn.export` carry them as metadata (a ``metadata`` signature; a ``keras_dccrn`` metadata
entry). Files without them (exported before the metadata existed, or by other tools) get
:data:`DEFAULT_LOOKAHEAD_SAMPLES` and :data:`DEFAULT_ALIGNMENT`: right for every model whose look-ahead
is at most 1600 samples (0.1 s) and whose hop divides 6400 samples (0.4 s), e.g. the shipped DCCRN
family (look-ahead 399, hop 100), at the price of a little more computation per window.

TensorFlow is imported by the TensorFlow backends only, when they are built.
"""

import os
import sys
import warnings

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE
from keras_dccrn.errors import one_line
from keras_dccrn.runtime.errors import ModelLoadError

# Used when a backend does not say how far it looks ahead / what its STFT hop is.
DEFAULT_LOOKAHEAD_SAMPLES = 1600
DEFAULT_ALIGNMENT = 6400
# Name of the SavedModel signature (no inputs) returning the model's int32 scalars below.
SAVEDMODEL_METADATA = "metadata"
METADATA_KEYS = ("lookahead_samples", "frame_step", "sample_rate")

# CPU threads of the backends (0: the library's default; LiteRT then uses the usable cores), see
# configure_threads.
_threads = {"count": 0, "tf_pending": False}


def configure_threads(num_threads):
    """Sets the CPU threads the backends use; ``0`` keeps each library's default.

    TensorFlow gets ``num_threads`` intra-op threads and one inter-op thread: at once when it is
    already imported, else when a TensorFlow backend first imports it (a ``.tflite`` model never
    imports it). LiteRT interpreters built afterwards get ``num_threads`` threads (default: the cores
    this process may run on, :func:`usable_cores`, as TensorFlow and onnxruntime do by default).

    Returns:
        False if TensorFlow has already run and its thread pools can no longer be changed.
    """
    _threads["count"] = int(num_threads or 0)
    _threads["tf_pending"] = bool(_threads["count"])
    if _threads["count"] and "tensorflow" in sys.modules:
        return _apply_tf_threads(sys.modules["tensorflow"])
    return True


def usable_cores():
    """The CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def litert_threads():
    """Threads for a LiteRT interpreter: :func:`configure_threads`'s value, else :func:`usable_cores`."""
    return _threads["count"] or usable_cores()


def _apply_tf_threads(tf):
    _threads["tf_pending"] = False
    try:
        tf.config.threading.set_intra_op_parallelism_threads(_threads["count"])
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        return False
    return True


def tensorflow():
    """Imports TensorFlow, applying a pending :func:`configure_threads` setting."""
    import tensorflow as tf

    if _threads["tf_pending"] and not _apply_tf_threads(tf):
        warnings.warn(
            f"configure_threads({_threads['count']}) ignored: TensorFlow had already run", stacklevel=2
        )
    return tf


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
        self.lookahead_samples = int(
            DEFAULT_LOOKAHEAD_SAMPLES if lookahead_samples is None else lookahead_samples
        )
        self.alignment = int(alignment or DEFAULT_ALIGNMENT)

    @property
    def streams(self):
        """Whether :meth:`open_stream` works: the backend carries its state across pieces of a signal."""
        return False

    def open_stream(self, channels):
        """A stream enhancing ``channels`` signals piece by piece, its state carried across pieces.

        The stream's ``push(audio [channels, n], final=False)`` returns the next enhanced samples
        (``[channels, m]``; over all pushes as many as pushed, the signal's end marked by ``final``),
        exactly the backend's output for the whole signal. Only backends with :attr:`streams` have one.
        """
        raise ValueError(f"{self.name}: this backend cannot stream; it enhances whole windows.")

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
    """Runs a Keras waveform model through one ``tf.function`` with batch and length dynamic.

    The function is traced once for ``[None, None]`` inputs. A model whose Python code needs static
    shapes (tracing raises ``ValueError`` or ``TypeError`` for an unknown length) is instead traced
    once per input shape (the chunked runner uses a couple of shapes); ``per_shape`` says which.
    Errors raised while the model runs are never retried.

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
        self.model = model
        self._fn = None
        self.per_shape = None

    def _forward(self, x):
        return self.model(x, training=False)

    def _function(self):
        if self._fn is None:
            tf = tensorflow()
            dynamic = tf.function(
                self._forward, input_signature=[tf.TensorSpec([None, None], tf.float32)], jit_compile=False
            )
            try:
                dynamic.get_concrete_function()  # traces only; nothing runs
                self._fn, self.per_shape = dynamic, False
            except (ValueError, TypeError):  # e.g. arithmetic on an unknown (None) length
                # reduce_retracing would relax a later shape to [None, None] and fail the same way
                self._fn, self.per_shape = tf.function(self._forward, reduce_retracing=False), True
        return self._fn

    def run(self, batch):
        return self._function()(batch).numpy()


class SavedModelEnhancer(Enhancer):
    """A TF SavedModel whose ``serving_default`` maps ``noisy`` [batch, samples] to ``enhanced``.

    ``lookahead_samples`` and ``frame_step`` come from the :data:`SAVEDMODEL_METADATA` signature
    (written by :func:`keras_dccrn.export.export_saved_model`), else from attributes of the loaded
    object of those names (ints or scalar variables), else the module defaults.
    """

    def __init__(self, path):
        tf = tensorflow()
        try:
            loaded = tf.saved_model.load(path)
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot load the SavedModel ({one_line(exc)})") from None
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
        self.metadata = savedmodel_metadata(loaded)
        super().__init__(
            os.path.basename(os.path.normpath(path)),
            self.metadata.get("lookahead_samples"),
            self.metadata.get("frame_step"),
        )
        self._loaded = loaded  # keeps the variables alive
        self._fn = fn

    def run(self, batch):
        tf = tensorflow()
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


def savedmodel_metadata(loaded):
    """``{key: int}`` of :data:`METADATA_KEYS` a loaded SavedModel states (empty for an old file)."""
    signature = getattr(loaded, "signatures", {}).get(SAVEDMODEL_METADATA)
    if signature is not None:
        values = signature()
        return {key: int(values[key].numpy()) for key in METADATA_KEYS if key in values}
    found = {}
    for key in METADATA_KEYS:
        value = scalar(getattr(loaded, key, None))
        if value is not None:
            found[key] = value
    return found


class PerChannelEnhancer(Enhancer):
    """Wraps a callable on one 1-D 16 kHz signal (e.g. ``runtime.litert.TFLiteEnhancer``); loops over channels."""

    def __init__(self, fn, name=None):
        super().__init__(
            name or type(fn).__name__,
            scalar(getattr(fn, "lookahead_samples", None)),
            scalar(getattr(fn, "frame_step", None)),
        )
        self.fn = fn

    @property
    def streams(self):
        """True for a callable that streams (``fn.streams``, e.g. a streaming ``.tflite`` file)."""
        return bool(getattr(self.fn, "streams", False))

    def open_stream(self, channels):
        """One ``fn.open_stream()`` per channel (see :meth:`Enhancer.open_stream`)."""
        if not self.streams:
            return super().open_stream(channels)
        return ChannelStreams([self.fn.open_stream() for _ in range(int(channels))])

    def run(self, batch):
        return np.stack([np.asarray(self.fn(channel), dtype=np.float32) for channel in batch])


class ChannelStreams:
    """Streams of one signal each (``push(audio [n], final) -> [m]``) as one stream of ``[channels, n]``."""

    def __init__(self, streams):
        self.channels = streams

    def push(self, audio, final=False):
        """Pushes row ``c`` of ``audio`` ``[channels, n]`` into stream ``c``; returns ``[channels, m]``."""
        return np.stack([s.push(row, final) for s, row in zip(self.channels, audio, strict=True)])


def scalar(value):
    """``value`` (an int, a NumPy or TF scalar) as an int, or None."""
    if value is None:
        return None
    try:
        return int(np.asarray(value.numpy() if hasattr(value, "numpy") else value))
    except (TypeError, ValueError):
        return None
