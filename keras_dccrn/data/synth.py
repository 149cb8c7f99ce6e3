"""Example synthesis: example ``i`` of a seeded stream as a pure NumPy function of ``(seed, stream, i)``.

The steps (clean segment, noise segment, reverberation, SNR, level, peak limit), the random draws and
the bad-file handling are described in :mod:`keras_dccrn.data`. No TensorFlow:
:mod:`keras_dccrn.data.pipeline` maps example indices through :meth:`MixtureSynthesizer.example`.
"""

import os
import threading

import numpy as np

from keras_dccrn.data.config import MixtureConfig
from keras_dccrn.data.corpus import AudioCorpus
from keras_dccrn.data.discovery import describe, find_audio
from keras_dccrn.data.mixing import mix, rms_db
from keras_dccrn.data.skipped import record_skipped

TRAIN_STREAM = 0
VALID_STREAM = 1
_SILENT_SEGMENT_RETRIES = 4


class MixtureSynthesizer:
    """Synthesises example ``i`` of a seeded stream (pure function of ``(seed, stream, i)``).

    Args:
        speech: clean speech spec (see :func:`keras_dccrn.data.find_audio`).
        noise: noise spec.
        rir: optional RIR spec (required when ``config.reverb_prob > 0``).
        config: :class:`MixtureConfig`.
        seed: integer seed.
        cache: keep decoded files in RAM.
        stream: 0 for training, 1 for validation (separate random streams).
        exclude: ``fnmatch`` patterns of files to leave out (see :func:`keras_dccrn.data.find_audio`).
    """

    def __init__(
        self, speech, noise, rir=None, config=None, seed=0, cache=True, stream=TRAIN_STREAM, exclude=()
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
        # Duration sampling: file k covers (cdf[k-1], cdf[k]].
        self._noise_cdf = np.cumsum(weights) / np.sum(weights)
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
            source=describe(spec),
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
            if rms_db(audio) >= self.config.silence_db:
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
