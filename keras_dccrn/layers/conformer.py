"""Uformer building blocks: complex & real dual-path conformer modules and branch fusion.

Every layer here works on feature maps ``[batch, frames, freq, channels]`` and
exists in two flavours selected by ``complex_valued``:

* complex (``True``): the channel axis holds ``2 * C`` values in the package's
  convention (real parts first, then imaginary parts, see
  ``layers.complex_ops``); linear maps are complex (:class:`ComplexDense`)
  and attention is the complex attention of :func:`complex_attention`.
* real (``False``): the channel axis holds ``C`` real values (Uformer's
  magnitude branch).

Choices made where the Uformer paper leaves room (documented once here,
referenced by the layers):

* Layer normalization of a complex map normalizes the ``2 * C`` real values
  of a time-frequency bin jointly (mean and variance over real and imaginary
  parts, one scale/offset per real channel).
* Non-linearities of complex maps are *split* activations (applied to the real
  and the imaginary parts separately), as DCCRN's PReLU.
* Complex linear maps have one complex bias ``b_r + i b_i``.
* No positional encoding: the dilated convolution of every block carries the
  order information, and the local time-attention window bounds the context.
"""

import math

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import block_kernel, complex_abs, complex_merge, complex_split

NEG_INF = -1e9


def _positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    return value


def _dropout_rate(value):
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1); received {value!r}.")
    return float(value)


def _channels(input_shape, complex_valued, name):
    """Feature count ``C`` (complex or real channels) of a map's last axis."""
    width = input_shape[-1]
    if width is None:
        raise ValueError(f"{name}: the channel axis must be known; received input shape {input_shape}.")
    if complex_valued:
        if width % 2:
            raise ValueError(
                f"{name}: a complex map needs an even channel axis; received shape {input_shape}."
            )
        return width // 2
    return width


def split_swish(x):
    """Swish applied elementwise (to real and imaginary parts separately)."""
    return x * ops.sigmoid(x)


def local_attention_mask(length, context, causal):
    """Boolean ``[length, length]`` mask (``True`` = query row may attend key column).

    Args:
        length: sequence length (int or scalar tensor).
        context: frames visible on each side of the query: only the past
            ``context`` frames when ``causal``, ``context`` past and
            ``context`` future frames otherwise; ``None`` means unlimited.
        causal: forbid every key after the query.
    """
    pos = ops.arange(length)
    delta = ops.expand_dims(pos, 1) - ops.expand_dims(pos, 0)  # query - key: [T, T]
    keep = ops.ones_like(delta, dtype="bool")
    if causal:
        keep = ops.logical_and(keep, delta >= 0)
    if context is not None:
        keep = ops.logical_and(keep, ops.abs(delta) <= context)
    return keep


def _softmax(scores, mask):
    """Softmax over the last axis in float32, masked entries get zero weight."""
    dtype = scores.dtype
    scores = ops.cast(scores, "float32")
    if mask is not None:
        scores = ops.where(mask, scores, NEG_INF)
    return ops.cast(ops.softmax(scores, axis=-1), dtype)


def real_attention(q, k, v, mask=None):
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d)) v``.

    Args:
        q: ``[..., Tq, d]``.
        k: ``[..., Tk, d]``.
        v: ``[..., Tk, dv]``.
        mask: optional boolean, broadcastable to ``[..., Tq, Tk]``.

    Returns:
        ``[..., Tq, dv]``.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) * scale  # [..., Tq, Tk]
    return ops.matmul(_softmax(scores, mask), v)


