import keras
import numpy as np
import pytest

from keras_dccrn.layers.complex_lstm import ComplexLSTM, lstm_initial_state, lstm_step
from keras_dccrn.testing import run_layer_test


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_lstm(x, kernel, recurrent, bias):
    b, t, _ = x.shape
    u = recurrent.shape[0]
    h = np.zeros((b, u))
    c = np.zeros((b, u))
    out = []
    for step in range(t):
        z = x[:, step] @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=-1)  # Keras gate order i, f, c, o
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, 1)


def lstm_weights(lstm):
    return [keras.ops.convert_to_numpy(w) for w in lstm.weights]


@pytest.mark.parametrize("projection_dim", [None, 5])
def test_complex_product_rule_matches_numpy(rng, projection_dim):
    x = rng.standard_normal((2, 6, 8)).astype("float32")
    layer = ComplexLSTM(3, projection_dim=projection_dim)
    y = keras.ops.convert_to_numpy(layer(x))
    xr, xi = x[..., :4], x[..., 4:]
    wr, wi = lstm_weights(layer.real_lstm), lstm_weights(layer.imag_lstm)
    real = numpy_lstm(xr, *wr) - numpy_lstm(xi, *wi)
    imag = numpy_lstm(xi, *wr) + numpy_lstm(xr, *wi)
    if projection_dim:
        kr, br = (keras.ops.convert_to_numpy(w) for w in layer.real_dense.weights)
        ki, bi = (keras.ops.convert_to_numpy(w) for w in layer.imag_dense.weights)
        real, imag = real @ kr + br, imag @ ki + bi
    width = projection_dim or 3
    assert y.shape == (2, 6, 2 * width)
    np.testing.assert_allclose(y[..., :width], real, atol=1e-5)
    np.testing.assert_allclose(y[..., width:], imag, atol=1e-5)


@pytest.mark.parametrize("sizes", [[1], [2, 1, 4]])
def test_step_on_chunks_equals_full_sequence(rng, sizes):
    x = rng.standard_normal((2, 7, 8)).astype("float32")
    layer = ComplexLSTM(4, projection_dim=6)
    full = keras.ops.convert_to_numpy(layer(x))
    state = layer.initial_state(2)
    assert state.shape == (2, 4, 2, 4)
    steps, start, k = [], 0, 0
    while start < 7:
        stop = min(7, start + sizes[k % len(sizes)])
        y, state = layer.step(x[:, start:stop], state)
        steps.append(keras.ops.convert_to_numpy(y))
        start, k = stop, k + 1
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)
    # the state's (h, c) rows are the four real LSTM runs' final states
    xr, xi = x[..., :4], x[..., 4:]
    final_h = [numpy_lstm(part, *lstm_weights(lstm))[:, -1] for lstm in (layer.real_lstm, layer.imag_lstm)
               for part in (xr, xi)]  # fmt: skip
    np.testing.assert_allclose(keras.ops.convert_to_numpy(state)[:, :, 0], np.stack(final_h, 1), atol=1e-5)
    with pytest.raises(ValueError, match=r"\[batch, 4, 2, 4\]"):
        layer.step(x[:, :1], np.zeros((2, 4, 4), "float32"))


def test_lstm_step_matches_numpy_and_keras(rng):
    lstm = keras.layers.LSTM(6, return_sequences=True, return_state=True)
    lstm.build((None, 1, 4))
    for v in lstm.weights:
        v.assign(rng.standard_normal(v.shape).astype("float32") * 0.5)
    x = rng.standard_normal((3, 1, 4)).astype("float32")
    h = rng.standard_normal((3, 6)).astype("float32")
    c = rng.standard_normal((3, 6)).astype("float32")
    assert lstm_initial_state(lstm, 3).shape == (3, 2, 6)
    out, state = lstm_step(lstm, x, np.stack([h, c], 1))
    h1, c1 = (keras.ops.convert_to_numpy(state[:, i]) for i in (0, 1))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out)[:, 0], h1)
    # NumPy reference, gate order i, f, c, o
    k, rk, b = lstm_weights(lstm)
    z = x[:, 0] @ k + h @ rk + b
    i, f, g, o = sigmoid(z[:, :6]), sigmoid(z[:, 6:12]), np.tanh(z[:, 12:18]), sigmoid(z[:, 18:])
    c_ref = f * c + i * g
    np.testing.assert_allclose(c1, c_ref, atol=1e-5)
    np.testing.assert_allclose(h1, o * np.tanh(c_ref), atol=1e-5)
    _, h_k, c_k = lstm(x, initial_state=[h, c])
    np.testing.assert_allclose(h1, keras.ops.convert_to_numpy(h_k), atol=1e-5)
    np.testing.assert_allclose(c1, keras.ops.convert_to_numpy(c_k), atol=1e-5)


def test_causal(rng):
    layer = ComplexLSTM(4)
    x = rng.standard_normal((1, 8, 6)).astype("float32")
    x2 = x.copy()
    x2[:, 5:] += 1
    a, b = (keras.ops.convert_to_numpy(layer(v)) for v in (x, x2))
    np.testing.assert_allclose(a[:, :5], b[:, :5], atol=1e-7)


@pytest.mark.parametrize("bad", [dict(units=0), dict(units=4, projection_dim=-1)])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError, match=str(list(bad.values())[-1])):
        ComplexLSTM(**bad)


def test_config_round_trip(rng):
    x = rng.standard_normal((1, 3, 8)).astype("float32")
    run_layer_test(ComplexLSTM(4, projection_dim=6), x, expected_output_shape=(1, 3, 12))
