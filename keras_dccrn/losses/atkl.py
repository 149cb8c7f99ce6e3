"""AT-KL feature distillation (Distil-DCCRN): attention energies, teacher-to-student alignment, AT and KL terms."""

import numbers

import keras
from keras import ops

from keras_dccrn.losses.validation import check_non_negative, check_positive

ATTENTION_DIMS = ("time", "channel", "both")
# Relative floor of the log-energy (peak-normalised energies below 1e-8,
# i.e. -80 dB under the loudest frame/channel, count as 1e-8).
ATTENTION_FLOOR = 1e-8
# Absolute floor of the peak energy and of the L2 norm: a feature map whose
# peak energy is below ~1e-12 (amplitudes ~1e-6) is treated as silent. Large
# enough that the gradient through an all-zero map stays finite (it is 0).
_TINY = 1e-12


def time_attention(features):
    """Energy per frame: ``[B, T, F, C] -> [B, T]``, ``sum_{f, c} x^2`` (float32)."""
    x = ops.cast(features, "float32")
    return ops.sum(x * x, axis=(2, 3))


def channel_attention(features, complex_channels=True):
    """Energy per channel: ``[B, T, F, C] -> [B, C]`` (or ``[B, C / 2]``), float32.

    Args:
        features: feature map ``[batch, frames, freq, channels]``.
        complex_channels: the channel axis follows the package's complex
            convention (``C / 2`` real parts, then ``C / 2`` imaginary
            parts); the energy of complex channel ``k`` is
            ``sum_{t, f} Re^2 + Im^2`` and the result has ``C / 2`` entries.
            With ``False`` every real channel is its own entry.
    """
    x = ops.cast(features, "float32")
    energy = ops.sum(x * x, axis=(1, 2))  # [B, C]
    if not complex_channels:
        return energy
    channels = energy.shape[-1]
    if channels is None or channels % 2:
        raise ValueError(
            "`complex_channels=True` needs an even, known channel count; "
            f"received feature shape {tuple(features.shape)}."
        )
    real, imag = ops.split(energy, 2, axis=-1)
    return real + imag


def proportional_positions(out_length, in_length):
    """Source positions of a half-pixel linear resampling (``align_corners=False``).

    Output entry ``i`` of ``out_length`` sits at input position
    ``(i + 0.5) * in_length / out_length - 0.5``: both vectors are seen as
    ``length`` equal cells spanning the same interval, and cell centres are
    matched (the convention of ``torch.nn.functional.interpolate(...,
    align_corners=False)`` and ``tf.image.resize(..., "bilinear")``). Equal
    lengths give the identity. Positions are not clamped here.

    Returns:
        float32 tensor ``[out_length]``.
    """
    i = ops.cast(ops.arange(out_length), "float32")
    scale = ops.cast(in_length, "float32") / ops.cast(out_length, "float32")
    return (i + 0.5) * scale - 0.5


def frame_time_positions(out_length, student_frame, teacher_frame):
    """Teacher frame index matching each student frame in time (seconds).

    With the framing of :class:`keras_dccrn.layers.STFT` (left padding
    ``frame_length - frame_step``), frame ``t`` covers samples
    ``[(t + 1) * hop - win, (t + 1) * hop)`` and its centre is at sample
    ``(t + 1) * hop - win / 2``. Student frame ``i`` is therefore mapped to
    the (fractional) teacher frame whose centre is at the same instant::

        p(i) = ((i + 1) * hop_s - win_s / 2 + win_t / 2) / hop_t - 1

    Both models must run at the same sample rate (16 kHz here), so samples
    and seconds are interchangeable. With equal framings ``p(i) = i``.

    Args:
        out_length: number of student frames.
        student_frame: ``(frame_length, frame_step)`` of the student.
        teacher_frame: ``(frame_length, frame_step)`` of the teacher.

    Returns:
        float32 tensor ``[out_length]`` (not clamped).
    """
    win_s, hop_s = (float(v) for v in student_frame)
    win_t, hop_t = (float(v) for v in teacher_frame)
    i = ops.cast(ops.arange(out_length), "float32")
    return ((i + 1.0) * hop_s - 0.5 * win_s + 0.5 * win_t) / hop_t - 1.0


def linear_interpolate(vector, positions):
    """Samples ``vector [B, N]`` at fractional ``positions [M]`` by gather + lerp.

    Positions are clamped to ``[0, N - 1]`` (edge values are repeated
    outside the input, no extrapolation); entry ``p`` is
    ``(1 - w) * v[floor p] + w * v[floor p + 1]`` with ``w = p - floor p``.
    Works with dynamic ``N`` and ``M``.

    Returns:
        ``[B, M]``.
    """
    n = ops.shape(vector)[1]
    last = ops.cast(n - 1, "float32")
    p = ops.clip(ops.cast(positions, "float32"), 0.0, last)
    low = ops.floor(p)
    weight = p - low
    i0 = ops.cast(low, "int32")
    i1 = ops.minimum(i0 + 1, ops.cast(n - 1, "int32"))
    v0 = ops.take(vector, i0, axis=1)
    v1 = ops.take(vector, i1, axis=1)
    return v0 * (1.0 - weight) + v1 * weight


