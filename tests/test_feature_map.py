import numpy as np
import pytest
from feature_map_references import layer_norm, npy, swish

from keras_dccrn.layers.feature_map import (
    ResidualModule,
    dropout_rate,
    feature_channels,
    positive_int,
    split_swish,
)
from keras_dccrn.layers.feature_map import layer_norm as make_layer_norm


@pytest.mark.parametrize("value", [0, -3, 2.0, True, "4", None])
def test_positive_int_rejects(value):
    with pytest.raises(ValueError, match=f"`heads` must be a positive integer; received {value!r}"):
        positive_int(value, "heads")


def test_positive_int_and_dropout_accept():
    assert positive_int(7, "heads") == 7
    assert dropout_rate(0) == 0.0 and isinstance(dropout_rate(0), float)
    for bad in (1.0, -0.1, "0.1"):
        with pytest.raises(ValueError, match="dropout"):
            dropout_rate(bad)


def test_feature_channels():
    assert feature_channels((2, 3, 4, 10), True, "x") == 5
    assert feature_channels((2, 3, 4, 10), False, "x") == 10
    with pytest.raises(ValueError, match="x: a complex map needs an even channel axis"):
        feature_channels((2, 3, 4, 7), True, "x")
    with pytest.raises(ValueError, match="x: the channel axis must be known"):
        feature_channels((2, 3, 4, None), False, "x")


def test_split_swish_and_layer_norm(rng):
    x = rng.standard_normal((2, 3, 6)).astype("float32")
    np.testing.assert_allclose(npy(split_swish(x)), swish(x), atol=1e-6)
    norm = make_layer_norm("norm", "float32")
    y = npy(norm(x))
    np.testing.assert_allclose(y, layer_norm(x, norm), atol=1e-5)


def test_residual_module_base():
    module = ResidualModule(complex_valued=False, dropout=0.25, name="res")
    assert module.compute_output_shape((1, 2, 3, 4)) == (1, 2, 3, 4)
    config = module.get_config()
    assert config["complex_valued"] is False and config["dropout"] == 0.25
    assert module.norm.epsilon == 1e-5 and module.drop.rate == 0.25
