"""Chunked enhancement of arrays: the window planner, the streaming loops and :func:`enhance`.

The models work on 16 kHz mono waveforms. :func:`enhance` (and
:func:`keras_dccrn.runtime.files.enhance_file`) accept any rate and channel
count: every channel is resampled to 16 kHz, enhanced separately (channels
are stacked on the batch axis) and resampled back to the input rate.

Long signals are processed in fixed-size windows so that memory stays bounded
(an hour-long file needs the same memory as a 20 s one). Window ``k`` covers
``context + chunk + fade + look-ahead`` input samples; the model sees
``context`` seconds of audio before the chunk so that its recurrent state has
settled, plus the model's look-ahead after it, and only the chunk (plus a
short cross-fade region shared with the next window) is kept. Window starts
are aligned to whole STFT hops at 16 kHz, so for a causal model the chunked
output equals the whole-signal output up to the effect of the truncated
recurrent history, which decays within the context. The look-ahead and hop
are the backend's (:mod:`keras_dccrn.runtime.backends`).

A backend that streams (``enhancer.streams``: a streaming ``.tflite`` file)
needs no windows: :func:`stream_continuously` reads the signal in chunks and
pushes them through one stream per channel that carries its state across the
whole signal (resampling to and from 16 kHz piece by piece too, see
:class:`keras_dccrn.audio.ResampleStream`), so the output equals the
whole-signal output up to float rounding, no context is recomputed and memory
is that of one chunk; ``context_seconds`` and ``fade_seconds`` do not apply.
"""

import math

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE, ResampleStream, resample
from keras_dccrn.runtime.level import LEVEL_RANGE_DBFS, leveled
from keras_dccrn.runtime.loading import load_enhancer

DEFAULT_CHUNK_SECONDS = 20.0
DEFAULT_CONTEXT_SECONDS = 2.0
DEFAULT_FADE_SECONDS = 0.1
# Upper limits of the window geometry. Memory grows with the window (measured with distil_dccrn on one
# channel: about 1.2 GB at 10 s, 2.6 GB at 60 s, i.e. ~25 MB per second of window plus TensorFlow), and
# channels are processed together, so a longer window buys nothing but the risk of running out of memory.
MAX_CHUNK_SECONDS = 120.0
MAX_CONTEXT_SECONDS = 30.0
_RESAMPLER_MARGIN = 64  # 16 kHz samples disturbed by resample_poly at a window edge (~10 needed)


def _ceil_to(x, unit):
    return int(math.ceil(x / unit - 1e-9)) * unit


class Plan:
    """Window geometry in input-rate samples for one sample rate and enhancer."""

    def __init__(self, sample_rate, enhancer, chunk_seconds, context_seconds, fade_seconds):
        for name, value, limit in (
            ("chunk_seconds", chunk_seconds, MAX_CHUNK_SECONDS),
            ("context_seconds", context_seconds, MAX_CONTEXT_SECONDS),
        ):
            if value is not None and (not math.isfinite(value) or value < 0 or value > limit):
                raise ValueError(f"`{name}` must be a number between 0 and {limit:g}; received {value!r}.")
        if chunk_seconds is not None and chunk_seconds <= 0:
            raise ValueError(f"`chunk_seconds` must be positive or None; received {chunk_seconds!r}.")
        sr = int(sample_rate)
        g = math.gcd(sr, SAMPLE_RATE)
        a, b = sr // g, SAMPLE_RATE // g  # a input samples <-> b model samples
        hop = enhancer.alignment
        k = hop // math.gcd(b, hop)
        self.unit = a * k  # window starts are multiples of this (an integer number of model hops)
        self.whole = chunk_seconds is None
        if self.whole:
            return
        to_in = sr / SAMPLE_RATE
        margin16 = enhancer.lookahead_samples + (_RESAMPLER_MARGIN if sr != SAMPLE_RATE else 0)
        self.chunk = max(self.unit, _ceil_to(chunk_seconds * sr, self.unit))
        self.context = _ceil_to(context_seconds * sr, self.unit)
        self.fade = min(self.chunk, _ceil_to(fade_seconds * sr, self.unit)) if fade_seconds > 0 else 0
        self.margin = _ceil_to(margin16 * to_in, self.unit)
        self.window = self.context + self.chunk + self.fade + self.margin


