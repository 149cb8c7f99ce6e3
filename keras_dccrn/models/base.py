"""The spectral-masking model shell (asteroid's ``BaseEncoderMaskerDecoder``) and its shared blocks.

:class:`SpectralMaskingModel` owns everything around the mask estimator::

    wave -> STFT -> drop DC bin -> estimator -> mask (model's rule) -> pad DC with 0
         -> ISTFT -> clip to [-1, 1]

and the two ways to run it: ``call`` on whole signals and :meth:`step` on
the next hops of a stream with every piece of memory an explicit state
tensor (kws_streaming's pattern). A model implements the estimator only:

* :meth:`~SpectralMaskingModel.estimate` ``(spectrum, training, states)``,
  the network from the noisy spectrum (DC dropped) to the mask; when
  ``states`` is given it steps its stateful layers with them (each layer's
  ``step``) instead of calling them, the same layers and the same code;
* :meth:`~SpectralMaskingModel.apply_mask`, its masking rule;
* :attr:`~SpectralMaskingModel.lookahead_frames`, the network's look-ahead;
* :meth:`~SpectralMaskingModel.streaming_refusal` and
  :meth:`~SpectralMaskingModel.stateful_layers` if it can stream.

**Streaming delay.** The sample a stream emits at position ``m`` is the
offline output sample ``m - (frame_length - frame_step)`` (300 samples =
18.75 ms at 400/100): the first ``frame_length - frame_step`` samples are
the STFT's left padding, and the last input samples need that many more
(zero) samples to come out (:mod:`keras_dccrn.streaming` runs the hop loop).
"""

import keras
from keras import ops

from keras_dccrn.layers.batch_norm import BatchNormalization
from keras_dccrn.layers.complex_conv import ComplexConv2D, ComplexConv2DTranspose
from keras_dccrn.layers.complex_lstm import lstm_initial_state, lstm_step
from keras_dccrn.layers.complex_norm import ComplexBatchNormalization
from keras_dccrn.layers.prelu import PReLU
from keras_dccrn.layers.slicing import take
from keras_dccrn.layers.stft import ISTFT, STFT, STFT_ARGS

# Name scopes of the signal-processing ends of a streaming step; the full-int8 TFLite export keeps the
# ops under them in float and quantizes the network between them.
ANALYSIS_SCOPE = "dccrn_analysis"
SYNTHESIS_SCOPE = "dccrn_synthesis"
# State names of the STFT input buffer and the ISTFT overlap-add tail (the streaming TFLite inputs).
INPUT_BUFFER = "input_buffer"
OLA_BUFFER = "ola_buffer"
# Stateful layers whose step takes ``frame_rows``.
CONVOLUTIONS = (ComplexConv2D, ComplexConv2DTranspose)


def prelu(name):
    """PyTorch's ``nn.PReLU()``: one slope shared by every unit, initialised at 0.25."""
    return PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2, 3], name=name)


# The models' ``batch_norm`` argument: see :func:`norm_layer`.
NORM_MODES = ("complex", "naive")


def norm_layer(mode, name):
    """``"naive"``: ``BatchNorm2d`` over real and imaginary channels; ``"complex"``: whitening BN."""
    if mode == "naive":
        return BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
    return ComplexBatchNormalization(mode="complex", name=name)


def layer_initial_state(layer, batch_size=1):
    """The all-zero streaming state of a stateful layer (ours, or a Keras ``LSTM``)."""
    if isinstance(layer, keras.layers.LSTM):
        return lstm_initial_state(layer, batch_size)
    return layer.initial_state(batch_size)


