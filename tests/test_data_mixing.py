"""keras_dccrn.data.mixing: the NumPy mixing DSP against NumPy references."""

import numpy as np
import pytest
from data_corpus import snr_db, speechlike

from keras_dccrn import data


def test_mix_matches_numpy_reference(rng):
    clean = speechlike(0.5, rng)
    noise = rng.standard_normal(8000).astype(np.float32)
    noisy, target, info = data.mix(clean, noise, snr_db=3.0, level_db=-25.0)
    c, n = clean.astype(np.float64), noise.astype(np.float64)
    n = n * np.sqrt(np.sum(c**2) / np.sum(n**2) / 10**0.3)
    g = 10 ** (-25 / 20) / np.sqrt(np.mean((c + n) ** 2))
    np.testing.assert_allclose(noisy, (c + n) * g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(target, c * g, rtol=1e-5, atol=1e-7)
    assert info["clip_scale"] == 1.0 and abs(info["level_dbfs"] + 25) < 1e-6
    # Loud request: both scaled by the same factor, peak exactly max_peak, SNR unchanged.
    noisy, target, info = data.mix(clean, noise, snr_db=3.0, level_db=-1.0)
    assert info["clip_scale"] < 1
    assert abs(max(np.abs(noisy).max(), np.abs(target).max()) - 0.99) < 1e-6
    assert abs(snr_db(target, noisy) - 3.0) < 1e-3
    with pytest.raises(ValueError, match="zeros"):
        data.mix(clean, np.zeros_like(clean), 0.0, -20.0)


def test_prepare_rir_aligns_the_direct_path_and_cuts_the_early_part():
    h = np.zeros(1000)
    h[30], h[31], h[400] = -0.5, 0.2, 0.1
    full, early = data.prepare_rir(h, sample_rate=16000, early_ms=10.0)
    assert full[0] == 1.0 and len(full) == 970 and len(early) == 160
    np.testing.assert_allclose(full, h[30:] / -0.5)
    np.testing.assert_array_equal(early, full[:160])


@pytest.mark.parametrize("target", ["dry", "early"])
def test_reverberant_mix_matches_numpy_convolution(rng, target):
    clean = speechlike(0.5, rng).astype(np.float64)
    noise = rng.standard_normal(8000)
    h = np.exp(-np.arange(2400) / 300.0) * rng.standard_normal(2400)
    h[0] = 3.0
    noisy, tgt, info = data.mix(clean, noise, 10.0, -25.0, rir=h, target=target, early_ms=50.0)
    full, early = data.prepare_rir(h, 16000, 50.0)
    speech = np.convolve(clean, full)[:8000]
    expected_target = np.convolve(clean, early)[:8000] if target == "early" else clean
    scale = np.std(tgt) / np.std(expected_target)
    np.testing.assert_allclose(tgt, expected_target * scale, atol=1e-5)
    # noisy = reverberant speech + noise scaled to the SNR against the target, times the same gain.
    residual = noisy / scale - speech
    assert abs(10 * np.log10(np.sum(expected_target**2) / np.sum(residual**2)) - 10.0) < 1e-3
    assert abs(info["level_dbfs"] + 25.0) < 1e-4
