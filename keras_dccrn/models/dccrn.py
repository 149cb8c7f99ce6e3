"""DCCRN: Deep Complex Convolution Recurrent Network (and the Distil-DCCRN student)."""

import keras
from keras import ops

from keras_dccrn.layers.complex_conv import TIME_CROPS, ComplexConv2D, ComplexConv2DTranspose
from keras_dccrn.layers.complex_lstm import ComplexLSTM
from keras_dccrn.layers.complex_ops import (
    complex_abs,
    complex_concat,
    complex_merge,
    complex_multiply,
    complex_split,
)
from keras_dccrn.models.base import NORM_MODES, SpectralMaskingModel, norm_layer, prelu, run_layer

MASKING_MODES = ("E", "C", "R")
RNN_TYPES = ("complex", "real")


def apply_mask(spec, mask, masking_mode):
    """Applies a DCCRN mask ``[B, T, F, 2]`` to a spectrum ``[B, T, F, 2]``.

    * ``"E"``: ``Y = tanh(|M|) |X| exp(i (angle X + angle M))``, computed as
      the complex product ``X * M * tanh(|M|) / |M|`` with
      ``|M| = sqrt(Mr^2 + Mi^2 + 1e-8)``; the same value as DCCRN's
      ``atan2``/``cos``/``sin`` form without trigonometric ops, and smooth at
      ``M = 0`` (where it tends to ``X * M``).
    * ``"C"``: complex multiplication ``Y = X * M``.
    * ``"R"``: real and imaginary parts masked separately.
    """
    if masking_mode == "E":
        mag = complex_abs(mask, 1e-8)
        gain = ops.tanh(mag) / mag
        mr, mi = complex_split(mask)
        return complex_multiply(spec, complex_merge(mr * gain, mi * gain))
    if masking_mode == "C":
        return complex_multiply(spec, mask)
    if masking_mode == "R":
        return spec * mask
    raise ValueError(f"`masking_mode` must be one of {MASKING_MODES}; received {masking_mode!r}.")


