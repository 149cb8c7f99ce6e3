"""The enhancement API under the name ``keras_dccrn.inference``; it lives in :mod:`keras_dccrn.runtime`.

``audio_extensions`` is :func:`keras_dccrn.data.files.readable_audio_extensions` under its former name.
"""

from keras_dccrn.data.files import readable_audio_extensions as audio_extensions  # noqa: F401
from keras_dccrn.runtime import *  # noqa: F403
from keras_dccrn.runtime import __all__  # noqa: F401
