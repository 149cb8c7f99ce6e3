"""Enhancing audio files: output format choice, atomic writing, streaming in windows."""

import os

import numpy as np
import soundfile as sf

from keras_dccrn.atomic import make_temp, publish, remove_temp
from keras_dccrn.audio import AUDIO_FORMATS, AudioError, audio_info, sf_path, soundfile_message
from keras_dccrn.errors import one_line
from keras_dccrn.runtime.chunking import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_CONTEXT_SECONDS,
    DEFAULT_FADE_SECONDS,
    MAX_CHUNK_SECONDS,
    Plan,
    stream_windows,
)
from keras_dccrn.runtime.level import LEVEL_RANGE_DBFS, leveled
from keras_dccrn.runtime.loading import load_enhancer

# Lossy codecs: kept only when the output is in the input's own container; a lossless container gets PCM.
_LOSSY_SUBTYPES = {"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "VORBIS", "OPUS", "GSM610"}
# Nearest PCM depth for subtypes a container may lack (e.g. FLAC has no float): tried after the input's own.
_NEAREST_PCM = {
    "FLOAT": "PCM_24",
    "DOUBLE": "PCM_24",
    "PCM_32": "PCM_24",
    "PCM_U8": "PCM_S8",
    "PCM_S8": "PCM_U8",
}


def _output_format(info, input_path, output_path):
    """``(format, [subtypes to try, best first])`` for an output of the input's audio.

    The format follows the output extension (the input's when the extensions match). The subtype is
    the input's where the output container can hold it, else the nearest PCM depth, PCM_16, then the
    container's default: MP3/Opus/Vorbis input written as WAV or FLAC becomes PCM_16.
    """
    in_ext = os.path.splitext(input_path)[1].lower().lstrip(".")
    out_ext = os.path.splitext(output_path)[1].lower().lstrip(".")
    fmt = info.format
    if out_ext != in_ext:
        fmt = AUDIO_FORMATS.get(out_ext)
        if fmt is None:
            raise AudioError(f"{output_path}: unsupported output extension '.{out_ext}'")
    wanted = [info.subtype, _NEAREST_PCM.get(info.subtype), "PCM_16", sf.default_subtype(fmt)]
    if info.subtype in _LOSSY_SUBTYPES and fmt != info.format:
        wanted = wanted[1:]
    subtypes = []
    for subtype in wanted:
        if subtype and subtype not in subtypes and sf.check_format(fmt, subtype):
            subtypes.append(subtype)
    if not subtypes:
        raise AudioError(f"{output_path}: cannot write the {fmt} format")
    return fmt, subtypes


def _open_output(tmp, output_path, rate, channels, fmt, subtypes):
    """Opens ``tmp`` for writing with the first subtype libsndfile accepts; errors name ``output_path``."""
    error = None
    for subtype in subtypes:
        try:
            return sf.SoundFile(sf_path(tmp), "w", rate, channels, subtype=subtype, format=fmt)
        except Exception as exc:  # e.g. "Supported file format but unsupported encoding"
            error = exc
    raise AudioError(
        f"{output_path}: cannot write {fmt} audio at {rate} Hz, {channels} channel(s) "
        f"({soundfile_message(error)})"
    )


def _same_file(a, b):
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def enhance_file(
    model,
    input_path,
    output_path,
    chunk_seconds=DEFAULT_CHUNK_SECONDS,
    context_seconds=DEFAULT_CONTEXT_SECONDS,
    fade_seconds=DEFAULT_FADE_SECONDS,
    overwrite=False,
    progress=None,
    level_range=LEVEL_RANGE_DBFS,
):
    """Enhances one audio file into another, streaming in windows (bounded memory).

    The output keeps the input's sample rate, channel count, format and
    subtype (when the output extension differs from the input's, the format
    follows the output extension and the subtype is the input's if that
    container holds it, else the nearest PCM depth or PCM_16, e.g. for MP3
    into WAV). It is written to a temporary file ``.tmp-<pid>-*`` in the
    output folder and renamed when complete, so a failure or an interruption
    (any exception, including ``KeyboardInterrupt``) never leaves a partial
    file; leftovers of a killed process are removed by the next call that
    writes into the same folder. Whole-file processing (``chunk_seconds``
    ``None``) is refused for files longer than :data:`MAX_CHUNK_SECONDS`.

    Args:
        model: anything :func:`load_enhancer` accepts (load it once with
            :func:`load_enhancer` when processing many files).
        input_path: audio file (any format libsndfile reads).
        output_path: destination file; its folder is created.
        chunk_seconds, context_seconds, fade_seconds: see :func:`keras_dccrn.runtime.chunking.enhance`
            (at most :data:`MAX_CHUNK_SECONDS` and :data:`MAX_CONTEXT_SECONDS`).
        overwrite: replace an existing output; needed to write over the
            input itself (safe: the input is fully read before the rename).
        progress: optional ``progress(done_frames, total_frames)``.
        level_range: see :func:`keras_dccrn.runtime.chunking.enhance` (the
            level is measured in a first pass over the file).

    Returns:
        ``soundfile.info`` of the input.

    Raises:
        AudioError: one-line message starting with the offending path.
    """
    enhancer = load_enhancer(model)
    info = audio_info(input_path)
    total, channels, rate = info.frames, info.channels, info.samplerate
    if total <= 0:
        raise AudioError(f"{input_path}: contains no samples")
    if os.path.exists(output_path) and not overwrite:
        if _same_file(input_path, output_path):
            raise AudioError(f"{input_path}: output is the input file; pass --overwrite to replace it")
        raise AudioError(f"{output_path}: output exists; pass --overwrite to replace it")
    if os.path.isdir(output_path):
        raise AudioError(f"{output_path}: output is a directory")
    fmt, subtypes = _output_format(info, input_path, output_path)
    plan = Plan(rate, enhancer, chunk_seconds, context_seconds, fade_seconds)
    if plan.whole and total > MAX_CHUNK_SECONDS * rate:
        raise AudioError(
            f"{input_path}: {total / rate:.0f} s is too long to process whole (at most "
            f"{MAX_CHUNK_SECONDS:g} s); process it in chunks (chunk_seconds > 0)"
        )
    folder = os.path.dirname(os.path.abspath(output_path))
    tmp = make_temp(folder, suffix=os.path.splitext(output_path)[1])
    try:
        try:
            src = sf.SoundFile(sf_path(input_path))
        except Exception as exc:
            raise AudioError(f"{input_path}: not a readable audio file ({one_line(exc)})") from None
        with src:
            with _open_output(tmp, output_path, rate, channels, fmt, subtypes) as dst:

                def read(start, stop):
                    lo, hi = max(start, 0), min(stop, total)
                    block = np.zeros((channels, stop - start), np.float32)
                    if hi > lo:
                        try:
                            src.seek(lo)
                            data = src.read(hi - lo, dtype="float32", always_2d=True)
                        except Exception as exc:
                            raise AudioError(f"{input_path}: cannot decode audio ({one_line(exc)})") from None
                        if not np.all(np.isfinite(data)):
                            raise AudioError(f"{input_path}: contains NaN or infinite samples")
                        block[:, lo - start : lo - start + data.shape[0]] = data.T  # [n, C] -> [C, n]
                    return block

                def write(block):
                    try:
                        dst.write(block.T)  # [C, n] -> [n, C]
                    except Exception as exc:
                        raise AudioError(f"{output_path}: cannot write audio ({one_line(exc)})") from None

                try:
                    leveled_enhancer = leveled(enhancer, read, total, rate, level_range)
                    stream_windows(leveled_enhancer, read, total, rate, write, plan, progress)
                except AudioError:
                    raise
                except Exception as exc:
                    raise AudioError(f"{input_path}: enhancement failed ({one_line(exc)})") from None
        publish(tmp, output_path)
    finally:
        remove_temp(tmp)
    return info