@keras.saving.register_keras_serializable(package="keras_dccrn")
class DCCRN(SpectralMaskingModel):
    """Deep Complex Convolution Recurrent Network for speech enhancement.

    Waveform in, same-length waveform out::

        STFT -> drop DC bin -> 6 x [ComplexConv2D -> BN -> PReLU]   (e1..e6)
             -> complex LSTM (DCCRN-CL) or real LSTM + dense (DCCRN-R/C/E)
             -> 6 x [complex concat skip -> ComplexConv2DTranspose -> BN -> PReLU]
                (no BN/PReLU after the last; d1..d6, d6 is the mask)
             -> pad DC bin -> mask (E, C or R) -> ISTFT -> clip to [-1, 1]

    The encoder is causal in time. The decoder crops its transposed
    convolutions either causally (``time_crop="causal"``: the whole model is
    causal up to the STFT frame) or like the official code's ``out[..., 1:]``
    (``time_crop="dccrn"``: one frame of look-ahead per decoder layer). See
    :attr:`lookahead_samples`. As in the official code (``decoder[i]`` is
    ``ConvTranspose -> BN -> PReLU``, the crop follows it), each decoder
    layer's batch norm sees the **full** transposed-convolution output
    (``frames + k_t - 1`` frames) and the time crop comes after the PReLU, so
    training-mode batch statistics include the cropped frame(s). In
    inference batch norm and PReLU act per element and the order does not
    matter.

    The STFT, the masking tail, streaming and the default loss are the
    :class:`~keras_dccrn.models.base.SpectralMaskingModel` shell's; a causal
    model (``time_crop="causal"``, e.g. the ``distil_dccrn`` preset) streams
    with :meth:`step` (see :mod:`keras_dccrn.streaming`).

    Args:
        channels: encoder channel counts **in DCCRN's convention** (real +
            imaginary, so 32 means 16 complex channels), one per layer.
        kernel_size: ``(freq, time)`` kernel of every (de)conv layer.
        rnn_type: ``"complex"`` (complex LSTM, DCCRN-CL) or ``"real"`` (real
            LSTM on the flattened features followed by a dense layer).
        rnn_layers: number of LSTM layers.
        rnn_units: LSTM cells; per part (real and imaginary LSTM each) for
            the complex LSTM.
        masking_mode: ``"E"``, ``"C"`` or ``"R"`` (see :func:`apply_mask`).
        batch_norm: ``"naive"`` (``BatchNorm2d`` over real and imaginary
            channels, DCCRN's default) or ``"complex"`` (complex whitening BN).
        time_crop: ``"dccrn"`` or ``"causal"`` decoder time crop.
        frame_length, frame_step, fft_length, window: the STFT (see
            :class:`~keras_dccrn.models.base.SpectralMaskingModel`);
            ``fft_length // 2`` must be divisible by ``2 ** len(channels)``.
        **kwargs: base ``Model`` arguments (``name``, ``dtype``).

    Call arguments:
        inputs: waveform ``[batch, samples]`` float32 at 16 kHz.
        training: training mode (batch norm statistics).
        return_features: also return the 12 intermediate feature maps.

    Input shape:
        ``[batch, samples]``, any length.

    Output shape:
        ``[batch, samples]``; with ``return_features=True`` a tuple
        ``(wave, features)`` where ``features`` is a list of the 6 encoder
        and 6 decoder outputs, each ``[batch, frames, freq, channels]``.

    References:
        Hu et al., "DCCRN: Deep Complex Convolution Recurrent Network for
        Phase-Aware Speech Enhancement", Interspeech 2020, arXiv:2008.00264.
    """

    def __init__(
        self,
        channels=(32, 64, 128, 256, 256, 256),
        kernel_size=(5, 2),
        rnn_type="complex",
        rnn_layers=2,
        rnn_units=128,
        masking_mode="E",
        batch_norm="naive",
        time_crop="dccrn",
        frame_length=400,
        frame_step=100,
        fft_length=512,
        window="hann",
        **kwargs,
    ):
        super().__init__(
            frame_length=frame_length, frame_step=frame_step, fft_length=fft_length, window=window, **kwargs
        )
        channels = list(channels)
        if not channels or any(not isinstance(c, int) or c <= 0 or c % 2 for c in channels):
            raise ValueError(
                f"`channels` must be a non-empty list of positive even integers; received {channels!r}."
            )
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"`rnn_type` must be one of {RNN_TYPES}; received {rnn_type!r}.")
        if masking_mode not in MASKING_MODES:
            raise ValueError(f"`masking_mode` must be one of {MASKING_MODES}; received {masking_mode!r}.")
        if batch_norm not in NORM_MODES:
            raise ValueError(f"`batch_norm` must be one of {NORM_MODES}; received {batch_norm!r}.")
        if time_crop not in TIME_CROPS:
            raise ValueError(f"`time_crop` must be one of {TIME_CROPS}; received {time_crop!r}.")
        for name, value in (("rnn_layers", rnn_layers), ("rnn_units", rnn_units)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
        freq = fft_length // 2
        if freq % (2 ** len(channels)):
            raise ValueError(
                f"`fft_length // 2` ({freq}) must be divisible by 2 ** len(channels) "
                f"({2 ** len(channels)}); received fft_length={fft_length!r}."
            )
        self.channels = channels
        self.kernel_size = tuple(kernel_size)
        self.rnn_type = rnn_type
        self.rnn_layers = rnn_layers
        self.rnn_units = rnn_units
        self.masking_mode = masking_mode
        self.batch_norm = batch_norm
        self.time_crop = time_crop
        self.bottom_freq = freq // 2 ** len(channels)

        pad_f = self.kernel_size[0] // 2
        n = len(channels)
        self.encoder_convs, self.encoder_norms, self.encoder_acts = [], [], []
        for i, c in enumerate(channels):
            self.encoder_convs.append(
                ComplexConv2D(
                    c // 2, self.kernel_size, (2, 1), freq_padding=pad_f, causal=True, name=f"enc_conv_{i}"
                )
            )
            self.encoder_norms.append(norm_layer(self.batch_norm, f"enc_norm_{i}"))
            self.encoder_acts.append(prelu(f"enc_prelu_{i}"))

        flat = self.bottom_freq * channels[-1] // 2  # features per part at the bottleneck
        self.rnns = []
        if rnn_type == "complex":
            for i in range(rnn_layers):
                proj = flat if i == rnn_layers - 1 else None
                self.rnns.append(ComplexLSTM(rnn_units, projection_dim=proj, name=f"clstm_{i}"))
            self.rnn_dense = None
        else:
            for i in range(rnn_layers):
                self.rnns.append(keras.layers.LSTM(rnn_units, return_sequences=True, name=f"lstm_{i}"))
            self.rnn_dense = keras.layers.Dense(2 * flat, name="rnn_dense")

        self.decoder_convs, self.decoder_norms, self.decoder_acts = [], [], []
        for i in range(n):
            out = channels[n - 2 - i] if i < n - 1 else 2
            self.decoder_convs.append(
                ComplexConv2DTranspose(
                    out // 2,
                    self.kernel_size,
                    (2, 1),
                    freq_padding=pad_f,
                    output_padding=1,
                    time_crop=time_crop,
                    name=f"dec_conv_{i}",
                )
            )
            if i < n - 1:
                self.decoder_norms.append(norm_layer(self.batch_norm, f"dec_norm_{i}"))
                self.decoder_acts.append(prelu(f"dec_prelu_{i}"))

    @property
    def lookahead_frames(self):
        """Future STFT frames the network (not the STFT) looks at.

        With :attr:`lookahead_samples` (the shell's): 399 samples (24.9 ms)
        for the causal crop and 999 samples (62.4 ms) for DCCRN's crop with 6
        decoder layers, at 400/100.
        """
        if self.time_crop == "causal":
            return 0
        return len(self.channels) * (self.kernel_size[1] - 1)

    def streaming_refusal(self):
        if self.time_crop != "causal":
            return (
                "only causal DCCRN models stream (time_crop='causal', e.g. preset 'distil_dccrn'); "
                f"received time_crop={self.time_crop!r}"
            )
        return None

    def stateful_layers(self):
        return [*self.encoder_convs, *self.rnns, *self.decoder_convs]

    def apply_mask(self, spectrum, mask):
        return apply_mask(spectrum, mask, self.masking_mode)

    def _bottleneck(self, x, training, states, new):
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        c = self.channels[-1] // 2
        if self.rnn_type == "complex":
            xr, xi = complex_split(x)
            # [B, T, F, C] -> [B, T, F * C] for each part
            flat_r = ops.reshape(xr, (batch, frames, self.bottom_freq * c))
            flat_i = ops.reshape(xi, (batch, frames, self.bottom_freq * c))
            y = complex_merge(flat_r, flat_i)
            for rnn in self.rnns:
                y = run_layer(rnn, y, states, new, training)
            yr, yi = complex_split(y)
            # [B, T, F * C] -> [B, T, F, C] for each part
            yr = ops.reshape(yr, (batch, frames, self.bottom_freq, c))
            yi = ops.reshape(yi, (batch, frames, self.bottom_freq, c))
            return complex_merge(yr, yi)
        # [B, T, F, 2C] -> [B, T, F * 2C]
        y = ops.reshape(x, (batch, frames, self.bottom_freq * 2 * c))
        for rnn in self.rnns:
            y = run_layer(rnn, y, states, new, training)
        y = self.rnn_dense(y)
        # [B, T, F * 2C] -> [B, T, F, 2C]
        return ops.reshape(y, (batch, frames, self.bottom_freq, 2 * c))

    def estimate(self, spectrum, training=None, states=None, frame_rows=False):
        x = spectrum
        new = {}
        skips = []
        for conv, norm, act in zip(self.encoder_convs, self.encoder_norms, self.encoder_acts, strict=True):
            x = act(norm(run_layer(conv, x, states, new, frame_rows=frame_rows), training=training))
            skips.append(x)
        features = list(skips)
        x = self._bottleneck(x, training, states, new)
        n = len(self.decoder_convs)
        for i, conv in enumerate(self.decoder_convs):
            inp = complex_concat([x, skips[-1 - i]])
            # offline: BN and PReLU on the full transposed convolution, then the time crop (official order)
            if states is None:
                x = conv(inp, crop_time=False)
            else:
                x = run_layer(conv, inp, states, new, frame_rows=frame_rows)
            if i < n - 1:
                x = self.decoder_acts[i](self.decoder_norms[i](x, training=training))
            if states is None:
                x = conv.crop(x)
            features.append(x)
        return x, features, new

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            kernel_size=self.kernel_size,
            rnn_type=self.rnn_type,
            rnn_layers=self.rnn_layers,
            rnn_units=self.rnn_units,
            masking_mode=self.masking_mode,
            batch_norm=self.batch_norm,
            time_crop=self.time_crop,
        )
        return config