def _peak_normalise(energy):
    """``energy / max(energy)`` per example (scale invariance, no overflow)."""
    peak = ops.max(energy, axis=-1, keepdims=True)
    return energy / (peak + _TINY)


def attention_transfer_distance(student_energy, teacher_energy):
    """AT term: squared L2 distance of L2-normalised attention vectors, ``[B]``.

    ``|| a_s / ||a_s|| - a_t / ||a_t|| ||^2`` (Zagoruyko & Komodakis, with
    ``p = 2`` energies). Both vectors are non-negative, so the value lies in
    ``[0, 2]``; it is invariant to the scale of either feature map and
    independent of the vector length.
    """

    def unit(a):
        a = _peak_normalise(a)
        return a / ops.sqrt(ops.sum(a * a, axis=-1, keepdims=True) + _TINY)

    diff = unit(student_energy) - unit(teacher_energy)
    return ops.sum(diff * diff, axis=-1)


def attention_log_distribution(energy, temperature=2.0, floor=ATTENTION_FLOOR):
    """Log of the temperature-softened attention distribution, ``[B, N]``.

    ``p = softmax(log(e / max(e) + floor) / temperature)``, which is
    ``(e + floor * max e)^(1 / T)`` normalised to sum to one: ``T = 1``
    gives the energy share of each frame/channel, ``T = 2`` the share of its
    L2 norm (amplitude), larger ``T`` flattens further. Log-energy rather
    than raw energy is used because feature energies span many orders of
    magnitude and depend on the feature scale: a softmax of raw energies
    would be one-hot and scale dependent, whereas this distribution is
    invariant to rescaling the feature map. The relative floor (-80 dB
    under the peak) keeps the logarithm finite for silent frames and all-zero
    maps (which give the uniform distribution).
    """
    logits = ops.log(_peak_normalise(energy) + floor) / temperature
    return ops.log_softmax(logits, axis=-1)


def kl_divergence(teacher_log_p, student_log_p):
    """``KL(teacher || student) = sum p_t (log p_t - log p_s)`` per example, ``[B]``."""
    return ops.sum(ops.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)


