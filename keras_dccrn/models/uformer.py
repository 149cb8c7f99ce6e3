"""Uformer: U-Net based dilated complex & real dual-path conformer network (the distillation teacher).

Implementation of Fu et al., "Uformer: A Unet based dilated complex & real
dual-path conformer network for simultaneous speech enhancement and
dereverberation", ICASSP 2022 (arXiv:2111.06015), following the paper (the
public code differs: it uses global time attention and no encoder-decoder
attention). Data flow::

    wave -> STFT (400/160/512, hann) -> drop DC bin -> X [B, T, 256, 2], |X| [B, T, 256, 1]
    hybrid encoder, 6 x:  complex: ComplexConv2D -> complex BN -> PReLU
                          real:    Conv2D        -> BN         -> PReLU
                          -> BranchInteraction (each branch modulated by the other)
    bottleneck, num_blocks x: DualPathConformerBlock (complex) | DualPathConformerBlock (real)
                          -> BranchInteraction
    hybrid decoder, 6 x:  skip = EncoderDecoderAttention(encoder out, decoder in) per branch
                          complex: ComplexConv2DTranspose(concat[decoder in, skip]) -> BN -> PReLU
                          real:    Conv2DTranspose(concat[decoder in, skip])       -> BN -> PReLU
                          -> BranchInteraction          (the last layer: no BN/PReLU/interaction)
    masks: complex M_c [B, T, 256, 2] and real M_m [B, T, 256, 1] for bins 1..256 (the DC output is 0)
    Y = X * (M_c / |M_c|) * (tanh(|M_c|) + sigmoid(M_m)) / 2 -> ISTFT -> clip to [-1, 1]

i.e. the phase is the noisy phase rotated by the complex mask and the
magnitude is the mean of the complex branch's (DCCRN-E style, ``tanh|M_c| |X|``)
and the magnitude branch's (``sigmoid(M_m) |X|``) estimates.

Choices made where the paper leaves room, or where its exact formulation
(layer widths, interaction and encoder-decoder attention equations) could
not be checked against the paper text when this was written (the paper
configuration is the ``uformer`` preset; see ``keras_dccrn.models.PRESETS``):

* Channels: complex branch ``(8, 16, 32, 64, 128, 128)`` complex channels
  (each has a real and an imaginary part), magnitude branch the same real
  channels; kernel ``(5, 2)``, stride ``(2, 1)`` on ``(freq, time)``, so the
  bottleneck is 4 bins x 128 channels. Decoder layer ``i`` mirrors encoder
  layer ``5 - i`` and outputs 1 channel (the mask) at the end.
* Bottleneck: 4 dual-path conformer blocks per branch, 4 heads, feed-forward
  expansion 5 (hidden 640), dilated depthwise convolution ``(3 freq, 3 time)``
  with time dilations ``(1, 2, 4, 8)``. With the channels above this gives
  9,282,241 trainable parameters, 1.9% below the paper's 9.46M
  (``tests/test_uformer.py`` checks the 5% band). The feed-forward width was
  the knob used to reach the figure (expansion 4: 8.49M, -10%).
* Time attention is local: ``attention_context=100`` frames (1 s at the
  10 ms hop) on each side, past only in the causal variant. Frequency
  attention is global over the 4 bottleneck bins. No positional encoding.
* Complex attention: the 8 real attentions of the Complex Transformer
  (``layers.attention.complex_attention``).
* Complex-real interaction (after every encoder layer, conformer block and
  decoder layer but the last): ``C * sigmoid(W M)`` and ``M * sigmoid(W |C|)``
  (``layers.fusion.BranchInteraction``).
* Encoder-decoder attention: an attention gate (decoder input as query,
  encoder output as key/value) that reweights the encoder output of the skip
  per bin and channel before the usual concatenation
  (``layers.fusion.EncoderDecoderAttention``).
* Batch norm: complex (whitening) BN in the complex branch, ordinary BN in
  the magnitude branch; layer norms everywhere in the bottleneck.
* The magnitude branch sees the uncompressed ``|X|``; no power-law
  compression anywhere in the model.
* Causal variant (``causal=True``): causal encoder convolutions, causal
  decoder crop, causal local time attention and causal dilated convolutions;
  output sample ``n`` depends on input samples ``<= n + 399`` (the STFT
  frame, see :attr:`Uformer.lookahead_samples`). Non-causal variant: one
  frame of look-ahead per encoder and decoder layer (split padding and
  DCCRN's transposed-conv crop), symmetric attention windows and centred
  dilated convolutions.
* ``return_features=True`` returns the **complex branch** maps (after the
  complex-real interaction, so they carry magnitude-branch information) in
  the package's complex convention ``[B, T, F, 2C]``: 6 encoder outputs and 6
  decoder outputs (the last is the complex mask, 2 channels), the same
  convention as DCCRN's features; frames are 10 ms apart (DCCRN: 6.25 ms).
"""

