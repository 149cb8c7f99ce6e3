"""keras_dccrn.losses.uformer: the Uformer composite loss against a NumPy reference."""

import keras
import numpy as np
import pytest
from loss_references import EPS, np_stft, to_np

from keras_dccrn.losses import UformerLoss
from keras_dccrn.metrics import si_snr as np_si_snr


def test_uformer_loss_matches_numpy(rng):
    ref = (0.3 * rng.standard_normal((2, 1000))).astype("float32")
    est = (ref + 0.1 * rng.standard_normal(ref.shape)).astype("float32")
    weights = dict(si_snr_weight=0.5, l1_weight=2.0, complex_weight=0.1, magnitude_weight=0.3)
    loss = UformerLoss(**weights)
    terms = {k: to_np(v) for k, v in loss.terms(ref, est).items()}
    s_est, s_ref = np_stft(est.astype(np.float64)), np_stft(ref.astype(np.float64))
    expected = dict(
        si_snr=-np.array([np_si_snr(r, e) for r, e in zip(ref, est, strict=True)]),
        l1=np.abs(est - ref).mean(-1),
        complex_mse=(np.abs(s_est - s_ref) ** 2).mean(axis=(1, 2)) / 2,
        magnitude_mse=((np.sqrt(np.abs(s_est) ** 2 + EPS) - np.sqrt(np.abs(s_ref) ** 2 + EPS)) ** 2).mean(
            axis=(1, 2)
        ),
    )
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name], value, rtol=1e-3, atol=1e-6, err_msg=name)
    total = (
        0.5 * expected["si_snr"]
        + 2.0 * expected["l1"]
        + 0.1 * expected["complex_mse"]
        + 0.3 * expected["magnitude_mse"]
    )
    np.testing.assert_allclose(terms["total"], total, rtol=1e-3)
    np.testing.assert_allclose(to_np(loss(ref, est)), total.mean(), rtol=1e-3)


def test_uformer_loss_silent_safe_validation_and_config():
    import tensorflow as tf

    zeros = np.zeros((2, 640), "float32")
    loss = UformerLoss()
    estimate = tf.Variable(zeros)
    with tf.GradientTape() as tape:
        value = loss(zeros, estimate)
    assert np.isfinite(value.numpy())
    assert np.all(np.isfinite(tape.gradient(value, estimate).numpy()))
    with pytest.raises(ValueError, match="l1_weight"):
        UformerLoss(l1_weight=-1.0)
    custom = UformerLoss(frame_step=100, magnitude_weight=0.0)
    restored = keras.losses.deserialize(keras.losses.serialize(custom))
    assert isinstance(restored, UformerLoss)
    assert restored.get_config() == custom.get_config()
    assert restored.stft.frame_step == 100
