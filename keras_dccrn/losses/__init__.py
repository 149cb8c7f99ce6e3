"""Training losses (``keras.ops`` only, usable with ``model.compile``).

* :mod:`~keras_dccrn.losses.si_snr`: :func:`si_snr`, :class:`SISNRLoss`, the ``si_snr`` metric and
  :class:`BalancedSISNRLoss` (Distil-DCCRN's output distillation: clean and teacher-output targets);
  every function takes ``(reference, estimate)``, like Keras' ``(y_true, y_pred)``.
* :mod:`~keras_dccrn.losses.spectral`: :func:`compressed_spectral_distance`, :class:`SISNRSpectralLoss`
  (SI-SNR plus a level-normalised, power-law compressed multi-resolution spectral term, Braun &
  Tashev 2021).
* :mod:`~keras_dccrn.losses.uformer`: :class:`UformerLoss`, the Uformer teacher's training loss.
* :mod:`~keras_dccrn.losses.atkl`: :class:`ATKLLoss` and its parts: attention transfer + KL divergence
  on intermediate feature maps along time and channels (Distil-DCCRN's AT-KL), with the teacher's
  attention aligned to the student's frames and channels.

Importing the package registers every loss (and the ``si_snr`` metric) under the names that saved
models refer to (``keras_dccrn>SISNRLoss``, ...).
"""

from keras_dccrn.losses.atkl import (
    ATTENTION_DIMS,
    ATTENTION_FLOOR,
    ATKLLoss,
    attention_log_distribution,
    attention_transfer_distance,
    channel_attention,
    frame_time_positions,
    kl_divergence,
    linear_interpolate,
    proportional_positions,
    time_attention,
)
from keras_dccrn.losses.si_snr import (
    EPSILON,
    BalancedSISNRLoss,
    SISNRLoss,
    balanced_si_snr_terms,
    si_snr,
    si_snr_metric,
)
from keras_dccrn.losses.spectral import DEFAULT_RESOLUTIONS, SISNRSpectralLoss, compressed_spectral_distance
from keras_dccrn.losses.uformer import UformerLoss

__all__ = [
    "ATTENTION_DIMS",
    "ATTENTION_FLOOR",
    "DEFAULT_RESOLUTIONS",
    "EPSILON",
    "ATKLLoss",
    "BalancedSISNRLoss",
    "SISNRLoss",
    "SISNRSpectralLoss",
    "UformerLoss",
    "attention_log_distribution",
    "attention_transfer_distance",
    "balanced_si_snr_terms",
    "channel_attention",
    "compressed_spectral_distance",
    "frame_time_positions",
    "kl_divergence",
    "linear_interpolate",
    "proportional_positions",
    "si_snr",
    "si_snr_metric",
    "time_attention",
]
