"""Complex 2-D convolution and transposed convolution over (time, freq) maps.

Feature maps are ``[batch, frames, freq, 2 * C]`` with the complex channel
convention of ``layers.complex_ops`` (real halves first). Kernel sizes and
strides are given in the papers' ``(freq, time)`` order.

A complex convolution ``W = Wr + i Wi`` applied to ``x = xr + i xi`` is
``(Wr * xr - Wi * xi) + i (Wr * xi + Wi * xr)``: two real convolutions
combined by the complex product rule. It is computed as **one** real
convolution with the block kernel ``[[Wr, Wi], [-Wi, Wr]]`` (input rows
``[xr | xi]``, output columns ``[yr | yi]``), which is mathematically the same
and runs a single oneDNN/XNNPACK convolution instead of four.
"""

import keras
from keras import ops

TIME_CROPS = ("causal", "dccrn")


def _pair(value, name):
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"`{name}` must be a positive int or a pair of them; received {value!r}.")
    return value


def _check_filters(filters):
    if not isinstance(filters, int) or filters <= 0:
        raise ValueError(f"`filters` must be a positive integer; received {filters!r}.")


def _block_kernel(real, imag, in_axis, out_axis):
    """Assembles ``[[Wr, Wi], [-Wi, Wr]]`` (rows: inputs, cols: outputs)."""
    top = ops.concatenate([real, imag], axis=out_axis)  # from xr
    bottom = ops.concatenate([-imag, real], axis=out_axis)  # from xi
    return ops.concatenate([top, bottom], axis=in_axis)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ComplexConv2D(keras.layers.Layer):
    """Complex 2-D convolution over ``[batch, frames, freq, 2 * C]`` maps.

    Equivalent to DCCRN's ``ComplexConv2d`` (two real ``Conv2d`` with their
    own biases, ``real = real_conv(xr) - imag_conv(xi)``,
    ``imag = real_conv(xi) + imag_conv(xr)``). Frequency is zero-padded by
    ``freq_padding`` on both sides; time is padded by
    ``(kernel_t - 1) * dilation_t`` on the left only when ``causal`` (DCCRN's
    encoder), or split evenly otherwise, so the frame count is preserved
    (time stride is fixed to 1).

    Args:
        filters: number of complex output channels (the layer outputs
            ``2 * filters`` real channels).
        kernel_size: ``(freq, time)`` kernel, DCCRN: ``(5, 2)``.
        strides: ``(freq, time)`` strides, DCCRN: ``(2, 1)``. Time stride must be 1.
        freq_padding: zeros added on each side of the frequency axis
            (DCCRN: 2).
        causal: pad time on the left only, so output frame ``t`` depends on
            input frames ``<= t``.
        dilation_rate: ``(freq, time)`` dilation.
        use_bias: add the two DCCRN biases (real and imaginary conv).
        kernel_initializer: initializer of both real kernels
            (DCCRN: normal, std 0.05).
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, freq, 2 * in_channels]``.

    Input shape:
        ``[batch, frames, freq, 2 * in_channels]``.

    Output shape:
        ``[batch, frames, freq_out, 2 * filters]`` with
        ``freq_out = (freq + 2 * freq_padding - dil_f * (k_f - 1) - 1) // s_f + 1``.

    References:
        Trabelsi et al., "Deep Complex Networks", ICLR 2018.
        Hu et al., "DCCRN", Interspeech 2020.
    """

    def __init__(
        self,
        filters,
        kernel_size=(5, 2),
        strides=(2, 1),
        freq_padding=2,
        causal=True,
        dilation_rate=(1, 1),
        use_bias=True,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_filters(filters)
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if self.strides[1] != 1:
            raise ValueError(f"Time stride must be 1; received strides={self.strides!r}.")
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(
                "Frequency stride and dilation cannot both exceed 1; received "
                f"strides={self.strides!r}, dilation_rate={self.dilation_rate!r}."
            )
        if not isinstance(freq_padding, int) or freq_padding < 0:
            raise ValueError(f"`freq_padding` must be a non-negative integer; received {freq_padding!r}.")
        self.freq_padding = freq_padding
        self.causal = bool(causal)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.05)
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(
                f"{self.name}: input channels must be even (real | imag); received input shape {input_shape}."
            )
        cin = channels // 2
        kf, kt = self.kernel_size
        shape = (kt, kf, cin, self.filters)  # (time, freq, in, out)
        self.real_kernel = self.add_weight(
            name="real_kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.imag_kernel = self.add_weight(
            name="imag_kernel", shape=shape, initializer=self.kernel_initializer
        )
        if self.use_bias:
            self.real_bias = self.add_weight(name="real_bias", shape=(self.filters,), initializer="zeros")
            self.imag_bias = self.add_weight(name="imag_bias", shape=(self.filters,), initializer="zeros")

    def time_padding(self):
        """``(left, right)`` frames of zero padding on the time axis."""
        total = (self.kernel_size[1] - 1) * self.dilation_rate[1]
        if self.causal:
            return total, 0
        return total // 2, total - total // 2

    def call(self, inputs):
        left, right = self.time_padding()
        p = self.freq_padding
        x = ops.pad(inputs, [[0, 0], [left, right], [p, p], [0, 0]])
        kernel = _block_kernel(self.real_kernel, self.imag_kernel, in_axis=2, out_axis=3)
        y = ops.conv(
            x,
            kernel,
            strides=(1, self.strides[0]),
            padding="valid",
            dilation_rate=(self.dilation_rate[1], self.dilation_rate[0]),
        )
        if self.use_bias:
            # real = real_conv(xr) - imag_conv(xi); imag = real_conv(xi) + imag_conv(xr)
            bias = ops.concatenate([self.real_bias - self.imag_bias, self.real_bias + self.imag_bias])
            y = y + bias
        return y

    def compute_output_shape(self, input_shape):
        batch, frames, freq, _ = input_shape
        kf, _ = self.kernel_size
        if freq is not None:
            span = self.dilation_rate[0] * (kf - 1) + 1
            freq = (freq + 2 * self.freq_padding - span) // self.strides[0] + 1
        return (batch, frames, freq, 2 * self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            freq_padding=self.freq_padding,
            causal=self.causal,
            dilation_rate=self.dilation_rate,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ComplexConv2DTranspose(keras.layers.Layer):
    """Complex transposed 2-D convolution (DCCRN decoder layer).

    Equivalent to DCCRN's ``ComplexConvTranspose2d`` with
    ``padding=(freq_padding, 0)`` and ``output_padding=(output_padding, 0)``.
    Along frequency the full transposed convolution is cropped by
    ``freq_padding`` at the start and ``freq_padding - output_padding`` at the
    end (DCCRN: ``F -> 2F``). Along time (stride 1) the full output has
    ``frames + k_t - 1`` frames; ``time_crop`` keeps ``frames`` of them:

    * ``"causal"``: frames ``[0, frames)``: output ``t`` uses inputs ``<= t``.
    * ``"dccrn"``: frames ``[k_t - 1, k_t - 1 + frames)``: the official DCCRN
      code's ``out[..., 1:]`` for ``k_t = 2``, which lets output ``t`` see
      input ``t + k_t - 1`` (one frame of look-ahead per layer).

    Args:
        filters: number of complex output channels.
        kernel_size: ``(freq, time)`` kernel, DCCRN: ``(5, 2)``.
        strides: ``(freq, time)`` strides, DCCRN: ``(2, 1)``. Time stride must be 1.
        freq_padding: frequency crop at the start (PyTorch ``padding[0]``).
        output_padding: extra frequency bins kept at the end (PyTorch
            ``output_padding[0]``), ``< strides[0]``.
        time_crop: ``"causal"`` or ``"dccrn"`` (see above).
        use_bias: add the two DCCRN biases.
        kernel_initializer: initializer of both kernels.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, freq, 2 * in_channels]``.

    Input shape:
        ``[batch, frames, freq, 2 * in_channels]``.

    Output shape:
        ``[batch, frames, (freq - 1) * s_f + k_f - 2 * freq_padding + output_padding,
        2 * filters]``.

    References:
        Hu et al., "DCCRN", Interspeech 2020.
    """

    def __init__(
        self,
        filters,
        kernel_size=(5, 2),
        strides=(2, 1),
        freq_padding=2,
        output_padding=1,
        time_crop="causal",
        use_bias=True,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_filters(filters)
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        if self.strides[1] != 1:
            raise ValueError(f"Time stride must be 1; received strides={self.strides!r}.")
        if not isinstance(freq_padding, int) or freq_padding < 0:
            raise ValueError(f"`freq_padding` must be a non-negative integer; received {freq_padding!r}.")
        if not isinstance(output_padding, int) or not 0 <= output_padding < self.strides[0]:
            raise ValueError(
                f"`output_padding` must be an integer in [0, freq stride); received {output_padding!r}."
            )
        if output_padding > freq_padding:
            raise ValueError(
                f"`output_padding` ({output_padding}) cannot exceed `freq_padding` ({freq_padding})."
            )
        if time_crop not in TIME_CROPS:
            raise ValueError(f"`time_crop` must be one of {TIME_CROPS}; received {time_crop!r}.")
        self.freq_padding = freq_padding
        self.output_padding = output_padding
        self.time_crop = time_crop
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.05)
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(
                f"{self.name}: input channels must be even (real | imag); received input shape {input_shape}."
            )
        cin = channels // 2
        kf, kt = self.kernel_size
        shape = (kt, kf, self.filters, cin)  # (time, freq, out, in) as keras.ops.conv_transpose
        self.real_kernel = self.add_weight(
            name="real_kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.imag_kernel = self.add_weight(
            name="imag_kernel", shape=shape, initializer=self.kernel_initializer
        )
        if self.use_bias:
            self.real_bias = self.add_weight(name="real_bias", shape=(self.filters,), initializer="zeros")
            self.imag_bias = self.add_weight(name="imag_bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs):
        kf, kt = self.kernel_size
        kernel = _block_kernel(self.real_kernel, self.imag_kernel, in_axis=3, out_axis=2)
        y = ops.conv_transpose(inputs, kernel, strides=(1, self.strides[0]), padding="valid")
        frames = ops.shape(inputs)[1]
        freq = ops.shape(inputs)[2]
        start_t = 0 if self.time_crop == "causal" else kt - 1
        freq_out = (freq - 1) * self.strides[0] + kf - 2 * self.freq_padding + self.output_padding
        y = y[:, start_t : start_t + frames, self.freq_padding : self.freq_padding + freq_out, :]
        if self.use_bias:
            bias = ops.concatenate([self.real_bias - self.imag_bias, self.real_bias + self.imag_bias])
            y = y + bias
        return y

    def compute_output_shape(self, input_shape):
        batch, frames, freq, _ = input_shape
        kf, _ = self.kernel_size
        if freq is not None:
            freq = (freq - 1) * self.strides[0] + kf - 2 * self.freq_padding + self.output_padding
        return (batch, frames, freq, 2 * self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            freq_padding=self.freq_padding,
            output_padding=self.output_padding,
            time_crop=self.time_crop,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
