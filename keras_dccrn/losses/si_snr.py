"""Scale-invariant SNR for Keras tensors: the SI-SNR loss and metric, and Distil-DCCRN's balanced SI-SNR.

Every function here takes the reference first and the estimate second, like Keras' ``(y_true,
y_pred)`` and the evaluation metrics of :mod:`keras_dccrn.metrics` (whose :func:`~keras_dccrn.metrics.si_snr`
is the float64 NumPy reference of the same formula).
"""

import keras
from keras import ops

from keras_dccrn.losses.validation import check_fraction, check_positive

EPSILON = 1e-8


def si_snr(reference, estimate, epsilon=EPSILON):
    """Scale-invariant SNR of ``estimate`` against ``reference`` in dB, ``[batch, samples]`` -> ``[batch]``.

    With both signals made zero-mean along the last axis::

        target = <estimate, reference> / (<reference, reference> + epsilon) * reference
        noise = estimate - target
        SI-SNR = 10 log10(|target|^2 / (|noise|^2 + epsilon) + epsilon)

    ``epsilon`` keeps the value finite: identical signals give about ``10 log10(energy / epsilon)``,
    an all-zero estimate (or reference) ``10 log10(epsilon)`` = -80 dB. Computed in float32;
    :func:`keras_dccrn.metrics.si_snr` is the same formula in float64 NumPy.

    Args:
        reference: clean signal ``[batch, samples]`` (``y_true``).
        estimate: signal to score ``[batch, samples]`` (``y_pred``).
        epsilon: numerical floor, ``> 0``.

    Returns:
        float32 ``[batch]``, higher is better.
    """
    reference = ops.cast(reference, "float32")
    estimate = ops.cast(estimate, "float32")
    reference = reference - ops.mean(reference, axis=-1, keepdims=True)
    estimate = estimate - ops.mean(estimate, axis=-1, keepdims=True)
    dot = ops.sum(estimate * reference, axis=-1, keepdims=True)
    energy = ops.sum(reference * reference, axis=-1, keepdims=True)
    target = dot / (energy + epsilon) * reference
    noise = estimate - target
    ratio = ops.sum(target * target, axis=-1) / (ops.sum(noise * noise, axis=-1) + epsilon)
    return 10.0 * ops.log10(ratio + epsilon)


@keras.saving.register_keras_serializable(package="keras_dccrn", name="si_snr")
def si_snr_metric(y_true, y_pred):
    """SI-SNR in dB of ``y_pred`` against ``y_true`` (higher is better), a Keras metric function."""
    return si_snr(y_true, y_pred)


si_snr_metric.__name__ = "si_snr"  # the name shown in logs: si_snr / val_si_snr


@keras.saving.register_keras_serializable(package="keras_dccrn")
class SISNRLoss(keras.losses.Loss):
    """Negative SI-SNR (dB): ``loss(clean, enhanced) = -si_snr(clean, enhanced)``.

    Args:
        epsilon: numerical floor.
        **kwargs: base ``Loss`` arguments (``name``, ``reduction``).

    Call arguments:
        y_true: clean waveform ``[batch, samples]``.
        y_pred: estimate ``[batch, samples]``.
    """

    def __init__(self, epsilon=EPSILON, name="si_snr_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if epsilon <= 0:
            raise ValueError(f"`epsilon` must be positive; received {epsilon!r}.")
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        return -si_snr(y_true, y_pred, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


def balanced_si_snr_terms(clean, teacher, student, alpha=0.5, epsilon=EPSILON):
    """Balanced SI-SNR loss and its two SI-SNR values, all per example.

    Args:
        clean: clean reference ``[batch, samples]`` (the hard label).
        teacher: teacher estimate ``[batch, samples]`` (the soft label).
        student: student estimate ``[batch, samples]``.
        alpha: weight of the clean term, in ``[0, 1]``.
        epsilon: numerical floor of :func:`si_snr`.

    Returns:
        ``(loss, si_snr_clean, si_snr_teacher)``, each ``[batch]``:
        ``loss = -alpha * si_snr(clean, student) - (1 - alpha) * si_snr(teacher, student)``
        and the two SI-SNR values in dB (higher is better).
    """
    clean_db = si_snr(clean, student, epsilon)
    teacher_db = si_snr(teacher, student, epsilon)
    return -alpha * clean_db - (1.0 - alpha) * teacher_db, clean_db, teacher_db


def _split_pair(y_true):
    """``(clean, teacher)`` from a pair or a ``[batch, 2, samples]`` tensor."""
    if isinstance(y_true, (list, tuple)):
        if len(y_true) != 2:
            raise ValueError(
                f"`y_true` must be a pair (clean, teacher_output); received {len(y_true)} items."
            )
        return y_true[0], y_true[1]
    if len(y_true.shape) != 3 or y_true.shape[1] != 2:
        raise ValueError(
            "`y_true` must be a pair (clean, teacher_output) or a tensor [batch, 2, samples]; "
            f"received shape {tuple(y_true.shape)}."
        )
    return y_true[:, 0], y_true[:, 1]


@keras.saving.register_keras_serializable(package="keras_dccrn")
class BalancedSISNRLoss(keras.losses.Loss):
    """Balanced SI-SNR of Distil-DCCRN: clean target plus teacher soft label.

    ``loss = alpha * (-si_snr(clean, student)) + (1 - alpha) * (-si_snr(teacher, student))``

    The teacher's enhanced waveform is a soft label: it is closer to what a
    small student can reach than the clean speech, while the clean term
    keeps the student from copying the teacher's errors.

    Args:
        alpha: weight of the clean (hard label) term, in ``[0, 1]``;
            ``alpha=1`` is plain SI-SNR training, ``alpha=0`` pure imitation.
        epsilon: numerical floor of :func:`si_snr`.
        **kwargs: base ``Loss`` arguments (``name``, ``reduction``).

    Call arguments:
        y_true: ``(clean, teacher_output)``, each ``[batch, samples]``, or
            both stacked as ``[batch, 2, samples]`` (clean first).
        y_pred: student estimate ``[batch, samples]``.

    References:
        Han et al., "Distil-DCCRN: A Small-footprint DCCRN Leveraging
        Feature-based Knowledge Distillation in Speech Enhancement",
        IEEE Signal Processing Letters 31, 2024, arXiv:2408.04267.
    """

    def __init__(self, alpha=0.5, epsilon=EPSILON, name="balanced_si_snr_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = check_fraction("alpha", alpha)
        self.epsilon = check_positive("epsilon", epsilon)

    def call(self, y_true, y_pred):
        clean, teacher = _split_pair(y_true)
        return balanced_si_snr_terms(clean, teacher, y_pred, self.alpha, self.epsilon)[0]

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, epsilon=self.epsilon)
        return config
