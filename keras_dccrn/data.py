"""On-the-fly noisy-mixture synthesis for training and evaluation (``tf.data``).

Every example is synthesised from clean speech, noise and (optionally) a room
impulse response (RIR) when it is requested, as in the DNS Challenge recipes:

1. **Clean**: a random segment of ``segment_seconds`` from a clean file. Clean
   files are visited in shuffled epochs (a fresh seeded permutation per epoch,
   so each file is used once per epoch). A file shorter than the segment is
   zero-padded at a random position (``short_clean="pad"``, the default: most
   read-speech corpora have many 2-4 s sentences) or excluded up front
   (``short_clean="skip"``). Clean files shorter than ``min_clean_seconds``
   are always excluded.
2. **Noise**: a random file (with replacement) and a random segment of it; a
   file shorter than the segment is looped from a random phase.
3. **Reverberation** (probability ``reverb_prob``): the clean segment is
   convolved with a random RIR. The RIR is first aligned so that its direct
   path (largest absolute sample) is at index 0 and scaled so that the direct
   path is +1; the reverberant speech is therefore time-aligned with the dry
   speech (no pre-delay for a causal model to undo). The target is the dry
   segment (``reverb_target="dry"``) or the speech convolved with the first
   ``early_reverb_ms`` (50 ms) of the aligned RIR (``"early"``).
4. **SNR** drawn uniformly from ``snr_range`` and applied exactly: the noise is
   scaled so that ``10 log10(sum(target^2) / sum(noise^2))`` equals it.
5. **Level** drawn uniformly from ``level_range`` (dBFS, RMS of the noisy mix);
   the same gain is applied to the target.
6. **No clipping**: if the peak of the noisy mix or of the target would exceed
   ``max_peak`` (0.99), both are scaled down by the same factor (so the level
   can then fall below the drawn one; the SNR is unchanged).

Determinism: all random draws of example ``i`` come from a NumPy generator
seeded with ``(seed, stream, i)``, and the clean permutation of epoch ``e``
from ``(seed, stream, e)``; nothing depends on global random state, thread
scheduling, ``num_parallel_calls`` or on how the index stream is sharded.
``tf.data`` keeps the order (``deterministic=True``), so a given seed yields
the same batches on every run. With a ``tf.distribute.InputContext`` the index
stream is sharded, so every worker synthesises different examples and all
workers together produce exactly the unsharded stream.

Decoding: soundfile (libsndfile) through ``tf.numpy_function``, not
``tf.audio.decode_wav``: it reads WAV, FLAC, OGG and every other format
libsndfile supports, at any rate and channel count, can seek and decode only
the needed part of a long file (streaming mode), and releases the GIL while
decoding. Resampling to 16 kHz is SciPy's anti-aliased polyphase filter
(:func:`keras_dccrn.audio.resample`); channels are averaged to mono. The
mixing math is vectorised NumPy on whole segments (float64), inside the same
``numpy_function``; ``map`` runs it in parallel with ``AUTOTUNE``.

Caching: with ``cache=True`` each file is decoded (and resampled) once, on
first use, and kept in RAM as float32 (16 kHz float32 is 230 MB per hour of
audio: fine for the small shared set). With ``cache=False`` only the needed
segment is decoded from disk for each example (plus a short margin for the
resampling filter), which is what DNS-scale corpora need.

Bad data never stops a run: unreadable, empty, NaN/infinite, silent (RMS below
``silence_db``) and too-short files are skipped with a warning naming the file
and the reason (each file once), and counted in :func:`skipped_files`. A
skipped clean file is replaced by the next usable one of the permutation, a
skipped noise or RIR file by the next usable index. Input with no usable file
is a ``ValueError`` naming the input when the dataset is built.
"""

import csv
import dataclasses
import fnmatch
import glob
import json
import logging
import math
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
from scipy import fft as sp_fft

from keras_dccrn.audio import SAMPLE_RATE, AudioError, audio_info, publish, read_audio, resample, write_audio

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".snd", ".caf", ".w64", ".mp3")
MANIFEST_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")

_TRAIN_STREAM = 0
_VALID_STREAM = 1
_SILENT_SEGMENT_RETRIES = 4

# --------------------------------------------------------------------------------------------------
# Skipped-file registry (process wide, thread safe).

_skip_lock = threading.Lock()
_skipped = {}


def record_skipped(path, reason):
    """Records a skipped file once (later calls for it are ignored) and logs a counted warning naming it."""
    with _skip_lock:
        if path in _skipped:
            return
        _skipped[path] = reason
        count = len(_skipped)
    logger.warning("Skipping %s: %s (%d file(s) skipped so far)", path, reason, count)


def skipped_files():
    """Returns ``[(path, reason), ...]`` for every file skipped so far, in order."""
    with _skip_lock:
        return list(_skipped.items())


def skipped_count():
    """Returns how many distinct files were skipped so far."""
    with _skip_lock:
        return len(_skipped)


def reset_skipped_files():
    """Clears the skipped-file registry (e.g. between experiments or tests)."""
    with _skip_lock:
        _skipped.clear()


# --------------------------------------------------------------------------------------------------
# Configuration.


