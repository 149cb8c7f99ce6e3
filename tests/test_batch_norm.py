import keras
import numpy as np
import pytest

from keras_dccrn.layers.batch_norm import BatchNormalization, batch_normalize, batch_normalize_closed_form
from keras_dccrn.testing import run_layer_test


def numpy_batch_norm(x, gamma, beta, epsilon, g):
    """Forward pass and the gradients of ``sum(g * y)`` by the textbook formulas, in float64."""
    axes = tuple(range(x.ndim - 1))
    n = x.size // x.shape[-1]
    mean = x.mean(axes)
    var = x.var(axes)
    inv = 1.0 / np.sqrt(var + epsilon)
    xhat = (x - mean) * inv
    d_beta = g.sum(axes)
    d_gamma = (g * xhat).sum(axes)
    dx = gamma * inv / n * (n * g - d_beta - xhat * d_gamma)
    return xhat * gamma + beta, mean, var, dx, d_gamma, d_beta


def gradients(layer, x, g):
    import tensorflow as tf

    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, "float32") * g)
    dx, d_gamma, d_beta = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")) for t in (y, dx, d_gamma, d_beta)]


def function_gradients(fn, x, gamma, beta, g):
    """``fn``'s outputs and the gradients of ``sum(g * y)`` with respect to x, gamma and beta."""
    import tensorflow as tf

    x, gamma, beta = tf.Variable(x), tf.Variable(gamma), tf.Variable(beta)
    with tf.GradientTape() as tape:
        y, mean, var = fn(x, gamma, beta, 1e-5)
        loss = tf.reduce_sum(tf.cast(y, "float32") * g)
    grads = tape.gradient(loss, [x, gamma, beta])
    return [keras.ops.convert_to_numpy(t) for t in (y, mean, var, *grads)]


@pytest.mark.parametrize("fn", [batch_normalize, batch_normalize_closed_form])
@pytest.mark.parametrize(
    "shape,offset,atol",
    [((3, 7, 5, 4), 0.0, 2e-5), ((3, 7, 5, 4), 10.0, 1e-4), ((6, 9, 4), 0.0, 2e-5), ((30, 4), 0.0, 2e-5)],
)
def test_matches_numpy_reference(rng, fn, shape, offset, atol):
    # offset 10: channel means ten times the standard deviation, where the one-pass variance
    # E[x^2] - E[x]^2 of the closed form loses about two more digits of float32
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 2, 4) + offset).astype("float32")
    g = rng.standard_normal(x.shape).astype("float32")
    gamma = rng.uniform(0.5, 1.5, 4).astype("float32")
    beta = rng.standard_normal(4).astype("float32")
    y, mean, var, dx, d_gamma, d_beta = function_gradients(fn, x, gamma, beta, g)
    ref_y, ref_mean, ref_var, ref_dx, ref_dgamma, ref_dbeta = numpy_batch_norm(
        x.astype("float64"), gamma, beta, 1e-5, g.astype("float64")
    )
    np.testing.assert_allclose(y, ref_y, atol=atol)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(var, ref_var, rtol=atol)  # biased, as Keras' moving averages use it
    np.testing.assert_allclose(dx, ref_dx, atol=atol)
    np.testing.assert_allclose(d_gamma, ref_dgamma, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_beta, ref_dbeta, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("policy,atol", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
def test_same_as_keras_layer(rng, policy, atol):
    x = (rng.standard_normal((4, 9, 6, 8)) * 2 + 1).astype("float32")
    g = rng.standard_normal(x.shape).astype("float32")
    keras.mixed_precision.set_global_policy(policy)
    try:
        ours = BatchNormalization(momentum=0.9, epsilon=1e-5)
        ref = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
        for layer in (ours, ref):
            layer.build(x.shape)
            layer.gamma.assign(np.linspace(0.5, 1.5, 8).astype("float32"))
            layer.beta.assign(np.linspace(-1, 1, 8).astype("float32"))
        got, want = gradients(ours, x, g), gradients(ref, x, g)
        for a, b, name in zip(got, want, ["y", "dx", "d_gamma", "d_beta"], strict=True):
            scale = max(np.abs(b).max(), 1.0)
            np.testing.assert_allclose(a / scale, b / scale, atol=atol, err_msg=name)
        for a, b in zip(ours.non_trainable_weights, ref.non_trainable_weights, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)  # moving statistics
            a.assign(b.numpy())  # inference: Keras' own call, bit for bit on the same statistics
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(ours(x, training=False)),
            keras.ops.convert_to_numpy(ref(x, training=False)),
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_moving_statistics_follow_keras_momentum(rng):
    x = (rng.standard_normal((16, 4, 4, 6)) + 5).astype("float32")
    layer = BatchNormalization(momentum=0.0)
    train_out = keras.ops.convert_to_numpy(layer(x, training=True))
    infer_out = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(infer_out, train_out, atol=1e-3)  # momentum 0: last batch's statistics


def test_config_round_trip(rng):
    x = rng.standard_normal((2, 3, 4, 6)).astype("float32")
    run_layer_test(BatchNormalization(momentum=0.9, epsilon=1e-5), x, training=False)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(axis=1), "`axis` must be -1; received 1"),
        (dict(center=False), "`center` must be True; received False"),
        (dict(scale=False), "`scale` must be True; received False"),
        (dict(renorm=True), "`renorm` must be False; received True"),
    ],
)
def test_invalid_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        BatchNormalization(**bad)


def test_mask_in_training_refused(rng):
    x = rng.standard_normal((2, 3, 6)).astype("float32")
    with pytest.raises(ValueError, match="mask"):
        BatchNormalization()(x, training=True, mask=np.ones((2, 3), bool))
