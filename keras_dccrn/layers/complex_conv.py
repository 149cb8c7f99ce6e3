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

Both layers stream (kws_streaming's pattern): ``call`` pads the time axis
with zeros and applies the layer's core, ``step(inputs, state)`` puts the
``state`` (the last input frames of the previous chunk) in front of the
chunk instead of the zeros and applies the **same** core. Only the causal
forms can step; ``initial_state(batch_size)`` is the all-zero state of a
stream's start.
"""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import block_kernel, complex_bias
from keras_dccrn.layers.slicing import take

TIME_CROPS = ("causal", "dccrn")


def polyphase_taps(kernel_f, stride, crop_start):
    """Index arithmetic of a frequency-strided transposed convolution as ordinary convolutions.

    The full transposed convolution of ``x`` (``F`` bins) by ``w`` (``kernel_f``
    taps) with stride ``s`` is ``y[n] = sum_i w[n - s i] x[i]``; the layer keeps
    ``out[m] = y[m + crop_start]``. Output bin ``m = s j + p`` (phase ``p``) is
    then ``out[s j + p] = sum_u w[taps[p][u]] x[j + offset + u]`` with
    ``taps[p][u] = p + crop_start - s (offset + u)`` where that is a tap
    (``None`` where it is not, and ``x`` is zero outside ``[0, F)``): each
    phase is an ordinary stride-1 convolution of ``x`` over the same ``size``
    input bins.

    Args:
        kernel_f: frequency taps of the kernel.
        stride: frequency stride ``s``.
        crop_start: bins cropped at the start of the full output.

    Returns:
        ``(offset, taps)``: the first input bin of output block 0 relative to
        ``x[0]``, and ``s`` lists of ``size`` tap indices (or ``None``).
    """
    first = min(-(-(p + crop_start - kernel_f + 1) // stride) for p in range(stride))
    last = max((p + crop_start) // stride for p in range(stride))
    taps = []
    for p in range(stride):
        phase = []
        for u in range(last - first + 1):
            k = p + crop_start - stride * (first + u)
            phase.append(k if 0 <= k < kernel_f else None)
        taps.append(phase)
    return first, taps


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


class _ComplexConvBase(keras.layers.Layer):
    """Arguments, weights and the streaming window shared by the two complex convolutions."""

    def __init__(self, filters, kernel_size, strides, freq_padding, use_bias, kernel_initializer, **kwargs):
        super().__init__(**kwargs)
        _check_filters(filters)
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        if self.strides[1] != 1:
            raise ValueError(f"Time stride must be 1; received strides={self.strides!r}.")
        if not isinstance(freq_padding, int) or freq_padding < 0:
            raise ValueError(f"`freq_padding` must be a non-negative integer; received {freq_padding!r}.")
        self.freq_padding = freq_padding
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.05)
        )

    def _kernel_shape(self, in_channels):
        raise NotImplementedError

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(
                f"{self.name}: input channels must be even (real | imag); received input shape {input_shape}."
            )
        self.input_freq = input_shape[2]
        self.input_channels = int(channels)
        shape = self._kernel_shape(channels // 2)
        self.real_kernel = self.add_weight(
            name="real_kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.imag_kernel = self.add_weight(
            name="imag_kernel", shape=shape, initializer=self.kernel_initializer
        )
        if self.use_bias:
            self.real_bias = self.add_weight(name="real_bias", shape=(self.filters,), initializer="zeros")
            self.imag_bias = self.add_weight(name="imag_bias", shape=(self.filters,), initializer="zeros")

    def initial_state(self, batch_size=1):
        """All-zero streaming state ``[batch_size, state_frames, freq, 2 * in_channels]``."""
        if not self.built or self.input_freq is None:
            raise ValueError(f"{self.name}: build the layer on a known frequency size before streaming.")
        shape = (batch_size, self.state_frames, self.input_freq, self.input_channels)
        return ops.zeros(shape, self.compute_dtype)

    def _step(self, core, inputs, state, frame_rows=False):
        """``core`` on ``[state | inputs]`` along time, and the last ``state_frames`` of that window.

        With ``frame_rows`` a chunk of several (statically known) frames is convolved one output frame
        per batch row: each output frame's ``state_frames + 1`` input frames become a row of their own.
        The products are the same as on the whole window, at the price of copying the window
        ``state_frames + 1`` times; what changes is that a dynamic-range int8 conversion, which
        quantizes a convolution's input with one scale per batch row, then scales every frame on its
        own, as a stream of one hop per call does, instead of one scale for the whole chunk.
        """
        span = self.state_frames
        if state.shape[1] is not None and state.shape[1] != span:
            raise ValueError(
                f"{self.name}: the state must hold {span} frames ([batch, {span}, freq, channels]); "
                f"received shape {tuple(state.shape)}."
            )
        window = ops.concatenate([ops.cast(state, inputs.dtype), inputs], axis=1)  # [B, span + T, F, C]
        new_state = take(window, 1, ops.shape(window)[1] - span)
        frames = inputs.shape[1]
        if not frame_rows or frames is None or frames == 1:
            return core(window), new_state
        # shifted views [B, T, 1, F, C], view j holding frames j .. j + T - 1 -> [B, T, span + 1, F, C]
        views = [ops.expand_dims(take(window, 1, j, j + frames), 2) for j in range(span + 1)]
        rows = ops.concatenate(views, axis=2)
        # [B, T, span + 1, F, C] -> [B * T, span + 1, F, C]: one output frame's input frames per row
        rows = ops.reshape(rows, (-1, span + 1, window.shape[2], window.shape[3]))
        y = core(rows)  # [B * T, 1, F', C']
        # [B * T, 1, F', C'] -> [B, T, F', C']
        return ops.reshape(y, (ops.shape(window)[0], frames, y.shape[2], y.shape[3])), new_state

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            freq_padding=self.freq_padding,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ComplexConv2D(_ComplexConvBase):
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

    Streaming (causal only): :meth:`step` ``(chunk, state) -> (output, new_state)``
    with ``state`` the last ``(k_t - 1) * dil_t`` input frames
    ``[batch, (k_t - 1) * dil_t, freq, 2 * in_channels]`` (zeros at the start,
    :meth:`initial_state`); chunks of any frame count give, concatenated,
    ``call`` of the whole input.

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
        super().__init__(filters, kernel_size, strides, freq_padding, use_bias, kernel_initializer, **kwargs)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(
                "Frequency stride and dilation cannot both exceed 1; received "
                f"strides={self.strides!r}, dilation_rate={self.dilation_rate!r}."
            )
        self.causal = bool(causal)

    def _kernel_shape(self, in_channels):
        kf, kt = self.kernel_size
        return (kt, kf, in_channels, self.filters)  # (time, freq, in, out)

    def time_padding(self):
        """``(left, right)`` frames of zero padding on the time axis."""
        total = (self.kernel_size[1] - 1) * self.dilation_rate[1]
        if self.causal:
            return total, 0
        return total // 2, total - total // 2

    def _convolve(self, window, time_padding=(0, 0)):
        """The layer's computation: ``time_padding`` zero frames around ``window``, valid in time, ``freq_padding`` in frequency."""
        p = self.freq_padding
        x = ops.pad(window, [[0, 0], list(time_padding), [p, p], [0, 0]])
        kernel = block_kernel(self.real_kernel, self.imag_kernel, in_axis=2, out_axis=3)
        y = ops.conv(
            x,
            kernel,
            strides=(1, self.strides[0]),
            padding="valid",
            dilation_rate=(self.dilation_rate[1], self.dilation_rate[0]),
        )
        if self.use_bias:
            y = y + complex_bias(self.real_bias, self.imag_bias)
        return y

    def call(self, inputs):
        return self._convolve(inputs, self.time_padding())

    @property
    def state_frames(self):
        """Input frames a stream carries from chunk to chunk: ``(k_t - 1) * dil_t``."""
        return sum(self.time_padding())

    def step(self, inputs, state, frame_rows=False):
        """Convolves the next chunk of frames with the carried input frames in front.

        Args:
            inputs: ``[batch, frames, freq, 2 * in_channels]``, the next frames.
            state: ``[batch, state_frames, freq, 2 * in_channels]``, the last
                input frames before them (zeros at the start).
            frame_rows: convolve each output frame in a batch row of its own
                (the same outputs; see ``_step``).

        Returns:
            ``(outputs, new_state)``: ``[batch, frames, freq_out, 2 * filters]``
            and the last ``state_frames`` input frames.
        """
        if not self.causal:
            raise ValueError(f"{self.name}: only a causal convolution can stream; received causal=False.")
        return self._step(self._convolve, inputs, state, frame_rows)

    def compute_output_shape(self, input_shape):
        batch, frames, freq, _ = input_shape
        kf, _ = self.kernel_size
        if freq is not None:
            span = self.dilation_rate[0] * (kf - 1) + 1
            freq = (freq + 2 * self.freq_padding - span) // self.strides[0] + 1
        return (batch, frames, freq, 2 * self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(causal=self.causal, dilation_rate=self.dilation_rate)
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ComplexConv2DTranspose(_ComplexConvBase):
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

    Output frame ``t`` of the full transposed convolution is
    ``sum_k W[k] x[t - k]``: an ordinary convolution, valid in time, of the
    time-padded input with the time-reversed kernel, computing only the frames
    it keeps. ``call(inputs, crop_time=False)`` returns all
    ``frames + k_t - 1`` frames; :meth:`crop` then keeps the ``time_crop``
    ones (DCCRN's batch norm takes its training statistics in between).

    Along frequency the stride-``s`` transposed convolution is computed
    polyphase (:func:`polyphase_taps`): output bin ``s j + p`` only meets the
    kernel taps ``k = p + freq_padding (mod s)``, so each phase ``p`` is an
    ordinary stride-1 convolution of the zero-padded input with those taps,
    reversed. The ``s`` phase outputs ``[batch, frames, J, 2 * filters]`` are
    concatenated on the channel axis and reshaped to
    ``[batch, frames, J * s, 2 * filters]``, which interleaves them along
    frequency; the bins past ``freq_out`` are cropped. The result equals the
    transposed convolution without computing the products with the zeros a
    transposed convolution inserts between input bins (no ``TRANSPOSE_CONV``
    in TFLite, only ``CONV_2D``).

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
        crop_time: keep the ``time_crop`` frames (default) or all
            ``frames + k_t - 1``.

    Input shape:
        ``[batch, frames, freq, 2 * in_channels]``.

    Output shape:
        ``[batch, frames, (freq - 1) * s_f + k_f - 2 * freq_padding + output_padding,
        2 * filters]`` (``frames + k_t - 1`` frames with ``crop_time=False``).

    Streaming (``time_crop="causal"`` only): :meth:`step`
    ``(chunk, state) -> (output, new_state)`` with ``state`` the last
    ``k_t - 1`` input frames (zeros at the start, :meth:`initial_state`).

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
        super().__init__(filters, kernel_size, strides, freq_padding, use_bias, kernel_initializer, **kwargs)
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
        self.output_padding = output_padding
        self.time_crop = time_crop

    def _kernel_shape(self, in_channels):
        kf, kt = self.kernel_size
        return (kt, kf, self.filters, in_channels)  # (time, freq, out, in) as keras.ops.conv_transpose

    def _transpose(self, window, time_padding=(0, 0)):
        """The layer's computation: output frame ``t`` from frames ``t .. t + k_t - 1`` of the window
        (``window`` with ``time_padding`` zero frames around it)."""
        kf, kt = self.kernel_size
        stride = self.strides[0]
        offset, taps = polyphase_taps(kf, stride, self.freq_padding)
        size = len(taps[0])
        freq = window.shape[2]
        if freq is None:
            raise ValueError(f"{self.name}: the frequency size must be known; received shape {window.shape}.")
        freq_out = (freq - 1) * stride + kf - 2 * self.freq_padding + self.output_padding
        blocks = -(-freq_out // stride)  # output bins s j .. s j + s - 1 form block j
        # input bins offset .. offset + blocks + size - 2, zeros outside [0, freq): `blocks` valid outputs
        right = blocks + size - 1 + offset - freq
        x = ops.pad(window, [[0, 0], list(time_padding), [max(-offset, 0), max(right, 0)], [0, 0]])
        if offset > 0 or right < 0:
            x = take(x, 2, max(offset, 0), max(offset, 0) + blocks + size - 1)
        block = block_kernel(self.real_kernel, self.imag_kernel, in_axis=3, out_axis=2)  # [kt, kf, 2Co, 2Ci]
        grid = [ops.unstack(t, kf, axis=0) for t in ops.unstack(block, kt, axis=0)]  # kt x kf x [2Co, 2Ci]
        bias = complex_bias(self.real_bias, self.imag_bias) if self.use_bias else None
        phases = [None] * stride
        for p, row in enumerate(taps):
            used = [u for u, k in enumerate(row) if k is not None]
            if not used:
                continue
            first, last = used[0], used[-1] + 1
            # window frame t + j meets time tap kt - 1 - j of output frame t
            kernel = ops.stack(
                [ops.stack([grid[kt - 1 - j][row[u]] for u in range(first, last)]) for j in range(kt)]
            )  # [kt, taps, 2Co, 2Ci]
            kernel = ops.transpose(kernel, (0, 1, 3, 2))  # [kt, taps, 2Co, 2Ci] -> [kt, taps, 2Ci, 2Co]
            y = ops.conv(take(x, 2, first, blocks + last - 1), kernel, padding="valid")  # [B, T, blocks, 2Co]
            phases[p] = y if bias is None else y + bias
        present = next(y for y in phases if y is not None)
        empty = ops.zeros_like(present) if bias is None else ops.zeros_like(present) + bias
        y = ops.concatenate([empty if y is None else y for y in phases], axis=-1)  # [B, T, blocks, s * 2Co]
        shape = ops.shape(y)
        # phase-major channels: [B, T, blocks, s * 2Co] -> [B, T, blocks * s, 2Co]
        y = ops.reshape(y, (shape[0], shape[1], blocks * stride, 2 * self.filters))
        if blocks * stride != freq_out:
            y = take(y, 2, 0, freq_out)
        return y

    def time_padding(self, crop_time=True):
        """``(left, right)`` zero frames in front of ``call``'s core."""
        span = self.kernel_size[1] - 1
        if not crop_time:
            return span, span
        return (span, 0) if self.time_crop == "causal" else (0, span)

    def call(self, inputs, crop_time=True):
        return self._transpose(inputs, self.time_padding(crop_time))

    def crop(self, full):
        """The ``time_crop`` frames of ``call(inputs, crop_time=False)`` (``frames + k_t - 1`` -> ``frames``)."""
        span = self.kernel_size[1] - 1
        start = 0 if self.time_crop == "causal" else span
        return take(full, 1, start, ops.shape(full)[1] - (span - start))

    @property
    def state_frames(self):
        """Input frames a stream carries from chunk to chunk: ``k_t - 1``."""
        return self.kernel_size[1] - 1

    def step(self, inputs, state, frame_rows=False):
        """Causal transposed convolution of the next chunk with the carried frames in front.

        Args:
            inputs: ``[batch, frames, freq, 2 * in_channels]``, the next frames.
            state: ``[batch, k_t - 1, freq, 2 * in_channels]``, the last input
                frames before them (zeros at the start).
            frame_rows: compute each output frame in a batch row of its own
                (the same outputs; see ``_step``).

        Returns:
            ``(outputs, new_state)``: the causally cropped output frames and
            the last ``k_t - 1`` input frames.
        """
        if self.time_crop != "causal":
            raise ValueError(
                f"{self.name}: only time_crop='causal' can stream; received time_crop={self.time_crop!r} "
                "(it looks ahead)."
            )
        return self._step(self._transpose, inputs, state, frame_rows)

    def compute_output_shape(self, input_shape, crop_time=True):
        batch, frames, freq, _ = input_shape
        kf, kt = self.kernel_size
        if freq is not None:
            freq = (freq - 1) * self.strides[0] + kf - 2 * self.freq_padding + self.output_padding
        if not crop_time and frames is not None:
            frames = frames + kt - 1
        return (batch, frames, freq, 2 * self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(output_padding=self.output_padding, time_crop=self.time_crop)
        return config
