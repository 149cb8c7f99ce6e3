"""keras_dccrn.losses.si_snr: SI-SNR (against the NumPy reference), its loss and metric, balanced SI-SNR."""

import keras
import numpy as np
import pytest
from loss_references import to_np

from keras_dccrn import metrics
from keras_dccrn.losses import BalancedSISNRLoss, SISNRLoss, balanced_si_snr_terms, si_snr, si_snr_metric


def numpy_si_snr(reference, estimate):
    """Per-row :func:`keras_dccrn.metrics.si_snr` (the float64 NumPy reference), ``[batch]``."""
    return np.array([metrics.si_snr(r, e) for r, e in zip(reference, estimate, strict=True)])


def test_keras_and_numpy_si_snr_agree_to_1e_4_db(rng):
    reference = rng.standard_normal((4, 4000)).astype("float32") * np.array(
        [[0.5], [0.1], [0.02], [1.0]], "float32"
    )
    reference = (reference - reference.mean(-1, keepdims=True)).astype("float32")
    noise = rng.standard_normal(reference.shape)
    noise -= noise.mean(-1, keepdims=True)  # zero-mean and orthogonal to the reference: SI-SNR = SNR
    r = reference.astype(np.float64)
    noise -= np.sum(noise * r, -1, keepdims=True) / np.sum(r * r, -1, keepdims=True) * r
    for snr in (-10.0, 0.0, 7.5, 25.0):
        gain = np.sqrt(
            np.sum(reference**2, -1, keepdims=True) / np.sum(noise**2, -1, keepdims=True) / 10 ** (snr / 10)
        )
        estimate = (0.7 * (reference + gain * noise) + 0.3).astype("float32")  # scale and offset do not count
        expected = numpy_si_snr(reference, estimate)
        np.testing.assert_allclose(to_np(si_snr(reference, estimate)), expected, rtol=0, atol=1e-4)
        np.testing.assert_allclose(expected, snr, atol=1e-3)


def test_the_argument_order_is_reference_then_estimate():
    # SI-SNR depends only on the angle between the zero-mean signals, except where the floor matters:
    # a very quiet estimate (energy below epsilon) of a normal reference. Swapping the arguments then
    # changes the value by 17 dB (and NumPy refuses the quiet signal as a reference).
    t = np.arange(4000) / 16000.0
    reference = 0.3 * np.sin(2 * np.pi * 220 * t)
    estimate = 3e-7 * (np.sin(2 * np.pi * 220 * t) + 0.4 * np.sin(2 * np.pi * 1330 * t))
    ref, est = reference - reference.mean(), estimate - estimate.mean()
    target = est @ ref / (ref @ ref + 1e-8) * ref
    noise = est - target
    expected = 10 * np.log10(target @ target / (noise @ noise + 1e-8) + 1e-8)  # the documented formula
    assert metrics.si_snr(reference, estimate) == pytest.approx(expected, abs=1e-9)
    with pytest.warns(metrics.MetricWarning, match="silent"):
        assert np.isnan(metrics.si_snr(estimate, reference))
    y_true, y_pred = reference[None].astype("float32"), estimate[None].astype("float32")
    assert float(to_np(si_snr(y_true, y_pred))[0]) == pytest.approx(expected, abs=1e-3)
    assert abs(float(to_np(si_snr(y_pred, y_true))[0]) - expected) > 10.0
    # Loss and metric read (y_true, y_pred) = (reference, estimate).
    assert float(to_np(si_snr_metric(y_true, y_pred))[0]) == pytest.approx(expected, abs=1e-3)
    assert float(to_np(SISNRLoss()(y_true, y_pred))) == pytest.approx(-expected, abs=1e-3)


def test_silent_and_identical_signals_stay_finite():
    x = np.sin(np.arange(2000) / 7.0).astype("float32")[None]
    zeros = np.zeros_like(x)
    assert to_np(si_snr(x, zeros))[0] == pytest.approx(-80.0, abs=1e-3)  # silent estimate: the floor
    assert metrics.si_snr(x[0], zeros[0]) == pytest.approx(-80.0, abs=1e-9)
    assert to_np(si_snr(zeros, x))[0] == pytest.approx(-80.0, abs=1e-3)
    identical = 10 * np.log10(np.sum((x - x.mean()) ** 2) / 1e-8)
    assert to_np(si_snr(x, x))[0] > 60.0 and metrics.si_snr(x[0], x[0]) == pytest.approx(identical, abs=1e-3)


def test_sisnr_loss_is_the_negative_mean_and_serialises(rng):
    reference = rng.standard_normal((3, 500)).astype("float32")
    estimate = (reference + rng.standard_normal(reference.shape)).astype("float32")
    loss = SISNRLoss(epsilon=1e-6)
    np.testing.assert_allclose(
        to_np(loss(reference, estimate)), -to_np(si_snr(reference, estimate, 1e-6)).mean(), rtol=1e-6
    )
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SISNRLoss) and restored.epsilon == 1e-6
    assert keras.metrics.deserialize(keras.metrics.serialize(si_snr_metric)) is si_snr_metric
    with pytest.raises(ValueError, match="epsilon.*-1"):
        SISNRLoss(epsilon=-1)


def test_balanced_si_snr_matches_numpy(rng):
    clean = rng.standard_normal((3, 800)).astype("float32")
    teacher = (clean + 0.3 * rng.standard_normal(clean.shape)).astype("float32")
    student = (clean + 0.5 * rng.standard_normal(clean.shape)).astype("float32")
    alpha = 0.3
    ref_clean, ref_teacher = numpy_si_snr(clean, student), numpy_si_snr(teacher, student)
    ref = -alpha * ref_clean - (1 - alpha) * ref_teacher
    loss, db_c, db_t = balanced_si_snr_terms(clean, teacher, student, alpha)
    np.testing.assert_allclose(to_np(loss), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_np(db_c), ref_clean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_np(db_t), ref_teacher, rtol=1e-4, atol=1e-4)
    # Keras loss: pair or stacked y_true, mean over the batch
    fn = BalancedSISNRLoss(alpha=alpha)
    np.testing.assert_allclose(to_np(fn((clean, teacher), student)), ref.mean(), rtol=1e-4)
    np.testing.assert_allclose(to_np(fn(np.stack([clean, teacher], 1), student)), ref.mean(), rtol=1e-4)
    # alpha = 1 is plain SI-SNR training
    np.testing.assert_allclose(
        to_np(BalancedSISNRLoss(alpha=1.0)((clean, teacher), student)),
        to_np(SISNRLoss()(clean, student)),
        rtol=1e-6,
    )


def test_balanced_si_snr_validation_silence_and_config():
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="alpha"):
            BalancedSISNRLoss(alpha=bad)
    with pytest.raises(ValueError, match="pair"):
        BalancedSISNRLoss()(np.zeros((2, 3, 10), "float32"), np.zeros((2, 10), "float32"))
    zeros = np.zeros((2, 400), "float32")
    assert np.isfinite(to_np(BalancedSISNRLoss()((zeros, zeros), zeros)))
    fn = BalancedSISNRLoss(alpha=0.25, name="b")
    restored = keras.losses.deserialize(keras.losses.serialize(fn))
    assert isinstance(restored, BalancedSISNRLoss) and restored.alpha == 0.25