def run_window(enhancer, x, sample_rate):
    """``[C, n]`` at ``sample_rate`` -> enhanced ``[C, n]`` at ``sample_rate``."""
    n = x.shape[1]
    x16 = resample(x, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else x
    y16 = enhancer(x16)
    y = resample(y16, SAMPLE_RATE, sample_rate) if sample_rate != SAMPLE_RATE else y16
    if y.shape[1] < n:
        y = np.pad(y, [(0, 0), (0, n - y.shape[1])])
    return np.clip(y[:, :n], -1.0, 1.0)


def stream_windows(enhancer, read, total, sample_rate, write, plan, progress=None):
    """Enhances ``total`` samples delivered by ``read(start, stop) -> [C, stop - start]``.

    ``read`` zero-pads outside ``[0, total)``; ``write([C, n])`` receives the
    output in order, exactly ``total`` samples in all. A streaming backend goes
    through :func:`stream_continuously` in chunks of ``plan``'s chunk instead.
    """
    if enhancer.streams:
        chunk = total if plan.whole else plan.chunk
        stream_continuously(enhancer, read, total, sample_rate, write, chunk, progress)
        return
    if plan.whole or total <= plan.window:
        write(run_window(enhancer, read(0, total), sample_rate))
        if progress:
            progress(total, total)
        return
    start, pending, first = 0, None, True
    while start < total:
        window_start = 0 if first else start - plan.context
        # The last window stops at the end of the signal (like whole-signal processing does).
        stop = min(window_start + plan.window, total)
        y = run_window(enhancer, read(window_start, stop), sample_rate)
        end = window_start + plan.window - plan.margin - plan.fade  # end of this window's chunk
        out = y[:, start - window_start : min(end + plan.fade, total) - window_start]
        if pending is not None:  # cross-fade with the previous window's tail
            n = pending.shape[1]
            ramp = (np.arange(n, dtype=np.float32) + 0.5) / n
            out[:, :n] = pending * (1.0 - ramp) + out[:, :n] * ramp
        if end >= total:
            write(out)
            break
        write(out[:, : end - start])
        pending = out[:, end - start :]
        start, first = end, False
        if progress:
            progress(start, total)
    if progress:
        progress(total, total)


def stream_continuously(enhancer, read, total, sample_rate, write, chunk, progress=None):
    """Enhances ``total`` samples with a streaming backend, reading ``chunk`` samples at a time.

    Same ``read`` / ``write`` / ``progress`` contract as :func:`stream_windows`; the state of the
    backend's streams (one per channel) and of the resamplers is carried across chunks, so the output
    is the whole-signal output of :func:`run_window`.
    """
    stages, written = None, 0
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        y = read(start, stop)
        if stages is None:
            channels = y.shape[0]
            stages = [
                ResampleStream(sample_rate, SAMPLE_RATE, channels),
                enhancer.open_stream(channels),
                ResampleStream(SAMPLE_RATE, sample_rate, channels),
            ]
        for stage in stages:
            y = stage.push(y, final=stop == total)
        y = np.clip(y[:, : total - written], -1.0, 1.0)
        written += y.shape[1]
        write(y)
        if progress:
            progress(stop, total)


def enhance(
    audio,
    sample_rate,
    model=None,
    chunk_seconds=DEFAULT_CHUNK_SECONDS,
    context_seconds=DEFAULT_CONTEXT_SECONDS,
    fade_seconds=DEFAULT_FADE_SECONDS,
    level_range=LEVEL_RANGE_DBFS,
):
    """Enhances (denoises) audio at any sample rate.

    Every channel is resampled to 16 kHz, enhanced separately and resampled
    back, so the output has the input's rate, shape and length. Long signals
    are processed in windows of ``chunk_seconds`` (plus ``context_seconds``
    of history and the model's look-ahead) that are cross-faded over
    ``fade_seconds``; signals that fit in one window are processed whole. A
    streaming ``.tflite`` model instead streams through the whole signal in
    pieces of ``chunk_seconds``, its state carried (the whole-signal output,
    no context or fade). A channel whose level is outside ``level_range`` is
    scaled into it before the model and back after it
    (:mod:`keras_dccrn.runtime.level`), so the output keeps the input's level.

    Args:
        audio: float array ``[samples]`` (mono) or ``[channels, samples]``.
        sample_rate: rate of ``audio`` in Hz (any positive integer).
        model: anything :func:`load_enhancer` accepts: a ``keras.Model``, a
            ``.keras`` / ``.tflite`` file, a SavedModel directory, or a
            shipped model name; ``None`` (default): the shipped Distil-DCCRN
            student (:data:`DEFAULT_MODEL`).
        chunk_seconds: audio kept from each window; ``None`` processes the
            whole signal at once (memory grows with the length).
        context_seconds: history prepended to each window (discarded).
        fade_seconds: cross-fade between consecutive windows.
        level_range: ``(low, high)`` RMS level in dBFS the models were trained
            at (:data:`keras_dccrn.runtime.level.LEVEL_RANGE_DBFS`); None
            enhances the audio at its own level.

    Returns:
        float32 array with the shape of ``audio``, in [-1, 1].

    Raises:
        ValueError: empty, non-finite or badly shaped audio, bad rate.
        ModelLoadError: ``model`` missing or unusable.

    Example::

        import soundfile as sf
        import keras_dccrn

        noisy, rate = sf.read("noisy.wav", dtype="float32")      # [samples, channels] or [samples]
        clean = keras_dccrn.enhance(noisy.T, rate, model="student.keras").T
        sf.write("enhanced.wav", clean, rate)
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"`audio` must be [samples] or [channels, samples]; received shape {audio.shape}.")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"`sample_rate` must be a positive integer; received {sample_rate!r}.")
    sample_rate = int(sample_rate)
    batch = audio[None] if audio.ndim == 1 else audio
    total = batch.shape[1]
    if total == 0 or batch.shape[0] == 0:
        raise ValueError(f"`audio` is empty; received shape {audio.shape}.")
    if not np.all(np.isfinite(batch)):
        raise ValueError("`audio` contains NaN or infinite samples.")
    enhancer = load_enhancer(model)
    plan = Plan(sample_rate, enhancer, chunk_seconds, context_seconds, fade_seconds)

    def read(start, stop):
        block = np.zeros((batch.shape[0], stop - start), np.float32)
        lo, hi = max(start, 0), min(stop, total)
        block[:, lo - start : hi - start] = batch[:, lo:hi]
        return block

    enhancer = leveled(enhancer, read, total, sample_rate, level_range)
    pieces = []
    stream_windows(enhancer, read, total, sample_rate, pieces.append, plan)
    out = np.concatenate(pieces, axis=1)
    return out[0] if audio.ndim == 1 else out
