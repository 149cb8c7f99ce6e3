"""Audio file I/O and resampling shared by the data pipeline, CLIs and evaluation.

Decoding uses libsndfile through ``soundfile`` (WAV, FLAC, OGG/Vorbis, and
every other format libsndfile reads), so no TensorFlow I/O plugin is needed.
Resampling is polyphase filtering with SciPy's ``resample_poly`` (a Kaiser
windowed FIR low-pass, i.e. properly anti-aliased).
"""

import math
import os
import re

import numpy as np
import soundfile as sf

from keras_dccrn.atomic import atomic_output

SAMPLE_RATE = 16000
# Every file extension treated as audio (lower case, no dot) -> the libsndfile format of that container.
AUDIO_FORMATS = {
    "aif": "AIFF",
    "aifc": "AIFF",
    "aiff": "AIFF",
    "au": "AU",
    "caf": "CAF",
    "flac": "FLAC",
    "mp3": "MP3",
    "oga": "OGG",
    "ogg": "OGG",
    "opus": "OGG",
    "rf64": "RF64",
    "snd": "AU",
    "w64": "W64",
    "wav": "WAV",
}


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file."""


def resample(audio, orig_sr, target_sr, axis=-1):
    """Resamples ``audio`` from ``orig_sr`` to ``target_sr`` Hz (anti-aliased).

    Args:
        audio: float array; time along ``axis``.
        orig_sr: input rate in Hz (positive int).
        target_sr: output rate in Hz (positive int).
        axis: time axis.

    Returns:
        float32 array with ``ceil(n * target_sr / orig_sr)`` samples on ``axis``.
    """
    for name, value in (("orig_sr", orig_sr), ("target_sr", target_sr)):
        if int(value) != value or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer rate; received {value!r}.")
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    audio = np.asarray(audio, dtype=np.float32)
    if orig_sr == target_sr:
        return audio
    from scipy.signal import resample_poly  # imported when needed: about 0.7 s of CPU at start-up

    g = math.gcd(orig_sr, target_sr)
    out = resample_poly(audio, target_sr // g, orig_sr // g, axis=axis)
    return out.astype(np.float32)


class ResampleStream:
    """:func:`resample` of a ``[channels, samples]`` signal pushed in pieces: the same samples as whole.

    ``resample_poly``'s filter reaches ``10 * max(up, down)`` samples of the up-sampled signal either
    side of an output sample, i.e. ``10 * max(up, down) / up`` input samples. Each push resamples the
    new input with :attr:`margin` samples of history before it and holds back :attr:`margin` samples
    for the next push, so every output sample sees the input it would see whole (zeros before the
    start and after the end, as ``resample_poly`` pads); the margin and every piece resampled are
    whole multiples of ``down`` input samples, so the pieces fall on the same filter phases. Memory
    is that of one piece.

    Args:
        orig_sr: input rate in Hz.
        target_sr: output rate in Hz.
        channels: rows of the pushed arrays.
    """

    def __init__(self, orig_sr, target_sr, channels):
        resample(np.zeros(0, np.float32), orig_sr, target_sr)  # the rates' checks
        g = math.gcd(int(orig_sr), int(target_sr))
        self.up, self.down = int(target_sr) // g, int(orig_sr) // g
        reach = -(-10 * max(self.up, self.down) // self.up) + 1  # input samples an output sample sees
        self.margin = -(-reach // self.down) * self.down
        self.orig_sr, self.target_sr = int(orig_sr), int(target_sr)
        self._buffer = np.zeros((int(channels), self.margin), np.float32)  # history, then pending input
        self._received = 0
        self._emitted = 0

    def push(self, audio, final=False):
        """Resamples what ``audio`` (``[channels, n]``) completes; ``final``: the signal ends with it.

        Returns:
            float32 ``[channels, m]``: the next output samples; over all pushes, ``ceil(n_total * up /
            down)`` of them, as :func:`resample` of the whole signal.
        """
        audio = np.asarray(audio, np.float32)
        if self.up == self.down:
            return audio
        self._received += audio.shape[1]
        buffer = np.concatenate([self._buffer, audio], axis=1)
        if final:  # zeros after the end: the look-ahead of the last samples, then whole multiples of down
            pad = self.margin + (-(buffer.shape[1] - 2 * self.margin)) % self.down
            buffer = np.pad(buffer, [(0, 0), (0, pad)])
        ready = (buffer.shape[1] - 2 * self.margin) // self.down * self.down
        if ready <= 0:
            self._buffer = buffer
            return np.zeros((buffer.shape[0], 0), np.float32)
        block = resample(buffer[:, : ready + 2 * self.margin], self.orig_sr, self.target_sr)
        out = block[:, self.margin * self.up // self.down : (self.margin + ready) * self.up // self.down]
        self._buffer = buffer[:, ready:]
        if final:
            out = out[:, : -(-self._received * self.up // self.down) - self._emitted]
        self._emitted += out.shape[1]
        return out


def sf_path(path):
    """``path`` as bytes for ``soundfile`` (which encodes ``str`` paths strictly).

    A file name with bytes that are not valid in the file-system encoding reaches Python as a ``str``
    with surrogate escapes; ``os.fsencode`` turns it back into the original bytes.
    """
    return os.fsencode(path)


def display_path(text):
    """``text`` (a path or a message holding paths) printable on any stream: undecodable bytes as ``\\xNN``."""
    return os.fsencode(text).decode("utf-8", "backslashreplace") if isinstance(text, str) else str(text)


def audio_info(path):
    """Returns ``soundfile.info(path)`` or raises :class:`AudioError`."""
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        return sf.info(sf_path(path))
    except Exception as exc:  # libsndfile's message says what is wrong
        raise AudioError(f"{path}: not a readable audio file ({soundfile_message(exc)})") from None


def soundfile_message(exc):
    """libsndfile's reason in a ``soundfile`` error: the last line, without ``Error opening '<path>': ``."""
    text = str(exc).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    return re.sub(r"^Error opening (b?'.*?'|.*?): ", "", line)


