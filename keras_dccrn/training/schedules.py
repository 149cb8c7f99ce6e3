"""The optimizer of a training run: Adam with a constant or warm-up + cosine learning rate."""

import keras

#: Steps over which a run continued from backed-up weights (``init_step``) warms its learning rate up
#: again: its Adam moments start at zero, and full-size first steps would disturb a trained model.
RESUME_WARMUP_STEPS = 100


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ResumedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule continued at step ``offset`` by an optimizer whose step counter starts at zero.

    ``lr(step) = schedule(step + offset) * min(1, (step + 1) / warmup_steps)``.

    Args:
        schedule: the run's schedule (a ``LearningRateSchedule``).
        offset: the step of the run at which this optimizer starts (positive).
        warmup_steps: steps of the linear re-warm-up (0: none).
    """

    def __init__(self, schedule, offset, warmup_steps=RESUME_WARMUP_STEPS):
        if offset <= 0:
            raise ValueError(f"`offset` must be positive; received {offset!r}.")
        if warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0; received {warmup_steps!r}.")
        self.schedule = schedule
        self.offset = int(offset)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = self.schedule(step + self.offset)
        if self.warmup_steps:
            rate = rate * keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "offset": self.offset,
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def learning_rate(config):
    """The learning rate of ``config`` (a :class:`~keras_dccrn.training.config.TrainingConfig`).

    Returns:
        ``config.learning_rate`` for ``"plateau"`` (the plateau callback lowers it), or a
        ``keras.optimizers.schedules.CosineDecay`` for ``"cosine"``: linear warm-up from 1% of the
        peak for ``warmup_steps``, then cosine decay to ``min_lr_ratio`` x the peak at the last step.
    """
    if config.lr_schedule != "cosine":
        return config.learning_rate
    warm = bool(config.warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * (0.01 if warm else 1.0),
        decay_steps=config.total_steps - config.warmup_steps,
        alpha=config.min_lr_ratio,
        warmup_target=config.learning_rate if warm else None,
        warmup_steps=config.warmup_steps,
    )


def make_optimizer(config):
    """Adam with :func:`learning_rate` and global gradient-norm clipping at ``config.clip_norm`` (0: off)."""
    return keras.optimizers.Adam(learning_rate(config), global_clipnorm=config.clip_norm or None)
