"""keras-dccrn: DCCRN, Uformer and Distil-DCCRN speech enhancement in Keras 3.

The package imports lazily: ``import keras_dccrn`` loads nothing heavy, and ``keras_dccrn.enhance``
with a ``.tflite`` model runs on NumPy, SciPy, soundfile and ai-edge-litert without importing
TensorFlow or Keras. ``build_model`` / ``list_presets`` (and any ``.keras`` file loaded through
:mod:`keras_dccrn.runtime`) import Keras and register this package's Keras classes.

Plain Keras users: ``keras.saving.load_model("x.keras")`` needs the classes registered first. They are
registered when ``keras_dccrn`` is imported after ``keras`` (``import keras`` then ``import
keras_dccrn``), or by :func:`register_keras_objects` (equivalently ``import keras_dccrn.models``).
"""

import importlib
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# Public name -> module defining it (imported on first access).
_ATTRIBUTES = {
    "enhance": "keras_dccrn.runtime",
    "enhance_file": "keras_dccrn.runtime",
    "load_enhancer": "keras_dccrn.runtime",
    "build_model": "keras_dccrn.models",
    "list_presets": "keras_dccrn.models",
}
_SUBMODULES = {
    "audio",
    "data",
    "distillation",
    "evaluation",
    "export",
    "extras",
    "inference",
    "layers",
    "losses",
    "metrics",
    "models",
    "profiling",
    "runtime",
    "signals",
    "streaming",
    "training",
}
__all__ = [
    "build_model",
    "enhance",
    "enhance_file",
    "list_presets",
    "load_enhancer",
    "register_keras_objects",
]


def register_keras_objects():
    """Registers the custom Keras layers, models, losses and metrics (imports Keras and TensorFlow).

    Needed before ``keras.saving.load_model`` reads a file holding them; Keras 3 only imports the
    module named in a config for its own packages, so an unregistered ``keras_dccrn>DCCRN`` is
    "Could not locate class".
    """
    importlib.import_module("keras_dccrn.models")
    importlib.import_module("keras_dccrn.losses")


def __getattr__(name):
    if name in _ATTRIBUTES:
        module = importlib.import_module(_ATTRIBUTES[name])
        if _ATTRIBUTES[name] == "keras_dccrn.models":
            register_keras_objects()
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ATTRIBUTES) | _SUBMODULES)


if "keras" in sys.modules:  # a Keras user: keras.saving.load_model finds the classes without more
    register_keras_objects()
