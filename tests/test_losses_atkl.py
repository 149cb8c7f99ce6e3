"""keras_dccrn.losses.atkl: attention energies, alignment, AT and KL against NumPy references."""

import keras
import numpy as np
import pytest
from loss_references import (
    feature_pair_lists,
    np_atkl_terms,
    np_centre_positions,
    np_channel_energy,
    np_half_pixel,
    np_kl,
    np_log_dist,
    np_resample,
    np_time_energy,
    to_np,
)

from keras_dccrn.losses import (
    ATKLLoss,
    attention_log_distribution,
    channel_attention,
    frame_time_positions,
    kl_divergence,
    linear_interpolate,
    proportional_positions,
    time_attention,
)


def test_attention_vectors_match_numpy(rng):
    x = rng.standard_normal((2, 5, 3, 8)).astype("float32")
    np.testing.assert_allclose(to_np(time_attention(x)), np_time_energy(x), rtol=1e-5)
    np.testing.assert_allclose(to_np(channel_attention(x)), np_channel_energy(x), rtol=1e-5)
    np.testing.assert_allclose(
        to_np(channel_attention(x, complex_channels=False)), np_channel_energy(x, False), rtol=1e-5
    )
    assert tuple(channel_attention(x).shape) == (2, 4)
    with pytest.raises(ValueError, match="even"):
        channel_attention(x[..., :7])