import keras
from keras import ops

from keras_dccrn.layers.complex_conv import ComplexConv2D, ComplexConv2DTranspose
from keras_dccrn.layers.complex_ops import (
    complex_abs,
    complex_concat,
    complex_merge,
    complex_multiply,
    complex_split,
)
from keras_dccrn.layers.conformer import DualPathConformerBlock
from keras_dccrn.layers.fusion import BranchInteraction, EncoderDecoderAttention
from keras_dccrn.layers.slicing import take
from keras_dccrn.models.base import NORM_MODES, SpectralMaskingModel, norm_layer, prelu


def _channel_list(value, name):
    value = list(value)
    if not value or any(not isinstance(c, int) or isinstance(c, bool) or c <= 0 for c in value):
        raise ValueError(f"`{name}` must be a non-empty list of positive integers; received {value!r}.")
    return value


@keras.saving.register_keras_serializable(package="keras_dccrn")
class Uformer(SpectralMaskingModel):
    """Uformer speech enhancement (and dereverberation) network.

    Waveform in, same-length waveform out. See the module docstring for the
    data flow and for every design choice not fixed by the paper. The STFT,
    the masking tail and the look-ahead arithmetic are the
    :class:`~keras_dccrn.models.base.SpectralMaskingModel` shell's; the
    Uformer does not stream (its attention, dilated convolutions and
    magnitude branch have no streaming step), also when causal.

    Args:
        complex_channels: complex channels of the 6 complex encoder layers.
        magnitude_channels: channels of the magnitude (real) encoder layers;
            same length as ``complex_channels``.
        kernel_size: ``(freq, time)`` kernel of every encoder/decoder layer.
        num_blocks: dual-path conformer blocks per branch.
        num_heads: attention heads (must divide both bottleneck widths).
        ffn_expansion: feed-forward hidden width multiple.
        conv_kernel_size: ``(freq, time)`` depthwise kernel of the dilated
            convolution module.
        dilations: time dilations of the dilated convolution module.
        attention_context: frames visible on each side in time attention
            (past frames only when ``causal``); ``None`` for global time
            attention (unbounded look-ahead in the non-causal variant).
        causal: build the causal variant (see :attr:`lookahead_samples`).
        batch_norm: ``"complex"`` (whitening) or ``"naive"`` BN of the
            complex branch.
        dropout: dropout rate of the conformer modules.
        frame_length, frame_step, fft_length, window: the STFT (see
            :class:`~keras_dccrn.models.base.SpectralMaskingModel`);
            ``fft_length // 2`` must be divisible by ``2 ** len(complex_channels)``.
        **kwargs: base ``Model`` arguments (``name``, ``dtype``).

    Call arguments:
        inputs: waveform ``[batch, samples]`` float32 at 16 kHz.
        training: training mode (batch norm statistics, dropout).
        return_features: also return the 12 intermediate feature maps.

    Input shape:
        ``[batch, samples]``, any length.

    Output shape:
        ``[batch, samples]``; with ``return_features=True`` a tuple
        ``(wave, features)`` where ``features`` lists the 6 encoder and 6
        decoder complex-branch outputs, each ``[batch, frames, freq, 2C]``.

    References:
        Fu et al., "Uformer: A Unet based dilated complex & real dual-path
        conformer network for simultaneous speech enhancement and
        dereverberation", ICASSP 2022, arXiv:2111.06015.
    """

    def __init__(
        self,
        complex_channels=(8, 16, 32, 64, 128, 128),
        magnitude_channels=(8, 16, 32, 64, 128, 128),
        kernel_size=(5, 2),
        num_blocks=4,
        num_heads=4,
        ffn_expansion=5,
        conv_kernel_size=(3, 3),
        dilations=(1, 2, 4, 8),
        attention_context=100,
        causal=True,
        batch_norm="complex",
        dropout=0.1,
        frame_length=400,
        frame_step=160,
        fft_length=512,
        window="hann",
        **kwargs,
    ):
        super().__init__(
            frame_length=frame_length, frame_step=frame_step, fft_length=fft_length, window=window, **kwargs
        )
        complex_channels = _channel_list(complex_channels, "complex_channels")
        magnitude_channels = _channel_list(magnitude_channels, "magnitude_channels")
        if len(magnitude_channels) != len(complex_channels):
            raise ValueError(
                "`magnitude_channels` and `complex_channels` must have the same length; received "
                f"{magnitude_channels!r} and {complex_channels!r}."
            )
        if not isinstance(num_blocks, int) or num_blocks < 0:
            raise ValueError(f"`num_blocks` must be a non-negative integer; received {num_blocks!r}.")
        if batch_norm not in NORM_MODES:
            raise ValueError(f"`batch_norm` must be one of {NORM_MODES}; received {batch_norm!r}.")
        kernel_size = tuple(kernel_size)
        if len(kernel_size) != 2 or not all(isinstance(k, int) and k > 0 for k in kernel_size):
            raise ValueError(f"`kernel_size` must be a pair of positive integers; received {kernel_size!r}.")
        freq = fft_length // 2 if isinstance(fft_length, int) else None
        if freq is None or freq <= 0 or freq % (2 ** len(complex_channels)):
            raise ValueError(
                f"`fft_length // 2` must be divisible by 2 ** len(complex_channels) "
                f"({2 ** len(complex_channels)}); received fft_length={fft_length!r}."
            )
        self.complex_channels = complex_channels
        self.magnitude_channels = magnitude_channels
        self.kernel_size = kernel_size
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.ffn_expansion = ffn_expansion
        self.conv_kernel_size = tuple(conv_kernel_size)
        self.dilations = tuple(dilations)
        self.attention_context = attention_context
        self.causal = bool(causal)
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.time_crop = "causal" if self.causal else "dccrn"

        kf, kt = kernel_size
        pad_f = kf // 2
        n = len(complex_channels)
        self.encoder_convs, self.encoder_norms, self.encoder_acts = [], [], []
        self.mag_encoder_convs, self.mag_encoder_norms, self.mag_encoder_acts = [], [], []
        self.encoder_fusions = []
        for i, (c, m) in enumerate(zip(complex_channels, magnitude_channels, strict=True)):
            self.encoder_convs.append(
                ComplexConv2D(
                    c, kernel_size, (2, 1), freq_padding=pad_f, causal=self.causal, name=f"enc_conv_{i}"
                )
            )
            self.encoder_norms.append(norm_layer(self.batch_norm, f"enc_norm_{i}"))
            self.encoder_acts.append(prelu(f"enc_prelu_{i}"))
            self.mag_encoder_convs.append(
                keras.layers.Conv2D(m, (kt, kf), strides=(1, 2), padding="valid", name=f"mag_enc_conv_{i}")
            )
            self.mag_encoder_norms.append(norm_layer("naive", f"mag_enc_norm_{i}"))
            self.mag_encoder_acts.append(prelu(f"mag_enc_prelu_{i}"))
            self.encoder_fusions.append(BranchInteraction(name=f"enc_fusion_{i}"))

        block_args = dict(
            num_heads=num_heads,
            ffn_expansion=ffn_expansion,
            conv_kernel_size=self.conv_kernel_size,
            dilations=self.dilations,
            causal=self.causal,
            context=attention_context,
            dropout=dropout,
        )
        self.blocks, self.mag_blocks, self.block_fusions = [], [], []
        for i in range(num_blocks):
            self.blocks.append(
                DualPathConformerBlock(complex_valued=True, name=f"conformer_{i}", **block_args)
            )
            self.mag_blocks.append(
                DualPathConformerBlock(complex_valued=False, name=f"mag_conformer_{i}", **block_args)
            )
            self.block_fusions.append(BranchInteraction(name=f"conformer_fusion_{i}"))

        self.skip_attentions, self.mag_skip_attentions = [], []
        self.decoder_convs, self.decoder_norms, self.decoder_acts = [], [], []
        self.mag_decoder_convs, self.mag_decoder_norms, self.mag_decoder_acts = [], [], []
        self.decoder_fusions = []
        for i in range(n):
            level = n - 1 - i
            c_out = complex_channels[level - 1] if level else 1
            m_out = magnitude_channels[level - 1] if level else 1
            self.skip_attentions.append(
                EncoderDecoderAttention(complex_valued=True, name=f"skip_attention_{i}")
            )
            self.mag_skip_attentions.append(
                EncoderDecoderAttention(complex_valued=False, name=f"mag_skip_attention_{i}")
            )
            self.decoder_convs.append(
                ComplexConv2DTranspose(
                    c_out,
                    kernel_size,
                    (2, 1),
                    freq_padding=pad_f,
                    output_padding=1,
                    time_crop=self.time_crop,
                    name=f"dec_conv_{i}",
                )
            )
            self.mag_decoder_convs.append(
                keras.layers.Conv2DTranspose(
                    m_out, (kt, kf), strides=(1, 2), padding="valid", name=f"mag_dec_conv_{i}"
                )
            )
            if level:
                self.decoder_norms.append(norm_layer(self.batch_norm, f"dec_norm_{i}"))
                self.decoder_acts.append(prelu(f"dec_prelu_{i}"))
                self.mag_decoder_norms.append(norm_layer("naive", f"mag_dec_norm_{i}"))
                self.mag_decoder_acts.append(prelu(f"mag_dec_prelu_{i}"))
                self.decoder_fusions.append(BranchInteraction(name=f"dec_fusion_{i}"))

    default_loss = "uformer"

    @property
    def lookahead_frames(self):
        """Future STFT frames the network (not the STFT) looks at (``None``: unbounded).

        With :attr:`lookahead_samples` (the shell's): causal variant 399
        samples (24.9 ms) at 400/160. Non-causal ``uformer_noncausal``: 12
        frames from the encoder/decoder plus, per conformer block, 100
        (attention) + 15 (dilated convolutions) frames: 472 frames = 75,919
        samples (4.7 s); ``None`` with global time attention.
        """
        if self.causal:
            return 0
        kt = self.kernel_size[1]
        n = len(self.complex_channels)
        encoder = n * ((kt - 1) - (kt - 1) // 2)  # split padding: the right part
        decoder = n * (kt - 1)  # DCCRN crop
        if self.num_blocks and self.attention_context is None:
            return None
        bottleneck = sum(block.lookahead_frames for block in self.blocks)
        return encoder + bottleneck + decoder

    def streaming_refusal(self):
        return (
            "a Uformer has no streaming step (attention, dilated convolutions, magnitude branch); "
            "only causal DCCRN models stream (time_crop='causal', e.g. preset 'distil_dccrn')"
        )

    def _mag_conv(self, conv, x):
        kf, kt = self.kernel_size
        total = kt - 1
        left = total if self.causal else total // 2
        pf = kf // 2
        x = ops.pad(x, [[0, 0], [left, total - left], [pf, pf], [0, 0]])
        return conv(x)

    def _mag_deconv(self, conv, x):
        kf, kt = self.kernel_size
        frames, freq = ops.shape(x)[1], ops.shape(x)[2]
        y = conv(x)  # [B, T + kt - 1, 2 (F - 1) + kf, M]
        start_t = 0 if self.causal else kt - 1
        pf = kf // 2
        return take(take(y, 1, start_t, start_t + frames), 2, pf, pf + 2 * freq)

    def apply_mask(self, spectrum, mask):
        """``Y = X * (M_c / |M_c|) * (tanh(|M_c|) + sigmoid(M_m)) / 2`` (see the module docstring)."""
        complex_mask, magnitude_mask = mask
        mask_abs = complex_abs(complex_mask, 1e-8)  # [B, T, bins - 1, 1]
        gain = 0.5 * (ops.tanh(mask_abs) + ops.sigmoid(magnitude_mask)) / mask_abs
        mr, mi = complex_split(complex_mask)
        return complex_multiply(spectrum, complex_merge(mr * gain, mi * gain))

    def estimate(self, spectrum, training=None, states=None, frame_rows=False):
        x = spectrum
        m = complex_abs(x, 1e-8)  # |X|: [B, T, bins - 1, 1]

        skips, mag_skips, features = [], [], []
        for i, fusion in enumerate(self.encoder_fusions):
            x = self.encoder_acts[i](self.encoder_norms[i](self.encoder_convs[i](x), training=training))
            m = self._mag_conv(self.mag_encoder_convs[i], m)
            m = self.mag_encoder_acts[i](self.mag_encoder_norms[i](m, training=training))
            x, m = fusion([x, m])
            skips.append(x)
            mag_skips.append(m)
        features.extend(skips)

        for block, mag_block, fusion in zip(self.blocks, self.mag_blocks, self.block_fusions, strict=True):
            x, m = fusion([block(x, training=training), mag_block(m, training=training)])

        n = len(self.decoder_convs)
        for i in range(n):
            skip = self.skip_attentions[i]([skips[-1 - i], x])
            mag_skip = self.mag_skip_attentions[i]([mag_skips[-1 - i], m])
            x = self.decoder_convs[i](complex_concat([x, skip]))
            m = self._mag_deconv(self.mag_decoder_convs[i], ops.concatenate([m, mag_skip], axis=-1))
            if i < n - 1:
                x = self.decoder_acts[i](self.decoder_norms[i](x, training=training))
                m = self.mag_decoder_acts[i](self.mag_decoder_norms[i](m, training=training))
                x, m = self.decoder_fusions[i]([x, m])
            features.append(x)
        return (x, m), features, {}

    def get_config(self):
        config = super().get_config()
        config.update(
            complex_channels=self.complex_channels,
            magnitude_channels=self.magnitude_channels,
            kernel_size=self.kernel_size,
            num_blocks=self.num_blocks,
            num_heads=self.num_heads,
            ffn_expansion=self.ffn_expansion,
            conv_kernel_size=self.conv_kernel_size,
            dilations=self.dilations,
            attention_context=self.attention_context,
            causal=self.causal,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
        )
        return config
