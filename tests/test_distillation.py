import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn import build_model
from keras_dccrn.distillation import FEATURE_TERMS, KD_MODES, TERMS, Distiller

TEACHER_ARGS = dict(frame_step=160, channels=[6, 12, 12, 12, 12, 12])
SHORT = 800  # samples for the eager tests (50 ms)


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def synthetic_pairs(count=8, length=4000, seed=0):
    """Noisy amplitude-modulated sines and their clean versions (float32)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 16000
    clean = np.stack(
        [
            0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))
            for f in rng.uniform(200, 800, count)
        ]
    )
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    return noisy.astype("float32"), clean.astype("float32")


def dataset(noisy, clean, batch=4):
    return tf.data.Dataset.from_tensor_slices((noisy, clean)).batch(batch)


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    teacher = build_model("tiny", **TEACHER_ARGS)
    student = build_model("tiny")
    return teacher, student


@pytest.fixture(scope="module")
def peer():
    """A teacher with the student's framing (identical features are aligned)."""
    keras.utils.set_random_seed(5)
    return build_model("tiny")


@pytest.fixture(scope="module")
def data():
    return synthetic_pairs()


def test_validation(models):
    teacher, student = models
    with pytest.raises(ValueError, match="kd_mode"):
        Distiller(teacher, student, kd_mode="feature")
    with pytest.raises(ValueError, match="attention_dims"):
        Distiller(teacher, student, attention_dims="freq")
    with pytest.raises(ValueError, match="alpha"):
        Distiller(teacher, student, alpha=1.2)
    with pytest.raises(ValueError, match="teacher"):
        Distiller(None, student, kd_mode="at_kl")
    with pytest.raises(ValueError, match="temperature"):
        Distiller(teacher, student, temperature=-1.0)
    with pytest.raises(ValueError, match="different"):
        Distiller(student, student)
    assert Distiller(None, student, kd_mode="none").teacher is None


def test_frames_are_read_from_the_models(models):
    teacher, student = models
    distiller = Distiller(teacher, student)
    assert distiller.at_kl.student_frame == [400, 100]
    assert distiller.at_kl.teacher_frame == [400, 160]
    assert not teacher.trainable and all(not v.trainable for v in teacher.weights)
    student_ids = {id(v) for v in student.trainable_variables}
    assert {id(v) for v in distiller.trainable_variables} == student_ids


