"""Knowledge distillation: the AT-KL ``Distiller`` of Distil-DCCRN.

A frozen teacher (Uformer in the paper, any model with
``model(wave, return_features=True) -> (wave, [feature maps])``) trains a
student (Distil-DCCRN) with the balanced SI-SNR on the outputs and attention
transfer + KL divergence on the intermediate feature maps.

TensorFlow is used here (``tf.GradientTape`` and ``tf.distribute``) because
``train_step`` is the TensorFlow-backend training loop; the loss arithmetic
itself lives in :mod:`keras_dccrn.losses` and uses ``keras.ops`` only.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_dccrn.layers.stft import STFT
from keras_dccrn.losses import (
    DEFAULT_RESOLUTIONS,
    EPSILON,
    ATKLLoss,
    balanced_si_snr_terms,
    compressed_spectral_distance,
    si_snr,
)
from keras_dccrn.losses.validation import check_fraction, check_non_negative, check_positive

KD_MODES = ("none", "output", "at", "kl", "at_kl")
# Every value tracked as a metric (and returned by ``train_step``/``test_step``).
TERMS = (
    "loss",
    "si_snr_clean",
    "si_snr_teacher",
    "at_time",
    "at_channel",
    "kl_time",
    "kl_channel",
    "spectral",
)
FEATURE_TERMS = ("at_time", "at_channel", "kl_time", "kl_channel")


def _frame_of(model):
    """``(frame_length, frame_step)`` of a model's STFT, or ``None`` if unknown."""
    length = getattr(model, "frame_length", None)
    step = getattr(model, "frame_step", None)
    if isinstance(length, int) and isinstance(step, int):
        return [length, step]
    return None


