"""keras_dccrn.losses.spectral: the compressed spectral distance and SISNRSpectralLoss against NumPy references."""

import keras
import numpy as np
import pytest
from loss_references import EPS, np_stft, to_np

from keras_dccrn import metrics
from keras_dccrn.layers import STFT
from keras_dccrn.losses import SISNRSpectralLoss, compressed_spectral_distance

RESOLUTIONS = ((64, 16, 64), (128, 32, 128))


def np_compressed_distance(reference, estimate, resolutions, compress=0.3, share=0.3):
    scale = np.sqrt(np.mean(reference**2, -1, keepdims=True) + EPS)
    reference, estimate = reference / scale, estimate / scale
    total = 0.0
    for win, hop, nfft in resolutions:
        s_r, s_e = np_stft(reference, win, hop, nfft), np_stft(estimate, win, hop, nfft)
        mag_r, mag_e = np.sqrt(np.abs(s_r) ** 2 + EPS), np.sqrt(np.abs(s_e) ** 2 + EPS)
        comp_r, comp_e = mag_r**compress, mag_e**compress
        magnitude = ((comp_e - comp_r) ** 2).mean(axis=(1, 2))
        complex_ = (np.abs(s_e * comp_e / mag_e - s_r * comp_r / mag_r) ** 2).mean(axis=(1, 2))
        total = total + share * complex_ + (1 - share) * magnitude
    return total / len(resolutions)


@pytest.fixture
def pair(rng):
    reference = (0.2 * rng.standard_normal((2, 1200))).astype("float32")
    estimate = (0.5 * reference + 0.05 * rng.standard_normal(reference.shape)).astype("float32")
    return reference, estimate


def test_compressed_spectral_distance_matches_numpy(pair):
    reference, estimate = pair
    stfts = [STFT(*r) for r in RESOLUTIONS]
    value = to_np(compressed_spectral_distance(reference, estimate, stfts, compress=0.3, complex_share=0.3))
    expected = np_compressed_distance(reference.astype(np.float64), estimate.astype(np.float64), RESOLUTIONS)
    np.testing.assert_allclose(value, expected, rtol=1e-3)
    # Level normalised by the reference: scaling both changes nothing, the order matters.
    scaled = to_np(compressed_spectral_distance(8 * reference, 8 * estimate, stfts))
    np.testing.assert_allclose(scaled, value, rtol=1e-3)
    swapped = to_np(compressed_spectral_distance(estimate, reference, stfts))
    assert np.all(np.abs(swapped - value) > 0.1 * value)


def test_sisnr_spectral_loss_is_si_snr_plus_weighted_distance_and_serialises(pair):
    reference, estimate = pair
    loss = SISNRSpectralLoss(spectral_weight=4.0, resolutions=RESOLUTIONS, compress=0.5, complex_share=0.6)
    si = np.array([metrics.si_snr(r, e) for r, e in zip(reference, estimate, strict=True)])
    distance = np_compressed_distance(
        reference.astype(np.float64), estimate.astype(np.float64), RESOLUTIONS, 0.5, 0.6
    )
    np.testing.assert_allclose(to_np(loss(reference, estimate)), np.mean(-si + 4.0 * distance), rtol=1e-4)
    plain = SISNRSpectralLoss(spectral_weight=0.0, resolutions=RESOLUTIONS)
    np.testing.assert_allclose(to_np(plain(reference, estimate)), -si.mean(), atol=1e-4)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SISNRSpectralLoss) and restored.get_config() == loss.get_config()
    for kwargs, name in (
        (dict(compress=0.0), "compress"),
        (dict(complex_share=2.0), "complex_share"),
        (dict(spectral_weight=-1.0), "spectral_weight"),
        (dict(resolutions=((64, 16),)), "resolutions"),
    ):
        with pytest.raises(ValueError, match=name):
            SISNRSpectralLoss(**kwargs)
