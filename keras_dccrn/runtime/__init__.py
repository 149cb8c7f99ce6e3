"""The enhancement runtime: load a model, enhance arrays and files in bounded memory.

Modules:

* :mod:`~keras_dccrn.runtime.registry`: shipped models and the file a shipped folder serves;
* :mod:`~keras_dccrn.runtime.loading`: a model specification -> an enhancer backend;
* :mod:`~keras_dccrn.runtime.backends`: the Keras, SavedModel and per-channel backends;
* :mod:`~keras_dccrn.runtime.litert`: the LiteRT runner of ``.tflite`` files (no TensorFlow);
* :mod:`~keras_dccrn.runtime.hops`: the one hop loop of streaming steps (NumPy only);
* :mod:`~keras_dccrn.runtime.level`: input level normalisation into the models' training range;
* :mod:`~keras_dccrn.runtime.chunking`: window planning and loop, continuous streaming, :func:`enhance`;
* :mod:`~keras_dccrn.runtime.files`: :func:`enhance_file` and the output format rules.

Importing this package imports NumPy, SciPy and soundfile only; TensorFlow is imported when a
``.keras`` file, a SavedModel or a ``keras.Model`` is used, never for a ``.tflite`` file.
"""

from keras_dccrn.audio import audio_info
from keras_dccrn.runtime.backends import (
    DEFAULT_ALIGNMENT,
    DEFAULT_LOOKAHEAD_SAMPLES,
    Enhancer,
    KerasEnhancer,
    PerChannelEnhancer,
    SavedModelEnhancer,
    configure_threads,
    usable_cores,
)
from keras_dccrn.runtime.chunking import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_CONTEXT_SECONDS,
    DEFAULT_FADE_SECONDS,
    MAX_CHUNK_SECONDS,
    MAX_CONTEXT_SECONDS,
    enhance,
)
from keras_dccrn.runtime.errors import ModelLoadError
from keras_dccrn.runtime.files import enhance_file
from keras_dccrn.runtime.level import LEVEL_RANGE_DBFS, LeveledEnhancer
from keras_dccrn.runtime.litert import TFLiteEnhancer, load_interpreter, tflite_op_names
from keras_dccrn.runtime.loading import load_enhancer, load_keras_model
from keras_dccrn.runtime.registry import (
    DEFAULT_MODEL,
    MODELS_ENV,
    model_in_folder,
    no_default_message,
    shipped_model_dirs,
    shipped_models,
)

__all__ = [
    "DEFAULT_ALIGNMENT",
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_CONTEXT_SECONDS",
    "DEFAULT_FADE_SECONDS",
    "DEFAULT_LOOKAHEAD_SAMPLES",
    "DEFAULT_MODEL",
    "LEVEL_RANGE_DBFS",
    "MAX_CHUNK_SECONDS",
    "MAX_CONTEXT_SECONDS",
    "MODELS_ENV",
    "Enhancer",
    "KerasEnhancer",
    "LeveledEnhancer",
    "ModelLoadError",
    "PerChannelEnhancer",
    "SavedModelEnhancer",
    "TFLiteEnhancer",
    "audio_info",
    "configure_threads",
    "enhance",
    "enhance_file",
    "load_enhancer",
    "load_interpreter",
    "load_keras_model",
    "model_in_folder",
    "no_default_message",
    "shipped_model_dirs",
    "shipped_models",
    "tflite_op_names",
    "usable_cores",
]
