"""The settings of a training run's optimisation and bookkeeping, as one dataclass.

The defaults are those of the ``dccrn-train`` / ``dccrn-distill`` flags (the apps take them from here).
"""

import dataclasses


@dataclasses.dataclass
class TrainingConfig:
    """How long and how a run trains, and how it checkpoints and logs.

    Attributes:
        epochs: maximum number of epochs.
        steps_per_epoch: training steps per epoch.
        batch_size: global batch size (examples per step).
        segment_seconds: length of a training example (for the audio counted in the progress log).
        learning_rate: Adam learning rate (the peak of the cosine schedule).
        lr_schedule: ``"plateau"`` (``learning_rate`` times ``lr_factor`` when validation stops
            improving for ``lr_patience`` epochs) or ``"cosine"`` (linear warm-up for
            ``warmup_steps``, then cosine decay to ``min_lr_ratio`` x ``learning_rate`` at the last step).
        warmup_steps: linear warm-up steps (cosine).
        min_lr_ratio: final learning rate as a fraction of ``learning_rate`` (cosine).
        lr_factor: learning-rate factor on a plateau.
        lr_patience: epochs without improvement before the learning rate is reduced (plateau).
        early_stop_patience: epochs without improvement before training stops (0: never).
        clip_norm: global gradient-norm clipping (0: off).
        checkpoint_every: save a checkpoint every N steps (and at every epoch's end).
        run_steps: stop this process after N steps, checkpoint saved (0: run to the end).
        snapshot_every: save the model every N epochs as ``snapshots/step_<step>.keras`` (0: never).
        verbose: Keras ``fit`` verbosity.
        init_weights: a weight archive (``.npz``, :mod:`keras_dccrn.training.weights`) or ``.keras``
            file of the same architecture that a new run starts from (ignored once the run has a
            checkpoint; None: the model's initialisation).
        init_step: with ``init_weights``: the training step of the run those weights were saved at
            (0: a new run). The run continues from there, as if resumed: its step and epoch
            counters, data stream and cosine schedule go on from ``init_step`` (the optimizer's
            moments start afresh, so the learning rate is warmed up again over
            :data:`~keras_dccrn.training.schedules.RESUME_WARMUP_STEPS` steps). For a run whose
            checkpoints were lost but whose weights were backed up.
        init_progress: with ``init_step``: the progress log of the run the weights come from
            (``progress.jsonl``, e.g. ``docs/campaign/<run>.progress.jsonl``); its lines up to
            ``init_step`` start this run's log, so that budgets keep counting what was spent
            (:func:`keras_dccrn.training.progress.continue_log`).
        monitor: the validation log value that drives the plateau schedule, early stopping and the
            best weights.
        mode: ``"min"`` or ``"max"``: which way ``monitor`` improves.
    """

    epochs: int = 100
    steps_per_epoch: int = 500
    batch_size: int = 8
    segment_seconds: float = 4.0
    learning_rate: float = 1e-3
    lr_schedule: str = "plateau"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05
    lr_factor: float = 0.5
    lr_patience: int = 2
    early_stop_patience: int = 10
    clip_norm: float = 5.0
    checkpoint_every: int = 200
    run_steps: int = 0
    snapshot_every: int = 0
    verbose: int = 1
    init_weights: str | None = None
    init_step: int = 0
    init_progress: str | None = None
    monitor: str = "val_loss"
    mode: str = "min"

    def __post_init__(self):
        for name in ("epochs", "steps_per_epoch", "batch_size", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be positive; received {getattr(self, name)!r}.")
        for name in ("run_steps", "snapshot_every", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0; received {getattr(self, name)!r}.")
        if not self.segment_seconds > 0:
            raise ValueError(f"`segment_seconds` must be positive; received {self.segment_seconds!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be positive; received {self.learning_rate!r}.")
        if self.lr_schedule not in ("plateau", "cosine"):
            raise ValueError(f"`lr_schedule` must be 'plateau' or 'cosine'; received {self.lr_schedule!r}.")
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"`warmup_steps` must be below epochs x steps_per_epoch = {self.total_steps}; "
                f"received {self.warmup_steps!r}."
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"`min_lr_ratio` must be in [0, 1]; received {self.min_lr_ratio!r}.")
        if self.init_step:
            if (
                self.init_step < 0
                or self.init_step % self.steps_per_epoch
                or self.init_step >= self.total_steps
            ):
                raise ValueError(
                    f"`init_step` must be a multiple of steps_per_epoch ({self.steps_per_epoch}) below "
                    f"{self.total_steps}; received {self.init_step!r}."
                )
            if not self.init_weights:
                raise ValueError(f"`init_step` needs `init_weights`; received init_step={self.init_step!r}.")
            if self.lr_schedule != "cosine":
                raise ValueError(f"`init_step` needs lr_schedule='cosine'; received {self.lr_schedule!r}.")
        if self.init_progress and not self.init_step:
            raise ValueError(f"`init_progress` needs `init_step`; received {self.init_progress!r}.")
        if self.mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'; received {self.mode!r}.")

    @property
    def total_steps(self):
        """Training steps of the whole run."""
        return self.epochs * self.steps_per_epoch

    @property
    def audio_seconds_per_step(self):
        """Seconds of audio in one training batch."""
        return self.batch_size * self.segment_seconds
