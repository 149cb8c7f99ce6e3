"""The enhancement API under the name ``keras_dccrn.inference``; it lives in :mod:`keras_dccrn.runtime`."""

from keras_dccrn.runtime import *  # noqa: F403
from keras_dccrn.runtime import __all__  # noqa: F401
