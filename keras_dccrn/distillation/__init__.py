"""Knowledge distillation: the AT-KL ``Distiller`` and the teacher-knowledge cache.

* :mod:`keras_dccrn.distillation.distiller`: :class:`Distiller`, a ``keras.Model`` whose
  ``train_step`` runs a frozen teacher (or reads its cached knowledge) and the student.
* :mod:`keras_dccrn.distillation.knowledge`: precomputes what AT-KL needs of the teacher (its output
  waveform and per-layer attention energies) for a pool of training mixtures, and the ``tf.data``
  pipeline that serves it, so that a distillation step costs about a supervised student step.
"""

from keras_dccrn.distillation.distiller import FEATURE_TERMS, KD_MODES, TERMS, Distiller

__all__ = ["Distiller", "FEATURE_TERMS", "KD_MODES", "TERMS"]
