"""Training losses (``keras.ops`` only, usable with ``model.compile``)."""

import keras
from keras import ops

EPSILON = 1e-8


def si_snr(estimate, reference, epsilon=EPSILON):
    """Scale-invariant SNR in dB per example, ``[batch, samples]`` -> ``[batch]``.

    Both signals are made zero-mean first; ``epsilon`` keeps the ratio and
    the logarithm finite for silent inputs.
    """
    estimate = ops.cast(estimate, "float32")
    reference = ops.cast(reference, "float32")
    estimate = estimate - ops.mean(estimate, axis=-1, keepdims=True)
    reference = reference - ops.mean(reference, axis=-1, keepdims=True)
    dot = ops.sum(estimate * reference, axis=-1, keepdims=True)
    energy = ops.sum(reference * reference, axis=-1, keepdims=True)
    target = dot / (energy + epsilon) * reference
    noise = estimate - target
    ratio = ops.sum(target * target, axis=-1) / (ops.sum(noise * noise, axis=-1) + epsilon)
    return 10.0 * ops.log10(ratio + epsilon)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class SISNRLoss(keras.losses.Loss):
    """Negative SI-SNR (dB): ``loss(clean, enhanced) = -SI-SNR(enhanced, clean)``.

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
        return -si_snr(y_pred, y_true, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config
