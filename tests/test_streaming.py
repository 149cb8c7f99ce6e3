import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn import build_model
from keras_dccrn.streaming import check_streamable, delay_samples, stream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _randomise_norms(model, seed):
    """Non-trivial BN statistics so the inference-form BN is really exercised."""
    rng = np.random.default_rng(seed)
    for v in model.non_trainable_variables:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype("float32"))
        elif "moving_mean" in v.path:
            v.assign(rng.uniform(-0.1, 0.1, v.shape).astype("float32"))


@pytest.fixture(scope="module")
def causal_tiny():
    keras.utils.set_random_seed(0)
    model = build_model("tiny", time_crop="causal")
    _randomise_norms(model, 0)
    return model


@pytest.fixture(scope="module")
def tiny_step(causal_tiny):
    return tf.function(causal_tiny.step)


def _error_db(estimate, reference):
    return 10 * np.log10(np.sum((estimate - reference) ** 2) / np.sum(reference**2))


def test_non_causal_model_is_rejected():
    model = build_model("tiny")  # time_crop="dccrn": one frame of look-ahead per decoder layer
    assert not model.supports_streaming
    with pytest.raises(ValueError, match="time_crop='causal'"):
        check_streamable(model)
    with pytest.raises(ValueError, match="time_crop='causal'"):
        model.initial_states()


def test_causal_uformer_is_refused_in_one_line(uformer_tiny):
    model = uformer_tiny
    assert model.causal and not model.supports_streaming
    for call in (lambda: check_streamable(model), lambda: stream(model, np.zeros(320, "float32"))):
        with pytest.raises(
            ValueError, match="uformer_tiny: cannot stream: a Uformer has no streaming step"
        ) as e:
            call()
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="not a keras-dccrn masking model"):
        check_streamable(keras.Sequential([keras.layers.Dense(1)]))


def test_states_and_delay(causal_tiny):
    assert causal_tiny.supports_streaming
    assert delay_samples(causal_tiny) == 300
    states = causal_tiny.initial_states(1)
    names = list(states)
    assert names[:8] == ["input_buffer", "ola_buffer"] + [f"enc_conv_{i}" for i in range(6)]
    assert names[8:10] == ["clstm_0", "clstm_1"] and names[-6:] == [f"dec_conv_{i}" for i in range(6)]
    assert states["input_buffer"].shape == (1, 300) and states["ola_buffer"].shape == (1, 300)
    assert states["enc_conv_0"].shape == (1, 1, 256, 2) and states["clstm_0"].shape == (1, 4, 2, 8)
    assert all(np.all(np.asarray(v) == 0) for v in states.values())
    assert causal_tiny.initial_states(3)["dec_conv_5"].shape[0] == 3


@pytest.mark.parametrize("length", [1, 99, 100, 1234, 3001])
def test_keras_stream_matches_offline(causal_tiny, tiny_step, length):
    x = np.random.default_rng(length).standard_normal(length).astype("float32") * 0.1
    reference = np.asarray(causal_tiny(x[None]))[0]
    y = stream(causal_tiny, x, tiny_step)
    assert y.shape == (length,)
    np.testing.assert_allclose(y, reference, atol=1e-6)
    if length >= 100:
        assert _error_db(y, reference) < -40


@pytest.mark.parametrize("overrides", [dict(rnn_type="real", masking_mode="C"), dict(masking_mode="R")])
def test_other_bottlenecks_and_masks_stream(overrides):
    keras.utils.set_random_seed(1)
    model = build_model("tiny", time_crop="causal", **overrides)
    _randomise_norms(model, 1)
    x = np.random.default_rng(7).standard_normal(2345).astype("float32") * 0.1
    reference = np.asarray(model(x[None]))[0]
    y = stream(model, x, tf.function(model.step))
    np.testing.assert_allclose(y, reference, atol=1e-6)
    assert _error_db(y, reference) < -40


def test_stream_is_causal_sample_by_sample(causal_tiny, tiny_step):
    """Realigned stream output n depends on input samples <= n + lookahead_samples only."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(2000).astype("float32") * 0.1
    b = a.copy()
    b[1500:] = rng.standard_normal(500) * 0.1
    ya, yb = stream(causal_tiny, a, tiny_step), stream(causal_tiny, b, tiny_step)
    limit = 1500 - causal_tiny.lookahead_samples
    np.testing.assert_allclose(ya[:limit], yb[:limit], atol=1e-7)
    assert np.abs(ya[limit:] - yb[limit:]).max() > 0


def test_steps_of_several_hops_match_hop_by_hop(causal_tiny, tiny_step):
    rng = np.random.default_rng(11)
    audio = (rng.standard_normal((1, 1200)) * 0.1).astype("float32")
    states = causal_tiny.initial_states(1)
    hop_by_hop = []
    for k in range(12):
        y, states = tiny_step(audio[:, k * 100 : (k + 1) * 100], states)
        hop_by_hop.append(np.asarray(y))
    chunked_states = causal_tiny.initial_states(1)
    chunked = []
    for start, stop in ((0, 300), (300, 400), (400, 800), (800, 1200)):
        y, chunked_states = causal_tiny.step(audio[:, start:stop], chunked_states)
        chunked.append(np.asarray(y))
    np.testing.assert_allclose(np.concatenate(chunked, 1), np.concatenate(hop_by_hop, 1), atol=1e-6)
    for name, value in states.items():
        assert chunked_states[name].shape == value.shape
        # states reach |3|: float32 rounding of matmuls blocked differently by the CPU's kernels is ~1e-6
        np.testing.assert_allclose(np.asarray(chunked_states[name]), np.asarray(value), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="lacks"):
        causal_tiny.step(audio[:, :100], {})


def _shipped_keras_model(name):
    """The shipped folder's ``.keras`` model (float32) and its SavedModel's ``serving_default``."""
    from keras_dccrn.runtime import load_keras_model

    folder = os.path.join(ROOT, "saved_models", name)
    model = load_keras_model(os.path.join(folder, f"{name}.keras"))
    return model, tf.saved_model.load(os.path.join(folder, "1")).signatures["serving_default"]


def test_shipped_student_streams_as_its_savedmodel_enhances():
    model, serving = _shipped_keras_model("distil_dccrn")
    x = (np.random.default_rng(0).standard_normal(8000) * 0.1).astype("float32")
    shipped = serving(noisy=tf.constant(x[None]))["enhanced"].numpy()[0]
    offline = np.asarray(model(x[None]))[0]
    np.testing.assert_allclose(offline, shipped, atol=1e-5)  # the code reproduces the shipped model
    y = stream(model, x, tf.function(model.step))
    np.testing.assert_allclose(y, offline, atol=1e-5)
    assert _error_db(y, offline) < -40
