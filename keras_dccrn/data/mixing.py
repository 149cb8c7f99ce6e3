"""Mixing DSP on whole NumPy segments (float64): RIR alignment, reverberation, exact SNR, level, peak limit.

No TensorFlow: the pipeline runs these inside ``tf.numpy_function``, the writers call them directly.
"""

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE


def rms_db(x):
    """RMS level of ``x`` in dBFS (-300 for an empty signal)."""
    x = np.asarray(x, dtype=np.float64)
    return 10.0 * np.log10(np.mean(x * x) + 1e-30) if x.size else -300.0


def prepare_rir(rir, sample_rate=SAMPLE_RATE, early_ms=50.0):
    """Aligns and normalises an RIR; returns ``(full, early)`` float64 arrays.

    The direct path is the largest absolute sample; the RIR is cut so that it
    starts there and divided by its value (direct path = +1). ``early`` is the
    first ``early_ms`` milliseconds of the aligned RIR.
    """
    rir = np.asarray(rir, dtype=np.float64)
    direct = int(np.argmax(np.abs(rir)))
    full = rir[direct:] / rir[direct]
    early = full[: max(1, int(round(early_ms * 1e-3 * sample_rate)))]
    return full, early


def _convolve(x, filters, n):
    """First ``n`` samples of ``x * h`` for each ``h`` (one FFT of ``x``, float32 FFTs, float64 out)."""
    from scipy import fft as sp_fft  # imported when needed: the file scans of the apps import this package

    size = sp_fft.next_fast_len(len(x) + max(len(h) for h in filters) - 1, real=True)
    spectrum = sp_fft.rfft(x.astype(np.float32), size)
    return [
        sp_fft.irfft(spectrum * sp_fft.rfft(h.astype(np.float32), size), size)[:n].astype(np.float64)
        for h in filters
    ]


def mix(
    clean,
    noise,
    snr_db,
    level_db,
    rir=None,
    target="dry",
    sample_rate=SAMPLE_RATE,
    early_ms=50.0,
    max_peak=0.99,
):
    """Mixes one example; all inputs are whole segments of the same length.

    Args:
        clean: ``[samples]`` dry speech segment.
        noise: ``[samples]`` noise segment.
        snr_db: SNR of target vs scaled noise, in dB.
        level_db: RMS of the noisy mix in dBFS (before clip prevention).
        rir: optional raw RIR (see :func:`prepare_rir`).
        target: ``"dry"`` or ``"early"`` (only used with ``rir``).
        sample_rate: rate in Hz (for ``early_ms``).
        early_ms: early-reverberation length in ms.
        max_peak: peak limit for noisy and target.

    Returns:
        ``(noisy, target, info)``: float32 arrays and a dict with
        ``gain_db`` (level gain), ``clip_scale`` (<= 1) and ``level_dbfs``
        (final RMS of noisy).
    """
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if clean.shape != noise.shape or clean.ndim != 1:
        raise ValueError(
            f"clean and noise must be 1-D of equal length; received {clean.shape} and {noise.shape}."
        )
    n = clean.shape[0]
    if rir is not None:
        full, early = prepare_rir(rir, sample_rate, early_ms)
        if target == "early":
            speech, tgt = _convolve(clean, [full, early], n)
        else:
            (speech,), tgt = _convolve(clean, [full], n), clean
    else:
        speech, tgt = clean, clean
    p_target = np.mean(tgt * tgt)
    p_noise = np.mean(noise * noise)
    if not (p_target > 0 and p_noise > 0):
        raise ValueError(f"target and noise must not be all zeros; powers {p_target:g} and {p_noise:g}.")
    noise = noise * np.sqrt(p_target / (p_noise * 10.0 ** (snr_db / 10.0)))
    noisy = speech + noise
    gain = 10.0 ** (level_db / 20.0) / np.sqrt(np.mean(noisy * noisy))
    noisy, tgt = noisy * gain, tgt * gain
    peak = max(np.max(np.abs(noisy)), np.max(np.abs(tgt)))
    scale = min(1.0, max_peak / peak)
    noisy, tgt = noisy * scale, tgt * scale
    info = {
        "gain_db": 20.0 * np.log10(gain * scale),
        "clip_scale": scale,
        "level_dbfs": rms_db(noisy),
    }
    return noisy.astype(np.float32), tgt.astype(np.float32), info