def read_audio(path, sample_rate=SAMPLE_RATE, mono=True, start=0, frames=-1):
    """Reads an audio file as float32, optionally resampled and mixed to mono.

    Args:
        path: any file libsndfile reads.
        sample_rate: output rate, or ``None`` to keep the file's rate.
        mono: average the channels (output ``[samples]``); otherwise the
            output is ``[channels, samples]``.
        start: first frame to read (in the file's own rate).
        frames: number of frames to read (-1: to the end).

    Returns:
        ``(audio, rate)``.

    Raises:
        AudioError: missing, unreadable, empty, or non-finite file; the
            message starts with the path.
    """
    audio_info(path)
    try:
        data, rate = sf.read(sf_path(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({soundfile_message(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    data = data.T  # [channels, samples]
    if mono:
        data = data.mean(axis=0)
    if sample_rate is not None and rate != sample_rate:
        data = resample(data, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(data, dtype=np.float32), rate


def write_audio(path, audio, sample_rate, subtype=None, format=None):
    """Writes audio atomically (:func:`atomic_output`): a temporary file in the same folder, then rename.

    Args:
        path: destination; its folder is created if needed.
        audio: ``[samples]`` or ``[channels, samples]`` float array.
        sample_rate: rate in Hz.
        subtype: libsndfile subtype (e.g. ``"PCM_16"``); default for the format.
        format: libsndfile format; default from the extension (:data:`AUDIO_FORMATS`).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.T  # soundfile wants [samples, channels]
    suffix = os.path.splitext(path)[1] or ".wav"
    if format is None:
        format = AUDIO_FORMATS.get(suffix.lower().lstrip("."))
    try:
        with atomic_output(path) as tmp:
            try:
                sf.write(sf_path(tmp), audio, int(sample_rate), subtype=subtype, format=format)
            except Exception as exc:
                raise AudioError(f"{path}: cannot write audio ({soundfile_message(exc)})") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot write audio ({exc.strerror or exc})") from None
