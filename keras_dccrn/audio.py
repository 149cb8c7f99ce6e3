"""Audio file I/O and resampling shared by the data pipeline, CLIs and evaluation.

Decoding uses libsndfile through ``soundfile`` (WAV, FLAC, OGG/Vorbis, and
every other format libsndfile reads), so no TensorFlow I/O plugin is needed.
Resampling is polyphase filtering with SciPy's ``resample_poly`` (a Kaiser
windowed FIR low-pass, i.e. properly anti-aliased).
"""

import math
import os
import tempfile

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000


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
    g = math.gcd(orig_sr, target_sr)
    out = resample_poly(audio, target_sr // g, orig_sr // g, axis=axis)
    return out.astype(np.float32)


def audio_info(path):
    """Returns ``soundfile.info(path)`` or raises :class:`AudioError`."""
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        return sf.info(path)
    except Exception as exc:  # libsndfile's message says what is wrong
        raise AudioError(f"{path}: not a readable audio file ({_short(exc)})") from None


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


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
        data, rate = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({_short(exc)})") from None
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


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp, path):
    """Renames a finished temporary file or folder onto ``path`` with the default permissions.

    ``tempfile.mkstemp`` / ``mkdtemp`` create private (0600 / 0700) entries; outputs get what a plain
    ``open()`` / ``os.makedirs`` would give (0666 / 0777 minus the umask), so that other users and
    services (e.g. a TF Serving container) can read them. Folders are made readable recursively.
    """
    mask = _umask()
    if os.path.isdir(tmp):
        for root, _dirs, files in os.walk(tmp):
            os.chmod(root, 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def write_text(path, text):
    """Writes a text file atomically (temporary file in the same folder, then :func:`publish`)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_audio(path, audio, sample_rate, subtype=None, format=None):
    """Writes audio atomically: a temporary file in the same folder, then rename.

    Args:
        path: destination; its folder is created if needed.
        audio: ``[samples]`` or ``[channels, samples]`` float array.
        sample_rate: rate in Hz.
        subtype: libsndfile subtype (e.g. ``"PCM_16"``); default for the format.
        format: libsndfile format; default from the extension.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.T  # soundfile wants [samples, channels]
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1] or ".wav"
    if format is None:
        format = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(suffix.lower())
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        sf.write(tmp, audio, int(sample_rate), subtype=subtype, format=format)
        publish(tmp, path)
    except Exception as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise AudioError(f"{path}: cannot write audio ({_short(exc)})") from None
