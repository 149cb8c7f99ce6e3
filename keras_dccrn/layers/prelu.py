"""Parametric ReLU with its training gradient written out."""

import keras
from keras import ops

# Name scope of the backward ops (profiles count ops under a root scope ending in "_gradient" as backward).
GRADIENT_SCOPE = "prelu_gradient"


def prelu(x, alpha):
    """``relu(x) - alpha * relu(-x)``: Keras' ``PReLU`` formula (TFLite converts it to one ``PRELU``)."""
    return ops.relu(x) - alpha * ops.relu(-x)


def prelu_with_gradient(x, alpha, shared_axes):
    """:func:`prelu` computed as ``where(x > 0, x, alpha * x)``, with its gradient written out.

    The two forms give the same numbers (``0 - alpha * (-x)`` is ``alpha * x`` exactly). The
    select makes three passes over the feature map instead of the formula's five, and the backward
    pass, ``where(x > 0, g, alpha * g)`` and ``sum(g * x)`` over ``x <= 0``, fewer than automatic
    differentiation of the formula's two ReLUs, negation, product and difference.

    Args:
        x: ``[batch, ...]`` tensor.
        alpha: slopes broadcast against ``x[0]`` (Keras' ``PReLU.alpha``: ``x.shape[1:]`` with 1 on
            the shared axes), in ``x``'s dtype.
        shared_axes: the axes of ``x`` (batch is 0) along which one slope is shared.

    Returns:
        ``prelu(x, alpha)``.
    """
    reduced = [0] + sorted(shared_axes or ())  # the batch and the shared axes, summed in one reduction

    @ops.custom_gradient
    def forward(x, alpha):
        positive = x > 0
        scaled = alpha * x

        def backward(*grads, upstream=None):
            with keras.name_scope(GRADIENT_SCOPE):
                g = (grads if upstream is None else upstream)[0]
                d_alpha = ops.sum(ops.where(positive, 0, g * x), axis=reduced, keepdims=True)
                d_alpha = ops.reshape(d_alpha, ops.shape(alpha))  # [1, ...] -> alpha's shape
                return ops.where(positive, g, alpha * g), d_alpha

        return ops.where(positive, x, scaled), backward

    return forward(x, alpha)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class PReLU(keras.layers.PReLU):
    """Keras' ``PReLU`` (weights, config, outputs) whose training gradient is :func:`prelu_with_gradient`.

    Args:
        **kwargs: ``keras.layers.PReLU`` arguments.

    Call arguments:
        inputs: ``[batch, ...]`` tensor.
        training: use the written-out gradient (inference runs the formula alone, which converters
            recognize).
    """

    def call(self, inputs, training=None):
        alpha = ops.cast(self.alpha, inputs.dtype)
        if training:
            return prelu_with_gradient(inputs, alpha, self.shared_axes)
        return prelu(inputs, alpha)