def _check_frame(name, frame):
    if frame is None:
        return None
    frame = list(frame)
    if len(frame) != 2 or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in frame
    ):
        raise ValueError(
            f"`{name}` must be None or (frame_length, frame_step) positive ints; received {frame!r}."
        )
    return [int(v) for v in frame]


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ATKLLoss(keras.losses.Loss):
    """AT-KL feature distillation: attention transfer and KL divergence.

    For every (teacher, student) pair of feature maps ``[B, T, F, C]`` two
    attention vectors are formed from the energy of the features:

    * time attention ``sum_{f, c} x^2`` -> ``[B, T]`` (which frames matter);
    * channel attention ``sum_{t, f} |x|^2`` per complex channel -> ``[B, C / 2]``
      (with ``complex_channels=True``; which channels carry the energy).

    The frequency axis is always summed out, so teacher and student may have
    different frequency resolutions. The **teacher** vector is aligned to the
    student's length by linear interpolation (:func:`linear_interpolate`,
    gather + lerp, edges clamped):

    * time: if both framings are known (``student_frame`` and
      ``teacher_frame``), student frame ``i`` reads the teacher at the frame
      whose centre is at the same instant (:func:`frame_time_positions`), so
      a 100-sample-hop student and a 160-sample-hop teacher are compared at
      equal times, not equal indices; otherwise the half-pixel proportional
      mapping (:func:`proportional_positions`) is used;
    * channel: half-pixel proportional mapping (``align_corners=False``).

    Linear interpolation of energies keeps them non-negative. On the aligned
    vectors the two terms are:

    * **AT**: ``|| a_s / ||a_s|| - a_t / ||a_t|| ||^2``
      (:func:`attention_transfer_distance`, in ``[0, 2]``);
    * **KL**: ``T^2 * KL(p_t || p_s)`` with ``p = softmax(log e / T)``
      (:func:`attention_log_distribution`, :func:`kl_divergence`); the
      ``T^2`` factor (Hinton et al.) keeps the gradient scale independent of
      the temperature.

    Each term is summed over the feature pairs with ``pair_weights``; the
    total per example is
    ``at_weight * (time_weight * AT_time + channel_weight * AT_channel)
    + kl_weight * (time_weight * KL_time + channel_weight * KL_channel)``
    where the terms not selected by ``attention_dims`` (and the AT or KL part
    if its weight is 0) are zero. All terms are computed in float32 and are
    invariant to rescaling any feature map (as long as its peak energy stays
    above the ``1e-12`` silence floor; an all-zero map gives a finite loss
    and zero gradient).

    Where Han et al. (2024) are not explicit in what could be consulted here
    (only the abstract: attention transfer along time and channel, KL
    divergence, interpolation across mismatched time/channel dimensions),
    the choices above are this package's: frame-centre time matching,
    half-pixel channel mapping, log-energy softmax with ``T = 2``, the
    ``T^2`` factor, the ``[0, 2]``-bounded AT distance and unit weights.

    Args:
        attention_dims: ``"time"``, ``"channel"`` or ``"both"``.
        temperature: softmax temperature ``T > 0`` of the KL term.
        at_weight: weight of the AT terms (``>= 0``).
        kl_weight: weight of the KL terms (``>= 0``).
        time_weight: weight of the time-attention terms (``>= 0``).
        channel_weight: weight of the channel-attention terms (``>= 0``).
        pair_weights: ``None`` (all 1) or one non-negative weight per
            feature pair (12 for DCCRN-style models: 6 encoder, 6 decoder).
        student_frame: ``(frame_length, frame_step)`` of the student STFT or
            ``None``.
        teacher_frame: ``(frame_length, frame_step)`` of the teacher STFT or
            ``None``.
        complex_channels: channel axes follow the complex convention.
        **kwargs: base ``Loss`` arguments (``name``, ``reduction``).

    Call arguments:
        y_true: list of teacher feature maps ``[B, T_t, F_t, C_t]``.
        y_pred: list of student feature maps ``[B, T_s, F_s, C_s]`` (same
            number of maps, paired by index).

    Returns:
        ``call``: total AT-KL loss per example ``[B]``; :meth:`terms` gives
        ``at_time``, ``at_channel``, ``kl_time``, ``kl_channel`` (each
        ``[B]``, already summed over pairs with ``pair_weights``) and
        ``total``.

    References:
        Han et al., "Distil-DCCRN: A Small-footprint DCCRN Leveraging
        Feature-based Knowledge Distillation in Speech Enhancement", IEEE SPL
        31, 2024, arXiv:2408.04267. Zagoruyko & Komodakis, "Paying More
        Attention to Attention", ICLR 2017. Hinton et al., "Distilling the
        Knowledge in a Neural Network", 2015.
    """

    def __init__(
        self,
        attention_dims="both",
        temperature=2.0,
        at_weight=1.0,
        kl_weight=1.0,
        time_weight=1.0,
        channel_weight=1.0,
        pair_weights=None,
        student_frame=None,
        teacher_frame=None,
        complex_channels=True,
        name="at_kl_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if attention_dims not in ATTENTION_DIMS:
            raise ValueError(
                f"`attention_dims` must be one of {ATTENTION_DIMS}; received {attention_dims!r}."
            )
        self.attention_dims = attention_dims
        self.temperature = check_positive("temperature", temperature)
        self.at_weight = check_non_negative("at_weight", at_weight)
        self.kl_weight = check_non_negative("kl_weight", kl_weight)
        self.time_weight = check_non_negative("time_weight", time_weight)
        self.channel_weight = check_non_negative("channel_weight", channel_weight)
        if pair_weights is not None:
            pair_weights = [check_non_negative("pair_weights[i]", w) for w in pair_weights]
            if not pair_weights:
                raise ValueError("`pair_weights` must be None or a non-empty list; received [].")
        self.pair_weights = pair_weights
        self.student_frame = _check_frame("student_frame", student_frame)
        self.teacher_frame = _check_frame("teacher_frame", teacher_frame)
        self.complex_channels = bool(complex_channels)

    def _time_positions(self, student_len, teacher_len):
        if self.student_frame is not None and self.teacher_frame is not None:
            return frame_time_positions(student_len, self.student_frame, self.teacher_frame)
        return proportional_positions(student_len, teacher_len)

    @staticmethod
    def _check_map(name, features):
        if len(features.shape) != 4:
            raise ValueError(
                f"AT-KL feature maps must be [batch, frames, freq, channels]; received {name} "
                f"{tuple(features.shape)}."
            )

    def attention_energies(self, features):
        """``(time [B, T], channel [B, C'])`` energies of one feature map (see the class docstring).

        This is all AT-KL needs of a teacher map: a cache of teacher knowledge stores these vectors
        instead of the maps (:mod:`keras_dccrn.distillation.knowledge`).
        """
        self._check_map("map", features)
        return time_attention(features), channel_attention(features, self.complex_channels)

    def _pair_terms(self, teacher_time, teacher_channel, student, use_time, use_channel):
        zero = ops.zeros((ops.shape(student)[0],), "float32")
        out = {"at_time": zero, "at_channel": zero, "kl_time": zero, "kl_channel": zero}
        self._check_map("student", student)
        dims = []
        if use_time:
            e_s = time_attention(student)
            pos = self._time_positions(ops.shape(e_s)[1], ops.shape(teacher_time)[1])
            dims.append(("time", linear_interpolate(teacher_time, pos), e_s))
        if use_channel:
            e_s = channel_attention(student, self.complex_channels)
            pos = proportional_positions(ops.shape(e_s)[1], ops.shape(teacher_channel)[1])
            dims.append(("channel", linear_interpolate(teacher_channel, pos), e_s))
        for dim, e_t, e_s in dims:
            if self.at_weight > 0:
                out[f"at_{dim}"] = attention_transfer_distance(e_s, e_t)
            if self.kl_weight > 0:
                log_t = attention_log_distribution(e_t, self.temperature)
                log_s = attention_log_distribution(e_s, self.temperature)
                out[f"kl_{dim}"] = self.temperature**2 * kl_divergence(log_t, log_s)
        return out

    def terms(self, teacher_features, student_features):
        """Per-example terms, see the class docstring.

        Args:
            teacher_features: list of teacher feature maps.
            student_features: list of student feature maps (same count).

        Returns:
            dict with ``at_time``, ``at_channel``, ``kl_time``,
            ``kl_channel`` and ``total``, each float32 ``[batch]``.
        """
        teacher_features = list(teacher_features)
        for f in teacher_features:
            self._check_map("teacher", f)
        energies = [self.attention_energies(f) for f in teacher_features]
        return self.energy_terms([e[0] for e in energies], [e[1] for e in energies], student_features)

    def energy_terms(self, teacher_time, teacher_channel, student_features):
        """:meth:`terms` from the teacher's attention energies instead of its feature maps.

        Args:
            teacher_time: list of teacher time energies ``[B, T_t]`` (one per pair).
            teacher_channel: list of teacher channel energies ``[B, C_t']``.
            student_features: list of student feature maps (same count).

        Returns:
            As :meth:`terms`.
        """
        teacher_time = list(teacher_time)
        teacher_channel = list(teacher_channel)
        student_features = list(student_features)
        if len(teacher_time) != len(student_features) or not student_features:
            raise ValueError(
                "AT-KL needs the same non-zero number of teacher and student feature maps; received "
                f"{len(teacher_time)} teacher and {len(student_features)} student maps."
            )
        if len(teacher_channel) != len(teacher_time):
            raise ValueError(
                f"AT-KL needs one channel energy per time energy; received {len(teacher_channel)} and "
                f"{len(teacher_time)}."
            )
        weights = self.pair_weights or [1.0] * len(student_features)
        if len(weights) != len(student_features):
            raise ValueError(
                f"`pair_weights` has {len(weights)} entries but there are {len(student_features)} "
                "feature pairs."
            )
        use_time = self.attention_dims in ("time", "both")
        use_channel = self.attention_dims in ("channel", "both")
        sums = None
        for w, t_time, t_channel, s in zip(
            weights, teacher_time, teacher_channel, student_features, strict=True
        ):
            if w == 0:
                continue
            pair = self._pair_terms(t_time, t_channel, s, use_time, use_channel)
            pair = {k: w * v for k, v in pair.items()}
            sums = pair if sums is None else {k: sums[k] + pair[k] for k in sums}
        if sums is None:  # every pair weight is zero
            zero = ops.zeros((ops.shape(student_features[0])[0],), "float32")
            sums = {"at_time": zero, "at_channel": zero, "kl_time": zero, "kl_channel": zero}
        sums["total"] = self.at_weight * (
            self.time_weight * sums["at_time"] + self.channel_weight * sums["at_channel"]
        ) + self.kl_weight * (self.time_weight * sums["kl_time"] + self.channel_weight * sums["kl_channel"])
        return sums

    def call(self, y_true, y_pred):
        return self.terms(y_true, y_pred)["total"]

    def get_config(self):
        config = super().get_config()
        config.update(
            attention_dims=self.attention_dims,
            temperature=self.temperature,
            at_weight=self.at_weight,
            kl_weight=self.kl_weight,
            time_weight=self.time_weight,
            channel_weight=self.channel_weight,
            pair_weights=self.pair_weights,
            student_frame=self.student_frame,
            teacher_frame=self.teacher_frame,
            complex_channels=self.complex_channels,
        )
        return config
