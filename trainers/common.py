"""Shared training machinery for the absl apps ``dccrn-train`` and ``dccrn-distill``.

Flags common to both apps are defined here, once, at import; each app adds its
own. Library code never reads flags: this module turns them into plain
arguments for ``keras_dccrn``.

Run directory layout (``--run_dir``)::

    flags.cfg            the resolved flags (a flagfile: rerun with --flagfile=run_dir/flags.cfg)
    config.json          the same plus the model config, as JSON
    checkpoints/         tf.train.CheckpointManager files: model + optimizer + epoch (last 3)
    best.weights.h5      weights with the best validation loss so far
    model.keras          the final model (Keras format), written at the end
    logs/train, logs/validation   TensorBoard events (every loss term, learning rate,
                         validation SI-SNR, audio + spectrograms of fixed validation examples)
"""

import json
import os
import signal
import sys
import time

from absl import flags, logging

FLAGS = flags.FlagValues()

# --- data ---------------------------------------------------------------------------------------
flags.DEFINE_multi_string(
    "train_speech",
    None,
    "Clean speech for training: folder, glob or manifest (repeatable).",
    flag_values=FLAGS,
)
flags.DEFINE_multi_string(
    "train_noise", None, "Noise for training: folder, glob or manifest (repeatable).", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "train_rir", None, "Room impulse responses for training (optional, repeatable).", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "valid_speech", None, "Clean speech for validation (held-out speakers).", flag_values=FLAGS
)
flags.DEFINE_multi_string("valid_noise", None, "Noise for validation (held-out noises).", flag_values=FLAGS)
flags.DEFINE_multi_string("valid_rir", None, "RIRs for validation (optional).", flag_values=FLAGS)
flags.DEFINE_float("segment_seconds", 4.0, "Training segment length in seconds.", flag_values=FLAGS)
flags.DEFINE_float("snr_min", -5.0, "Lowest mixing SNR (dB).", flag_values=FLAGS)
flags.DEFINE_float("snr_max", 20.0, "Highest mixing SNR (dB).", flag_values=FLAGS)
flags.DEFINE_float("level_min", -35.0, "Lowest mixture level (dBFS).", flag_values=FLAGS)
flags.DEFINE_float("level_max", -15.0, "Highest mixture level (dBFS).", flag_values=FLAGS)
flags.DEFINE_float(
    "reverb_prob", 0.0, "Probability of convolving the speech with a random RIR.", flag_values=FLAGS
)
flags.DEFINE_enum(
    "reverb_target", "dry", ["dry", "early"], "Training target for reverberant examples.", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "exclude",
    None,
    "fnmatch pattern of audio files to leave out of every data flag (repeatable), "
    "e.g. --exclude='urbansound_*' drops the non-commercial UrbanSound8K noise.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("valid_examples", 64, "Number of fixed validation mixtures.", flag_values=FLAGS)
flags.DEFINE_boolean("cache", True, "Keep decoded audio in memory.", flag_values=FLAGS)
flags.DEFINE_enum(
    "noise_sampling",
    "file",
    ["file", "duration"],
    "Noise file choice: every file equally likely, or every second of noise equally likely.",
    flag_values=FLAGS,
)

# --- optimisation -------------------------------------------------------------------------------
flags.DEFINE_integer("batch_size", 8, "Global batch size.", flag_values=FLAGS)
flags.DEFINE_integer("epochs", 100, "Maximum number of epochs.", flag_values=FLAGS)
flags.DEFINE_integer("steps_per_epoch", 500, "Training steps per epoch.", flag_values=FLAGS)
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", flag_values=FLAGS)
flags.DEFINE_enum(
    "lr_schedule",
    "plateau",
    ["plateau", "cosine"],
    "plateau: --learning_rate halved (--lr_factor) when validation stops improving (the papers); "
    "cosine: linear warm-up for --warmup_steps, then cosine decay to --min_lr_ratio x --learning_rate "
    "at the last step (--epochs x --steps_per_epoch): for a run with a fixed budget.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("warmup_steps", 0, "Linear learning-rate warm-up steps (cosine).", flag_values=FLAGS)
flags.DEFINE_float(
    "min_lr_ratio", 0.05, "Final learning rate as a fraction of --learning_rate (cosine).", flag_values=FLAGS
)
flags.DEFINE_float(
    "lr_factor", 0.5, "Learning-rate factor when validation loss stops improving.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "lr_patience", 2, "Epochs without improvement before the learning rate is reduced.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "early_stop_patience",
    10,
    "Epochs without improvement before training stops (0: never).",
    flag_values=FLAGS,
)
flags.DEFINE_float("clip_norm", 5.0, "Global gradient-norm clipping (0: off).", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Random seed (model init and data).", flag_values=FLAGS)

# --- run ----------------------------------------------------------------------------------------
flags.DEFINE_string(
    "run_dir", None, "Run directory (created; rerunning the same command resumes).", flag_values=FLAGS
)
flags.DEFINE_integer(
    "checkpoint_every", 200, "Save a checkpoint every N training steps (and every epoch).", flag_values=FLAGS
)
flags.DEFINE_integer(
    "audio_examples",
    3,
    "Fixed validation examples logged to TensorBoard as audio/spectrograms.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "run_steps",
    0,
    "Stop this process after N training steps (checkpoint saved, exit status 75: not finished); "
    "rerun the same command to continue. For time-sliced machines (0: run to the end).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "snapshot_every",
    0,
    "Every N epochs save the (student) model as snapshots/step_<step>.keras, for learning curves on a "
    "development set (0: never).",
    flag_values=FLAGS,
)
flags.DEFINE_boolean("jit_compile", False, "Compile the train step with XLA.", flag_values=FLAGS)
flags.DEFINE_enum(
    "mixed_precision",
    "float32",
    ["float32", "mixed_bfloat16", "mixed_float16"],
    "Keras dtype policy.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "strategy",
    "default",
    ["default", "mirrored", "multi_worker"],
    "tf.distribute strategy.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "verbose", 1, "Keras fit verbosity (1: progress bar, 2: one line per epoch).", flag_values=FLAGS
)
flags.DEFINE_integer("threads", 0, "Intra-op threads (0: TensorFlow default).", flag_values=FLAGS)


class UsageError(Exception):
    """A flag problem reported to the user as one line (exit code 2)."""


# Size-like flags and their limits (memory and disk grow with them): {name: (lower, upper, unit)}.
TRAINING_LIMITS = {
    "segment_seconds": (0.1, 60.0, "seconds"),
    "batch_size": (1, 1024, ""),
    "valid_examples": (1, 10_000, ""),
    "audio_examples": (0, 16, ""),
    "steps_per_epoch": (1, 10_000_000, ""),
    "epochs": (1, 1_000_000, ""),
    "checkpoint_every": (1, 10_000_000, ""),
    "threads": (0, 256, ""),
}
# Audio per training batch: the synthesis, the STFTs and the activations grow with it.
MAX_BATCH_AUDIO_SECONDS = 128


def validate_common_flags():
    """Checks the common flags; raises :class:`UsageError` with a clear message."""
    if not FLAGS.run_dir:
        raise UsageError("--run_dir is required (the run directory to create or resume).")
    for name in ("train_speech", "train_noise", "valid_speech", "valid_noise"):
        if not FLAGS[name].value:
            raise UsageError(f"--{name} is required (a folder, glob or manifest of audio files).")
    for name in ("train_speech", "train_noise", "train_rir", "valid_speech", "valid_noise", "valid_rir"):
        for spec in FLAGS[name].value or []:
            if not _exists(spec):
                raise UsageError(f"--{name}={spec}: no such file, folder or matching glob.")
    from trainers import cli

    problem = cli.check_bounds(FLAGS, TRAINING_LIMITS)
    if problem:
        raise UsageError(problem)
    if FLAGS.batch_size * FLAGS.segment_seconds > MAX_BATCH_AUDIO_SECONDS:
        raise UsageError(
            f"--batch_size x --segment_seconds = {FLAGS.batch_size * FLAGS.segment_seconds:g} s of audio per "
            f"batch: must be at most {MAX_BATCH_AUDIO_SECONDS} s (memory grows with it)."
        )
    positive = ("batch_size", "epochs", "steps_per_epoch", "valid_examples", "checkpoint_every")
    for name in ("run_steps", "snapshot_every"):
        if FLAGS[name].value < 0:
            raise UsageError(f"--{name} must be >= 0; received {FLAGS[name].value}.")
    for name in positive:
        if FLAGS[name].value <= 0:
            raise UsageError(f"--{name} must be positive; received {FLAGS[name].value}.")
    if FLAGS.segment_seconds <= 0:
        raise UsageError(f"--segment_seconds must be positive; received {FLAGS.segment_seconds}.")
    if FLAGS.snr_min > FLAGS.snr_max:
        raise UsageError(f"--snr_min ({FLAGS.snr_min}) exceeds --snr_max ({FLAGS.snr_max}).")
    if FLAGS.level_min > FLAGS.level_max or FLAGS.level_max > 0:
        raise UsageError(
            f"Need --level_min <= --level_max <= 0 dBFS; received {FLAGS.level_min}, {FLAGS.level_max}."
        )
    if not 0.0 <= FLAGS.reverb_prob <= 1.0:
        raise UsageError(f"--reverb_prob must be in [0, 1]; received {FLAGS.reverb_prob}.")
    if FLAGS.reverb_prob > 0 and not FLAGS.train_rir:
        raise UsageError("--reverb_prob > 0 needs --train_rir.")
    if FLAGS.learning_rate <= 0:
        raise UsageError(f"--learning_rate must be positive; received {FLAGS.learning_rate}.")
    if FLAGS.warmup_steps < 0 or FLAGS.warmup_steps >= FLAGS.epochs * FLAGS.steps_per_epoch:
        raise UsageError(
            f"--warmup_steps must be in [0, epochs x steps_per_epoch); received {FLAGS.warmup_steps}."
        )
    if not 0.0 <= FLAGS.min_lr_ratio <= 1.0:
        raise UsageError(f"--min_lr_ratio must be in [0, 1]; received {FLAGS.min_lr_ratio}.")


def _exists(spec):
    import glob

    return os.path.exists(spec) or bool(glob.glob(spec, recursive=True))


def setup_runtime():
    """Threads, precision policy and the distribution strategy, from flags."""
    import keras
    import tensorflow as tf

    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    keras.mixed_precision.set_global_policy(FLAGS.mixed_precision)
    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if FLAGS.strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this worker writes the run directory (multi-worker: task 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0)


def worker_layout(strategy):
    """``(number of workers, this worker's index)`` from the cluster resolver (1, 0 locally)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return 1, 0
    tasks = [(kind, i) for kind in ("chief", "worker") for i in range(len(spec.get(kind, [])))]
    return len(tasks), tasks.index((resolver.task_type, resolver.task_id))


def worker_dir(run_dir, strategy):
    """Where this worker writes: the run dir for the chief, a scratch dir for the others."""
    if is_chief(strategy):
        return run_dir
    resolver = strategy.cluster_resolver
    return os.path.join(run_dir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def write_config(run_dir, extra):
    """Writes ``flags.cfg`` (resolved flags) and ``config.json`` into the run dir."""
    os.makedirs(run_dir, exist_ok=True)
    _atomic_write(os.path.join(run_dir, "flags.cfg"), FLAGS.flags_into_string())
    values = {name: FLAGS[name].value for name in FLAGS}
    values.update(extra)
    _atomic_write(os.path.join(run_dir, "config.json"), json.dumps(values, indent=2, default=str) + "\n")


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def mixture_config():
    from keras_dccrn.data import MixtureConfig

    return MixtureConfig(
        segment_seconds=FLAGS.segment_seconds,
        snr_range=(FLAGS.snr_min, FLAGS.snr_max),
        level_range=(FLAGS.level_min, FLAGS.level_max),
        reverb_prob=FLAGS.reverb_prob,
        reverb_target=FLAGS.reverb_target,
        noise_sampling=FLAGS.noise_sampling,
    )


def make_datasets(strategy, start_example=0, knowledge_dir=None):
    """(distributed training dataset, validation dataset, fixed audio examples).

    ``start_example``: first example of the training stream (a resumed run continues the stream).
    ``knowledge_dir``: a teacher-knowledge cache; the training batches then carry the teacher's
    cached output and attention energies (single worker only).
    """
    import numpy as np
    import tensorflow as tf

    from keras_dccrn import data

    config = mixture_config()
    # Keras distributes a plain tf.data.Dataset itself (experimental_distribute_dataset) and
    # rebatches the global batch over the replicas. Each worker builds its own example stream
    # (the pipeline splits the example numbers by input pipeline), so Keras must not shard again.
    num_workers, worker_index = worker_layout(strategy)
    context = tf.distribute.InputContext(
        num_input_pipelines=num_workers,
        input_pipeline_id=worker_index,
        num_replicas_in_sync=strategy.num_replicas_in_sync,
    )
    sources = (FLAGS.train_speech, FLAGS.train_noise, FLAGS.train_rir)
    settings = dict(
        config=config,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
        cache=FLAGS.cache,
        start_example=start_example,
        exclude=FLAGS.exclude or (),
    )
    if knowledge_dir:
        from keras_dccrn.distillation.knowledge import knowledge_dataset

        train = knowledge_dataset(knowledge_dir, *sources, **settings)
    else:
        train = data.training_dataset(
            *sources, input_context=context if num_workers > 1 else None, **settings
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    train = train.with_options(options)
    valid_config = mixture_config()
    valid_config.reverb_prob = FLAGS.reverb_prob if FLAGS.valid_rir else 0.0
    valid = data.validation_dataset(
        FLAGS.valid_speech,
        FLAGS.valid_noise,
        FLAGS.valid_rir,
        config=valid_config,
        num_examples=FLAGS.valid_examples,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed + 1,
        exclude=FLAGS.exclude or (),
    )
    examples = None
    if FLAGS.audio_examples:
        noisy, clean = [], []
        for x, y in valid.unbatch().take(FLAGS.audio_examples):
            noisy.append(x.numpy())
            clean.append(y.numpy())
        examples = (np.stack(noisy), np.stack(clean))
    return train, valid, examples


def make_callbacks(
    model,
    run_dir,
    strategy,
    examples,
    manager,
    epoch_var,
    step_var,
    monitor="val_loss",
    mode="min",
    export_model=None,
):
    """Callbacks: LR schedule, early stopping, checkpoints, best weights, TensorBoard, audio logging."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_dccrn.training.progress import ProgressLog

    write_dir = worker_dir(run_dir, strategy)
    log_dir = os.path.join(write_dir, "logs")

    class Checkpointer(keras.callbacks.Callback):
        """Saves model + optimizer + counters every ``checkpoint_every`` steps and every epoch."""

        def on_train_batch_end(self, batch, logs=None):
            step_var.assign_add(1)
            if int(step_var.numpy()) % FLAGS.checkpoint_every == 0:
                manager.save(checkpoint_number=int(step_var.numpy()))

        def on_epoch_end(self, epoch, logs=None):
            epoch_var.assign(epoch + 1)
            manager.save(checkpoint_number=int(step_var.numpy()))

    class Pauser(keras.callbacks.Callback):
        """Raises :class:`Paused` once this process has run ``--run_steps`` steps.

        Last in the callback list. On the last step of an epoch it waits for the epoch's end (so the
        validation, the progress line and the best weights of that epoch are written first), and it
        never pauses a run that has just finished its last epoch.
        """

        def __init__(self):
            super().__init__()
            self.steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps >= FLAGS.run_steps and batch + 1 < self.params["steps"]:
                raise Paused()

        def on_epoch_end(self, epoch, logs=None):
            if self.steps >= FLAGS.run_steps and epoch + 1 < FLAGS.epochs:
                raise Paused()

    class Snapshotter(keras.callbacks.Callback):
        """Saves the exported model every ``snapshot_every`` epochs as ``snapshots/step_<step>.keras``."""

        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % FLAGS.snapshot_every:
                return
            folder = os.path.join(write_dir, "snapshots")
            os.makedirs(folder, exist_ok=True)
            final = os.path.join(folder, f"step_{int(step_var.numpy()):07d}.keras")
            tmp = os.path.join(folder, ".snapshot.tmp.keras")
            (export_model or self.model).save(tmp)
            os.replace(tmp, final)

    class LearningRateLogger(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))

        def on_epoch_end(self, epoch, logs=None):
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            if logs is not None:
                logs["learning_rate"] = lr
            with self.writer.as_default():
                tf.summary.scalar("learning_rate", lr, step=epoch)
            self.writer.flush()

    class AudioLogger(keras.callbacks.Callback):
        """Enhanced audio and spectrograms of fixed validation examples, every epoch."""

        def __init__(self):
            super().__init__()
            self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "validation"))

        def on_epoch_end(self, epoch, logs=None):
            if examples is None:
                return
            noisy, clean = examples
            enhanced = np.asarray(self.model.predict_on_batch(noisy))
            with self.writer.as_default():
                if epoch == 0:
                    tf.summary.audio("noisy", noisy[..., None], 16000, step=epoch, max_outputs=len(noisy))
                    tf.summary.audio("clean", clean[..., None], 16000, step=epoch, max_outputs=len(clean))
                    tf.summary.image(
                        "spectrogram/noisy", spectrogram_images(noisy), step=epoch, max_outputs=len(noisy)
                    )
                    tf.summary.image(
                        "spectrogram/clean", spectrogram_images(clean), step=epoch, max_outputs=len(clean)
                    )
                tf.summary.audio(
                    "enhanced", enhanced[..., None], 16000, step=epoch, max_outputs=len(enhanced)
                )
                tf.summary.image(
                    "spectrogram/enhanced",
                    spectrogram_images(enhanced),
                    step=epoch,
                    max_outputs=len(enhanced),
                )
            self.writer.flush()

    callbacks = [Checkpointer()]
    if FLAGS.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode=mode, factor=FLAGS.lr_factor, patience=FLAGS.lr_patience, verbose=1
            )
        )
    callbacks += [
        LearningRateLogger(),
        keras.callbacks.ModelCheckpoint(
            os.path.join(write_dir, "best.weights.h5"),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            # A resumed process keeps the best value of the earlier ones (else its first epoch always wins).
            initial_value_threshold=_best_so_far(run_dir, monitor, mode),
        ),
        keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch", write_graph=False, profile_batch=0),
        AudioLogger(),
    ]
    if FLAGS.snapshot_every and is_chief(strategy):
        callbacks.append(Snapshotter())
    if is_chief(strategy):
        # After LearningRateLogger and the validation: the line holds the epoch's every log value.
        callbacks.append(
            ProgressLog(run_dir, lambda: step_var.numpy(), FLAGS.batch_size * FLAGS.segment_seconds)
        )
    if FLAGS.run_steps:
        callbacks.append(Pauser())
    if FLAGS.early_stop_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=FLAGS.early_stop_patience)
        )
    return callbacks