def test_every_term_and_ablation_modes(models, data):
    teacher, student = models
    noisy, clean = data[0][:2, :SHORT], data[1][:2, :SHORT]
    nonzero = {
        "none": {"loss", "si_snr_clean"},
        "output": {"loss", "si_snr_clean", "si_snr_teacher"},
        "at": {"loss", "si_snr_clean", "si_snr_teacher", "at_time", "at_channel"},
        "kl": {"loss", "si_snr_clean", "si_snr_teacher", "kl_time", "kl_channel"},
        "at_kl": set(TERMS) - {"spectral"},  # the spectral term is off by default
    }
    assert set(nonzero) == set(KD_MODES)
    results = {}
    for mode in KD_MODES:
        terms = Distiller(teacher, student, kd_mode=mode).compute_terms(noisy, clean)
        assert set(terms) == set(TERMS)
        terms = {k: to_np(v) for k, v in terms.items()}
        results[mode] = terms
        for name, value in terms.items():
            assert value.shape == (2,) and np.all(np.isfinite(value)), (mode, name)
            assert np.any(value != 0) == (name in nonzero[mode]), (mode, name, value)
    # the total is the documented combination of the terms (alpha = 0.5, unit weights)
    full = results["at_kl"]
    expected = (
        -0.5 * full["si_snr_clean"] - 0.5 * full["si_snr_teacher"] + sum(full[k] for k in FEATURE_TERMS)
    )
    np.testing.assert_allclose(full["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(results["none"]["loss"], -full["si_snr_clean"], rtol=1e-5)
    np.testing.assert_allclose(results["at"]["at_time"], full["at_time"], rtol=1e-5)
    for dims, zero in (("time", ("at_channel", "kl_channel")), ("channel", ("at_time", "kl_time"))):
        terms = Distiller(teacher, student, attention_dims=dims).compute_terms(noisy, clean)
        for name in FEATURE_TERMS:
            assert np.any(to_np(terms[name]) != 0) == (name not in zero), (dims, name)


def test_feature_loss_zero_for_equal_features_positive_otherwise(models, peer, data):
    distiller = Distiller(peer, models[1])
    noisy, clean = data[0][:2, :SHORT], data[1][:2, :SHORT]
    t_wave, t_feats = distiller.teacher_outputs(noisy)
    s_wave, s_feats = distiller.student_outputs(noisy, training=False)
    same = distiller.loss_terms(clean, s_wave, t_feats, t_wave, t_feats)
    other = distiller.loss_terms(clean, s_wave, s_feats, t_wave, t_feats)
    for name in FEATURE_TERMS:
        np.testing.assert_allclose(to_np(same[name]), 0.0, atol=1e-5)
        assert np.all(to_np(other[name]) > 1e-4), name


def test_gradients_reach_every_student_weight_and_no_teacher_weight(models, data):
    teacher, student = models
    distiller = Distiller(teacher, student)
    noisy, clean = data[0][:2, :SHORT], data[1][:2, :SHORT]
    variables = student.trainable_variables + teacher.weights
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(distiller.compute_terms(noisy, clean, training=True)["loss"])
    grads = tape.gradient(loss, variables)
    n = len(student.trainable_variables)
    for var, grad in zip(variables[:n], grads[:n], strict=True):
        assert grad is not None, var.path
        grad = to_np(tf.convert_to_tensor(grad))
        assert np.all(np.isfinite(grad)) and np.any(grad != 0), var.path
    assert all(g is None for g in grads[n:])


@pytest.mark.slow
def test_fit_distils_freezes_teacher_and_saves(models, data, tmp_path):
    teacher, student = models
    distiller = Distiller(teacher, student)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [to_np(w).copy() for w in teacher.weights]
    history = distiller.fit(dataset(*data), epochs=4, verbose=0).history
    assert set(history) == set(TERMS)
    losses = history["loss"]
    assert losses[-1] < losses[0] - 1.0, losses
    for old, new in zip(before, teacher.weights, strict=True):
        np.testing.assert_array_equal(old, to_np(new))
    distiller.reset_metrics()
    logs = distiller.test_step((data[0][:2, :SHORT], data[1][:2, :SHORT]))  # eager: no second trace
    assert set(logs) == set(TERMS) and all(np.isfinite(to_np(v)) for v in logs.values())

    path = tmp_path / "distiller.keras"
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Distiller)
    assert json.loads(json.dumps(loaded.get_config())) == json.loads(json.dumps(distiller.get_config()))
    noisy = data[0][:2]
    np.testing.assert_array_equal(to_np(loaded(noisy)), to_np(distiller(noisy)))
    np.testing.assert_array_equal(to_np(loaded.teacher(noisy)), to_np(teacher(noisy)))
    assert all(not v.trainable for v in loaded.teacher.weights)
    assert len(loaded.trainable_variables) == len(student.trainable_variables)
    assert len(loaded.optimizer.variables) == len(distiller.optimizer.variables)


@pytest.mark.slow
def test_one_step_under_mirrored_strategy(data):
    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        keras.utils.set_random_seed(1)
        distiller = Distiller(build_model("tiny", **TEACHER_ARGS), build_model("tiny"))
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    weights = [to_np(w).copy() for w in distiller.student.trainable_variables]
    noisy, clean = data[0][:4, :SHORT], data[1][:4, :SHORT]
    logs = distiller.fit(dataset(noisy, clean), epochs=1, verbose=0).history
    assert set(logs) == set(TERMS) and all(np.isfinite(v[0]) for v in logs.values())
    changed = [
        np.any(old != to_np(new))
        for old, new in zip(weights, distiller.student.trainable_variables, strict=True)
    ]
    assert all(changed)


def test_mixed_float16_step_uses_loss_scaling(data):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(2)
        distiller = Distiller(build_model("tiny", **TEACHER_ARGS), build_model("tiny"))
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
        noisy, clean = data[0][:2, :SHORT], data[1][:2, :SHORT]
        logs = distiller.fit(dataset(noisy, clean, batch=2), epochs=1, verbose=0).history
    finally:
        keras.config.set_dtype_policy("float32")
    assert isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    assert distiller.student.compute_dtype == "float16"
    assert set(logs) == set(TERMS) and all(np.isfinite(v[0]) for v in logs.values())


def test_bfloat16_needs_no_loss_scaling():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        distiller = Distiller(
            build_model("tiny", build=False, **TEACHER_ARGS), build_model("tiny", build=False)
        )
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    finally:
        keras.config.set_dtype_policy("float32")
    assert not isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.slow
def test_train_step_adds_the_students_regularisation_losses():
    rng = np.random.default_rng(0)
    clean = (0.1 * rng.standard_normal((2, 1600))).astype("float32")
    noisy = clean + (0.05 * rng.standard_normal((2, 1600))).astype("float32")
    after = []
    for l2 in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        teacher, student = build_model("tiny"), build_model("tiny")
        weight = student.trainable_weights[0]
        before = keras.ops.convert_to_numpy(weight).copy()
        if l2:
            weight.regularizer = keras.regularizers.L2(l2)
            assert len(student.losses) == 1
        distiller = Distiller(teacher, student, kd_mode="output")
        distiller.compile(optimizer=keras.optimizers.SGD(1e-3))
        distiller.train_on_batch(noisy, clean)
        after.append(keras.ops.convert_to_numpy(weight))
    # SGD: the L2 term adds lr * 2 * l2 * w to the step of that weight, nothing else changes.
    np.testing.assert_allclose(after[0] - after[1], 1e-3 * 2.0 * before, rtol=1e-3, atol=1e-8)


@pytest.mark.slow
def test_spectral_weight_adds_the_compressed_spectral_distance_in_every_mode():
    from keras_dccrn.losses import SISNRSpectralLoss

    keras.utils.set_random_seed(0)
    teacher, student = build_model("tiny"), build_model("tiny")
    rng = np.random.default_rng(1)
    clean = (0.1 * rng.standard_normal((2, 1600))).astype("float32")
    noisy = clean + (0.05 * rng.standard_normal((2, 1600))).astype("float32")
    reference = SISNRSpectralLoss(spectral_weight=10.0)
    for mode in ("none", "output", "at_kl"):
        plain = Distiller(teacher, student, kd_mode=mode).compute_terms(noisy, clean)
        with_spectral = Distiller(teacher, student, kd_mode=mode, spectral_weight=10.0).compute_terms(
            noisy, clean
        )
        assert np.all(np.asarray(plain["spectral"]) == 0)
        np.testing.assert_allclose(
            np.asarray(with_spectral["loss"]) - np.asarray(plain["loss"]),
            10.0 * np.asarray(with_spectral["spectral"]),
            rtol=1e-5,
        )
    # kd_mode "none" + spectral is exactly dccrn-train's --loss=si_snr_spectral.
    alone = Distiller(None, student, kd_mode="none", spectral_weight=10.0).compute_terms(noisy, clean)
    enhanced = student(noisy, training=False)
    np.testing.assert_allclose(
        np.asarray(alone["loss"]),
        np.asarray(reference.call(clean, enhanced)),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="spectral_weight"):
        Distiller(teacher, student, spectral_weight=-1.0)
