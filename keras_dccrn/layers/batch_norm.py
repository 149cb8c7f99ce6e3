"""Batch normalization over the channel axis with a fast training pass.

DCCRN's default norm (``nn.BatchNorm2d`` over the real and imaginary channels) is Keras'
``BatchNormalization``. In training, Keras normalizes with the batch statistics by a chain of
ops (cast, moments, scale, shift, cast) whose automatic gradient passes over the feature map
many more times; on a CPU, where every pass costs memory bandwidth, the batch norms of a DCCRN
student weigh about as much as its convolutions (docs/benchmarks/training_profile.md).
:func:`batch_normalize` is the same computation as one kernel per direction: on the TensorFlow
backend the fused batch-norm op and its fused gradient (``FusedBatchNormV3``, a backend kernel like
Keras' own ``keras.src.backend`` code, used in training only: inference and export keep Keras'
formula), elsewhere :func:`batch_normalize_closed_form`, whose backward pass is the closed form of
the batch-norm gradient in ``keras.ops``.
"""

import keras
from keras import ops

# Name scope of the backward ops (profiles count ops under a root scope ending in "_gradient" as backward).
GRADIENT_SCOPE = "batch_norm_gradient"


def batch_normalize(x, gamma, beta, epsilon):
    """Normalizes ``x`` by its batch statistics over every axis but the last, in one kernel per direction.

    The result of :func:`batch_normalize_closed_form` (arguments and returns as there), computed by
    TensorFlow's fused batch-norm kernels on that backend (statistics in float32, the returned
    variance biased as Keras' layer uses it) and by the closed form elsewhere.
    """
    if keras.backend.backend() != "tensorflow":
        return batch_normalize_closed_form(x, gamma, beta, epsilon)
    import tensorflow as tf

    shape = ops.shape(x)
    channels = x.shape[-1]
    rank4 = len(x.shape) == 4
    # [..., C] -> [1, 1, n, C]: the fused op wants NHWC; every non-channel axis is a reduction axis.
    x4 = x if rank4 else ops.reshape(x, (1, 1, -1, channels))
    empty = tf.constant([], tf.float32)
    y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x4,
        scale=gamma,
        offset=beta,
        mean=empty,
        variance=empty,
        epsilon=epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=True,
    )
    if not rank4:
        y = ops.reshape(y, shape)  # [1, 1, n, C] -> [..., C]
    # The op returns the unbiased variance n / (n - 1) * var for the moving averages; Keras' is biased.
    count = ops.cast(ops.size(x) // channels, "float32")
    variance = variance * ops.maximum(count - 1.0, 1.0) / count
    return y, ops.stop_gradient(mean), ops.stop_gradient(variance)


def batch_normalize_closed_form(x, gamma, beta, epsilon):
    """Normalizes ``x`` by its batch statistics over every axis but the last, with the closed-form gradient.

    The statistics and the normalization are computed in float32, as Keras' layer does, and the
    output is cast back to ``x``'s dtype. The variance is ``mean(x^2) - mean(x)^2`` (one pass, where
    Keras makes two), which in float32 stays within 1e-4 relative of the two-pass value for channel
    means up to ten standard deviations (tests/test_batch_norm.py). With ``xhat = (x - mean) / sqrt(var + epsilon)`` and ``n``
    the elements per channel, the gradients of ``y = gamma * xhat + beta`` are
    ``d_beta = sum(g)``, ``d_gamma = sum(g * xhat)`` and
    ``dx = gamma / sqrt(var + epsilon) * (g - (d_beta + xhat * d_gamma) / n)``.

    Args:
        x: ``[..., C]`` tensor.
        gamma: ``[C]`` float32 scale.
        beta: ``[C]`` float32 shift.
        epsilon: added to the variance.

    Returns:
        ``(y, mean, variance)``: ``y`` like ``x``; the float32 batch ``mean`` and (biased)
        ``variance``, ``[C]``, for the moving averages. Gradients flow through ``y`` only.
    """
    axes = tuple(range(len(x.shape) - 1))

    @ops.custom_gradient
    def normalize(x, gamma, beta):
        xf = ops.cast(x, "float32")
        mean = ops.mean(xf, axis=axes)
        variance = ops.maximum(ops.mean(xf * xf, axis=axes) - mean * mean, 0.0)
        inv = ops.rsqrt(variance + epsilon)
        scale = gamma * inv
        y = ops.cast(xf * scale + (beta - mean * scale), x.dtype)

        def backward(*grads, upstream=None):
            with keras.name_scope(GRADIENT_SCOPE):
                g = ops.cast((grads if upstream is None else upstream)[0], "float32")
                count = ops.cast(ops.size(g) // ops.shape(g)[-1], "float32")
                d_beta = ops.sum(g, axis=axes)
                d_gamma = inv * (ops.sum(g * xf, axis=axes) - mean * d_beta)  # sum(g * xhat)
                # dx = scale * g - k * (x - mean) - scale * d_beta / n with k = scale * inv * d_gamma / n
                k = scale * inv * d_gamma / count
                dx = scale * g - k * xf + (k * mean - scale * d_beta / count)
                return ops.cast(dx, x.dtype), d_gamma, d_beta

        return (y, mean, variance), backward

    y, mean, variance = normalize(x, gamma, beta)
    return y, ops.stop_gradient(mean), ops.stop_gradient(variance)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' ``BatchNormalization`` over the last axis whose training pass is :func:`batch_normalize`.

    The weights, config, moving-average update and outputs are Keras' (``moving = momentum * moving
    + (1 - momentum) * batch``, biased batch variance); inference uses Keras' own call.

    Args:
        **kwargs: ``keras.layers.BatchNormalization`` arguments. The layer normalizes the last axis
            with a learned scale and shift: ``axis`` must be -1, ``center`` and ``scale`` true,
            ``renorm`` and ``synchronized`` false.

    Call arguments:
        inputs: ``[..., C]`` tensor.
        training: normalize by the batch statistics and update the moving ones.
        mask: not supported with ``training`` (Keras' masked statistics are not reimplemented).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        unsupported = {
            "axis": (self.axis, -1),
            "center": (self.center, True),
            "scale": (self.scale, True),
            "renorm": (self.renorm, False),
            "synchronized": (self.synchronized, False),
        }
        for name, (value, wanted) in unsupported.items():
            if value != wanted:
                raise ValueError(f"{type(self).__name__}: `{name}` must be {wanted!r}; received {value!r}.")

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        if mask is not None:
            raise ValueError(
                f"{self.name}: a mask is not supported in training; received a mask of shape {mask.shape}."
            )
        gamma = ops.cast(self.gamma, "float32")
        beta = ops.cast(self.beta, "float32")
        y, mean, variance = batch_normalize(inputs, gamma, beta, self.epsilon)
        m = self.momentum
        self.moving_mean.assign(ops.cast(self.moving_mean, "float32") * m + mean * (1.0 - m))
        self.moving_variance.assign(ops.cast(self.moving_variance, "float32") * m + variance * (1.0 - m))
        return ops.cast(y, self.compute_dtype)
