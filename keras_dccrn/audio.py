"""Audio file I/O and resampling shared by the data pipeline, CLIs and evaluation.

Decoding uses libsndfile through ``soundfile`` (WAV, FLAC, OGG/Vorbis, and
every other format libsndfile reads), so no TensorFlow I/O plugin is needed.
Resampling is polyphase filtering with SciPy's ``resample_poly`` (a Kaiser
windowed FIR low-pass, i.e. properly anti-aliased).
"""

import contextlib
import math
import os
import re
import shutil
import tempfile

import numpy as np
import soundfile as sf

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
    from scipy.signal import resample_poly  # imported when needed: about 0.7 s of CPU at start-up

    g = math.gcd(orig_sr, target_sr)
    out = resample_poly(audio, target_sr // g, orig_sr // g, axis=axis)
    return out.astype(np.float32)


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
        raise AudioError(f"{path}: not a readable audio file ({_short(exc, path)})") from None


def _short(exc, path=None):
    """The last line of ``exc``'s message; ``soundfile``'s ``Error opening b'...'`` prefix is dropped."""
    text = str(exc).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    if path is not None:
        line = re.sub(r"^Error opening .*?: ", "", line)
    return line


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
        raise AudioError(f"{path}: cannot decode audio ({_short(exc, path)})") from None
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


# Temporary outputs are named ``.tmp-<pid>-<random><suffix>``: no folder scan of this project takes a
# ``.tmp-`` entry for a result, and the pid tells a leftover of a killed process (removed by the next
# :func:`make_temp` in that folder) from the work in progress of a running one.
TEMP_PREFIX = ".tmp-"
_TEMP_RE = re.compile(r"^\.tmp-(\d+)-")
_MADE_HERE = set()  # temporary entries created by this process (a reused pid is not a live owner)
_SCANNED = set()  # folders already cleaned of stale temporary entries by this process


def is_temp_name(name):
    """Whether ``name`` (a file or folder name) is a temporary output, never a result."""
    return name.startswith(TEMP_PREFIX)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def remove_stale_temps(folder):
    """Removes the temporary outputs in ``folder`` left by processes that no longer run (e.g. SIGKILL).

    Returns:
        The paths removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_RE.match(name)
        path = os.path.join(folder, name)
        if match is None or os.path.abspath(path) in _MADE_HERE:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _pid_alive(pid):
            continue
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def make_temp(folder, suffix="", directory=False):
    """Creates an empty temporary file (or folder) in ``folder`` for an output written in place.

    The folder is created if needed, and leftovers of killed processes in it are removed first
    (:func:`remove_stale_temps`, once per folder and process). Pair with :func:`publish` and :func:`remove_temp`, or use
    :func:`atomic_output`.

    Returns:
        The temporary path, ``<folder>/.tmp-<pid>-<random><suffix>``.
    """
    os.makedirs(folder, exist_ok=True)
    key = os.path.abspath(folder)
    if key not in _SCANNED:  # once per folder and process: many outputs into one folder stay O(n)
        _SCANNED.add(key)
        remove_stale_temps(folder)
    prefix = f"{TEMP_PREFIX}{os.getpid()}-"
    if directory:
        tmp = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder)
    else:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
        os.close(fd)
    _MADE_HERE.add(os.path.abspath(tmp))
    return tmp


def remove_temp(tmp):
    """Removes a temporary entry of :func:`make_temp` if it still exists (file or folder)."""
    _MADE_HERE.discard(os.path.abspath(tmp))
    if os.path.isdir(tmp) and not os.path.islink(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    elif os.path.lexists(tmp):
        os.remove(tmp)


@contextlib.contextmanager
def atomic_output(path, directory=False):
    """Yields a temporary path next to ``path``; publishes it onto ``path`` if the block completes.

    On any exception, including an interruption (``KeyboardInterrupt`` or a signal turned into an
    exception), the temporary entry is removed and the exception propagates, so ``path`` is either
    the complete new output or untouched. A folder output replaces an existing ``path`` only if that
    is an empty folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = make_temp(folder, suffix="" if directory else os.path.splitext(path)[1], directory=directory)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        remove_temp(tmp)


def write_text(path, text):
    """Writes a text file atomically (:func:`atomic_output`); undecodable file-name bytes are kept."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)


def write_audio(path, audio, sample_rate, subtype=None, format=None):
    """Writes audio atomically (:func:`atomic_output`): a temporary file in the same folder, then rename.

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
    suffix = os.path.splitext(path)[1] or ".wav"
    if format is None:
        format = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(suffix.lower())
    try:
        with atomic_output(path) as tmp:
            try:
                sf.write(sf_path(tmp), audio, int(sample_rate), subtype=subtype, format=format)
            except Exception as exc:
                raise AudioError(f"{path}: cannot write audio ({_short(exc, tmp)})") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot write audio ({exc.strerror or exc})") from None
