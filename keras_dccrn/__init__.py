"""keras-dccrn: DCCRN, Uformer and Distil-DCCRN speech enhancement in Keras 3."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_dccrn import losses  # noqa: E402,F401  (registers the losses/metrics saved with compiled models)
from keras_dccrn.inference import enhance  # noqa: E402
from keras_dccrn.models import build_model, list_presets  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build_model", "enhance", "list_presets", "__version__"]