@keras.saving.register_keras_serializable(package="keras_dccrn")
class Distiller(keras.Model):
    """Teacher -> student knowledge distillation with the AT-KL loss.

    The teacher runs in inference mode (``training=False``, batch norm uses
    its moving statistics) and outside the gradient tape; its weights are
    frozen (``teacher.trainable = False``) and never updated. The student
    runs in training mode and is the only model the optimizer sees. Per
    example the loss is::

        loss = alpha * (-si_snr(clean, student))
             + (1 - alpha) * (-si_snr(teacher, student))             # balanced SI-SNR
             + at_weight * (time_weight * at_time + channel_weight * at_channel)
             + kl_weight * (time_weight * kl_time + channel_weight * kl_channel)

    with the AT/KL terms of :class:`keras_dccrn.losses.ATKLLoss` summed over
    the feature pairs (teacher map ``i`` with student map ``i``; 6 encoder
    and 6 decoder maps for DCCRN). Time attention is aligned in seconds from
    the two models' ``frame_length``/``frame_step`` attributes when both
    have them (else proportionally). The batch loss is the sum of the
    per-example losses divided by the **global** batch size (local batch
    times ``num_replicas_in_sync``), so gradients summed over
    ``tf.distribute`` replicas equal the gradient of the global mean.

    Mixed precision: the loss is computed in float32. If the Distiller's
    dtype policy is ``"mixed_float16"``, ``compile`` wraps the optimizer in
    a ``keras.optimizers.LossScaleOptimizer`` (Keras' ``auto_scale_loss``)
    and ``train_step`` scales the loss with ``optimizer.scale_loss``; with
    ``"mixed_bfloat16"`` or float32 no loss scaling is used.

    Ablation (``kd_mode``; the terms a mode does not use are reported as 0
    and not computed):

    * ``"none"``: student alone, ``-si_snr(clean, student)`` (``alpha`` and
      the teacher are ignored; the teacher may be ``None``);
    * ``"output"``: balanced SI-SNR only;
    * ``"at"``: balanced SI-SNR + AT terms;
    * ``"kl"``: balanced SI-SNR + KL terms;
    * ``"at_kl"``: balanced SI-SNR + AT + KL terms (the paper's method).

    ``attention_dims`` (``"time"``, ``"channel"``, ``"both"``) selects the
    attention vectors used by the AT/KL terms.

    Metrics (all means over the epoch, float32): ``loss`` (the total),
    ``si_snr_clean`` and ``si_snr_teacher`` (SI-SNR of the student output
    against the clean speech and against the teacher output, in dB, higher
    is better), ``at_time``, ``at_channel``, ``kl_time``, ``kl_channel``
    (AT-KL terms summed over pairs with ``pair_weights``, before the
    ``at/kl/time/channel`` weights).

    Args:
        teacher: teacher ``keras.Model`` (frozen here), or ``None`` only with
            ``kd_mode="none"``.
        student: student ``keras.Model``.
        kd_mode: ablation mode, see above.
        attention_dims: ``"time"``, ``"channel"`` or ``"both"``.
        alpha: weight of the clean SI-SNR term in ``[0, 1]``; ``1 - alpha``
            weights the teacher-output term.
        temperature: softmax temperature of the KL terms.
        at_weight: weight of the AT terms.
        kl_weight: weight of the KL terms.
        time_weight: weight of the time-attention terms.
        channel_weight: weight of the channel-attention terms.
        pair_weights: ``None`` or one weight per feature pair.
        complex_channels: feature channels follow the complex convention
            (channel attention per complex channel).
        epsilon: SI-SNR numerical floor.
        teacher_frame: ``(frame_length, frame_step)`` of the teacher's STFT when ``teacher`` is
            ``None`` and its knowledge comes from a cache (see below).
        spectral_weight: weight of the compressed multi-resolution spectral distance of the
            student output to the clean speech
            (:func:`keras_dccrn.losses.compressed_spectral_distance`), added to every mode's loss
            (0: off), so that a distilled student and one trained alone with
            ``SISNRSpectralLoss`` share the same base loss.
        **kwargs: base ``Model`` arguments (``name``, ``dtype``).

    Cached teacher knowledge: with ``teacher=None`` and ``teacher_frame`` set, training batches are
    ``(noisy, targets)`` with ``targets`` a dict holding ``clean``, ``teacher_wave`` and the teacher's
    attention energies ``teacher_time`` / ``teacher_channel`` (tuples, one entry per feature pair), as
    :func:`keras_dccrn.distillation.knowledge.knowledge_dataset` yields them; the loss is the same as
    with the live teacher. Batches of plain ``(noisy, clean)`` pairs (validation) are then scored
    against the clean speech only (``loss`` is ``-si_snr_clean`` plus the spectral term, the teacher
    terms are 0).

    Call arguments:
        inputs: noisy waveform ``[batch, samples]``.
        training: forwarded to the student.

    Input shape:
        ``[batch, samples]``.

    Output shape:
        ``[batch, samples]``: the student's enhanced waveform.

    References:
        Han et al., "Distil-DCCRN: A Small-footprint DCCRN Leveraging
        Feature-based Knowledge Distillation in Speech Enhancement", IEEE
        Signal Processing Letters 31, 2024, arXiv:2408.04267.
    """

    def __init__(
        self,
        teacher,
        student,
        kd_mode="at_kl",
        attention_dims="both",
        alpha=0.5,
        temperature=2.0,
        at_weight=1.0,
        kl_weight=1.0,
        time_weight=1.0,
        channel_weight=1.0,
        pair_weights=None,
        complex_channels=True,
        epsilon=EPSILON,
        teacher_frame=None,
        spectral_weight=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kd_mode not in KD_MODES:
            raise ValueError(f"`kd_mode` must be one of {KD_MODES}; received {kd_mode!r}.")
        if not isinstance(student, keras.Model):
            raise ValueError(f"`student` must be a keras.Model; received {type(student).__name__}.")
        if teacher is None and kd_mode != "none" and teacher_frame is None:
            raise ValueError(
                f"`teacher` (or, for cached teacher knowledge, `teacher_frame`) is required for "
                f"kd_mode={kd_mode!r}; received None."
            )
        if teacher is not None and not isinstance(teacher, keras.Model):
            raise ValueError(f"`teacher` must be a keras.Model or None; received {type(teacher).__name__}.")
        if teacher is student:
            raise ValueError("`teacher` and `student` must be different models; received the same object.")
        self.teacher = teacher
        self.student = student
        if teacher is not None:
            # Toggle: Keras' setattr short-circuits ``x.trainable = False`` when
            # ``x.trainable`` is already False, which leaves the sublayers of a
            # model deserialised with ``trainable=False`` (created after the flag
            # was set) trainable. Setting True first makes False propagate.
            teacher.trainable = True
            teacher.trainable = False
        self.kd_mode = kd_mode
        self.attention_dims = attention_dims
        self.alpha = check_fraction("alpha", alpha)
        self.epsilon = check_positive("epsilon", epsilon)
        self.spectral_weight = check_non_negative("spectral_weight", spectral_weight)
        self._spectral_stfts = [STFT(*r, name=f"distiller_spectral_stft_{r[0]}") for r in DEFAULT_RESOLUTIONS]
        # ATKLLoss validates attention_dims and the remaining numbers.
        use_at = kd_mode in ("at", "at_kl")
        use_kl = kd_mode in ("kl", "at_kl")
        self.at_kl = ATKLLoss(
            attention_dims=attention_dims,
            temperature=temperature,
            at_weight=at_weight if use_at else 0.0,
            kl_weight=kl_weight if use_kl else 0.0,
            time_weight=time_weight,
            channel_weight=channel_weight,
            pair_weights=pair_weights,
            student_frame=_frame_of(student),
            teacher_frame=_frame_of(teacher) if teacher is not None else teacher_frame,
            complex_channels=complex_channels,
        )
        self.temperature = self.at_kl.temperature
        self.at_weight = float(at_weight)
        self.kl_weight = float(kl_weight)
        self.time_weight = self.at_kl.time_weight
        self.channel_weight = self.at_kl.channel_weight
        self.pair_weights = self.at_kl.pair_weights
        self.complex_channels = self.at_kl.complex_channels
        self.trackers = {name: keras.metrics.Mean(name=name) for name in TERMS}
        if all(m.built for m in self._models()):
            self.built = True

    def _models(self):
        return [m for m in (self.teacher, self.student) if m is not None]

    @property
    def uses_teacher(self):
        """Whether the loss needs the teacher's output (every mode but ``"none"``)."""
        return self.kd_mode != "none"

    @property
    def uses_features(self):
        """Whether the loss needs intermediate feature maps (``at``, ``kl``, ``at_kl``)."""
        return self.kd_mode in ("at", "kl", "at_kl")

    def build(self, input_shape=None):
        # Teacher and student are normally built already (``build_model``
        # builds, and deserialisation rebuilds them from their build config).
        for model in self._models():
            if not model.built:
                model(ops.zeros((1, 1600), "float32"), training=False)
        self.built = True

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ------------------------------------------------------------------ loss

    def teacher_outputs(self, noisy):
        """Teacher ``(wave, features)`` in inference mode, without gradients.

        ``features`` is ``None`` unless :attr:`uses_features`; returns
        ``(None, None)`` when the mode needs no teacher.
        """
        if not self.uses_teacher:
            return None, None
        if self.uses_features:
            wave, features = self.teacher(noisy, training=False, return_features=True)
            features = [ops.stop_gradient(f) for f in features]
        else:
            wave, features = self.teacher(noisy, training=False), None
        return ops.stop_gradient(wave), features

    def student_outputs(self, noisy, training):
        """Student ``(wave, features)``; ``features`` is ``None`` unless needed."""
        if self.uses_features:
            return self.student(noisy, training=training, return_features=True)
        return self.student(noisy, training=training), None

    def loss_terms(self, clean, student_wave, student_features, teacher_wave, teacher_features):
        """Every term of :data:`TERMS` per example, float32 ``[batch]``.

        Args:
            clean: clean waveform ``[batch, samples]``.
            student_wave: student output ``[batch, samples]``.
            student_features: student feature maps or ``None``.
            teacher_wave: teacher output or ``None`` (mode ``"none"``).
            teacher_features: teacher feature maps or ``None``.
        """
        return self._terms_with(
            clean, student_wave, teacher_wave, lambda: self.at_kl.terms(teacher_features, student_features)
        )

    def _terms_with(self, clean, student_wave, teacher_wave, feature_terms):
        """Every term of :data:`TERMS`; ``feature_terms()`` gives the AT-KL terms when they are used.

        Without ``teacher_wave`` (or in mode ``"none"``) the loss is ``-si_snr(clean, student)``.
        """
        student_wave = ops.cast(student_wave, "float32")
        zero = ops.zeros((ops.shape(student_wave)[0],), "float32")
        terms = dict.fromkeys(TERMS, zero)
        if teacher_wave is None or not self.uses_teacher:
            clean_db = si_snr(clean, student_wave, self.epsilon)
            terms["si_snr_clean"] = clean_db
            loss = -clean_db
        else:
            loss, clean_db, si_snr_db = balanced_si_snr_terms(
                clean, ops.cast(teacher_wave, "float32"), student_wave, self.alpha, self.epsilon
            )
            terms["si_snr_clean"] = clean_db
            terms["si_snr_teacher"] = si_snr_db
            if self.uses_features:
                kd = feature_terms()
                for name in FEATURE_TERMS:
                    terms[name] = kd[name]
                loss = loss + kd["total"]
        if self.spectral_weight:
            terms["spectral"] = compressed_spectral_distance(
                clean, student_wave, self._spectral_stfts, epsilon=self.epsilon
            )
            loss = loss + self.spectral_weight * terms["spectral"]
        terms["loss"] = loss
        return terms

    def compute_terms(self, noisy, clean, training=False):
        """Runs teacher and student on ``noisy`` and returns :meth:`loss_terms`."""
        teacher_wave, teacher_features = self.teacher_outputs(noisy)
        student_wave, student_features = self.student_outputs(noisy, training)
        return self.loss_terms(clean, student_wave, student_features, teacher_wave, teacher_features)

    def _reduce(self, per_example, sample_weight):
        """Sum over the local batch divided by the global batch size."""
        if sample_weight is not None:
            weight = ops.reshape(sample_weight, (-1,))  # [B] or [B, 1] -> [B]
            per_example = per_example * ops.cast(weight, "float32")
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = ops.cast(ops.shape(per_example)[0] * replicas, "float32")
        return ops.sum(per_example) / global_batch

    def _update_metrics(self, terms, sample_weight):
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name], sample_weight=sample_weight)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @staticmethod
    def _unpack(data):
        """``(noisy, clean, cached, sample_weight)``; ``cached`` is the targets dict or ``None``."""
        noisy, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if targets is None:
            raise ValueError("Distiller needs (noisy, clean) pairs; received inputs without targets.")
        if isinstance(targets, dict):
            return noisy, ops.cast(targets["clean"], "float32"), targets, sample_weight
        return noisy, ops.cast(targets, "float32"), None, sample_weight

    def _live_teacher(self, noisy, cached):
        """The live teacher's ``(wave, features)``, or ``(None, None)`` with cached knowledge or no teacher."""
        if cached is None and self.teacher is not None:
            return self.teacher_outputs(noisy)
        return None, None

    def _select_terms(self, clean, student_wave, student_features, cached, teacher_wave, teacher_features):
        """Loss terms from the cached knowledge, the live teacher, or (no teacher) the clean target only."""
        if cached is not None:
            return self.cached_loss_terms(clean, student_wave, student_features, cached)
        if self.teacher is None:
            return self._none_terms(clean, student_wave)
        return self.loss_terms(clean, student_wave, student_features, teacher_wave, teacher_features)

    def _none_terms(self, clean, student_wave):
        """Terms against the clean speech only (``kd_mode="none"``, or validation without a teacher)."""
        return self._terms_with(clean, student_wave, None, None)

    def cached_loss_terms(self, clean, student_wave, student_features, cached):
        """:meth:`loss_terms` with the teacher's output and attention energies read from ``cached``."""
        return self._terms_with(
            clean,
            student_wave,
            cached["teacher_wave"],
            lambda: self.at_kl.energy_terms(
                cached["teacher_time"], cached["teacher_channel"], student_features
            ),
        )

    # ------------------------------------------------------------ train/test

    def train_step(self, data):
        noisy, clean, cached, sample_weight = self._unpack(data)
        teacher_wave, teacher_features = self._live_teacher(noisy, cached)  # outside the tape
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            student_wave, student_features = self.student_outputs(noisy, training=True)
            terms = self._select_terms(
                clean, student_wave, student_features, cached, teacher_wave, teacher_features
            )
            loss = self._reduce(terms["loss"], sample_weight)
            if self.student.losses:  # regularisation the student's layers add (add_loss)
                loss = loss + ops.sum(ops.stack([ops.cast(x, "float32") for x in self.student.losses]))
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._update_metrics(terms, sample_weight)

    def test_step(self, data):
        noisy, clean, cached, sample_weight = self._unpack(data)
        teacher_wave, teacher_features = self._live_teacher(noisy, cached)
        student_wave, student_features = self.student_outputs(noisy, training=False)
        terms = self._select_terms(
            clean, student_wave, student_features, cached, teacher_wave, teacher_features
        )
        return self._update_metrics(terms, sample_weight)

    # ---------------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config.update(
            teacher=None if self.teacher is None else keras.saving.serialize_keras_object(self.teacher),
            student=keras.saving.serialize_keras_object(self.student),
            kd_mode=self.kd_mode,
            attention_dims=self.attention_dims,
            alpha=self.alpha,
            temperature=self.temperature,
            at_weight=self.at_weight,
            kl_weight=self.kl_weight,
            time_weight=self.time_weight,
            channel_weight=self.channel_weight,
            pair_weights=self.pair_weights,
            complex_channels=self.complex_channels,
            epsilon=self.epsilon,
            teacher_frame=self.at_kl.teacher_frame if self.teacher is None else None,
            spectral_weight=self.spectral_weight,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("teacher") is not None:
            config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)
