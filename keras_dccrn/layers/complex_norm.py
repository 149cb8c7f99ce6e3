"""Complex batch normalization (DCCRN ``ComplexBatchNorm``, the whitening BN of ``use_cbn=True``)."""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import complex_merge, complex_split

MODES = ("complex",)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ComplexBatchNormalization(keras.layers.Layer):
    """Batch normalization of complex feature maps ``[..., 2 * C]``.

    ``mode="complex"`` is the complex BN of Trabelsi et al. used by DCCRN's
    ``use_cbn=True``: each complex channel is centred and whitened with the
    inverse square root of its 2x2 real/imaginary covariance, then scaled by a
    learned symmetric 2x2 matrix ``[[Wrr, Wri], [Wri, Wii]]`` and shifted by
    ``(Br, Bi)``. DCCRN's default BN, which normalizes the real and the
    imaginary channels independently (``nn.BatchNorm2d(2C)``), is
    ``keras.layers.BatchNormalization`` (``models.base.norm_layer("naive")``).

    Statistics are taken over every axis but the last; moving averages are
    updated in training as ``moving = momentum * moving + (1 - momentum) * batch``.

    Args:
        mode: ``"complex"`` (whitening), the only mode; kept in the config of saved layers.
        momentum: moving-average momentum (PyTorch's 0.1 is Keras' 0.9).
        epsilon: added to the variances.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[..., 2 * C]`` real tensor in the complex convention.
        training: use batch statistics and update the moving ones.

    Input shape:
        Any rank >= 2, last axis ``2 * C`` and known.

    Output shape:
        Same as input.

    References:
        Trabelsi et al., "Deep Complex Networks", ICLR 2018.
        Hu et al., "DCCRN", Interspeech 2020.
    """

    def __init__(self, mode="complex", momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(
                f"`mode` must be one of {MODES} (per-part BN is keras.layers.BatchNormalization); "
                f"received {mode!r}."
            )
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1); received {momentum!r}.")
        if epsilon <= 0:
            raise ValueError(f"`epsilon` must be positive; received {epsilon!r}.")
        self.mode = mode
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"{self.name}: last axis must be even (real | imag); received {input_shape}.")
        c = channels // 2
        self._axes = tuple(range(len(input_shape) - 1))

        def weight(name, size, init, trainable=True):
            return self.add_weight(name=name, shape=(size,), initializer=init, trainable=trainable)

        self.w_rr = weight("w_rr", c, "ones")
        self.w_ri = weight("w_ri", c, "zeros")
        self.w_ii = weight("w_ii", c, "ones")
        self.b_r = weight("b_r", c, "zeros")
        self.b_i = weight("b_i", c, "zeros")
        self.moving_mean = weight("moving_mean", 2 * c, "zeros", False)
        self.moving_v_rr = weight("moving_v_rr", c, "ones", False)
        self.moving_v_ri = weight("moving_v_ri", c, "zeros", False)
        self.moving_v_ii = weight("moving_v_ii", c, "ones", False)

    def _update(self, variable, value):
        m = self.momentum
        variable.assign(m * variable + (1.0 - m) * ops.cast(value, variable.dtype))

    def call(self, inputs, training=False):
        x = inputs
        if training:
            mean = ops.mean(x, axis=self._axes)
            centred = x - mean
            xr, xi = complex_split(centred)
            v_rr = ops.mean(xr * xr, axis=self._axes)
            v_ri = ops.mean(xr * xi, axis=self._axes)
            v_ii = ops.mean(xi * xi, axis=self._axes)
            self._update(self.moving_mean, mean)
            self._update(self.moving_v_rr, v_rr)
            self._update(self.moving_v_ri, v_ri)
            self._update(self.moving_v_ii, v_ii)
        else:
            mean = ops.cast(self.moving_mean, x.dtype)
            xr, xi = complex_split(x - mean)
            v_rr = ops.cast(self.moving_v_rr, x.dtype)
            v_ri = ops.cast(self.moving_v_ri, x.dtype)
            v_ii = ops.cast(self.moving_v_ii, x.dtype)
        v_rr = v_rr + self.epsilon
        v_ii = v_ii + self.epsilon
        # Inverse square root of [[v_rr, v_ri], [v_ri, v_ii]] in closed form.
        s = ops.sqrt(v_rr * v_ii - v_ri * v_ri)
        t = ops.sqrt(v_rr + v_ii + 2.0 * s)
        inv_st = 1.0 / (s * t)
        u_rr = (v_ii + s) * inv_st
        u_ii = (v_rr + s) * inv_st
        u_ri = -v_ri * inv_st
        wr = u_rr * xr + u_ri * xi
        wi = u_ri * xr + u_ii * xi
        w_rr = ops.cast(self.w_rr, x.dtype)
        w_ri = ops.cast(self.w_ri, x.dtype)
        w_ii = ops.cast(self.w_ii, x.dtype)
        yr = w_rr * wr + w_ri * wi + ops.cast(self.b_r, x.dtype)
        yi = w_ri * wr + w_ii * wi + ops.cast(self.b_i, x.dtype)
        return complex_merge(yr, yi)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, momentum=self.momentum, epsilon=self.epsilon)
        return config