def run_layer(layer, x, states, new_states, training=None, frame_rows=False):
    """``layer(x)`` offline (``states is None``), else ``layer``'s step with its state.

    The new state goes to ``new_states[layer.name]``. Estimators write their
    network once with this and run it both ways. A step runs under the name
    scope ``layer.name`` (as a layer's call does), so that the ops of an
    exported streaming graph name the layer they belong to. ``frame_rows``
    goes to the step of a complex (transposed) convolution (one output frame
    per batch row; the same outputs).
    """
    if states is None:
        return layer(x, training=training)
    step = lstm_step if isinstance(layer, keras.layers.LSTM) else type(layer).step
    options = {"frame_rows": True} if frame_rows and isinstance(layer, CONVOLUTIONS) else {}
    with keras.name_scope(layer.name):
        y, new_states[layer.name] = step(layer, x, states[layer.name], **options)
    return y


class SpectralMaskingModel(keras.Model):
    """Waveform-to-waveform masking model around a mask estimator (see the module docstring).

    Args:
        frame_length: STFT window (samples).
        frame_step: STFT hop (samples).
        fft_length: DFT size.
        window: STFT window type.
        **kwargs: base ``Model`` arguments (``name``, ``dtype``).

    Call arguments:
        inputs: waveform ``[batch, samples]`` float32 at 16 kHz.
        training: training mode (batch norm statistics, dropout).
        return_features: also return the estimator's intermediate feature maps.

    Input shape:
        ``[batch, samples]``, any length.

    Output shape:
        ``[batch, samples]``; with ``return_features=True`` a tuple
        ``(wave, features)``.

    Attributes:
        default_loss: the paper's training loss of the family
            (``dccrn-train --loss=auto``).

    References:
        Pariente et al., "Asteroid: the PyTorch-based audio source separation
        toolkit for researchers", Interspeech 2020 (encoder-masker-decoder);
        Rybakov et al., "Streaming keyword spotting on mobile devices",
        Interspeech 2020 (streaming with explicit states).
    """

    default_loss = "si_snr"

    def __init__(self, frame_length=400, frame_step=100, fft_length=512, window="hann", **kwargs):
        super().__init__(**kwargs)
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.fft_length = fft_length
        self.window = window
        self.stft = STFT(frame_length, frame_step, fft_length, window, name="stft")
        self.istft = ISTFT(frame_length, frame_step, fft_length, window, name="istft")

    # ------------------------------------------------------------------ the estimator (subclasses)
    def estimate(self, spectrum, training=None, states=None, frame_rows=False):
        """The mask of the noisy spectrum.

        Args:
            spectrum: ``[batch, frames, bins - 1, 2]`` (DC dropped) in the
                model's compute dtype.
            training: training mode.
            states: ``None`` offline; when streaming, ``{layer name: state}``
                of :meth:`stateful_layers` (run each through :func:`run_layer`).
            frame_rows: streaming only: passed to :func:`run_layer`.

        Returns:
            ``(mask, features, new_states)``: the mask (any structure
            :meth:`apply_mask` takes), the list of intermediate feature maps
            and ``{name: tensor}`` (empty offline).
        """
        raise NotImplementedError

    def apply_mask(self, spectrum, mask):
        """Masked spectrum ``[batch, frames, bins - 1, 2]`` (float32 inputs)."""
        raise NotImplementedError

    @property
    def lookahead_frames(self):
        """Future STFT frames the estimator looks at (``None``: unbounded)."""
        raise NotImplementedError

    def streaming_refusal(self):
        """Why this model cannot stream (one line), or ``None`` when it can."""
        return f"{type(self).__name__} has no streaming step"

    def stateful_layers(self):
        """The estimator's layers that carry a streaming state, in state order."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the shell
    @property
    def lookahead_samples(self):
        """Output sample ``n`` depends on input samples ``<= n + lookahead_samples`` (``None``: unbounded).

        ``frame_length - 1`` from the STFT framing (a frame is synthesised
        once its last sample has arrived) plus ``frame_step`` per frame of
        :attr:`lookahead_frames`.
        """
        frames = self.lookahead_frames
        if frames is None:
            return None
        return self.frame_length - 1 + frames * self.frame_step

    @property
    def supports_streaming(self):
        """Whether :meth:`step` can run this model (see :meth:`streaming_refusal`)."""
        return self.streaming_refusal() is None

    def _masked(self, spec, mask):
        # The DC bin gets mask 0, i.e. output 0 in every mode: masking bins 1: only and padding the DC with 0
        # is the same value and avoids 0 / 0 in |M|-normalised masks when TFLite float16 flushes the 1e-8
        # under their square root to zero.
        mask = keras.tree.map_structure(lambda m: ops.cast(m, "float32"), mask)
        est = self.apply_mask(ops.cast(take(spec, 2, 1), "float32"), mask)
        return ops.pad(est, [[0, 0], [0, 0], [1, 0], [0, 0]])  # [B, T, bins - 1, 2] -> [B, T, bins, 2]

    def call(self, inputs, training=None, return_features=False):
        wave = ops.cast(inputs, "float32")
        length = ops.shape(wave)[1]
        spec = self.stft(wave)  # [B, T, bins, 2]
        mask, features, _ = self.estimate(ops.cast(take(spec, 2, 1), self.compute_dtype), training=training)
        out = ops.clip(self.istft(self._masked(spec, mask), length=length), -1.0, 1.0)
        if return_features:
            return out, features
        return out

    def require_streaming(self):
        """Raises a one-line ``ValueError`` unless the model is built and can stream."""
        reason = self.streaming_refusal()
        if reason is not None:
            raise ValueError(f"{self.name}: cannot stream: {reason}.")
        if not self.built:
            raise ValueError(f"{self.name}: the model must be built (called once) before streaming.")

    def initial_states(self, batch_size=1):
        """All-zero ``{name: tensor}`` of every streaming state, the start of a stream.

        ``input_buffer`` ``[batch, frame_length - frame_step]`` (STFT),
        ``ola_buffer`` ``[batch, (ceil(frame_length / frame_step) - 1) * frame_step]``
        (ISTFT) and one tensor per stateful estimator layer, named after it.
        """
        self.require_streaming()
        states = {
            INPUT_BUFFER: self.stft.initial_state(batch_size),
            OLA_BUFFER: self.istft.initial_state(batch_size),
        }
        states.update(
            {layer.name: layer_initial_state(layer, batch_size) for layer in self.stateful_layers()}
        )
        return states

    def step(self, audio, states, frame_rows=False):
        """Enhances the next hops of a stream: ``(audio, states) -> (enhanced, new_states)``.

        The offline layers run with their states passed in and out, so the
        concatenated outputs are ``call``'s output delayed by
        ``frame_length - frame_step`` samples (see the module docstring).

        Args:
            audio: ``[batch, n * frame_step]`` (a static ``n >= 1``).
            states: ``{name: tensor}`` as :meth:`initial_states` returns.
            frame_rows: with ``n > 1``, compute the convolutions one output
                frame per batch row: the same outputs, more copying; a
                dynamic-range int8 conversion then scales each frame's input
                on its own (``export_tflite`` sets it for those files).

        Returns:
            ``(enhanced [batch, n * frame_step], new_states)``, ``new_states``
            shaped like ``states``.
        """
        self.require_streaming()
        expected = [INPUT_BUFFER, OLA_BUFFER] + [layer.name for layer in self.stateful_layers()]
        missing = [name for name in expected if name not in states]
        if missing:
            raise ValueError(
                f"{self.name}: `states` lacks {missing}; expected the names of initial_states()."
            )
        with keras.name_scope(ANALYSIS_SCOPE):
            spec, input_buffer = self.stft.step(ops.cast(audio, "float32"), states[INPUT_BUFFER])
        mask, _, new = self.estimate(
            ops.cast(take(spec, 2, 1), self.compute_dtype), False, states, frame_rows=frame_rows
        )
        with keras.name_scope(SYNTHESIS_SCOPE):
            wave, ola_buffer = self.istft.step(self._masked(spec, mask), states[OLA_BUFFER])
            wave = ops.clip(wave, -1.0, 1.0)
        return wave, {INPUT_BUFFER: input_buffer, OLA_BUFFER: ola_buffer, **new}

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in STFT_ARGS})
        return config
