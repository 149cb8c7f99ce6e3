import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn import build_model
from keras_dccrn.streaming import StreamingDCCRN, _lstm_step


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
def tiny_stream(causal_tiny):
    stream = StreamingDCCRN(causal_tiny)
    return stream, tf.function(stream.__call__)


def _error_db(estimate, reference):
    return 10 * np.log10(np.sum((estimate - reference) ** 2) / np.sum(reference**2))


def test_non_causal_model_is_rejected():
    model = build_model("tiny")  # time_crop="dccrn": one frame of look-ahead per decoder layer
    with pytest.raises(ValueError, match="time_crop='causal'"):
        StreamingDCCRN(model)


def test_state_layout_and_delay(causal_tiny):
    stream = StreamingDCCRN(causal_tiny)
    assert stream.delay_samples == 300 and stream.hop == 100
    assert stream.input_size == 300 and stream.ola_size == 300
    assert stream.state_size == sum(int(np.prod(s)) for _, s in stream.state_layout())
    names = [n for n, _ in stream.state_layout()]
    assert names[:6] == [f"enc_conv_{i}" for i in range(6)]
    assert names[-6:] == [f"dec_conv_{i}" for i in range(6)]
    assert dict(stream.state_layout())["enc_conv_0"] == (1, 256, 2)
    buf, ola, state = stream.initial_state()
    assert buf.shape == (1, 300) and ola.shape == (1, 300) and state.shape == (1, stream.state_size)


def test_lstm_step_matches_numpy_and_keras():
    rng = np.random.default_rng(5)
    lstm = keras.layers.LSTM(6, return_sequences=True, return_state=True)
    lstm.build((None, 1, 4))
    for v in lstm.weights:
        v.assign(rng.standard_normal(v.shape).astype("float32") * 0.5)
    x = rng.standard_normal((3, 4)).astype("float32")
    h = rng.standard_normal((3, 6)).astype("float32")
    c = rng.standard_normal((3, 6)).astype("float32")
    h1, c1 = (np.asarray(t) for t in _lstm_step(lstm, x, h, c))
    # NumPy reference, gate order i, f, c, o
    k, rk, b = (np.asarray(w) for w in (lstm.cell.kernel, lstm.cell.recurrent_kernel, lstm.cell.bias))
    z = x @ k + h @ rk + b
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    i, f, g, o = sig(z[:, :6]), sig(z[:, 6:12]), np.tanh(z[:, 12:18]), sig(z[:, 18:])
    c_ref = f * c + i * g
    np.testing.assert_allclose(c1, c_ref, atol=1e-5)
    np.testing.assert_allclose(h1, o * np.tanh(c_ref), atol=1e-5)
    _, h_k, c_k = lstm(x[:, None, :], initial_state=[h, c])
    np.testing.assert_allclose(h1, np.asarray(h_k), atol=1e-5)
    np.testing.assert_allclose(c1, np.asarray(c_k), atol=1e-5)


@pytest.mark.parametrize("length", [1, 99, 100, 1234, 3001])
def test_keras_stream_matches_offline(causal_tiny, tiny_stream, length):
    stream, step = tiny_stream
    x = np.random.default_rng(length).standard_normal(length).astype("float32") * 0.1
    reference = np.asarray(causal_tiny(x[None]))[0]
    y = stream.stream(x, step)
    assert y.shape == (length,)
    np.testing.assert_allclose(y, reference, atol=1e-6)
    if length >= 100:
        assert _error_db(y, reference) < -40


@pytest.mark.parametrize("overrides", [dict(rnn_type="real", masking_mode="C"), dict(masking_mode="R")])
def test_other_bottlenecks_and_masks_stream(overrides):
    keras.utils.set_random_seed(1)
    model = build_model("tiny", time_crop="causal", **overrides)
    _randomise_norms(model, 1)
    stream = StreamingDCCRN(model)
    x = np.random.default_rng(7).standard_normal(2345).astype("float32") * 0.1
    reference = np.asarray(model(x[None]))[0]
    y = stream.stream(x, tf.function(stream.__call__))
    np.testing.assert_allclose(y, reference, atol=1e-6)
    assert _error_db(y, reference) < -40


def test_stream_is_causal_sample_by_sample(causal_tiny, tiny_stream):
    """Realigned stream output n depends on input samples <= n + lookahead_samples only."""
    stream, step = tiny_stream
    rng = np.random.default_rng(3)
    a = rng.standard_normal(2000).astype("float32") * 0.1
    b = a.copy()
    b[1500:] = rng.standard_normal(500) * 0.1
    ya, yb = stream.stream(a, step), stream.stream(b, step)
    limit = 1500 - causal_tiny.lookahead_samples
    np.testing.assert_allclose(ya[:limit], yb[:limit], atol=1e-7)
    assert np.abs(ya[limit:] - yb[limit:]).max() > 0


def test_split_states_step_matches_packed_call(causal_tiny, tiny_stream):
    stream, packed_step = tiny_stream
    step = tf.function(stream.step)
    rng = np.random.default_rng(11)
    buf, ola, state = stream.initial_state()
    states = stream.initial_states()
    assert set(states) == {n for n, _ in stream.state_layout()}
    np.testing.assert_array_equal(stream.pack(states), state)
    for _ in range(5):
        audio = (rng.standard_normal((1, 100)) * 0.1).astype("float32")
        packed = {k: v.numpy() for k, v in packed_step(audio, buf, ola, state).items()}
        split = {k: v.numpy() for k, v in step(audio, buf, ola, states).items()}
        for key in ("enhanced", "next_input_buffer", "next_ola_buffer"):
            np.testing.assert_allclose(split[key], packed[key], atol=1e-6)
        states = {n: split[f"next_{n}"] for n in states}
        for name, shape in stream.state_layout():
            assert states[name].shape == (1, *shape)
        np.testing.assert_allclose(stream.pack(states), packed["next_state"], atol=1e-6)
        unpacked = stream.unpack(packed["next_state"])
        for name in states:
            np.testing.assert_allclose(unpacked[name], states[name], atol=1e-6)
        buf, ola, state = packed["next_input_buffer"], packed["next_ola_buffer"], packed["next_state"]
    with pytest.raises(ValueError, match="lacks"):
        stream.step(audio, buf, ola, {})
