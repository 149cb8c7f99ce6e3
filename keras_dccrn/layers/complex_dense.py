"""Complex fully connected layer and the complex-or-real linear map of the Uformer layers."""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import block_kernel
from keras_dccrn.layers.feature_map import feature_channels, positive_int


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ComplexDense(keras.layers.Layer):
    """Complex fully connected layer on the last axis ``[..., 2 * Cin] -> [..., 2 * units]``.

    ``y = W x + b`` with ``W = Wr + i Wi`` and ``b = br + i bi``:
    ``yr = xr Wr - xi Wi + br``, ``yi = xr Wi + xi Wr + bi``, computed as one
    real matmul with the block kernel ``[[Wr, Wi], [-Wi, Wr]]``.

    Args:
        units: complex output features.
        use_bias: add the complex bias.
        kernel_initializer: initializer of ``Wr`` and ``Wi``.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[..., 2 * Cin]`` complex tensor.

    Input shape:
        ``[..., 2 * Cin]``.

    Output shape:
        ``[..., 2 * units]``.

    References:
        Trabelsi et al., "Deep Complex Networks", ICLR 2018.
    """

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        cin = feature_channels(input_shape, True, self.name)
        shape = (cin, self.units)
        self.real_kernel = self.add_weight(
            name="real_kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.imag_kernel = self.add_weight(
            name="imag_kernel", shape=shape, initializer=self.kernel_initializer
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(2 * self.units,), initializer="zeros")

    def call(self, inputs):
        y = ops.matmul(inputs, block_kernel(self.real_kernel, self.imag_kernel, in_axis=0, out_axis=1))
        if self.use_bias:
            y = y + self.bias
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


def dense(complex_valued, units, name, dtype, use_bias=True):
    """A :class:`ComplexDense` (complex flavour) or a ``keras.layers.Dense`` (real flavour)."""
    if complex_valued:
        return ComplexDense(units, use_bias=use_bias, name=name, dtype=dtype)
    return keras.layers.Dense(units, use_bias=use_bias, name=name, dtype=dtype)
