import numpy as np
import pytest
from feature_map_references import ATOL, dense, npy, randomize

from keras_dccrn.layers.complex_dense import ComplexDense
from keras_dccrn.layers.complex_dense import dense as make_dense
from keras_dccrn.testing import run_layer_test


def test_complex_dense_is_complex_matmul(rng):
    x = rng.standard_normal((3, 5, 8)).astype("float32")
    layer = ComplexDense(6)
    layer.build(x.shape)
    randomize(layer, rng)
    y = npy(layer(x))
    z = x[..., :4] + 1j * x[..., 4:]
    w = npy(layer.real_kernel) + 1j * npy(layer.imag_kernel)
    b = npy(layer.bias)
    ref = z @ w + (b[:6] + 1j * b[6:])
    assert y.shape == (3, 5, 12)
    np.testing.assert_allclose(y[..., :6], ref.real, atol=ATOL)
    np.testing.assert_allclose(y[..., 6:], ref.imag, atol=ATOL)


@pytest.mark.parametrize("complex_valued", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_factory_flavours(rng, complex_valued, use_bias):
    layer = make_dense(complex_valued, 3, "proj", "float32", use_bias=use_bias)
    assert isinstance(layer, ComplexDense) == complex_valued
    assert layer.name == "proj" and layer.use_bias == use_bias
    x = rng.standard_normal((2, 5, 8)).astype("float32")
    layer.build(x.shape)
    randomize(layer, rng)
    np.testing.assert_allclose(npy(layer(x)), dense(x, layer), atol=ATOL)


def test_config_round_trip(rng):
    run_layer_test(
        ComplexDense(3, use_bias=False, name="cd"), rng.standard_normal((2, 6, 4, 8)).astype("float32")
    )


def test_invalid_arguments():
    with pytest.raises(ValueError, match="units"):
        ComplexDense(0)


def test_odd_channel_axis_rejected():
    with pytest.raises(ValueError, match="even channel axis"):
        ComplexDense(2)(np.zeros((1, 3), "float32"))
