"""A corpus of audio files of one kind with lazy decoding, optional caching and bad-file marking."""

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE, AudioError, audio_info, read_audio, resample
from keras_dccrn.data.discovery import check_not_silent, skip_reason
from keras_dccrn.data.skipped import record_skipped, skipped_files


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
            check_not_silent(path, audio, self.silence_db)
        except AudioError as exc:
            self._mark_bad(index, skip_reason(exc, path))
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
            self._mark_bad(index, skip_reason(exc, self.paths[index]))
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
            self._mark_bad(index, skip_reason(exc, path))
            return None
        if up != down:
            data = resample(data, rate, self.sample_rate)
        return data[start - start_out : start - start_out + length]
