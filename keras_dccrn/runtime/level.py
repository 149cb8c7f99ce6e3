"""Input level normalisation: a recording's level brought into the range the models were trained on.

The models learnt from mixtures whose RMS level lies in :data:`LEVEL_RANGE_DBFS` (the mixing default,
``keras_dccrn.data.MixtureConfig.level_range``). A masking network with biases, batch normalisation and
recurrent layers is not scale-invariant, so a recording far below that range (a quiet microphone, a
distant talker) is enhanced much worse than the same recording at a training level
(``benchmarks/level_robustness.py`` measures it: docs/benchmarks/level_robustness.md).

:func:`channel_levels` measures each channel's level (its RMS, as the mixing pipeline sets it, without
digital silence); :func:`level_gains` gives the gain that moves each level to the nearest edge of the
range (1 for a level inside it, so audio at a training level is enhanced unchanged);
:class:`LeveledEnhancer` multiplies a backend's input by the gains and divides its output by them, so
the enhanced audio keeps the input's level. The level is measured at the input's own rate, before
resampling to 16 kHz.
"""

import numpy as np

from keras_dccrn.runtime.backends import Enhancer

LEVEL_RANGE_DBFS = (-35.0, -15.0)
BLOCK_SECONDS = 1.0
SILENCE_DBFS = -100.0  # one-second blocks below this are digital silence and do not count
MAX_GAIN_DB = 60.0


def channel_levels(read, total, sample_rate, block_seconds=BLOCK_SECONDS):
    """The level of each channel of a signal: its RMS in dBFS, digital silence left out.

    This is the level the mixing pipeline sets (the RMS of the whole noisy segment), measured over the
    signal's blocks that are not digital silence (a block below :data:`SILENCE_DBFS`, such as zero
    padding, does not lower it).

    Args:
        read: ``read(start, stop) -> [C, stop - start]`` float samples (as the chunked runner's).
        total: number of samples.
        sample_rate: rate of the samples in Hz.
        block_seconds: block length.

    Returns:
        float array ``[C]`` of levels in dBFS; ``-inf`` for a channel that is silent throughout.

    Raises:
        ValueError: ``total``, ``sample_rate`` or ``block_seconds`` not positive.
    """
    if total <= 0 or sample_rate <= 0 or not block_seconds > 0:
        raise ValueError(
            f"`total`, `sample_rate` and `block_seconds` must be positive; received {total!r}, "
            f"{sample_rate!r}, {block_seconds!r}."
        )
    block = max(1, int(round(block_seconds * sample_rate)))
    energy = count = None
    for start in range(0, total, block):  # one block per read: memory flat in the signal's length
        x = read(start, min(start + block, total)).astype(np.float64)
        if energy is None:
            energy, count = np.zeros(x.shape[0]), np.zeros(x.shape[0])
        sums = np.sum(x * x, axis=1)
        loud = sums > x.shape[1] * 10.0 ** (SILENCE_DBFS / 10.0)
        energy += np.where(loud, sums, 0.0)
        count += np.where(loud, x.shape[1], 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, 10.0 * np.log10(energy / np.maximum(count, 1)), -np.inf)


def level_gains(levels, level_range=LEVEL_RANGE_DBFS, max_gain_db=MAX_GAIN_DB):
    """Linear gains that move each level to the nearest edge of ``level_range`` (1 inside it).

    Args:
        levels: levels in dBFS (:func:`channel_levels`); ``-inf`` (silence) gets gain 1.
        level_range: ``(low, high)`` in dBFS.
        max_gain_db: the largest boost (a near-silent channel is not raised to speech level).

    Returns:
        float array of gains, the shape of ``levels``.

    Raises:
        ValueError: a range with ``low > high``, or a negative ``max_gain_db``.
    """
    low, high = (float(v) for v in level_range)
    if not low <= high:
        raise ValueError(f"`level_range` must be (low, high) with low <= high; received {level_range!r}.")
    if not max_gain_db >= 0:
        raise ValueError(f"`max_gain_db` must be >= 0; received {max_gain_db!r}.")
    levels = np.asarray(levels, dtype=np.float64)
    finite = np.isfinite(levels)
    safe = np.where(finite, levels, low)
    gains_db = np.where(finite, np.minimum(np.clip(safe, low, high) - safe, max_gain_db), 0.0)
    return np.power(10.0, gains_db / 20.0)


def leveled(enhancer, read, total, sample_rate, level_range=LEVEL_RANGE_DBFS):
    """``enhancer`` wrapped in a :class:`LeveledEnhancer` for the signal ``read`` delivers.

    Args:
        enhancer: the backend.
        read, total, sample_rate: the signal, as :func:`channel_levels` takes it.
        level_range: ``(low, high)`` dBFS, or None for no normalisation.

    Returns:
        ``enhancer`` itself when ``level_range`` is None or every channel is inside it, else the wrapper.
    """
    if level_range is None:
        return enhancer
    gains = level_gains(channel_levels(read, total, sample_rate), level_range)
    return enhancer if np.all(gains == 1.0) else LeveledEnhancer(enhancer, gains)


class LeveledEnhancer(Enhancer):
    """A backend whose input is scaled by per-channel gains and whose output is scaled back.

    Args:
        enhancer: the backend (:class:`keras_dccrn.runtime.backends.Enhancer`).
        gains: ``[C]`` linear gains, one per channel of the signals it will enhance.

    Raises:
        ValueError: a gain that is not finite and positive.
    """

    def __init__(self, enhancer, gains):
        super().__init__(enhancer.name, enhancer.lookahead_samples, enhancer.alignment)
        gains = np.asarray(gains, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(gains) & (gains > 0)):
            raise ValueError(f"`gains` must be finite and positive; received {gains!r}.")
        self.enhancer = enhancer
        self.gains = gains[:, None].astype(np.float32)  # [C] -> [C, 1]

    @property
    def streams(self):
        """Whether the wrapped backend streams."""
        return self.enhancer.streams

    def open_stream(self, channels):
        """The wrapped backend's stream with the gains applied to each piece."""
        return _LeveledStream(self.enhancer.open_stream(channels), self._gains(channels))

    def _gains(self, channels):
        if self.gains.shape[0] != channels:
            raise ValueError(f"{self.name}: {self.gains.shape[0]} gains for {channels} channels.")
        return self.gains

    def run(self, batch):
        gains = self._gains(batch.shape[0])
        return self.enhancer(batch * gains) / gains


class _LeveledStream:
    def __init__(self, stream, gains):
        self.stream, self.gains = stream, gains

    def push(self, audio, final=False):
        return self.stream.push(audio * self.gains, final) / self.gains