def model_state(model):
    """``{name: variable}`` of every variable of ``model``, for ``tf.train.Checkpoint``.

    Keras 3 layers held in Python lists are invisible to TensorFlow's checkpoint tracking, so a
    checkpoint of the model object alone holds no variable; the trainable ones reach it through the
    optimizer only. This dict adds the rest (batch-norm statistics, random-seed states). Weights are
    named by their path; seed-generator states by their position, because their paths are numbered
    per process rather than per model.
    """
    state = {}
    seeds = 0
    for variable in model.variables:
        if variable.path.endswith("seed_generator_state"):
            name = f"seed_generator_state_{seeds}"
            seeds += 1
        else:
            name = variable.path
        if name in state:
            raise ValueError(f"Two variables of model {model.name!r} share the path {name!r}.")
        state[name] = variable
    return state


def _best_so_far(run_dir, monitor, mode):
    """The best ``monitor`` value in the run's progress log (None before the first epoch)."""
    from keras_dccrn.training.progress import read_progress

    values = [e[monitor] for e in read_progress(run_dir) if monitor in e]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def _logs_with_batch_axis(model):
    """Wraps ``train_step``/``test_step`` so that every log value has shape ``[1]``."""
    import keras

    def wrap(step):
        def wrapped(data):
            logs = step(data)
            return {k: keras.ops.reshape(v, (1,)) for k, v in logs.items()}

        return wrapped

    model.train_step = wrap(model.train_step)
    model.test_step = wrap(model.test_step)


