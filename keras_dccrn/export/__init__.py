"""Deployment: SavedModels for TF Serving (:mod:`.savedmodel`) and TFLite files (:mod:`.tflite`,
with the mixed-precision recipe of :mod:`.mixed_int8`).

The exporters import TensorFlow; the files they write run with :mod:`keras_dccrn.runtime`
(``.tflite`` files without TensorFlow).
"""

from keras_dccrn.export.savedmodel import (
    export_saved_model,
    metadata_endpoint,
    model_metadata,
    serving_endpoints,
)
from keras_dccrn.export.tflite import (
    DEFAULT_CHUNK_SAMPLES,
    MODES,
    QUANTIZATIONS,
    STREAMING_ONLY,
    add_metadata,
    export_tflite,
)

__all__ = [
    "DEFAULT_CHUNK_SAMPLES",
    "MODES",
    "QUANTIZATIONS",
    "STREAMING_ONLY",
    "add_metadata",
    "export_saved_model",
    "export_tflite",
    "metadata_endpoint",
    "model_metadata",
    "serving_endpoints",
]
