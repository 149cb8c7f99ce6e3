"""How noisy/clean pairs are synthesised: :class:`MixtureConfig` (validated on construction and on use)."""

import dataclasses

from keras_dccrn.audio import SAMPLE_RATE


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