def spectrogram_images(waves):
    """Log-magnitude spectrograms ``[N, freq, frames, 1]`` in [0, 1] for TensorBoard."""
    import numpy as np
    import tensorflow as tf

    spec = tf.abs(tf.signal.stft(tf.convert_to_tensor(waves, tf.float32), 512, 128, 512))
    db = 20.0 * np.log10(spec.numpy() + 1e-6)  # [N, frames, bins]
    db = np.clip((db + 100.0) / 100.0, 0.0, 1.0)
    return np.transpose(db, (0, 2, 1))[
        :, ::-1, :, None
    ]  # [N, frames, bins] -> [N, bins (high first), frames, 1]


class Paused(Exception):
    """``--run_steps`` steps were done in this process; the run is not finished."""


PAUSED_EXIT_CODE = 75  # EX_TEMPFAIL: try again (rerun the same command)


class Interrupted(Exception):
    """Training stopped by a signal after saving a checkpoint; ``code`` is the exit status (128 + signal)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def fit(
    model,
    train,
    valid,
    run_dir,
    strategy,
    examples,
    monitor="val_loss",
    mode="min",
    start_var=None,
    export_model=None,
):
    """Runs ``model.fit`` with resume, checkpoints and Ctrl-C handling.

    A resumed run first finishes the interrupted epoch (its remaining steps), then runs the
    remaining epochs; with ``start_var`` (the training stream's first example, see
    :func:`keras_dccrn.data.training_dataset`) the data stream continues at the next unseen example,
    so an interrupted and resumed run sees the same batches as an uninterrupted one.

    Args:
        model: compiled Keras model.
        train, valid: datasets.
        run_dir: run directory.
        strategy: the distribution strategy.
        examples: fixed validation examples for audio logging.
        monitor, mode: the validation quantity that drives the LR schedule, early stopping
            and the best checkpoint.
        start_var: scalar int64 variable read by the training dataset when iteration starts.
        export_model: the model that snapshots save (default ``model``; the student of a Distiller).

    Returns:
        The Keras ``History`` of the last ``fit`` call (None if the run had already finished).

    Raises:
        Interrupted: SIGINT/SIGTERM/SIGHUP stopped training (``code`` 128 + signal) or ``--run_steps``
            paused it (``code`` 75); a checkpoint was saved either way.
    """
    import tensorflow as tf

    write_dir = worker_dir(run_dir, strategy)
    with strategy.scope():
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # Create the optimizer's slots now so that a restore fills them instead of deferring.
        model.optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(
        model=model,
        optimizer=model.optimizer,
        epoch=epoch_var,
        step=step_var,
        model_state=model_state(export_model or model),
    )
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_dir, "checkpoints"), max_to_keep=3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
        logging.info(
            "Resumed from %s (epoch %d, step %d)", manager.latest_checkpoint, int(epoch_var), int(step_var)
        )
        print(f"Resuming from {manager.latest_checkpoint} (epoch {int(epoch_var)}, step {int(step_var)})")
    initial_epoch = int(epoch_var.numpy())
    if initial_epoch >= FLAGS.epochs:
        print(f"Run already finished ({initial_epoch} of {FLAGS.epochs} epochs).")
        return None
    callbacks = make_callbacks(
        model, run_dir, strategy, examples, manager, epoch_var, step_var, monitor, mode, export_model
    )

    received = []

    def on_signal(signum, frame):
        # The first signal is acted on at the end of the current step (raising inside TensorFlow's
        # tracing or a step would surface as another exception); a second one stops at once.
        received.append(signum)
        if len(received) > 1:
            raise KeyboardInterrupt

    import keras

    class StopOnSignal(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if received:
                raise KeyboardInterrupt

    callbacks.insert(1, StopOnSignal())  # right after the Checkpointer has counted the step
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    start = time.time()
    history = None
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # keras-team/keras#20585: fit()'s eager "symbolic build" reduces a PerReplica batch outside
        # tf.function, which MultiWorkerMirroredStrategy cannot do. The model is already built, so let
        # fit() take the strategy from the enclosing scope instead (it then skips that step).
        model._distribute_strategy = None
        # Keras then reduces each step's scalar logs with strategy.reduce("MEAN", axis=0), which fails
        # on scalars under this strategy; give the logs a leading axis of 1 so the mean over workers works.
        _logs_with_batch_axis(model)
    done_in_epoch = int(step_var.numpy()) - initial_epoch * FLAGS.steps_per_epoch
    if done_in_epoch >= FLAGS.steps_per_epoch:  # killed between an epoch's last step and its end
        initial_epoch = int(step_var.numpy()) // FLAGS.steps_per_epoch
        done_in_epoch = int(step_var.numpy()) - initial_epoch * FLAGS.steps_per_epoch
    # (first epoch, end epoch, steps per epoch) of each fit call: the rest of an interrupted epoch first.
    phases = []
    if 0 < done_in_epoch < FLAGS.steps_per_epoch:
        phases.append((initial_epoch, initial_epoch + 1, FLAGS.steps_per_epoch - done_in_epoch))
        initial_epoch += 1
    if initial_epoch < FLAGS.epochs:
        phases.append((initial_epoch, FLAGS.epochs, FLAGS.steps_per_epoch))
    try:
        for first_epoch, epochs, steps in phases:
            if start_var is not None:
                start_var.assign(int(step_var.numpy()) * FLAGS.batch_size)
            with strategy.scope():
                history = model.fit(
                    train,
                    epochs=epochs,
                    initial_epoch=first_epoch,
                    steps_per_epoch=steps,
                    validation_data=valid,
                    callbacks=callbacks,
                    verbose=FLAGS.verbose,
                    shuffle=False,  # the dataset shuffles itself
                )
            if model.stop_training:
                break
    except KeyboardInterrupt:
        path = manager.save(checkpoint_number=int(step_var.numpy()))
        signum = received[-1] if received else signal.SIGINT
        print(
            f"\n{signal.Signals(signum).name}: checkpoint saved to {path} (step {int(step_var.numpy())}); "
            "rerun the same command to resume.",
            file=sys.stderr,
        )
        raise Interrupted(128 + int(signum)) from None
    except Paused:
        path = manager.save(checkpoint_number=int(step_var.numpy()))
        print(
            f"Paused after --run_steps={FLAGS.run_steps} steps: checkpoint saved to {path} "
            f"(step {int(step_var.numpy())}); rerun the same command to continue.",
            file=sys.stderr,
        )
        raise Interrupted(PAUSED_EXIT_CODE) from None
    finally:
        elapsed = time.time() - start
        print(f"Training time this run: {elapsed:.1f} s; steps so far: {int(step_var.numpy())}")
    return history


def finish(model, run_dir, strategy, export_model=None):
    """Loads the best validation weights (if any) and writes ``model.keras`` atomically.

    ``export_model`` (default: ``model``) is what gets saved, e.g. the student of a Distiller.
    The chief writes ``run_dir/model.keras``; other workers write theirs into their scratch folder.
    """
    write_dir = worker_dir(run_dir, strategy)
    best = os.path.join(write_dir, "best.weights.h5")
    if os.path.exists(best):
        model.load_weights(best)
    final = os.path.join(write_dir, "model.keras")
    tmp = os.path.join(write_dir, ".model.tmp.keras")
    (export_model or model).save(tmp)
    os.replace(tmp, final)
    print(f"Saved {final}")


def make_optimizer():
    """Adam with the learning rate (or cosine schedule) and global gradient-norm clipping of the flags."""
    import keras

    learning_rate = FLAGS.learning_rate
    if FLAGS.lr_schedule == "cosine":
        total = FLAGS.epochs * FLAGS.steps_per_epoch
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=FLAGS.learning_rate * (0.01 if FLAGS.warmup_steps else 1.0),
            decay_steps=total - FLAGS.warmup_steps,
            alpha=FLAGS.min_lr_ratio,
            warmup_target=FLAGS.learning_rate if FLAGS.warmup_steps else None,
            warmup_steps=FLAGS.warmup_steps,
        )
    return keras.optimizers.Adam(learning_rate, global_clipnorm=FLAGS.clip_norm or None)


def train_and_save(
    prog,
    model,
    strategy,
    extra_config,
    export_model=None,
    monitor="val_loss",
    mode="min",
    knowledge_dir=None,
):
    """The part every training app shares: config, data, ``fit`` with resume, final ``model.keras``.

    Returns:
        The exit status (0, or 2 when the data cannot be used).
    """
    import tensorflow as tf

    if is_chief(strategy):
        write_config(FLAGS.run_dir, extra_config)
    start_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="start_example")
    try:
        train, valid, examples = make_datasets(strategy, start_example=start_var, knowledge_dir=knowledge_dir)
    except ValueError as exc:  # e.g. no usable audio files, or a cache written for other data
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        fit(
            model,
            train,
            valid,
            FLAGS.run_dir,
            strategy,
            examples,
            monitor=monitor,
            mode=mode,
            start_var=start_var,
            export_model=export_model,
        )
    except Interrupted as exc:
        return exc.code
    finish(model, FLAGS.run_dir, strategy, export_model=export_model)
    return 0
