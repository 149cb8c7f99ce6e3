"""SI-SNR plus a level-normalised, power-law compressed multi-resolution spectral distance (Braun & Tashev 2021)."""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import complex_abs
from keras_dccrn.layers.stft import STFT
from keras_dccrn.losses.si_snr import EPSILON, si_snr
from keras_dccrn.losses.validation import check_fraction, check_non_negative, check_positive

DEFAULT_RESOLUTIONS = ((512, 128, 512), (256, 64, 256), (1024, 256, 1024))


def compressed_spectral_distance(
    reference, estimate, stfts, compress=0.3, complex_share=0.3, epsilon=EPSILON
):
    """Power-law compressed spectral distance per example, averaged over STFT resolutions.

    Both signals are divided by the reference's RMS first (the term does not
    depend on the level of the example). For each STFT, with magnitudes
    ``|S|``, ``|Y|`` and compressed spectra ``S_c = |S|^c S / |S|``::

        d = complex_share * mean |S_c - Y_c|^2 + (1 - complex_share) * mean (|S|^c - |Y|^c)^2

    (Braun & Tashev, "A consolidated view of loss functions for supervised
    deep learning-based speech enhancement", TSP 2021: ``c = 0.3``, share 0.3).

    Args:
        reference: ``[batch, samples]`` (its RMS sets the level normalisation).
        estimate: ``[batch, samples]``.
        stfts: :class:`keras_dccrn.layers.STFT` layers (one per resolution).
        compress: exponent ``c`` in (0, 1].
        complex_share: weight of the complex term in [0, 1].
        epsilon: floor inside the magnitude and the RMS.

    Returns:
        float32 ``[batch]``.
    """
    est = ops.cast(estimate, "float32")
    ref = ops.cast(reference, "float32")
    scale = ops.sqrt(ops.mean(ref * ref, axis=-1, keepdims=True) + epsilon)
    est, ref = est / scale, ref / scale
    total = 0.0
    for stft in stfts:
        spec_e = stft(est)  # [B, T, bins, 2]
        spec_r = stft(ref)
        mag_e = complex_abs(spec_e, epsilon)  # [B, T, bins, 1]
        mag_r = complex_abs(spec_r, epsilon)
        comp_e = ops.power(mag_e, compress)
        comp_r = ops.power(mag_r, compress)
        mag_term = ops.mean(ops.square(comp_e - comp_r), axis=(1, 2, 3))
        diff = spec_e * (comp_e / mag_e) - spec_r * (comp_r / mag_r)
        complex_term = ops.mean(ops.square(diff), axis=(1, 2, 3)) * 2.0  # mean over bins of |.|^2
        total = total + complex_share * complex_term + (1.0 - complex_share) * mag_term
    return total / len(stfts)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class SISNRSpectralLoss(keras.losses.Loss):
    """``-SI-SNR (dB) + spectral_weight * compressed_spectral_distance``.

    SI-SNR alone ignores the output level and weights every sample alike; the
    compressed spectral term (see :func:`compressed_spectral_distance`)
    weights quiet time-frequency regions more, which is where residual noise
    is heard.

    Args:
        spectral_weight: weight of the spectral term, ``>= 0``.
        resolutions: ``(frame_length, frame_step, fft_length)`` per STFT.
        compress: compression exponent in (0, 1].
        complex_share: weight of the complex term in [0, 1].
        epsilon: numerical floor.
        **kwargs: base ``Loss`` arguments (``name``, ``reduction``).

    Call arguments:
        y_true: clean waveform ``[batch, samples]``.
        y_pred: estimate ``[batch, samples]``.
    """

    def __init__(
        self,
        spectral_weight=10.0,
        resolutions=DEFAULT_RESOLUTIONS,
        compress=0.3,
        complex_share=0.3,
        epsilon=EPSILON,
        name="si_snr_spectral_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.spectral_weight = check_non_negative("spectral_weight", spectral_weight)
        if not 0.0 < compress <= 1.0:
            raise ValueError(f"`compress` must be in (0, 1]; received {compress!r}.")
        self.compress = float(compress)
        self.complex_share = check_fraction("complex_share", complex_share)
        self.epsilon = check_positive("epsilon", epsilon)
        self.resolutions = tuple(tuple(int(v) for v in r) for r in resolutions)
        if not self.resolutions or any(len(r) != 3 for r in self.resolutions):
            raise ValueError(
                f"`resolutions` must be (frame_length, frame_step, fft_length) triples; received {resolutions!r}."
            )
        self.stfts = [STFT(*r, name=f"spectral_loss_stft_{r[0]}") for r in self.resolutions]

    def call(self, y_true, y_pred):
        loss = -si_snr(y_true, y_pred, self.epsilon)
        if self.spectral_weight:
            distance = compressed_spectral_distance(
                y_true, y_pred, self.stfts, self.compress, self.complex_share, self.epsilon
            )
            loss = loss + self.spectral_weight * distance
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            spectral_weight=self.spectral_weight,
            resolutions=[list(r) for r in self.resolutions],
            compress=self.compress,
            complex_share=self.complex_share,
            epsilon=self.epsilon,
        )
        return config
