"""The Uformer teacher's training loss: SI-SNR, waveform L1, complex-spectrum and magnitude MSE."""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import complex_abs
from keras_dccrn.layers.stft import STFT
from keras_dccrn.losses.si_snr import EPSILON, si_snr
from keras_dccrn.losses.validation import check_non_negative, check_positive


@keras.saving.register_keras_serializable(package="keras_dccrn")
class UformerLoss(keras.losses.Loss):
    """Uformer training loss: SI-SNR + time L1 + complex-spectrum L2 + magnitude L2.

    Per example::

        loss = si_snr_weight    * (-si_snr(ref, est))                      [dB]
             + l1_weight        * mean_n |est[n] - ref[n]|
             + complex_weight   * mean_{t,f} (dRe^2 + dIm^2) / 2
             + magnitude_weight * mean_{t,f} (|EST| - |REF|)^2

    where ``EST``/``REF`` are :class:`keras_dccrn.layers.STFT` spectra
    (unnormalised DFT of the windowed frames, 400/160/512 Hann by default:
    the Uformer's 25 ms / 10 ms framing at 16 kHz); the complex term is the
    mean squared error over every real and imaginary value and the
    magnitude is ``sqrt(Re^2 + Im^2 + epsilon)`` (finite gradient at 0).
    The defaults weight every term 1 (the plain sum of the four losses
    named by Fu et al.; per-term weights in their paper could not be
    checked here); note the SI-SNR term is in dB and dominates for
    low-level signals, tune the weights if the spectral terms should matter
    more.

    Args:
        si_snr_weight: weight of the negative SI-SNR (dB), ``>= 0``.
        l1_weight: weight of the waveform mean absolute error, ``>= 0``.
        complex_weight: weight of the complex-spectrum MSE, ``>= 0``.
        magnitude_weight: weight of the magnitude-spectrum MSE, ``>= 0``.
        frame_length: STFT window (samples).
        frame_step: STFT hop (samples).
        fft_length: DFT size.
        window: STFT window type.
        epsilon: numerical floor (SI-SNR and magnitude).
        **kwargs: base ``Loss`` arguments (``name``, ``reduction``).

    Call arguments:
        y_true: clean waveform ``[batch, samples]``.
        y_pred: estimate ``[batch, samples]``.

    References:
        Fu et al., "Uformer: A Unet based dilated complex & real dual-path
        conformer network for simultaneous speech enhancement and
        dereverberation", ICASSP 2022, arXiv:2111.06015.
    """

    def __init__(
        self,
        si_snr_weight=1.0,
        l1_weight=1.0,
        complex_weight=1.0,
        magnitude_weight=1.0,
        frame_length=400,
        frame_step=160,
        fft_length=512,
        window="hann",
        epsilon=EPSILON,
        name="uformer_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.si_snr_weight = check_non_negative("si_snr_weight", si_snr_weight)
        self.l1_weight = check_non_negative("l1_weight", l1_weight)
        self.complex_weight = check_non_negative("complex_weight", complex_weight)
        self.magnitude_weight = check_non_negative("magnitude_weight", magnitude_weight)
        self.epsilon = check_positive("epsilon", epsilon)
        self.stft = STFT(frame_length, frame_step, fft_length, window, name="uformer_loss_stft")

    def terms(self, y_true, y_pred):
        """Unweighted per-example terms and the weighted ``total``, each float32 ``[batch]``.

        Keys: ``si_snr`` (negative SI-SNR, dB), ``l1``, ``complex_mse``,
        ``magnitude_mse``, ``total``.
        """
        ref = ops.cast(y_true, "float32")
        est = ops.cast(y_pred, "float32")
        neg_si_snr = -si_snr(ref, est, self.epsilon)
        l1 = ops.mean(ops.abs(est - ref), axis=-1)
        spec_est = self.stft(est)  # [B, T, bins, 2]
        spec_ref = self.stft(ref)
        diff = spec_est - spec_ref
        complex_mse = ops.mean(diff * diff, axis=(1, 2, 3))
        mag_diff = complex_abs(spec_est, self.epsilon) - complex_abs(spec_ref, self.epsilon)
        magnitude_mse = ops.mean(mag_diff * mag_diff, axis=(1, 2, 3))
        total = (
            self.si_snr_weight * neg_si_snr
            + self.l1_weight * l1
            + self.complex_weight * complex_mse
            + self.magnitude_weight * magnitude_mse
        )
        return {
            "si_snr": neg_si_snr,
            "l1": l1,
            "complex_mse": complex_mse,
            "magnitude_mse": magnitude_mse,
            "total": total,
        }

    def call(self, y_true, y_pred):
        return self.terms(y_true, y_pred)["total"]

    def get_config(self):
        config = super().get_config()
        config.update(
            si_snr_weight=self.si_snr_weight,
            l1_weight=self.l1_weight,
            complex_weight=self.complex_weight,
            magnitude_weight=self.magnitude_weight,
            frame_length=self.stft.frame_length,
            frame_step=self.stft.frame_step,
            fft_length=self.stft.fft_length,
            window=self.stft.window,
            epsilon=self.epsilon,
        )
        return config