@dataclasses.dataclass
class MixtureConfig:
    """How noisy/clean pairs are synthesised.

    Args:
        sample_rate: output rate in Hz; every file is resampled to it.
        segment_seconds: example length in seconds, or ``(min, max)`` for
            variable-length examples (length drawn uniformly per example).
        snr_range: ``(low, high)`` SNR in dB, drawn uniformly per example.
        level_range: ``(low, high)`` RMS level of the noisy mix in dBFS.
        reverb_prob: probability of convolving the speech with a random RIR.
        reverb_target: ``"dry"`` or ``"early"`` (speech convolved with the
            first ``early_reverb_ms`` of the RIR after the direct path).
        early_reverb_ms: length of the early part of the RIR in ms.
        short_clean: ``"pad"`` (zero-pad clean files shorter than the
            segment, at a random position) or ``"skip"`` (exclude clean files
            shorter than the longest segment).
        min_clean_seconds: clean files shorter than this are always skipped.
        min_noise_seconds: noise files shorter than this are skipped.
        silence_db: a file (or chosen segment) whose RMS is below this level
            in dBFS counts as silent.
        max_peak: peak limit of noisy and target after the level gain.
        noise_sampling: ``"file"`` (every noise file equally likely) or
            ``"duration"`` (every second of noise equally likely, so a corpus
            of many short clips does not outweigh a few long recordings).

    Fields are validated on construction and again when a dataset is built
    (so a field changed after construction is checked too).
    """

    sample_rate: int = SAMPLE_RATE
    segment_seconds: float | tuple = 4.0
    snr_range: tuple = (-5.0, 20.0)
    level_range: tuple = (-35.0, -15.0)
    reverb_prob: float = 0.0
    reverb_target: str = "dry"
    early_reverb_ms: float = 50.0
    short_clean: str = "pad"
    min_clean_seconds: float = 0.5
    min_noise_seconds: float = 0.1
    silence_db: float = -70.0
    max_peak: float = 0.99
    noise_sampling: str = "file"

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raises ``ValueError`` naming the first invalid field and its value."""
        if int(self.sample_rate) != self.sample_rate or self.sample_rate <= 0:
            raise ValueError(f"`sample_rate` must be a positive integer; received {self.sample_rate!r}.")
        lo, hi = self.segment_range
        if not (0 < lo <= hi):
            raise ValueError(
                f"`segment_seconds` must be positive (or a (min, max) pair with 0 < min <= max); "
                f"received {self.segment_seconds!r}."
            )
        for name in ("snr_range", "level_range"):
            value = getattr(self, name)
            if len(tuple(value)) != 2 or not value[0] <= value[1]:
                raise ValueError(f"`{name}` must be a (low, high) pair with low <= high; received {value!r}.")
        if self.level_range[1] > 0:
            raise ValueError(f"`level_range` is in dBFS and must be <= 0; received {self.level_range!r}.")
        if not 0.0 <= self.reverb_prob <= 1.0:
            raise ValueError(f"`reverb_prob` must be in [0, 1]; received {self.reverb_prob!r}.")
        if self.reverb_target not in ("dry", "early"):
            raise ValueError(f"`reverb_target` must be 'dry' or 'early'; received {self.reverb_target!r}.")
        if self.early_reverb_ms <= 0:
            raise ValueError(f"`early_reverb_ms` must be positive; received {self.early_reverb_ms!r}.")
        if self.short_clean not in ("pad", "skip"):
            raise ValueError(f"`short_clean` must be 'pad' or 'skip'; received {self.short_clean!r}.")
        if self.min_clean_seconds < 0 or self.min_noise_seconds < 0:
            raise ValueError(
                f"`min_clean_seconds`/`min_noise_seconds` must be >= 0; received "
                f"{self.min_clean_seconds!r}/{self.min_noise_seconds!r}."
            )
        if not 0 < self.max_peak <= 1:
            raise ValueError(f"`max_peak` must be in (0, 1]; received {self.max_peak!r}.")
        if self.noise_sampling not in ("file", "duration"):
            raise ValueError(
                f"`noise_sampling` must be 'file' or 'duration'; received {self.noise_sampling!r}."
            )

    @property
    def segment_range(self):
        """``(min, max)`` segment length in seconds."""
        s = self.segment_seconds
        if isinstance(s, (tuple, list)):
            if len(s) != 2:
                raise ValueError(f"`segment_seconds` must be a number or a (min, max) pair; received {s!r}.")
            return float(s[0]), float(s[1])
        return float(s), float(s)

    @property
    def fixed_length(self):
        """Segment length in samples, or ``None`` for variable-length examples."""
        lo, hi = self.segment_range
        return int(round(lo * self.sample_rate)) if lo == hi else None


# --------------------------------------------------------------------------------------------------
# Finding audio: directories, globs, manifests.


def _is_manifest(path):
    return os.path.isfile(path) and path.lower().endswith(MANIFEST_EXTENSIONS)


def _read_manifest(path, where=None):
    """Rows of a CSV/TSV or JSON-lines manifest as dicts; paths made absolute."""
    folder = os.path.dirname(os.path.abspath(path))
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            if path.lower().endswith((".csv", ".tsv")):
                delimiter = "\t" if path.lower().endswith(".tsv") else ","
                reader = csv.DictReader(f, delimiter=delimiter)
                if reader.fieldnames is None or "path" not in reader.fieldnames:
                    raise ValueError(f"{path}: manifest has no `path` column (columns: {reader.fieldnames})")
                rows = list(reader)
            else:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
                    if not isinstance(row, dict) or "path" not in row:
                        raise ValueError(f"{path}: line {number} has no `path` key")
                    rows.append(row)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read manifest ({exc})") from None
    if where:
        rows = [r for r in rows if all(str(r.get(k)) == str(v) for k, v in where.items())]
    for row in rows:
        p = os.path.expanduser(str(row["path"]))
        row["path"] = os.path.normpath(p if os.path.isabs(p) else os.path.join(folder, p))
    return rows


def _manifest_duration(row, manifest):
    for key in ("duration", "seconds"):
        value = row.get(key)
        if value not in (None, ""):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{manifest}: bad {key} {value!r} for {row['path']} (expected seconds)"
                ) from None
    return None


def _scan(pattern_or_dir):
    if os.path.isdir(pattern_or_dir):
        found = []
        for root, dirs, files in os.walk(pattern_or_dir, followlinks=True):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(AUDIO_EXTENSIONS))
        return found
    return sorted(p for p in glob.glob(pattern_or_dir, recursive=True) if os.path.isfile(p))


def inspect_file(path, verify=False, silence_db=-70.0, sample_rate=SAMPLE_RATE):
    """Checks one file; returns its duration in seconds or raises :class:`AudioError`.

    Args:
        path: audio file.
        verify: also decode it and reject NaN/infinite or silent content
            (otherwise only the header is read).
        silence_db: RMS threshold for ``verify`` in dBFS.
        sample_rate: rate used for decoding when ``verify`` is set.
    """
    info = audio_info(path)
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: contains no samples")
    if verify:
        audio, _ = read_audio(path, sample_rate=sample_rate)
        _check_not_silent(path, audio, silence_db)
    return info.frames / info.samplerate


def _rms_db(x):
    x = np.asarray(x, dtype=np.float64)
    return 10.0 * np.log10(np.mean(x * x) + 1e-30) if x.size else -300.0


def _check_not_silent(path, audio, silence_db):
    if silence_db is None:  # e.g. RIRs: quiet by nature, only all-zero ones are useless
        if not np.any(audio):
            raise AudioError(f"{path}: all samples are zero")
        return
    level = _rms_db(audio)
    if level < silence_db:
        raise AudioError(f"{path}: silent (RMS {level:.1f} dBFS < {silence_db:g} dBFS)")


def _excluded(path, patterns):
    """Whether ``path`` (or its file name) matches one of the ``fnmatch`` patterns."""
    name = os.path.basename(path)
    unix = path.replace(os.sep, "/")
    return any(fnmatch.fnmatch(unix, p) or fnmatch.fnmatch(name, p) for p in patterns)


def find_audio(spec, verify=False, where=None, silence_db=-70.0, num_workers=1, exclude=()):
    """Lists audio files and their durations.

    Args:
        spec: a directory (scanned recursively for audio extensions), a glob
            pattern (``**`` allowed), a manifest file (CSV/TSV with a header,
            or JSON lines; a ``path`` column/key and ``duration`` (or
            ``seconds``) in seconds; relative paths are resolved against the
            manifest's folder; a missing duration is read from the header;
            ``"manifest.csv?kind=speech&split=train"`` keeps only rows
            whose columns have these values), a list of those, or a list of
            ``(path, duration)`` pairs.
        verify: decode every file and reject NaN/infinite or silent ones
            (slow on big corpora; the pipeline checks content on use anyway).
        where: for manifests, keep rows whose columns equal these values,
            e.g. ``{"kind": "speech", "split": "train"}``.
        silence_db: RMS threshold for ``verify`` (``None``: reject only
            all-zero files).
        num_workers: threads used to read headers / decode files.
        exclude: ``fnmatch`` patterns matched against each file's name and
            against its whole path (a folder needs a leading ``*/``, e.g.
            ``"*/spk1/*"``); matching files are left out silently.
            ``("urbansound_*",)`` drops the non-commercial UrbanSound8K files
            of ``../shared/data``.

    Returns:
        ``[(path, duration_seconds), ...]``. Files that cannot be used
        (missing, unreadable, empty, and with ``verify`` silent or NaN) are
        left out, recorded in :func:`skipped_files` and logged.

    Raises:
        ValueError: ``spec`` matches nothing at all (no such directory,
            pattern or manifest), or a manifest is malformed.
    """
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude or ())
    if isinstance(spec, (list, tuple)):
        if spec and all(isinstance(s, (list, tuple)) and len(s) == 2 for s in spec):
            return [(str(p), float(d)) for p, d in spec if not _excluded(str(p), exclude)]
        out = []
        for s in spec:
            out.extend(
                find_audio(
                    s,
                    verify=verify,
                    where=where,
                    silence_db=silence_db,
                    num_workers=num_workers,
                    exclude=exclude,
                )
            )
        return out
    spec = os.path.expanduser(os.fspath(spec))
    base, _, query = spec.partition("?")
    if query and _is_manifest(base) and not os.path.exists(spec):
        # "manifest.csv?kind=speech&split=train": keep rows with these values.
        pairs = [item.partition("=") for item in query.split("&") if item]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError(f"{spec}: filter after '?' must be key=value pairs joined by '&'")
        spec, where = base, dict(where or {}, **{k: v for k, _, v in pairs})
    candidates = []  # (path, duration or None)
    if _is_manifest(spec):
        for row in _read_manifest(spec, where):
            path, duration = row["path"], _manifest_duration(row, spec)
            if not os.path.isfile(path):
                record_skipped(path, f"listed in {spec} but no such file")
            elif duration is not None and duration <= 0 and not verify:
                record_skipped(path, f"duration {duration:g} s in {spec}")
            else:
                candidates.append((path, None if verify else duration))
    else:
        paths = _scan(spec)
        if not paths and not os.path.isdir(spec):
            raise ValueError(f"{spec}: no such directory, manifest or matching files")
        candidates = [(p, None) for p in paths if not p.lower().endswith(MANIFEST_EXTENSIONS)]
    candidates = [(p, d) for p, d in candidates if not _excluded(p, exclude)]

    def check(item):
        path, duration = item
        if duration is not None:
            return path, duration, None
        try:
            return path, inspect_file(path, verify=verify, silence_db=silence_db), None
        except AudioError as exc:
            return path, None, _reason(exc, path)

    if num_workers > 1 and len(candidates) > 1:
        with ThreadPoolExecutor(int(num_workers)) as pool:
            checked = list(pool.map(check, candidates))
    else:
        checked = [check(c) for c in candidates]
    results = []
    for path, duration, reason in checked:
        if reason is not None:
            record_skipped(path, reason)
        else:
            results.append((path, duration))
    return results


def _reason(exc, path):
    text = str(exc)
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


def _describe(spec):
    if isinstance(spec, (list, tuple)) and len(spec) > 3:
        return f"[{spec[0]!r}, ... {len(spec)} items]"
    return repr(spec)


# --------------------------------------------------------------------------------------------------
# A corpus of files with lazy decoding, optional caching and bad-file substitution.


class AudioCorpus:
    """Files of one kind (clean, noise or rir) with segment access at a fixed rate.

    Args:
        entries: ``[(path, duration_seconds), ...]``.
        kind: ``"clean"``, ``"noise"`` or ``"rir"`` (used in messages).
        sample_rate: output rate in Hz.
        cache: keep every decoded file in RAM (decoded once, on first use).
        silence_db: RMS threshold below which a file is skipped as silent
            (``None``: only all-zero files are skipped, as for RIRs).
        source: description of the input, for error messages.
    """

    def __init__(self, entries, kind, sample_rate=SAMPLE_RATE, cache=True, silence_db=-70.0, source=None):
        self.paths = [p for p, _ in entries]
        self.durations = np.array([d for _, d in entries], dtype=np.float64)
        self.kind = kind
        self.sample_rate = int(sample_rate)
        self.cache = bool(cache)
        self.silence_db = None if silence_db is None else float(silence_db)
        self.source = source
        self._audio = {}
        self._bad = set()
        self._lock = threading.Lock()
        if not self.paths:
            raise ValueError(f"No usable {kind} audio in {source}: no files left after skipping bad ones.")

    def __len__(self):
        return len(self.paths)

    def _mark_bad(self, index, reason):
        with self._lock:
            self._bad.add(index)
        record_skipped(self.paths[index], reason)

    def is_bad(self, index):
        with self._lock:
            return index in self._bad

    def load(self, index):
        """The whole file ``index`` at ``sample_rate`` (float32), or ``None`` if unusable."""
        with self._lock:
            if index in self._bad:
                return None
            audio = self._audio.get(index)
        if audio is not None:
            return audio
        path = self.paths[index]
        try:
            audio, _ = read_audio(path, sample_rate=self.sample_rate)
            _check_not_silent(path, audio, self.silence_db)
        except AudioError as exc:
            self._mark_bad(index, _reason(exc, path))
            return None
        if self.cache:
            with self._lock:
                self._audio[index] = audio
        return audio

    def first_usable(self, order=None):
        """Index of the first usable file in ``order``; ``ValueError`` if none."""
        for index in range(len(self)) if order is None else order:
            if self.load(int(index)) is not None:
                return int(index)
        raise ValueError(
            f"No usable {self.kind} audio in {self.source}: all {len(self)} files were skipped "
            f"(see the warnings; e.g. {self.paths[0]}: {dict(skipped_files()).get(self.paths[0], '?')})."
        )

    def preload(self, num_workers=2):
        """Decodes every file into the cache now (``cache=True`` only); returns the cached seconds."""
        if not self.cache:
            raise ValueError("`preload` needs `cache=True`.")
        with ThreadPoolExecutor(max(1, int(num_workers))) as pool:
            loaded = list(pool.map(self.load, range(len(self))))
        return sum(len(a) for a in loaded if a is not None) / self.sample_rate

    def _native(self, index):
        """``(frames, rate)`` of the file, or ``None`` if unusable."""
        try:
            info = audio_info(self.paths[index])
        except AudioError as exc:
            self._mark_bad(index, _reason(exc, self.paths[index]))
            return None
        if info.frames <= 0:
            self._mark_bad(index, "contains no samples")
            return None
        return info.frames, info.samplerate

    def num_samples(self, index):
        """Length of file ``index`` at ``sample_rate`` (``None`` if unusable)."""
        with self._lock:
            audio = self._audio.get(index)
        if audio is not None:
            return len(audio)
        if self.cache:
            audio = self.load(index)
            return None if audio is None else len(audio)
        native = self._native(index)
        if native is None:
            return None
        frames, rate = native
        return frames if rate == self.sample_rate else math.ceil(frames * self.sample_rate / rate)

    def read(self, index, start, length):
        """Samples ``[start, start + length)`` of file ``index`` at ``sample_rate``.

        From the cache, or (``cache=False``) by decoding only the needed
        native-rate frames plus a margin for the resampling filter, aligned to
        the polyphase grid so the result equals slicing the fully resampled
        file away from the file's edges. ``None`` if the file is unusable.
        """
        if self.cache:
            audio = self.load(index)
            return None if audio is None else audio[start : start + length]
        native = self._native(index)
        if native is None:
            return None
        frames, rate = native
        path = self.paths[index]
        g = math.gcd(rate, self.sample_rate)
        up, down = self.sample_rate // g, rate // g
        margin = 0 if up == down else 32 * max(1, math.ceil(rate / self.sample_rate)) + 64
        block = max(0, (start - margin) // up)
        start_out = block * up
        need = start + length - start_out + (margin if up != down else 0)
        count = math.ceil(need * down / up)
        try:
            data, _ = read_audio(path, sample_rate=None, start=block * down, frames=count)
        except AudioError as exc:
            self._mark_bad(index, _reason(exc, path))
            return None
        if up != down:
            data = resample(data, rate, self.sample_rate)
        return data[start - start_out : start - start_out + length]


# --------------------------------------------------------------------------------------------------
# Mixing math (NumPy, whole segments).


def prepare_rir(rir, sample_rate=SAMPLE_RATE, early_ms=50.0):
    """Aligns and normalises an RIR; returns ``(full, early)`` float64 arrays.

    The direct path is the largest absolute sample; the RIR is cut so that it
    starts there and divided by its value (direct path = +1). ``early`` is the
    first ``early_ms`` milliseconds of the aligned RIR.
    """
    rir = np.asarray(rir, dtype=np.float64)
    direct = int(np.argmax(np.abs(rir)))
    full = rir[direct:] / rir[direct]
    early = full[: max(1, int(round(early_ms * 1e-3 * sample_rate)))]
    return full, early


def _convolve(x, filters, n):
    """First ``n`` samples of ``x * h`` for each ``h`` (one FFT of ``x``, float32 FFTs, float64 out)."""
    size = sp_fft.next_fast_len(len(x) + max(len(h) for h in filters) - 1, real=True)
    spectrum = sp_fft.rfft(x.astype(np.float32), size)
    return [
        sp_fft.irfft(spectrum * sp_fft.rfft(h.astype(np.float32), size), size)[:n].astype(np.float64)
        for h in filters
    ]


def mix(
    clean,
    noise,
    snr_db,
    level_db,
    rir=None,
    target="dry",
    sample_rate=SAMPLE_RATE,
    early_ms=50.0,
    max_peak=0.99,
):
    """Mixes one example; all inputs are whole segments of the same length.

    Args:
        clean: ``[samples]`` dry speech segment.
        noise: ``[samples]`` noise segment.
        snr_db: SNR of target vs scaled noise, in dB.
        level_db: RMS of the noisy mix in dBFS (before clip prevention).
        rir: optional raw RIR (see :func:`prepare_rir`).
        target: ``"dry"`` or ``"early"`` (only used with ``rir``).
        sample_rate: rate in Hz (for ``early_ms``).
        early_ms: early-reverberation length in ms.
        max_peak: peak limit for noisy and target.

    Returns:
        ``(noisy, target, info)``: float32 arrays and a dict with
        ``gain_db`` (level gain), ``clip_scale`` (<= 1) and ``level_dbfs``
        (final RMS of noisy).
    """
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if clean.shape != noise.shape or clean.ndim != 1:
        raise ValueError(
            f"clean and noise must be 1-D of equal length; received {clean.shape} and {noise.shape}."
        )
    n = clean.shape[0]
    if rir is not None:
        full, early = prepare_rir(rir, sample_rate, early_ms)
        if target == "early":
            speech, tgt = _convolve(clean, [full, early], n)
        else:
            (speech,), tgt = _convolve(clean, [full], n), clean
    else:
        speech, tgt = clean, clean
    p_target = np.mean(tgt * tgt)
    p_noise = np.mean(noise * noise)
    if not (p_target > 0 and p_noise > 0):
        raise ValueError(f"target and noise must not be all zeros; powers {p_target:g} and {p_noise:g}.")
    noise = noise * np.sqrt(p_target / (p_noise * 10.0 ** (snr_db / 10.0)))
    noisy = speech + noise
    gain = 10.0 ** (level_db / 20.0) / np.sqrt(np.mean(noisy * noisy))
    noisy, tgt = noisy * gain, tgt * gain
    peak = max(np.max(np.abs(noisy)), np.max(np.abs(tgt)))
    scale = min(1.0, max_peak / peak)
    noisy, tgt = noisy * scale, tgt * scale
    info = {
        "gain_db": 20.0 * np.log10(gain * scale),
        "clip_scale": scale,
        "level_dbfs": _rms_db(noisy),
    }
    return noisy.astype(np.float32), tgt.astype(np.float32), info


# --------------------------------------------------------------------------------------------------
# Example synthesis.


class MixtureSynthesizer:
    """Synthesises example ``i`` of a seeded stream (pure function of ``(seed, stream, i)``).

    Args:
        speech: clean speech spec (see :func:`find_audio`).
        noise: noise spec.
        rir: optional RIR spec (required when ``config.reverb_prob > 0``).
        config: :class:`MixtureConfig`.
        seed: integer seed.
        cache: keep decoded files in RAM.
        stream: 0 for training, 1 for validation (separate random streams).
        exclude: ``fnmatch`` patterns of files to leave out (see :func:`find_audio`).
    """

    def __init__(
        self, speech, noise, rir=None, config=None, seed=0, cache=True, stream=_TRAIN_STREAM, exclude=()
    ):
        self.config = config = config or MixtureConfig()
        config.validate()
        self.exclude = exclude
        self.seed = int(seed)
        self.stream = int(stream)
        sr = config.sample_rate
        lo, hi = config.segment_range
        self.min_length = int(round(lo * sr))
        self.max_length = int(round(hi * sr))
        min_clean = config.min_clean_seconds
        if config.short_clean == "skip":
            min_clean = max(min_clean, hi)
        self.clean = self._corpus(speech, "clean", min_clean, cache)
        self.noise = self._corpus(noise, "noise", config.min_noise_seconds, cache)
        weights = np.maximum(self.noise.durations, 1e-9)
        self._noise_cdf = np.cumsum(weights) / np.sum(
            weights
        )  # duration sampling: file k covers (cdf[k-1], cdf[k]]
        self.rir = None
        if isinstance(rir, os.PathLike):
            rir = os.fspath(rir)
        if rir is not None and len(rir) > 0:  # None, "" and [] mean no RIRs
            self.rir = self._corpus(rir, "rir", 0.0, cache)
        elif config.reverb_prob > 0:
            raise ValueError(f"`reverb_prob` is {config.reverb_prob} but no `rir` input was given.")
        self._perms = {}
        self._perm_lock = threading.Lock()
        # Fail early (clear ValueError) when no file is actually usable.
        self.clean.first_usable(self._permutation(0))
        self.noise.first_usable()
        if self.rir is not None:
            self.rir.first_usable()

    def _corpus(self, spec, kind, min_seconds, cache):
        silence_db = None if kind == "rir" else self.config.silence_db
        entries = find_audio(spec, silence_db=silence_db, exclude=self.exclude)
        kept = []
        for path, duration in entries:
            if duration < min_seconds:
                record_skipped(path, f"too short for {kind} ({duration:.3f} s < {min_seconds:g} s)")
            else:
                kept.append((path, duration))
        return AudioCorpus(
            kept,
            kind,
            self.config.sample_rate,
            cache=cache,
            silence_db=silence_db,
            source=_describe(spec),
        )

    def preload(self, num_workers=2):
        """Decodes all clean, noise and RIR files into the cache; returns the cached seconds."""
        corpora = [self.clean, self.noise] + ([self.rir] if self.rir is not None else [])
        return sum(c.preload(num_workers) for c in corpora)

    def _permutation(self, epoch):
        with self._perm_lock:
            perm = self._perms.get(epoch)
            if perm is None:
                rng = np.random.default_rng([self.seed, self.stream, 1, epoch])
                perm = rng.permutation(len(self.clean))
                if len(self._perms) >= 4:
                    self._perms.pop(min(self._perms))
                self._perms[epoch] = perm
            return perm

    def _pick_segment(self, corpus, index, length, u_offset, loop):
        """``(segment, start)``: a non-silent ``length``-sample part of file ``index``, or ``None``.

        A file not longer than ``length`` is returned whole (``loop=False``)
        or looped from a random phase (``loop=True``). Otherwise up to
        ``_SILENT_SEGMENT_RETRIES`` evenly spaced offsets are tried, then the
        loudest window of the whole file.
        """
        n = corpus.num_samples(index)
        if n is None:
            return None
        if n <= length:
            audio = corpus.load(index)  # whole file (checks that it is not silent)
            if audio is None:
                return None
            if not loop:
                return audio, 0
            start = int(u_offset * len(audio))
            reps = -(-(start + length) // len(audio))
            return np.tile(audio, reps)[start : start + length], start
        span = n - length + 1
        for attempt in range(_SILENT_SEGMENT_RETRIES):
            start = int(((u_offset + attempt / _SILENT_SEGMENT_RETRIES) % 1.0) * span)
            audio = corpus.read(index, start, length)
            if audio is None:
                return None
            if len(audio) < length:  # header overstates the length (truncated file)
                corpus._mark_bad(index, f"truncated: {len(audio)} samples at {start}, header says {n}")
                return None
            if _rms_db(audio) >= self.config.silence_db:
                return audio, start
        audio = corpus.load(index)  # None if the whole file is silent
        if audio is None:
            return None
        energy = np.cumsum(np.concatenate([[0.0], audio.astype(np.float64) ** 2]))
        start = int(np.argmax(energy[length:] - energy[:-length]))
        return audio[start : start + length], start

    def _next_usable(self, corpus, candidates, length, u_offset, loop):
        for index in candidates:
            index = int(index)
            if corpus.is_bad(index):
                continue
            seg = self._pick_segment(corpus, index, length, u_offset, loop)
            if seg is not None:
                return index, seg
        raise ValueError(f"No usable {corpus.kind} audio left in {corpus.source}: every file was skipped.")

    def example(self, index):
        """Returns ``(noisy, target, metadata)`` for example ``index``."""
        cfg = self.config
        sr = cfg.sample_rate
        rng = np.random.default_rng([self.seed, self.stream, 0, int(index)])
        # Fixed draw order, whatever the configuration, so that e.g. the same
        # seed gives the same clean/noise/SNR with and without reverberation.
        u = rng.random(9)
        length = self.min_length + int(u[0] * (self.max_length - self.min_length + 1))
        length = min(length, self.max_length)
        snr_db = cfg.snr_range[0] + u[1] * (cfg.snr_range[1] - cfg.snr_range[0])
        level_db = cfg.level_range[0] + u[2] * (cfg.level_range[1] - cfg.level_range[0])

        n_clean = len(self.clean)
        epoch, pos = divmod(int(index), n_clean)
        perm = self._permutation(epoch)
        order = (perm[(pos + k) % n_clean] for k in range(n_clean))
        ci, (clean, c_start) = self._next_usable(self.clean, order, length, u[3], loop=False)
        pad_start = 0
        if len(clean) < length:
            pad_start = int(u[4] * (length - len(clean) + 1))
            clean = np.pad(clean, (pad_start, length - len(clean) - pad_start))

        n_noise = len(self.noise)
        if cfg.noise_sampling == "duration":
            first = min(int(np.searchsorted(self._noise_cdf, u[5], side="right")), n_noise - 1)
        else:
            first = int(u[5] * n_noise)
        ni, (noise, n_start) = self._next_usable(
            self.noise, ((first + k) % n_noise for k in range(n_noise)), length, u[6], loop=True
        )

        rir = None
        ri = None
        if self.rir is not None and u[7] < cfg.reverb_prob:
            n_rir = len(self.rir)
            first = int(u[8] * n_rir)
            for k in range(n_rir):
                cand = (first + k) % n_rir
                rir = self.rir.load(cand)
                if rir is not None:
                    ri = int(cand)
                    break
            if rir is None:
                raise ValueError(f"No usable rir audio left in {self.rir.source}: every file was skipped.")

        noisy, target, info = mix(
            clean,
            noise,
            snr_db,
            level_db,
            rir=rir,
            target=cfg.reverb_target,
            sample_rate=sr,
            early_ms=cfg.early_reverb_ms,
            max_peak=cfg.max_peak,
        )
        meta = {
            "index": int(index),
            "seconds": length / sr,
            "snr_db": snr_db,
            "level_db": level_db,
            "level_dbfs": info["level_dbfs"],
            "clip_scale": info["clip_scale"],
            "clean_file": self.clean.paths[ci],
            "clean_offset": c_start / sr,
            "clean_pad": pad_start / sr,
            "noise_file": self.noise.paths[ni],
            "noise_offset": n_start / sr,
            "rir_file": "" if ri is None else self.rir.paths[ri],
            "target": cfg.reverb_target if ri is not None else "dry",
        }
        return noisy, target, meta

    def _pair(self, index):
        noisy, target, _ = self.example(int(index))
        return noisy, target

    def dataset(self, indices, num_parallel_calls=tf.data.AUTOTUNE):
        """Maps a dataset of int64 example indices to ``(noisy, clean)`` examples."""
        length = self.config.fixed_length

        def synth(index):
            noisy, clean = tf.numpy_function(self._pair, [index], [tf.float32, tf.float32], stateful=False)
            noisy.set_shape([length])  # [samples]
            clean.set_shape([length])  # [samples]
            return noisy, clean

        return indices.map(synth, num_parallel_calls=num_parallel_calls, deterministic=True)


def _batch(ds, batch_size, fixed_length, drop_remainder):
    if fixed_length is None:
        return ds.padded_batch(batch_size, padded_shapes=([None], [None]), drop_remainder=drop_remainder)
    return ds.batch(batch_size, drop_remainder=drop_remainder)


def check_batch(batch_size):
    """Raises ``ValueError`` naming ``batch_size`` unless it is a positive integer."""
    if int(batch_size) != batch_size or batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer; received {batch_size!r}.")


def training_dataset(
    speech,
    noise,
    rir=None,
    config=None,
    batch_size=8,
    seed=0,
    cache=True,
    input_context=None,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
    preload=False,
    start_example=0,
    exclude=(),
):
    """Infinite dataset of on-the-fly ``(noisy, clean)`` training batches.

    Args:
        speech: clean speech (directory, glob, manifest or list; see
            :func:`find_audio`).
        noise: noise, same forms.
        rir: optional room impulse responses, same forms.
        config: :class:`MixtureConfig` (default: 4 s, -5..20 dB SNR,
            -35..-15 dBFS, no reverberation).
        batch_size: size of the batches this dataset yields. With
            ``tf.distribute`` (``distribute_datasets_from_function``) that is
            the per-replica size: pass
            ``input_context.get_per_replica_batch_size(global_batch)``.
        seed: integer seed; the same seed gives the same batches.
        cache: keep decoded files in RAM (decode each file once).
        input_context: optional ``tf.distribute.InputContext``; the example
            stream is sharded so each input pipeline sees different data.
        num_parallel_calls: parallelism of the synthesis ``map``.
        prefetch: prefetch buffer (batches).
        preload: with ``cache``, decode every file now (2 threads) rather
            than on first use, for full speed from the first step.
        start_example: index of the first example of the stream (a resumed
            run passes ``steps_done * batch_size`` so that it continues the
            stream instead of seeing its first examples again): an integer,
            or a scalar int64 ``tf.Variable`` read each time an iterator over
            the dataset is created (so one dataset can serve several ``fit``
            calls that each continue where the previous one stopped).
        exclude: ``fnmatch`` patterns of files to leave out (see :func:`find_audio`).

    Returns:
        ``tf.data.Dataset`` of float32 ``([batch, samples], [batch, samples])``
        (variable-length configs are zero-padded to the longest in a batch).

    Raises:
        ValueError: bad arguments, or an input has no usable file.
    """
    check_batch(batch_size)
    config = config or MixtureConfig()
    indices, options = example_indices(start_example, input_context)
    synth = MixtureSynthesizer(
        speech, noise, rir, config, seed=seed, cache=cache, stream=_TRAIN_STREAM, exclude=exclude
    )
    if preload:
        synth.preload()
    ds = synth.dataset(indices, num_parallel_calls)
    ds = _batch(ds, int(batch_size), config.fixed_length, drop_remainder=True)
    ds = ds.with_options(options)
    return ds.prefetch(prefetch)


def example_indices(start_example=0, input_context=None):
    """The infinite stream of training example numbers and the ``tf.data.Options`` it needs.

    Args:
        start_example: first example number, an integer or a scalar int64 ``tf.Variable`` read when
            an iterator is created (see :func:`training_dataset`).
        input_context: optional ``tf.distribute.InputContext``; the stream is sharded by number.

    Returns:
        ``(indices, options)``: an int64 ``tf.data.Dataset`` and deterministic options.
    """
    if isinstance(start_example, tf.Variable):
        if start_example.dtype != tf.int64 or start_example.shape.rank != 0:
            raise ValueError(f"`start_example` must be a scalar int64 variable; received {start_example!r}.")
        # flat_map's function runs when an iterator reaches its single input: the variable is read then.
        indices = tf.data.Dataset.range(1).flat_map(
            lambda _: tf.data.Dataset.counter(start=start_example.read_value(), step=1, dtype=tf.int64)
        )
    elif int(start_example) != start_example or start_example < 0:
        raise ValueError(f"`start_example` must be a non-negative integer; received {start_example!r}.")
    else:
        indices = tf.data.Dataset.counter(start=int(start_example), step=1, dtype=tf.int64)
    options = tf.data.Options()
    options.deterministic = True
    if input_context is not None:
        indices = indices.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        # Already sharded by example index; stop tf.distribute from sharding again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return indices, options


def validation_dataset(
    speech,
    noise,
    rir=None,
    config=None,
    num_examples=200,
    batch_size=8,
    seed=0,
    cache=True,
    num_parallel_calls=tf.data.AUTOTUNE,
    exclude=(),
):
    """Finite, fixed ``(noisy, clean)`` dataset: same examples on every run for a seed.

    Args:
        speech, noise, rir, config, cache, num_parallel_calls, exclude: as in
            :func:`training_dataset`.
        num_examples: number of examples (the last batch may be smaller).
        batch_size: batch size.
        seed: integer seed (a random stream separate from training's).

    Returns:
        ``tf.data.Dataset`` of float32 ``([batch, samples], [batch, samples])``.
    """
    check_batch(batch_size)
    if int(num_examples) != num_examples or num_examples <= 0:
        raise ValueError(f"`num_examples` must be a positive integer; received {num_examples!r}.")
    config = config or MixtureConfig()
    synth = MixtureSynthesizer(
        speech, noise, rir, config, seed=seed, cache=cache, stream=_VALID_STREAM, exclude=exclude
    )
    indices = tf.data.Dataset.range(int(num_examples))
    ds = _batch(synth.dataset(indices, num_parallel_calls), int(batch_size), config.fixed_length, False)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


PAIRS_CSV_FIELDS = (
    "name",
    "seconds",
    "snr_db",
    "level_db",
    "level_dbfs",
    "clip_scale",
    "target",
    "clean_file",
    "clean_offset",
    "clean_pad",
    "noise_file",
    "noise_offset",
    "rir_file",
)


def write_pairs(
    output_dir,
    speech,
    noise,
    rir=None,
    config=None,
    num_examples=200,
    seed=0,
    cache=True,
    subtype="PCM_16",
    csv_name="mixtures.csv",
    exclude=(),
):
    """Writes a fixed set of examples to disk (the same as :func:`validation_dataset`).

    Layout: ``output_dir/noisy/NNNN.wav`` and ``output_dir/clean/NNNN.wav``
    (identical names) and ``output_dir/<csv_name>`` with one row per example
    (``PAIRS_CSV_FIELDS``: SNR, drawn and final level, noise file, RIR, ...).
    Every file is written atomically (temporary file, then rename), the CSV
    last. Variable-length configs write each example at its own length.

    Args:
        output_dir: destination folder (created).
        speech, noise, rir, config, seed, cache: as in :func:`validation_dataset`.
        num_examples: number of pairs.
        subtype: WAV subtype (``"PCM_16"``, or ``"FLOAT"`` for bit-exact).
        exclude: ``fnmatch`` patterns of files to leave out (see :func:`find_audio`).
        csv_name: name of the metadata CSV.

    Returns:
        The list of metadata dicts (one per example).
    """
    if int(num_examples) != num_examples or num_examples <= 0:
        raise ValueError(f"`num_examples` must be a positive integer; received {num_examples!r}.")
    config = config or MixtureConfig()
    synth = MixtureSynthesizer(
        speech, noise, rir, config, seed=seed, cache=cache, stream=_VALID_STREAM, exclude=exclude
    )
    width = max(4, len(str(int(num_examples) - 1)))
    rows = []
    for i in range(int(num_examples)):
        noisy, clean, meta = synth.example(i)
        name = f"{i:0{width}d}.wav"
        write_audio(os.path.join(output_dir, "noisy", name), noisy, config.sample_rate, subtype=subtype)
        write_audio(os.path.join(output_dir, "clean", name), clean, config.sample_rate, subtype=subtype)
        meta = dict(meta, name=name)
        rows.append(meta)
    _write_csv_atomic(os.path.join(output_dir, csv_name), rows, PAIRS_CSV_FIELDS)
    return rows


def _format(value):
    if isinstance(value, float):
        return f"{value:.6f}"
    return value


def _write_csv_atomic(path, rows, fields, delimiter=","):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=folder)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore", delimiter=delimiter)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _format(row.get(k, "")) for k in fields})
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_manifest(path, entries, columns=None):
    """Writes ``[(path, duration), ...]`` as a CSV or JSON-lines manifest (by extension), atomically.

    Files inside the manifest's folder are stored with relative paths (the
    folder stays portable), others with absolute paths.

    Args:
        path: ``.csv``/``.tsv`` or ``.jsonl``/``.ndjson``/``.json`` file.
        entries: ``(path, duration_seconds)`` pairs.
        columns: optional dict of constant extra columns (e.g. ``{"kind": "rir"}``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    columns = dict(columns or {})
    rows = []
    for p, d in entries:
        p = os.path.abspath(p)
        rel = os.path.relpath(p, folder)
        rows.append(
            {"path": p if rel.startswith(os.pardir) else rel, "duration": round(float(d), 6), **columns}
        )
    fields = ("path", "duration", *columns)
    lower = path.lower()
    if lower.endswith((".csv", ".tsv")):
        _write_csv_atomic(path, rows, fields, delimiter="\t" if lower.endswith(".tsv") else ",")
        return
    if not lower.endswith((".jsonl", ".ndjson", ".json")):
        raise ValueError(f"{path}: manifest must end with .csv, .tsv or .jsonl")
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".jsonl", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


__all__ = [
    "AudioCorpus",
    "MixtureConfig",
    "MixtureSynthesizer",
    "find_audio",
    "inspect_file",
    "mix",
    "prepare_rir",
    "record_skipped",
    "reset_skipped_files",
    "skipped_count",
    "skipped_files",
    "training_dataset",
    "validation_dataset",
    "write_manifest",
    "write_pairs",
]
