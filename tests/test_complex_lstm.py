import keras
import numpy as np
import pytest

from keras_dccrn.layers.complex_lstm import ComplexLSTM
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


def test_streaming_with_state_equals_full_sequence(rng):
    x = rng.standard_normal((2, 7, 8)).astype("float32")
    layer = ComplexLSTM(4, projection_dim=6)
    full = keras.ops.convert_to_numpy(layer(x))
    state = [np.zeros((4, 4), "float32") for _ in range(4)]
    steps = []
    for t in range(7):
        y, state = layer(x[:, t : t + 1], initial_state=state, return_state=True)
        steps.append(keras.ops.convert_to_numpy(y))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)


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