def complex_attention(q, k, v, mask=None):
    """Complex attention composed of real attentions (Complex Transformer, Yang et al. 2020).

    With ``A(a, b, c) = softmax(a b^T / sqrt(d)) c`` the real scaled
    dot-product attention and ``q = q_r + i q_i`` (likewise ``k``, ``v``)::

        Re = A(qr, kr, vr) - A(qr, ki, vi) - A(qi, kr, vi) - A(qi, ki, vr)
        Im = A(qr, kr, vi) + A(qr, ki, vr) + A(qi, kr, vr) - A(qi, ki, vi)

    i.e. ``(q k^T) v`` expanded by the complex product rule with a softmax on
    each of the four real score matrices. Computed with one batched matmul for
    the four ``(q_a, k_b)`` score matrices and one for their products with
    ``[v_r | v_i]`` (eight real attentions, four softmaxes).

    Args:
        q: ``[..., Tq, 2d]`` complex (real parts first).
        k: ``[..., Tk, 2d]`` complex.
        v: ``[..., Tk, 2dv]`` complex.
        mask: optional boolean, broadcastable to ``[..., Tq, Tk]``.

    Returns:
        ``[..., Tq, 2dv]`` complex.
    """
    qr, qi = complex_split(q)
    kr, ki = complex_split(k)
    scale = 1.0 / math.sqrt(qr.shape[-1])
    queries = ops.stack([qr, qr, qi, qi], axis=0)  # (a, b) = rr, ri, ir, ii: [4, ..., Tq, d]
    keys = ops.stack([kr, ki, kr, ki], axis=0)  # [4, ..., Tk, d]
    scores = ops.matmul(queries, ops.swapaxes(keys, -1, -2)) * scale  # [4, ..., Tq, Tk]
    out = ops.matmul(_softmax(scores, mask), ops.expand_dims(v, 0))  # [4, ..., Tq, 2dv]
    dv = v.shape[-1] // 2
    a_r, a_i = out[..., :dv], out[..., dv:]  # A(q_a, k_b, v_r), A(q_a, k_b, v_i)
    real = a_r[0] - a_i[1] - a_i[2] - a_r[3]
    imag = a_i[0] + a_r[1] + a_r[2] - a_i[3]
    return complex_merge(real, imag)


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
        self.units = _positive_int(units, "units")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        cin = _channels(input_shape, True, self.name)
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


def _dense(complex_valued, units, name, dtype):
    if complex_valued:
        return ComplexDense(units, name=name, dtype=dtype)
    return keras.layers.Dense(units, name=name, dtype=dtype)


