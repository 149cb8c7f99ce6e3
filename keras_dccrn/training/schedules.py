"""The optimizer of a training run: Adam with a constant or warm-up + cosine learning rate."""

import keras


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
