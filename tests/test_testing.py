import keras
import numpy as np
import pytest

from keras_dccrn.testing import run_layer_test


@keras.saving.register_keras_serializable(package="keras_dccrn_tests")
class Scale(keras.layers.Layer):
    """A layer whose get_config forgets ``factor`` unless told not to (the bug the routine catches)."""

    def __init__(self, factor=1.0, complete=True, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.complete = factor, complete

    def call(self, x):
        return x * self.factor

    def get_config(self):
        config = super().get_config()
        if self.complete:
            config.update(factor=self.factor, complete=True)
        return config


def test_a_complete_layer_passes_and_returns_its_outputs():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    (y,) = run_layer_test(keras.layers.Dense(4, name="d"), x, expected_output_shape=(2, 4))
    assert y.shape == (2, 4)
    np.testing.assert_array_equal(run_layer_test(Scale(2.0), x)[0], 2 * x)


def test_an_incomplete_config_is_caught():
    x = np.ones((2, 3), "float32")
    with pytest.raises(AssertionError):
        run_layer_test(Scale(2.0, complete=False), x)


def test_a_wrong_output_shape_is_caught():
    with pytest.raises(AssertionError, match="output shapes"):
        run_layer_test(keras.layers.Dense(4), np.ones((2, 3), "float32"), expected_output_shape=(2, 3))
