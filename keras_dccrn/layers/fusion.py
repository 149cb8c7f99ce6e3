"""Uformer fusion layers: complex-real branch interaction and encoder-decoder attention.

Conventions of the complex and real flavours: ``layers.feature_map``.
"""

import keras
from keras import ops

from keras_dccrn.layers.complex_dense import dense
from keras_dccrn.layers.complex_ops import complex_abs, complex_merge, complex_split
from keras_dccrn.layers.feature_map import feature_channels, positive_int


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
        c = feature_channels(complex_shape, True, self.name)
        m = feature_channels(real_shape, False, self.name)
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
            attention_channels = positive_int(attention_channels, "attention_channels")
        self.attention_channels = attention_channels
        self.complex_valued = bool(complex_valued)

    def build(self, input_shape):
        enc_shape, dec_shape = input_shape
        c = feature_channels(enc_shape, self.complex_valued, self.name)
        feature_channels(dec_shape, self.complex_valued, self.name)
        hidden = self.attention_channels or c
        dt = self.dtype_policy
        self.encoder_proj = dense(self.complex_valued, hidden, "encoder_proj", dt)
        self.decoder_proj = dense(self.complex_valued, hidden, "decoder_proj", dt, use_bias=False)
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
