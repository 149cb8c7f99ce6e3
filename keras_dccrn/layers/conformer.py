"""Dilated dual-path conformer block of Uformer and its feed-forward and dilated convolution modules.

Conventions of the complex and real flavours: ``layers.feature_map``. The
attention modules of the block are in ``layers.attention``.
"""

import keras
from keras import ops

from keras_dccrn.layers.attention import (
    AxialAttention,
    complex_attention,
    local_attention_mask,
    real_attention,
)
from keras_dccrn.layers.complex_dense import ComplexDense, dense
from keras_dccrn.layers.complex_ops import complex_merge, complex_split
from keras_dccrn.layers.feature_map import ResidualModule, feature_channels, layer_norm, split_swish
from keras_dccrn.layers.fusion import BranchInteraction, EncoderDecoderAttention

__all__ = [
    "AxialAttention",
    "BranchInteraction",
    "ComplexDense",
    "DilatedConvModule",
    "DualPathConformerBlock",
    "EncoderDecoderAttention",
    "FeedForward",
    "complex_attention",
    "local_attention_mask",
    "real_attention",
    "split_swish",
]


@keras.saving.register_keras_serializable(package="keras_dccrn")
class FeedForward(ResidualModule):
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
        super().__init__(complex_valued=complex_valued, dropout=dropout, **kwargs)
        if not isinstance(expansion, (int, float)) or expansion <= 0:
            raise ValueError(f"`expansion` must be a positive number; received {expansion!r}.")
        self.expansion = expansion
        self.residual_factor = float(residual_factor)

    def build(self, input_shape):
        c = feature_channels(input_shape, self.complex_valued, self.name)
        hidden = max(1, int(round(self.expansion * c)))
        self.dense_in = dense(self.complex_valued, hidden, "dense_in", self.dtype_policy)
        self.dense_out = dense(self.complex_valued, c, "dense_out", self.dtype_policy)
        width = input_shape[-1]
        self.norm.build(input_shape)
        self.dense_in.build(input_shape)
        self.dense_out.build(tuple(input_shape[:-1]) + (width // c * hidden,))

    def call(self, inputs, training=None):
        y = split_swish(self.dense_in(self.norm(inputs)))
        y = self.dense_out(self.drop(y, training=training))
        return inputs + self.residual_factor * self.drop(y, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(expansion=self.expansion, residual_factor=self.residual_factor)
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class DilatedConvModule(ResidualModule):
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
        super().__init__(complex_valued=complex_valued, dropout=dropout, **kwargs)
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
        self.causal = bool(causal)
        self.depth_norms = [layer_norm(f"depth_norm_{i}", self.dtype_policy) for i in range(len(dilations))]

    def build(self, input_shape):
        c = feature_channels(input_shape, self.complex_valued, self.name)
        self.channels = c
        self.norm.build(input_shape)
        self.pointwise_in = dense(self.complex_valued, 2 * c, "pointwise_in", self.dtype_policy)
        self.pointwise_in.build(input_shape)
        self.pointwise_out = dense(self.complex_valued, c, "pointwise_out", self.dtype_policy)
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
        if self.complex_valued:
            xr, xi = complex_split(x)
            kr, ki = ops.split(kernel, 2, axis=2)
            # one depthwise conv for the four real products of (kr + i ki)(xr + i xi)
            x = ops.concatenate([xr, xi, xi, xr], axis=-1)
            kernel = ops.concatenate([kr, kr, -ki, ki], axis=2)
        x = ops.pad(x, [[0, 0], [left, right], [pf, pf], [0, 0]])
        y = ops.depthwise_conv(x, kernel, strides=1, padding="valid", dilation_rate=(dilation, 1))
        if self.complex_valued:
            # [kr xr | kr xi | -ki xi | ki xr] -> [kr xr - ki xi | kr xi + ki xr]
            from_kr, from_ki = ops.split(y, 2, axis=-1)
            y = from_kr + from_ki
        return y + bias

    def call(self, inputs, training=None):
        y = self.pointwise_in(self.norm(inputs))
        if self.complex_valued:
            # complex pointwise output is [ar | br | ai | bi]; GLU per part: [ar s(br) | ai s(bi)]
            ar, br, ai, bi = ops.split(y, 4, axis=-1)
            z = complex_merge(ar * ops.sigmoid(br), ai * ops.sigmoid(bi))
        else:
            a, b = ops.split(y, 2, axis=-1)
            z = a * ops.sigmoid(b)
        for kernel, bias, norm, d in zip(
            self.depth_kernels, self.depth_biases, self.depth_norms, self.dilations, strict=True
        ):
            z = z + split_swish(norm(self._depthwise(z, kernel, bias, d)))
        out = self.pointwise_out(z)
        return inputs + self.drop(out, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, dilations=self.dilations, causal=self.causal)
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
        self.norm = layer_norm("norm", dt)

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
