"""STFT / inverse STFT as Keras layers with fixed DFT kernels (no complex dtype).

Both layers stream: ``STFT.step`` frames the next hops with the carried
last ``frame_length - frame_step`` input samples in front (``call`` puts
zeros there), ``ISTFT.step`` overlap-adds the next frames onto the carried
tail of the previous ones and emits the completed hops (``call`` starts from
silence). Each mode runs the layer's one framing or synthesis computation.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_dccrn.layers.slicing import index, take

WINDOWS = ("hann", "sqrt_hann", "hamming", "rectangular")


def make_window(window, frame_length):
    """Periodic analysis window as float64 NumPy array of ``frame_length``."""
    n = np.arange(frame_length)
    if window == "hann":
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / frame_length)
    if window == "sqrt_hann":
        return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * n / frame_length))
    if window == "hamming":
        return 0.54 - 0.46 * np.cos(2.0 * np.pi * n / frame_length)
    if window == "rectangular":
        return np.ones(frame_length)
    raise ValueError(f"Unknown window {window!r}; expected one of {WINDOWS}.")


def _validate(frame_length, frame_step, fft_length, window):
    for name, value in (
        ("frame_length", frame_length),
        ("frame_step", frame_step),
        ("fft_length", fft_length),
    ):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    if frame_step > frame_length:
        raise ValueError(f"`frame_step` ({frame_step}) must not exceed `frame_length` ({frame_length}).")
    if fft_length < frame_length:
        raise ValueError(f"`fft_length` ({fft_length}) must be >= `frame_length` ({frame_length}).")
    if window not in WINDOWS:
        raise ValueError(f"Unknown window {window!r}; expected one of {WINDOWS}.")


def dft_kernels(frame_length, fft_length, window):
    """Forward and inverse real-DFT kernels, bins interleaved as (re, im).

    Returns:
        ``(forward, inverse)``: ``forward`` has shape
        ``[frame_length, 2 * bins]`` and maps a frame to the windowed spectrum,
        column ``2k`` the real and ``2k + 1`` the imaginary part of bin ``k``;
        ``inverse`` has shape ``[2 * bins, frame_length]`` and is the
        pseudo-inverse of the unwindowed forward kernel times the synthesis
        window (as in DCCRN's ``ConviSTFT``).
    """
    bins = fft_length // 2 + 1
    win = make_window(window, frame_length)
    basis = np.fft.rfft(np.eye(fft_length))[:frame_length]  # [frame_length, bins]
    plain = np.empty((frame_length, 2 * bins))
    plain[:, 0::2] = basis.real
    plain[:, 1::2] = basis.imag
    forward = plain * win[:, None]
    inverse = np.linalg.pinv(plain) * win[None, :]  # [2 * bins, frame_length]
    return forward, inverse


def stft_padding(frame_length, frame_step):
    """Left padding of the signal: ``frame_length - frame_step`` samples.

    With this padding, frame ``t`` covers samples
    ``[t * hop - (frame_length - hop), (t + 1) * hop)``, i.e. it ends exactly
    at the end of hop ``t`` (the framing of DCCRN's ``ConvSTFT``).
    """
    return frame_length - frame_step


def num_frames(length, frame_length, frame_step):
    """Number of frames the STFT layer emits for ``length`` samples (NumPy ints)."""
    left = stft_padding(frame_length, frame_step)
    # Enough frames that the last frame ends at or after ``length + left``
    # samples past the start and the overlap-add covers every sample.
    needed = length + 2 * left
    return max(1, math.ceil((needed - frame_length) / frame_step) + 1)


def window_envelope(window, frame_length, frame_step):
    """Overlap-added squared window ``[frame_step]`` of a sample covered by every frame.

    Sample ``s`` of a weighted overlap-add receives ``w[s - t * hop]^2`` from
    every frame ``t`` that covers it; once all ``ceil(frame_length / hop)``
    frames reaching it exist the sum depends on ``s mod hop`` only. Every
    sample :class:`ISTFT` returns is such a sample (the STFT's left padding is
    ``frame_length - frame_step`` and its right padding as large), so this
    periodic envelope is the divisor of both the offline and the streaming
    synthesis.
    """
    blocks = -(-frame_length // frame_step)
    wsq = np.pad(make_window(window, frame_length) ** 2, (0, blocks * frame_step - frame_length))
    return wsq.reshape(blocks, frame_step).sum(axis=0)  # [blocks * hop] -> [blocks, hop] -> [hop]


def overlap_add(frames, frame_step):
    """Overlap-adds ``[batch, frames, frame_length]`` with hop ``frame_step``.

    Implemented with pads and adds only (TFLite builtin ops): the frame is
    zero-padded to ``n * frame_step`` samples, ``n = ceil(L / hop)``, and
    the ``n`` sub-blocks are shifted by whole frames and summed.

    Returns:
        ``[batch, (frames + n - 1) * frame_step]``.
    """
    frame_length = frames.shape[-1]
    n = -(-frame_length // frame_step)
    pad = n * frame_step - frame_length
    if pad:
        frames = ops.pad(frames, [[0, 0], [0, 0], [0, pad]])
    batch = ops.shape(frames)[0]
    count = ops.shape(frames)[1]
    # [B, T, n * hop] -> [B, T, n, hop]
    blocks = ops.reshape(frames, (batch, count, n, frame_step))
    out = None
    for k in range(n):
        part = ops.pad(
            index(blocks, 2, k), [[0, 0], [k, n - 1 - k], [0, 0]]
        )  # [B, T, hop] -> [B, T + n - 1, hop]
        out = part if out is None else out + part
    # [B, T + n - 1, hop] -> [B, (T + n - 1) * hop]
    return ops.reshape(out, (batch, -1))


# The constructor arguments shared by STFT, ISTFT and the models that own them.
STFT_ARGS = ("frame_length", "frame_step", "fft_length", "window")


class _FixedDFT(keras.layers.Layer):
    """The validated framing arguments of :class:`STFT` and :class:`ISTFT` (no weights)."""

    def __init__(self, frame_length, frame_step, fft_length, window, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        _validate(frame_length, frame_step, fft_length, window)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length)
        self.window = window
        self.bins = self.fft_length // 2 + 1

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in STFT_ARGS})
        return config


@keras.saving.register_keras_serializable(package="keras_dccrn")
class STFT(_FixedDFT):
    """Short-time Fourier transform with fixed DFT kernels (DCCRN ``ConvSTFT``).

    The waveform is left-padded with ``frame_length - frame_step`` zeros and
    right-padded so that every sample is covered by full overlap-add support;
    frame ``t`` ends at sample ``(t + 1) * frame_step``, so the transform is
    causal frame by frame. The DFT is a strided 1-D convolution with a
    constant kernel, so the layer has no weights and exports with builtin ops.

    Args:
        frame_length: window length in samples (DCCRN: 400 = 25 ms at 16 kHz).
        frame_step: hop in samples (DCCRN: 100 = 6.25 ms).
        fft_length: DFT size (>= ``frame_length``; DCCRN: 512).
        window: ``"hann"`` (periodic, DCCRN), ``"sqrt_hann"``, ``"hamming"``
            or ``"rectangular"``.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: waveform ``[batch, samples]``.

    Input shape:
        ``[batch, samples]``, any length.

    Output shape:
        ``[batch, frames, fft_length // 2 + 1, 2]``: real part in channel 0,
        imaginary part in channel 1 (see ``layers.complex_ops``), with
        ``frames = ceil((samples + frame_length - 2 * frame_step) / frame_step) + 1``.

    Streaming: :meth:`step` ``(hops, state) -> (frames, new_state)`` takes
    ``n * frame_step`` samples and returns their ``n`` frames, ``state`` being
    the last ``frame_length - frame_step`` input samples (zeros at the start,
    :meth:`initial_state`); the frames are ``call``'s frames of the whole
    signal.

    References:
        Hu et al., "DCCRN: Deep Complex Convolution Recurrent Network for
        Phase-Aware Speech Enhancement", Interspeech 2020.
    """

    def __init__(self, frame_length=400, frame_step=100, fft_length=512, window="hann", **kwargs):
        super().__init__(frame_length, frame_step, fft_length, window, **kwargs)
        forward, _ = dft_kernels(self.frame_length, self.fft_length, window)
        # Conv1D kernel [width, in_channels=1, out_channels=2 * bins].
        self.forward_kernel = forward[:, None, :].astype("float32")

    def _frames(self, signal):
        """The DFT of every full frame of ``signal`` ``[B, samples]``, hop ``frame_step``."""
        x = ops.expand_dims(signal, -1)  # [B, samples] -> [B, samples, 1]
        kernel = ops.convert_to_tensor(self.forward_kernel, dtype=self.compute_dtype)
        spec = ops.conv(x, kernel, strides=self.frame_step, padding="valid")  # [B, T, 2 * bins]
        # [B, T, 2 * bins] (bins interleaved re, im) -> [B, T, bins, 2]
        return ops.reshape(spec, (ops.shape(spec)[0], ops.shape(spec)[1], self.bins, 2))

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        length = ops.shape(x)[1]
        left = stft_padding(self.frame_length, self.frame_step)
        hop = self.frame_step
        # Right pad so the last frame reaches ``length + 2 * left`` samples.
        total = length + 2 * left
        frames = (total - self.frame_length + hop - 1) // hop + 1
        right = (frames - 1) * hop + self.frame_length - length - left
        zeros_r = ops.zeros((ops.shape(x)[0], right), dtype=x.dtype)
        zeros_l = ops.zeros((ops.shape(x)[0], left), dtype=x.dtype)
        return self._frames(ops.concatenate([zeros_l, x, zeros_r], axis=1))

    @property
    def state_size(self):
        """Input samples a stream carries from hop to hop: ``frame_length - frame_step``."""
        return stft_padding(self.frame_length, self.frame_step)

    def initial_state(self, batch_size=1):
        """All-zero streaming state ``[batch_size, frame_length - frame_step]``."""
        return ops.zeros((batch_size, self.state_size), self.compute_dtype)

    def step(self, inputs, state):
        """Frames of the next hops, with the carried input samples in front.

        Args:
            inputs: ``[batch, n * frame_step]``, the next samples.
            state: ``[batch, frame_length - frame_step]``, the samples before
                them (zeros at the start).

        Returns:
            ``(frames [batch, n, bins, 2], new_state)``.
        """
        length = inputs.shape[1]
        if length is not None and length % self.frame_step:
            raise ValueError(
                f"{self.name}: a step takes whole hops of {self.frame_step} samples; received {length}."
            )
        signal = ops.concatenate(
            [ops.cast(state, self.compute_dtype), ops.cast(inputs, self.compute_dtype)], 1
        )
        return self._frames(signal), take(signal, 1, ops.shape(signal)[1] - self.state_size)

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[0], input_shape[1]
        frames = None if length is None else num_frames(length, self.frame_length, self.frame_step)
        return (batch, frames, self.bins, 2)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ISTFT(_FixedDFT):
    """Inverse of :class:`STFT`: pseudo-inverse DFT, overlap-add, window norm.

    Each frame is rebuilt by a matrix product with the pseudo-inverse of the
    forward DFT kernel, multiplied by the synthesis window, overlap-added and
    divided by the overlap-added squared window (weighted overlap-add, as
    DCCRN's ``ConviSTFT``). The padding added by :class:`STFT` is removed, so
    ``ISTFT()(STFT()(x), length)`` has exactly ``length`` samples.

    Args:
        frame_length: window length; must match the analysis ``STFT``.
        frame_step: hop; must match the analysis ``STFT``.
        fft_length: DFT size; must match the analysis ``STFT``.
        window: window type; must match the analysis ``STFT``.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: spectrum ``[batch, frames, fft_length // 2 + 1, 2]``.
        length: int or scalar tensor, number of output samples (the length
            of the waveform given to ``STFT``).

    Input shape:
        ``[batch, frames, bins, 2]``.

    Output shape:
        ``[batch, length]``.

    Streaming: :meth:`step` ``(frames, state) -> (samples, new_state)``
    takes ``n`` frames and returns the ``n * frame_step`` samples they
    complete, ``state`` being the overlap-add tail
    ``[batch, (ceil(frame_length / frame_step) - 1) * frame_step]`` (zeros at
    the start, :meth:`initial_state`). Output sample ``m`` of a stream is
    ``call``'s sample ``m - (frame_length - frame_step)``: the first
    ``frame_length - frame_step`` samples are the STFT's left padding.

    References:
        Hu et al., "DCCRN", Interspeech 2020 (``ConviSTFT`` in the official code).
    """

    def __init__(self, frame_length=400, frame_step=100, fft_length=512, window="hann", **kwargs):
        super().__init__(frame_length, frame_step, fft_length, window, **kwargs)
        _, inverse = dft_kernels(self.frame_length, self.fft_length, window)
        self.inverse_kernel = inverse.astype("float32")
        envelope = window_envelope(window, self.frame_length, self.frame_step)
        self._envelope = np.maximum(envelope, 1e-8).astype("float32")

    def _overlap_add(self, inputs):
        """Inverse DFT and overlap-add of ``[B, T, bins, 2]``: ``[B, (T + blocks - 1) * frame_step]``."""
        spec = ops.cast(inputs, self.compute_dtype)
        # [B, T, bins, 2] -> [B, T, 2 * bins] (bins interleaved re, im)
        flat = ops.reshape(spec, (ops.shape(spec)[0], ops.shape(spec)[1], 2 * self.bins))
        inverse = ops.convert_to_tensor(self.inverse_kernel, dtype=self.compute_dtype)
        return overlap_add(ops.matmul(flat, inverse), self.frame_step)  # [B, T, L] -> [B, samples]

    def _normalise(self, signal):
        """Divides ``[B, k * frame_step]`` (hop-aligned) by the window envelope."""
        batch = ops.shape(signal)[0]
        # [B, k * hop] -> [B, k, hop] -> [B, k * hop]
        hops = ops.reshape(signal, (batch, -1, self.frame_step))
        envelope = ops.convert_to_tensor(self._envelope, dtype=self.compute_dtype)
        return ops.reshape(hops / envelope, (batch, -1))

    def call(self, inputs, length):
        signal = self._normalise(self._overlap_add(inputs))
        left = stft_padding(self.frame_length, self.frame_step)
        return take(signal, 1, left, left + length)

    @property
    def state_size(self):
        """Overlap-add samples a stream carries: ``(ceil(frame_length / frame_step) - 1) * frame_step``."""
        return (-(-self.frame_length // self.frame_step) - 1) * self.frame_step

    def initial_state(self, batch_size=1):
        """All-zero streaming state ``[batch_size, state_size]``."""
        return ops.zeros((batch_size, self.state_size), self.compute_dtype)

    def step(self, inputs, state):
        """Overlap-adds the next frames and emits the hops they complete.

        Args:
            inputs: ``[batch, n, bins, 2]``, the next frames.
            state: ``[batch, state_size]``, the overlap-add tail (zeros at the start).

        Returns:
            ``(samples [batch, n * frame_step], new_state [batch, state_size])``.
        """
        signal = self._overlap_add(inputs)  # [B, (n + blocks - 1) * hop]
        tail = ops.cast(state, self.compute_dtype)
        signal = signal + ops.pad(tail, [[0, 0], [0, ops.shape(signal)[1] - self.state_size]])
        done = ops.shape(signal)[1] - self.state_size
        return self._normalise(take(signal, 1, 0, done)), take(signal, 1, done)

    def compute_output_shape(self, input_shape, length=None):
        return (input_shape[0], length if isinstance(length, int) else None)
