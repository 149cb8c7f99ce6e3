import keras
import numpy as np
import pytest

from keras_dccrn.losses import (
    ATKLLoss,
    BalancedSISNRLoss,
    SISNRLoss,
    UformerLoss,
    attention_log_distribution,
    balanced_si_snr_terms,
    channel_attention,
    frame_time_positions,
    kl_divergence,
    linear_interpolate,
    proportional_positions,
    time_attention,
)

EPS = 1e-8


def to_np(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------- references


def np_si_snr(est, ref, eps=EPS):
    est = est - est.mean(-1, keepdims=True)
    ref = ref - ref.mean(-1, keepdims=True)
    target = (est * ref).sum(-1, keepdims=True) / ((ref * ref).sum(-1, keepdims=True) + eps) * ref
    noise = est - target
    return 10 * np.log10((target**2).sum(-1) / ((noise**2).sum(-1) + eps) + eps)


def np_time_energy(x):
    return (x.astype(np.float64) ** 2).sum(axis=(2, 3))


def np_channel_energy(x, complex_channels=True):
    e = (x.astype(np.float64) ** 2).sum(axis=(1, 2))
    if complex_channels:
        half = e.shape[1] // 2
        e = e[:, :half] + e[:, half:]
    return e


def np_resample(vec, positions):
    """np.interp clamps outside [0, N - 1], like the implementation."""
    grid = np.arange(vec.shape[1])
    return np.stack([np.interp(positions, grid, row) for row in vec])


def np_centre_positions(n_student, student_frame, teacher_frame):
    """Teacher frame index (fractional) at the centre time of each student frame."""
    (win_s, hop_s), (win_t, hop_t) = student_frame, teacher_frame
    centres_s = (np.arange(n_student) + 1) * hop_s - win_s / 2  # samples
    # teacher frame j is centred at (j + 1) * hop_t - win_t / 2: invert for j
    return (centres_s + win_t / 2) / hop_t - 1


def np_half_pixel(n_out, n_in):
    return (np.arange(n_out) + 0.5) * n_in / n_out - 0.5


def np_at(e_s, e_t):
    def unit(a):
        a = a / a.max(-1, keepdims=True)
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    return ((unit(e_s) - unit(e_t)) ** 2).sum(-1)


def np_log_dist(e, temperature, floor=1e-8):
    z = np.log(e / e.max(-1, keepdims=True) + floor) / temperature
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_kl(e_s, e_t, temperature):
    lt, ls = np_log_dist(e_t, temperature), np_log_dist(e_s, temperature)
    return temperature**2 * (np.exp(lt) * (lt - ls)).sum(-1)


def np_atkl_terms(teacher, student, temperature, student_frame=None, teacher_frame=None):
    out = dict(at_time=0.0, at_channel=0.0, kl_time=0.0, kl_channel=0.0)
    for t, s in zip(teacher, student, strict=True):
        et, es = np_time_energy(t), np_time_energy(s)
        if student_frame is not None:
            pos = np_centre_positions(es.shape[1], student_frame, teacher_frame)
        else:
            pos = np_half_pixel(es.shape[1], et.shape[1])
        et = np_resample(et, pos)
        out["at_time"] = out["at_time"] + np_at(es, et)
        out["kl_time"] = out["kl_time"] + np_kl(es, et, temperature)
        ct, cs = np_channel_energy(t), np_channel_energy(s)
        ct = np_resample(ct, np_half_pixel(cs.shape[1], ct.shape[1]))
        out["at_channel"] = out["at_channel"] + np_at(cs, ct)
        out["kl_channel"] = out["kl_channel"] + np_kl(cs, ct, temperature)
    return out


def np_stft(x, win=400, hop=160, nfft=512):
    left = win - hop
    length = x.shape[-1]
    frames = int(np.ceil((length + 2 * left - win) / hop)) + 1
    right = (frames - 1) * hop + win - length - left
    padded = np.pad(x, [(0, 0), (left, right)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    idx = np.arange(frames)[:, None] * hop + np.arange(win)[None, :]
    return np.fft.rfft(padded[:, idx] * window, n=nfft)  # [B, T, bins] complex


def feature_pair_lists(rng, batch=2):
    """Teacher maps (7 frames, 6 complex channels) and student maps (11 frames, 4)."""
    teacher = [rng.standard_normal((batch, 7, f, 12)).astype("float32") for f in (16, 8)]
    student = [rng.standard_normal((batch, 11, f, 8)).astype("float32") for f in (8, 4)]
    return teacher, student


# --------------------------------------------------------------- SI-SNR


def test_balanced_si_snr_matches_numpy(rng):
    clean = rng.standard_normal((3, 800)).astype("float32")
    teacher = (clean + 0.3 * rng.standard_normal(clean.shape)).astype("float32")
    student = (clean + 0.5 * rng.standard_normal(clean.shape)).astype("float32")
    alpha = 0.3
    ref_clean, ref_teacher = np_si_snr(student, clean), np_si_snr(student, teacher)
    ref = -alpha * ref_clean - (1 - alpha) * ref_teacher
    loss, db_c, db_t = balanced_si_snr_terms(student, clean, teacher, alpha)
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


# --------------------------------------------------------------- attention vectors


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


# --------------------------------------------------------------- AT-KL


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


# --------------------------------------------------------------- Uformer loss


def test_uformer_loss_matches_numpy(rng):
    ref = (0.3 * rng.standard_normal((2, 1000))).astype("float32")
    est = (ref + 0.1 * rng.standard_normal(ref.shape)).astype("float32")
    weights = dict(si_snr_weight=0.5, l1_weight=2.0, complex_weight=0.1, magnitude_weight=0.3)
    loss = UformerLoss(**weights)
    terms = {k: to_np(v) for k, v in loss.terms(ref, est).items()}
    s_est, s_ref = np_stft(est.astype(np.float64)), np_stft(ref.astype(np.float64))
    expected = dict(
        si_snr=-np_si_snr(est, ref),
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
