import keras
import numpy as np
import pytest

from keras_dccrn.layers.prelu import PReLU, prelu, prelu_with_gradient
from keras_dccrn.testing import run_layer_test


def gradients(layer, x, g, training):
    import tensorflow as tf

    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, "float32") * g)
    dx, d_alpha = tape.gradient(loss, [x, layer.alpha])
    return [keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")) for t in (y, dx, d_alpha)]


@pytest.mark.parametrize("shared_axes", [[1, 2, 3], [1, 2], None])
def test_matches_numpy_reference(rng, shared_axes):
    x = rng.standard_normal((3, 4, 5, 6)).astype("float32")
    g = rng.standard_normal(x.shape).astype("float32")
    layer = PReLU(shared_axes=shared_axes)
    layer.build(x.shape)
    alpha = rng.uniform(0.1, 1.5, layer.alpha.shape).astype("float32")  # slopes above 1 included
    layer.alpha.assign(alpha)
    y, dx, d_alpha = gradients(layer, x, g, training=True)
    np.testing.assert_allclose(y, np.where(x > 0, x, alpha * x), rtol=1e-6)
    np.testing.assert_allclose(dx, np.where(x > 0, g, alpha * g), rtol=1e-6)
    per_element = (g * np.minimum(x, 0)).sum(0)
    want = (
        per_element.sum(axis=tuple(a - 1 for a in shared_axes), keepdims=True) if shared_axes else per_element
    )
    np.testing.assert_allclose(d_alpha, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_training_and_inference_forms_agree_with_keras(rng, policy):
    x = rng.standard_normal((2, 5, 4, 6)).astype("float32")
    x[0, 0, 0, :2] = 0.0
    g = rng.standard_normal(x.shape).astype("float32")
    keras.mixed_precision.set_global_policy(policy)
    try:
        ours = PReLU(shared_axes=[1, 2, 3], alpha_initializer=keras.initializers.Constant(0.25))
        ref = keras.layers.PReLU(shared_axes=[1, 2, 3], alpha_initializer=keras.initializers.Constant(0.25))
        y_train, dx, d_alpha = gradients(ours, x, g, training=True)
        y_ref, dx_ref, d_alpha_ref = gradients(ref, x, g, training=True)
        np.testing.assert_array_equal(y_train, y_ref)  # the select gives the formula's numbers exactly
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours(x, training=False)), y_ref)
        nonzero = x != 0  # at 0 the formula's gradient is 0, the select's alpha * g
        np.testing.assert_array_equal(dx[nonzero], dx_ref[nonzero])
        np.testing.assert_allclose(d_alpha, d_alpha_ref, rtol=1e-2 if policy != "float32" else 1e-5)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_function_and_layer_share_the_formula(rng):
    x = rng.standard_normal((2, 3)).astype("float32")
    alpha = np.array([0.3], "float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(prelu_with_gradient(x, alpha, [1])),
        keras.ops.convert_to_numpy(prelu(x, alpha)),
    )


def test_config_round_trip(rng):
    x = rng.standard_normal((2, 3, 4, 6)).astype("float32")
    run_layer_test(PReLU(shared_axes=[1, 2, 3], alpha_initializer=keras.initializers.Constant(0.25)), x)
