"""Turning a model specification (object, file, folder, shipped name) into an enhancer backend.

``.tflite`` files load through :mod:`keras_dccrn.runtime.litert` without TensorFlow; ``.keras`` files
and SavedModels import it. Loading a ``.keras`` file here registers this package's Keras classes
(:func:`keras_dccrn.register_keras_objects`).
"""

import os
import sys
import weakref
import zipfile

from keras_dccrn.errors import one_line
from keras_dccrn.runtime import registry
from keras_dccrn.runtime.backends import (
    Enhancer,
    KerasEnhancer,
    PerChannelEnhancer,
    SavedModelEnhancer,
    litert_threads,
    tensorflow,
)
from keras_dccrn.runtime.errors import ModelLoadError


def load_enhancer(spec=None):
    """Turns a model specification into an :class:`Enhancer`.

    Args:
        spec: one of

            * an :class:`Enhancer` or a ``keras.Model`` (used as is);
            * a ``.keras`` file (``keras.saving.load_model``);
            * a TF SavedModel directory with a ``serving_default`` signature
              ``noisy`` [batch, samples] -> ``enhanced``, or a TF-Serving
              folder ``dir/<version>/saved_model.pb`` (highest version used);
            * a ``.tflite`` file (:class:`keras_dccrn.runtime.litert.TFLiteEnhancer`, with the
              threads of :func:`keras_dccrn.runtime.backends.configure_threads`, default the usable cores);
            * the name of a shipped model in ``saved_models/<name>/`` (the file
              :func:`keras_dccrn.runtime.registry.model_in_folder` picks);
            * ``None``: :data:`~keras_dccrn.runtime.registry.DEFAULT_MODEL`, the shipped
              Distil-DCCRN student.

    Returns:
        An :class:`Enhancer`.

    Raises:
        ModelLoadError: one-line message naming the problem.
    """
    if isinstance(spec, Enhancer):
        return spec
    if spec is None:
        if registry.DEFAULT_MODEL not in registry.shipped_models():
            raise ModelLoadError(registry.no_default_message())
        spec = registry.DEFAULT_MODEL
    keras = sys.modules.get("keras")  # a keras.Model can only exist once keras is imported
    if keras is not None and isinstance(spec, keras.Model):
        if spec not in _WRAPPED:  # one tf.function (one trace) per model object
            _WRAPPED[spec] = KerasEnhancer(spec)
        return _WRAPPED[spec]
    if not isinstance(spec, (str, os.PathLike)):
        raise ModelLoadError(f"cannot use {type(spec).__name__} as a model; pass a path or a keras.Model")
    path = os.fspath(spec)
    key = _cache_key(path)
    if key is not None and key in _LOADED:
        return _LOADED[key]
    enhancer = _load_path(path)
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


def _load_path(path):
    if not os.path.exists(path):
        shipped = registry.shipped_models()
        if path in shipped:
            return load_enhancer(registry.model_in_folder(shipped[path]))
        names = ", ".join(shipped) or "none found"
        raise ModelLoadError(
            f"{path}: no such model file or directory, and not a shipped model name (available: {names})"
        )
    if os.path.isdir(path):
        saved = registry.savedmodel_dir(path)
        if saved is None:
            inner = registry.model_in_folder(path)
            if inner is None:
                raise ModelLoadError(
                    f"{path}: directory holds no saved_model.pb (nor <version>/saved_model.pb), .keras or "
                    ".tflite model"
                )
            return load_enhancer(inner)
        return SavedModelEnhancer(saved)
    lower = path.lower()
    if lower.endswith(".keras"):
        tensorflow()  # before Keras runs anything: a pending configure_threads setting applies
        return KerasEnhancer(load_keras_model(path), name=os.path.basename(path))
    if lower.endswith(".tflite"):
        from keras_dccrn import extras

        try:
            extras.require(["ai_edge_litert"], f"{path}: running a .tflite model")
        except extras.MissingExtraError as exc:
            raise ModelLoadError(str(exc)) from None
        from keras_dccrn.runtime.litert import TFLiteEnhancer

        try:
            runner = TFLiteEnhancer(path, num_threads=litert_threads())
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot load the TFLite model ({one_line(exc)})") from None
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


def as_float32(model):
    """``model`` itself if its dtype policy is float32, else a float32 copy with the same weights.

    A mixed-precision policy (``mixed_bfloat16``, ``mixed_float16``) is a training setting: the
    streaming step and the exporters run the layers' computations directly, outside Keras'
    autocasting, and expect float32 weights and activations.
    """
    import numpy as np

    if model.dtype_policy.name == "float32":
        return model
    config = model.get_config()
    config["dtype"] = "float32"
    fresh = model.__class__.from_config(config)
    fresh(np.zeros((1, 4 * getattr(model, "frame_step", 160) + 400), "float32"))  # build
    fresh.set_weights(model.get_weights())
    return fresh


def load_keras_model(path, float32=True):
    """Loads a ``.keras`` file (``keras.saving.load_model``, no optimizer); one truthful line on failure.

    Args:
        path: the ``.keras`` file.
        float32: return a model saved under a mixed-precision policy as a float32 copy
            (:func:`as_float32`), as inference and export need.

    Returns:
        The ``keras.Model``.

    Raises:
        ModelLoadError: ``<path>: <reason>``: missing, empty, truncated, not a zip, an HDF5 file, a zip
            without ``config.json``, or the loader's own first line (e.g. an unknown layer class).
    """
    import keras

    import keras_dccrn

    keras_dccrn.register_keras_objects()

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
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot load the Keras model ({one_line(exc)})") from None
    return as_float32(model) if float32 else model