def _layer_norm(name, dtype):
    return keras.layers.LayerNormalization(epsilon=1e-5, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class FeedForward(keras.layers.Layer):
    """Conformer half-step feed-forward module: ``x + 0.5 * W2 swish(W1 LN(x))``.

    Args:
        expansion: hidden width as a multiple of the input channels.
        complex_valued: complex (:class:`ComplexDense`, split swish) or real.
        dropout: dropout rate after the activation and after ``W2``.
        residual_factor: weight of the module output in the residual sum
            (0.5: the conformer's half step).
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, freq, channels]``.
        training: dropout on/off.

    Input shape:
        ``[batch, frames, freq, channels]`` (``2 * C`` when complex).

    Output shape:
        Same as input.

    References:
        Gulati et al., "Conformer", Interspeech 2020.
        Fu et al., "Uformer", ICASSP 2022.
    """

    def __init__(self, expansion=4, complex_valued=True, dropout=0.1, residual_factor=0.5, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(expansion, (int, float)) or expansion <= 0:
            raise ValueError(f"`expansion` must be a positive number; received {expansion!r}.")
        self.expansion = expansion
        self.complex_valued = bool(complex_valued)
        self.dropout = _dropout_rate(dropout)
        self.residual_factor = float(residual_factor)
        self.norm = _layer_norm("norm", self.dtype_policy)
        self.drop = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        c = _channels(input_shape, self.complex_valued, self.name)
        hidden = max(1, int(round(self.expansion * c)))
        self.dense_in = _dense(self.complex_valued, hidden, "dense_in", self.dtype_policy)
        self.dense_out = _dense(self.complex_valued, c, "dense_out", self.dtype_policy)
        width = input_shape[-1]
        self.norm.build(input_shape)
        self.dense_in.build(input_shape)
        self.dense_out.build(tuple(input_shape[:-1]) + (width // c * hidden,))

    def call(self, inputs, training=None):
        y = split_swish(self.dense_in(self.norm(inputs)))
        y = self.dense_out(self.drop(y, training=training))
        return inputs + self.residual_factor * self.drop(y, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            expansion=self.expansion,
            complex_valued=self.complex_valued,
            dropout=self.dropout,
            residual_factor=self.residual_factor,
        )
        return config


AXES = ("time", "freq")


@keras.saving.register_keras_serializable(package="keras_dccrn")
class AxialAttention(keras.layers.Layer):
    """Multi-head self-attention along time (TA) or frequency (FA) of a ``[B, T, F, C]`` map.

    Pre-norm residual module ``x + Dropout(W_o MHA(W_q y, W_k y, W_v y))``
    with ``y = LN(x)``. Time attention runs one sequence per frequency bin
    (``B * F`` sequences of ``T`` frames), frequency attention one per frame
    (``B * T`` sequences of ``F`` bins); heads split the channels. In the
    complex flavour the projections are complex and the attention is
    :func:`complex_attention`.

    Time attention is **local**: a frame attends to at most ``context``
    frames on each side, only past ones when ``causal`` (then output frame
    ``t`` depends on input frames ``t - context .. t``). It is evaluated as a
    band-masked ``T x T`` attention (batched matmuls, no loops over frames).

    Args:
        num_heads: attention heads; must divide the channels ``C``.
        axis: ``"time"`` or ``"freq"``.
        complex_valued: complex or real flavour.
        causal: time attention sees no future frame (ignored for ``"freq"``).
        context: frames visible on each side for time attention (``None``:
            the whole sequence); ignored for ``"freq"``.
        dropout: dropout rate of the module output.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, freq, channels]``.
        training: dropout on/off.

    Input shape:
        ``[batch, frames, freq, channels]`` (``2 * C`` when complex).

    Output shape:
        Same as input.

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
        Yang et al., "Complex Transformer", ICASSP 2020.
        Fu et al., "Uformer", ICASSP 2022.
    """

    def __init__(
        self, num_heads=4, axis="time", complex_valued=True, causal=True, context=None, dropout=0.1, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_heads = _positive_int(num_heads, "num_heads")
        if axis not in AXES:
            raise ValueError(f"`axis` must be one of {AXES}; received {axis!r}.")
        if context is not None:
            context = _positive_int(context, "context")
        self.axis = axis
        self.complex_valued = bool(complex_valued)
        self.causal = bool(causal)
        self.context = context
        self.dropout = _dropout_rate(dropout)
        self.norm = _layer_norm("norm", self.dtype_policy)
        self.drop = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        c = _channels(input_shape, self.complex_valued, self.name)
        if c % self.num_heads:
            raise ValueError(
                f"{self.name}: channels ({c}) must be divisible by num_heads ({self.num_heads}); "
                f"received input shape {input_shape}."
            )
        self.channels = c
        self.norm.build(input_shape)
        self.projections = []
        for name in ("query", "key", "value", "output"):
            layer = _dense(self.complex_valued, c, name, self.dtype_policy)
            layer.build(input_shape)
            self.projections.append(layer)

    @property
    def lookahead_frames(self):
        """Future frames an output frame depends on (``None``: unbounded)."""
        if self.axis == "freq" or self.causal:
            return 0
        return self.context

    def _heads(self, x):
        """``[B, T, F, P * C]`` -> ``[B, T, F, H, P * d]`` (``P`` = 2 parts when complex)."""
        b, t, f = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        h, d = self.num_heads, self.channels // self.num_heads
        if not self.complex_valued:
            return ops.reshape(x, (b, t, f, h, d))  # [B, T, F, C] -> [B, T, F, H, d]
        xr, xi = complex_split(x)
        xr = ops.reshape(xr, (b, t, f, h, d))  # [B, T, F, C] -> [B, T, F, H, d]
        xi = ops.reshape(xi, (b, t, f, h, d))  # [B, T, F, C] -> [B, T, F, H, d]
        return ops.concatenate([xr, xi], axis=-1)

    def _merge_heads(self, x):
        """Inverse of :meth:`_heads`."""
        b, t, f = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        c = self.channels
        if not self.complex_valued:
            return ops.reshape(x, (b, t, f, c))  # [B, T, F, H, d] -> [B, T, F, C]
        xr, xi = complex_split(x)
        xr = ops.reshape(xr, (b, t, f, c))  # [B, T, F, H, d] -> [B, T, F, C]
        xi = ops.reshape(xi, (b, t, f, c))  # [B, T, F, H, d] -> [B, T, F, C]
        return complex_merge(xr, xi)

    def call(self, inputs, training=None):
        y = self.norm(inputs)
        q, k, v = (self._heads(p(y)) for p in self.projections[:3])
        if self.axis == "time":
            perm = (0, 2, 3, 1, 4)  # [B, T, F, H, d] -> [B, F, H, T, d]
            mask = local_attention_mask(ops.shape(inputs)[1], self.context, self.causal)
        else:
            perm = (0, 1, 3, 2, 4)  # [B, T, F, H, d] -> [B, T, H, F, d]
            mask = None
        q, k, v = (ops.transpose(z, perm) for z in (q, k, v))
        outer = ops.shape(q)[:4]
        width = q.shape[-1]

        def flat(z):
            return ops.reshape(z, (-1, outer[3], width))  # [B, S1, H, S2, d] -> [B * S1 * H, S2, d]

        attend = complex_attention if self.complex_valued else real_attention
        out = attend(flat(q), flat(k), flat(v), mask)
        out = ops.reshape(
            out, (outer[0], outer[1], outer[2], outer[3], width)
        )  # [N, S2, d] -> [B, S1, H, S2, d]
        inverse = (0, 3, 1, 2, 4) if self.axis == "time" else (0, 1, 3, 2, 4)
        out = ops.transpose(out, inverse)  # back to [B, T, F, H, d]
        out = self.projections[3](self._merge_heads(out))
        return inputs + self.drop(out, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            axis=self.axis,
            complex_valued=self.complex_valued,
            causal=self.causal,
            context=self.context,
            dropout=self.dropout,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class DilatedConvModule(keras.layers.Layer):
    """Dilated convolution module (DC) of the dilated conformer.

    ``x + Dropout(W_out(z))`` where ``z`` is ``LN(x)`` through a pointwise
    map to ``2C`` channels and a GLU (``a * sigmoid(b)``, split for complex
    maps), then a stack of residual depthwise time-frequency convolutions, one
    per dilation rate (dilated along time only), each
    ``z = z + swish(LN(DWConv_d(z)))``. The depthwise convolutions are
    complex in the complex flavour (one complex kernel per channel) and pad
    time on the left only when ``causal``, so output frame ``t`` depends on
    input frames ``t - (k_t - 1) * sum(dilations) .. t``; otherwise the
    padding is split like :class:`ComplexConv2D` (``total // 2`` on the left).

    Args:
        kernel_size: ``(freq, time)`` depthwise kernel (odd frequency size).
        dilations: time dilation rates of the depthwise stack (TCN style).
        complex_valued: complex or real flavour.
        causal: left-only time padding.
        dropout: dropout rate of the module output.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, freq, channels]``.
        training: dropout on/off.

    Input shape:
        ``[batch, frames, freq, channels]`` (``2 * C`` when complex).

    Output shape:
        Same as input.

    References:
        Bai et al., "An Empirical Evaluation of Generic Convolutional and
        Recurrent Networks for Sequence Modeling" (TCN), 2018.
        Gulati et al., "Conformer", Interspeech 2020.
        Fu et al., "Uformer", ICASSP 2022.
    """

    def __init__(
        self,
        kernel_size=(3, 3),
        dilations=(1, 2, 4, 8),
        complex_valued=True,
        causal=True,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        kernel_size = tuple(kernel_size) if not isinstance(kernel_size, int) else (kernel_size, kernel_size)
        if len(kernel_size) != 2 or not all(isinstance(k, int) and k > 0 for k in kernel_size):
            raise ValueError(f"`kernel_size` must be a pair of positive integers; received {kernel_size!r}.")
        if kernel_size[0] % 2 == 0:
            raise ValueError(f"The frequency kernel size must be odd; received kernel_size={kernel_size!r}.")
        dilations = tuple(dilations)
        if not dilations or not all(isinstance(d, int) and d > 0 for d in dilations):
            raise ValueError(
                f"`dilations` must be a non-empty list of positive integers; received {dilations!r}."
            )
        self.kernel_size = kernel_size
        self.dilations = dilations
        self.complex_valued = bool(complex_valued)
        self.causal = bool(causal)
        self.dropout = _dropout_rate(dropout)
        self.norm = _layer_norm("norm", self.dtype_policy)
        self.depth_norms = [_layer_norm(f"depth_norm_{i}", self.dtype_policy) for i in range(len(dilations))]
        self.drop = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        c = _channels(input_shape, self.complex_valued, self.name)
        self.channels = c
        self.norm.build(input_shape)
        self.pointwise_in = _dense(self.complex_valued, 2 * c, "pointwise_in", self.dtype_policy)
        self.pointwise_in.build(input_shape)
        self.pointwise_out = _dense(self.complex_valued, c, "pointwise_out", self.dtype_policy)
        self.pointwise_out.build(input_shape)
        kf, kt = self.kernel_size
        parts = 2 if self.complex_valued else 1
        self.depth_kernels, self.depth_biases = [], []
        for i, norm in enumerate(self.depth_norms):
            norm.build(input_shape)
            # (time, freq, channels, 1); complex: real kernels then imaginary kernels
            self.depth_kernels.append(
                self.add_weight(
                    name=f"depth_kernel_{i}", shape=(kt, kf, parts * c, 1), initializer="glorot_uniform"
                )
            )
            self.depth_biases.append(
                self.add_weight(name=f"depth_bias_{i}", shape=(parts * c,), initializer="zeros")
            )

    def time_padding(self, dilation):
        """``(left, right)`` zero frames for one depthwise layer."""
        total = (self.kernel_size[1] - 1) * dilation
        if self.causal:
            return total, 0
        return total // 2, total - total // 2

    @property
    def lookahead_frames(self):
        """Future frames an output frame depends on."""
        return sum(self.time_padding(d)[1] for d in self.dilations)

    def _depthwise(self, x, kernel, bias, dilation):
        left, right = self.time_padding(dilation)
        pf = self.kernel_size[0] // 2
        c = self.channels
        if self.complex_valued:
            xr, xi = complex_split(x)
            kr, ki = kernel[:, :, :c], kernel[:, :, c:]
            # one depthwise conv for the four real products of (kr + i ki)(xr + i xi)
            x = ops.concatenate([xr, xi, xi, xr], axis=-1)
            kernel = ops.concatenate([kr, kr, -ki, ki], axis=2)
        x = ops.pad(x, [[0, 0], [left, right], [pf, pf], [0, 0]])
        y = ops.depthwise_conv(x, kernel, strides=1, padding="valid", dilation_rate=(dilation, 1))
        if self.complex_valued:
            # [kr xr | kr xi | -ki xi | ki xr] -> [kr xr - ki xi | kr xi + ki xr]
            y = y[..., : 2 * c] + y[..., 2 * c :]
        return y + bias

    def call(self, inputs, training=None):
        y = self.pointwise_in(self.norm(inputs))
        c = self.channels
        if self.complex_valued:
            # complex pointwise output is [ar | br | ai | bi]; GLU per part: [ar s(br) | ai s(bi)]
            ar, br, ai, bi = y[..., :c], y[..., c : 2 * c], y[..., 2 * c : 3 * c], y[..., 3 * c :]
            z = complex_merge(ar * ops.sigmoid(br), ai * ops.sigmoid(bi))
        else:
            z = y[..., :c] * ops.sigmoid(y[..., c:])
        for kernel, bias, norm, d in zip(
            self.depth_kernels, self.depth_biases, self.depth_norms, self.dilations, strict=True
        ):
            z = z + split_swish(norm(self._depthwise(z, kernel, bias, d)))
        out = self.pointwise_out(z)
        return inputs + self.drop(out, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size,
            dilations=self.dilations,
            complex_valued=self.complex_valued,
            causal=self.causal,
            dropout=self.dropout,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class DualPathConformerBlock(keras.layers.Layer):
    """Dilated dual-path conformer block of one branch (complex or real).

    ``FFN/2 -> time attention -> frequency attention -> dilated convolution
    -> FFN/2 -> LayerNorm``, each module a pre-norm residual module
    (:class:`FeedForward`, :class:`AxialAttention`, :class:`DilatedConvModule`).
    "Dual-path" refers to the time path (TA, DC) and the frequency path (FA).

    Args:
        num_heads: heads of both attentions.
        ffn_expansion: hidden width multiple of the feed-forward modules.
        conv_kernel_size: ``(freq, time)`` depthwise kernel of the DC module.
        dilations: time dilations of the DC module.
        complex_valued: complex or real flavour.
        causal: causal time attention and convolution.
        context: time-attention context (frames per side, ``None``: global).
        dropout: dropout rate of every module.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, freq, channels]``.
        training: dropout on/off.

    Input shape:
        ``[batch, frames, freq, channels]`` (``2 * C`` when complex).

    Output shape:
        Same as input.

    References:
        Gulati et al., "Conformer", Interspeech 2020.
        Fu et al., "Uformer", ICASSP 2022.
    """

    def __init__(
        self,
        num_heads=4,
        ffn_expansion=4,
        conv_kernel_size=(3, 3),
        dilations=(1, 2, 4, 8),
        complex_valued=True,
        causal=True,
        context=100,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.ffn_expansion = ffn_expansion
        self.conv_kernel_size = tuple(conv_kernel_size)
        self.dilations = tuple(dilations)
        self.complex_valued = bool(complex_valued)
        self.causal = bool(causal)
        self.context = context
        self.dropout = dropout
        dt = self.dtype_policy
        common = dict(complex_valued=complex_valued, dropout=dropout, dtype=dt)
        self.ffn_1 = FeedForward(ffn_expansion, name="ffn_1", **common)
        self.time_attention = AxialAttention(
            num_heads, "time", causal=causal, context=context, name="time_attention", **common
        )
        self.freq_attention = AxialAttention(num_heads, "freq", name="freq_attention", **common)
        self.conv = DilatedConvModule(
            conv_kernel_size, dilations, causal=causal, name="dilated_conv", **common
        )
        self.ffn_2 = FeedForward(ffn_expansion, name="ffn_2", **common)
        self.norm = _layer_norm("norm", dt)

    def _modules(self):
        return [self.ffn_1, self.time_attention, self.freq_attention, self.conv, self.ffn_2]

    def build(self, input_shape):
        for module in self._modules():
            module.build(input_shape)
        self.norm.build(input_shape)

    @property
    def lookahead_frames(self):
        """Future frames an output frame depends on (``None``: unbounded)."""
        attention = self.time_attention.lookahead_frames
        if attention is None:
            return None
        return attention + self.conv.lookahead_frames

    def call(self, inputs, training=None):
        x = inputs
        for module in self._modules():
            x = module(x, training=training)
        return self.norm(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            ffn_expansion=self.ffn_expansion,
            conv_kernel_size=self.conv_kernel_size,
            dilations=self.dilations,
            complex_valued=self.complex_valued,
            causal=self.causal,
            context=self.context,
            dropout=self.dropout,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class BranchInteraction(keras.layers.Layer):
    """Complex-real information interaction of Uformer's hybrid encoder/decoder.

    Each branch is modulated by a gate computed from the other branch, at
    every time-frequency bin::

        complex_out = complex * sigmoid(W_m real + b_m)     (same gate on re and im)
        real_out    = real * sigmoid(W_c |complex| + b_c)

    so the magnitude branch rescales the complex features without touching
    their phase, and the complex branch's magnitudes rescale the magnitude
    features. ``W_m``/``W_c`` are pointwise (1x1) maps across channels.

    Args:
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[complex, real]``: ``[B, T, F, 2 * C]`` and ``[B, T, F, M]``.

    Input shape:
        ``[[batch, frames, freq, 2 * C], [batch, frames, freq, M]]``.

    Output shape:
        Same as input (a list of the two modulated maps).

    References:
        Fu et al., "Uformer", ICASSP 2022 (hybrid encoder and decoder).
    """

    def build(self, input_shape):
        complex_shape, real_shape = input_shape
        c = _channels(complex_shape, True, self.name)
        m = _channels(real_shape, False, self.name)
        self.complex_gate = keras.layers.Dense(c, name="complex_gate", dtype=self.dtype_policy)
        self.real_gate = keras.layers.Dense(m, name="real_gate", dtype=self.dtype_policy)
        self.complex_gate.build(real_shape)
        self.real_gate.build(tuple(complex_shape[:-1]) + (c,))

    def call(self, inputs):
        z, m = inputs
        zr, zi = complex_split(z)
        gate_c = ops.sigmoid(self.complex_gate(m))
        gate_m = ops.sigmoid(self.real_gate(complex_abs(z, 1e-8)))
        return [complex_merge(zr * gate_c, zi * gate_c), m * gate_m]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[0]), tuple(input_shape[1])]


@keras.saving.register_keras_serializable(package="keras_dccrn")
class EncoderDecoderAttention(keras.layers.Layer):
    """Encoder-decoder attention on a U-Net skip connection (attention gate).

    The decoder input ``D`` (query) decides, at every time-frequency bin and
    channel, how much of the encoder output ``E`` (key/value) is passed on::

        h = act(W_e E + W_d D)            (complex maps: complex W, split ReLU)
        a = sigmoid(W_a h + b_a)          (real, one weight per bin and channel of E)
        out = E * a                       (complex E: the same a on re and im)

    The gated skip is then concatenated with ``D`` by the decoder layer. The
    gate is pointwise, so it adds no look-ahead and costs ``O(T F C)``.

    Args:
        attention_channels: width of ``h`` (``None``: the channels of ``E``).
        complex_valued: complex or real flavour.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[encoder, decoder]`` maps with the same frames and bins.

    Input shape:
        ``[[batch, frames, freq, channels_e], [batch, frames, freq, channels_d]]``.

    Output shape:
        ``[batch, frames, freq, channels_e]``.

    References:
        Oktay et al., "Attention U-Net", MIDL 2018.
        Fu et al., "Uformer", ICASSP 2022 (encoder decoder attention).
    """

    def __init__(self, attention_channels=None, complex_valued=True, **kwargs):
        super().__init__(**kwargs)
        if attention_channels is not None:
            attention_channels = _positive_int(attention_channels, "attention_channels")
        self.attention_channels = attention_channels
        self.complex_valued = bool(complex_valued)

    def build(self, input_shape):
        enc_shape, dec_shape = input_shape
        c = _channels(enc_shape, self.complex_valued, self.name)
        _channels(dec_shape, self.complex_valued, self.name)
        hidden = self.attention_channels or c
        dt = self.dtype_policy
        if self.complex_valued:
            self.encoder_proj = ComplexDense(hidden, name="encoder_proj", dtype=dt)
            self.decoder_proj = ComplexDense(hidden, use_bias=False, name="decoder_proj", dtype=dt)
        else:
            self.encoder_proj = keras.layers.Dense(hidden, name="encoder_proj", dtype=dt)
            self.decoder_proj = keras.layers.Dense(hidden, use_bias=False, name="decoder_proj", dtype=dt)
        self.gate = keras.layers.Dense(c, name="gate", dtype=dt)
        self.encoder_proj.build(enc_shape)
        self.decoder_proj.build(dec_shape)
        parts = 2 if self.complex_valued else 1
        self.gate.build(tuple(enc_shape[:-1]) + (parts * hidden,))

    def call(self, inputs):
        enc, dec = inputs
        h = ops.relu(self.encoder_proj(enc) + self.decoder_proj(dec))
        gate = ops.sigmoid(self.gate(h))
        if self.complex_valued:
            er, ei = complex_split(enc)
            return complex_merge(er * gate, ei * gate)
        return enc * gate

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(attention_channels=self.attention_channels, complex_valued=self.complex_valued)
        return config