def test_interpolation_positions_and_values(rng):
    # half-pixel (align_corners=False): identity for equal lengths, cell centres otherwise
    np.testing.assert_allclose(to_np(proportional_positions(5, 5)), np.arange(5), atol=1e-6)
    np.testing.assert_allclose(to_np(proportional_positions(2, 6)), [1.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(to_np(proportional_positions(7, 3)), np_half_pixel(7, 3), atol=1e-6)
    # seconds: the student frame centre and the teacher frame centre coincide
    pos = to_np(frame_time_positions(20, (400, 100), (400, 160)))
    np.testing.assert_allclose(pos, np_centre_positions(20, (400, 100), (400, 160)), atol=1e-5)
    assert pos[7] == pytest.approx(4.0)  # both centred at sample 600
    np.testing.assert_allclose(
        to_np(frame_time_positions(6, (400, 100), (400, 100))), np.arange(6), atol=1e-6
    )
    # gather + lerp == np.interp (which clamps at the edges)
    vec = rng.standard_normal((3, 9)).astype("float32")
    positions = np.array([-1.0, 0.0, 0.25, 3.5, 7.99, 8.0, 11.0], "float32")
    np.testing.assert_allclose(
        to_np(linear_interpolate(vec, positions)), np_resample(vec, positions), atol=1e-6
    )


def test_distribution_and_kl_match_numpy(rng):
    e_t = rng.uniform(0.0, 5.0, (2, 9)) ** 3
    e_s = rng.uniform(0.0, 5.0, (2, 9)) ** 3
    log_p = to_np(attention_log_distribution(e_t.astype("float32"), temperature=2.0))
    np.testing.assert_allclose(log_p, np_log_dist(e_t, 2.0), atol=1e-5)
    # T = 2: the distribution is the share of sqrt(energy)
    share = np.sqrt(e_t / e_t.max(-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(np.exp(log_p), share / share.sum(-1, keepdims=True), rtol=1e-5)
    kl = to_np(
        kl_divergence(
            attention_log_distribution(e_t.astype("float32"), 3.0),
            attention_log_distribution(e_s.astype("float32"), 3.0),
        )
    )
    np.testing.assert_allclose(9.0 * kl, np_kl(e_s, e_t, 3.0), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("framed", [True, False])
def test_atkl_matches_numpy_with_mismatched_frames_and_channels(rng, framed):
    teacher, student = feature_pair_lists(rng)
    frames = dict(student_frame=(400, 100), teacher_frame=(400, 160)) if framed else {}
    loss = ATKLLoss(temperature=1.5, **frames)
    terms = {k: to_np(v) for k, v in loss.terms(teacher, student).items()}
    ref = np_atkl_terms(teacher, student, 1.5, *(((400, 100), (400, 160)) if framed else ()))
    for name in ("at_time", "at_channel", "kl_time", "kl_channel"):
        np.testing.assert_allclose(terms[name], ref[name], rtol=2e-4, atol=1e-6, err_msg=name)
        assert np.all(terms[name] > 0), name
    np.testing.assert_allclose(terms["total"], sum(ref.values()), rtol=2e-4)
    np.testing.assert_allclose(to_np(loss(teacher, student)), sum(ref.values()).mean(), rtol=2e-4)


def test_atkl_zero_for_aligned_features_and_positive_otherwise(rng):
    """Student maps whose energies are the aligned teacher energies give a zero loss."""
    batch, t_t, t_s, c_t, c_s = 2, 7, 11, 6, 4
    u = rng.uniform(0.1, 2.0, (batch, t_t))  # teacher energy profile over frames
    v = rng.uniform(0.1, 2.0, (batch, c_t))  # ... and over complex channels
    # teacher: |x|^2 = u[t] v[c] / (2 F) on both real and imaginary parts
    f_t, f_s = 8, 4
    amp_t = np.sqrt(u[:, :, None, None] * v[:, None, None, :] / (2 * f_t))
    teacher = np.broadcast_to(np.concatenate([amp_t, amp_t], -1), (batch, t_t, f_t, 2 * c_t))
    pos_t = np_centre_positions(t_s, (400, 100), (400, 160))
    u_s = np_resample(u, pos_t)
    v_s = np_resample(v, np_half_pixel(c_s, c_t))
    amp_s = np.sqrt(u_s[:, :, None, None] * v_s[:, None, None, :] / (2 * f_s)) * 3.7  # any scale
    student = np.broadcast_to(np.concatenate([amp_s, amp_s], -1), (batch, t_s, f_s, 2 * c_s))
    teacher, student = teacher.astype("float32"), student.astype("float32")
    loss = ATKLLoss(student_frame=(400, 100), teacher_frame=(400, 160))
    terms = {k: to_np(v) for k, v in loss.terms([teacher], [student]).items()}
    for name, value in terms.items():
        np.testing.assert_allclose(value, 0.0, atol=1e-5, err_msg=name)
    # perturb the student: every term becomes positive
    noisy = student * rng.uniform(0.2, 1.8, student.shape).astype("float32")
    terms = {k: to_np(v) for k, v in loss.terms([teacher], [noisy]).items()}
    for name, value in terms.items():
        assert np.all(value > 1e-4), (name, value)


def test_atkl_dims_weights_and_pair_weights(rng):
    teacher, student = feature_pair_lists(rng)
    full = {k: to_np(v) for k, v in ATKLLoss().terms(teacher, student).items()}
    time_only = {k: to_np(v) for k, v in ATKLLoss(attention_dims="time").terms(teacher, student).items()}
    assert np.all(time_only["at_channel"] == 0) and np.all(time_only["kl_channel"] == 0)
    np.testing.assert_allclose(time_only["at_time"], full["at_time"], rtol=1e-6)
    chan = {k: to_np(v) for k, v in ATKLLoss(attention_dims="channel").terms(teacher, student).items()}
    assert np.all(chan["at_time"] == 0) and np.all(chan["kl_time"] == 0)
    no_kl = {k: to_np(v) for k, v in ATKLLoss(kl_weight=0).terms(teacher, student).items()}
    assert np.all(no_kl["kl_time"] == 0) and np.all(no_kl["kl_channel"] == 0)
    w = dict(at_weight=2.0, kl_weight=0.5, time_weight=3.0, channel_weight=0.25)
    weighted = to_np(ATKLLoss(**w).terms(teacher, student)["total"])
    ref = 2.0 * (3.0 * full["at_time"] + 0.25 * full["at_channel"]) + 0.5 * (
        3.0 * full["kl_time"] + 0.25 * full["kl_channel"]
    )
    np.testing.assert_allclose(weighted, ref, rtol=1e-5)
    single = {k: to_np(v) for k, v in ATKLLoss().terms(teacher[1:], student[1:]).items()}
    paired = {k: to_np(v) for k, v in ATKLLoss(pair_weights=[0.0, 2.0]).terms(teacher, student).items()}
    for name in single:
        np.testing.assert_allclose(paired[name], 2.0 * single[name], rtol=1e-5)
    with pytest.raises(ValueError, match="pair_weights"):
        ATKLLoss(pair_weights=[1.0]).terms(teacher, student)
    with pytest.raises(ValueError, match="number of teacher and student"):
        ATKLLoss().terms(teacher, student[:1])


def test_atkl_scale_invariant_silent_safe_and_differentiable(rng):
    teacher, student = feature_pair_lists(rng)
    loss = ATKLLoss()
    base = to_np(loss.terms(teacher, student)["total"])
    scaled = to_np(loss.terms([1e3 * t for t in teacher], [1e-3 * s for s in student])["total"])
    np.testing.assert_allclose(scaled, base, rtol=1e-3)
    zeros_t = [np.zeros_like(t) for t in teacher]
    zeros_s = [np.zeros_like(s) for s in student]
    for t, s in ((zeros_t, zeros_s), (teacher, zeros_s), (zeros_t, student)):
        assert np.all(np.isfinite(to_np(loss.terms(t, s)["total"])))
    import tensorflow as tf

    for s_values in (student, zeros_s):
        variables = [tf.Variable(s) for s in s_values]
        with tf.GradientTape() as tape:
            total = keras.ops.sum(loss.terms(teacher, variables)["total"])
        grads = tape.gradient(total, variables)
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_atkl_validation_and_config():
    with pytest.raises(ValueError, match="attention_dims"):
        ATKLLoss(attention_dims="freq")
    with pytest.raises(ValueError, match="temperature"):
        ATKLLoss(temperature=0)
    with pytest.raises(ValueError, match="at_weight"):
        ATKLLoss(at_weight=-1)
    with pytest.raises(ValueError, match="student_frame"):
        ATKLLoss(student_frame=(400,))
    with pytest.raises(ValueError, match="pair_weights"):
        ATKLLoss(pair_weights=[1.0, -2.0])
    loss = ATKLLoss(
        attention_dims="time",
        temperature=3.0,
        pair_weights=[1, 2],
        student_frame=(400, 100),
        teacher_frame=(400, 160),
    )
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, ATKLLoss)
    assert restored.get_config() == loss.get_config()
