"""Flags shared by the training apps ``dccrn-train`` and ``dccrn-distill``, and their translation into
calls of :mod:`keras_dccrn.training`.

Flags common to both apps are defined here, once, at import; each app adds its own. The run
directory (``--run_dir``) is described in :mod:`keras_dccrn.training.run_dir`; the defaults of the
optimisation and run flags equal those of :class:`keras_dccrn.training.config.TrainingConfig` (tested;
the library is not imported here so that ``--help`` and flag errors stay fast).
"""

import dataclasses
import os
import re
import sys

from absl import flags

from keras_dccrn.errors import UsageError  # noqa: F401  (the apps raise it as common.UsageError)

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
flags.DEFINE_string(
    "init_weights",
    None,
    "Start a new run from these weights: a weight archive (.npz, e.g. campaign/weights/) or a .keras "
    "file of the same preset (ignored once the run has a checkpoint).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "init_step",
    0,
    "With --init_weights: the step of the run those weights were saved at. The new run continues that run "
    "from there (step and epoch counters, data stream, cosine schedule; the optimizer's moments restart "
    "under a short learning-rate warm-up): for a run whose checkpoints were lost but whose weights were "
    "backed up (0: a new run).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "init_progress",
    None,
    "With --init_step: that run's progress.jsonl (e.g. docs/campaign/<run>.progress.jsonl); its lines up to "
    "--init_step start this run's log, so that budgets keep counting the time already spent.",
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
    if FLAGS.init_weights and not os.path.isfile(FLAGS.init_weights):
        raise UsageError(f"--init_weights={FLAGS.init_weights}: no such file.")
    if FLAGS.valid_examples <= 0:
        raise UsageError(f"--valid_examples must be positive; received {FLAGS.valid_examples}.")
    try:  # the run's own checks (counts, schedule, restore), in flag names
        training_config()
    except ValueError as exc:
        raise UsageError(re.sub(r"`(\w+)`", r"--\1", str(exc))) from None
    if FLAGS.init_progress:
        from keras_dccrn.training.run_dir import read_progress_file

        try:
            steps = {e.get("step") for e in read_progress_file(FLAGS.init_progress)}
        except ValueError as exc:
            raise UsageError(f"--init_progress: {exc}") from None
        if FLAGS.init_step not in steps:
            raise UsageError(f"--init_progress={FLAGS.init_progress}: no line at step {FLAGS.init_step}.")
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


def _exists(spec):
    import glob

    return os.path.exists(spec) or bool(glob.glob(spec, recursive=True))


def setup_runtime():
    """Threads, precision policy, seed and the distribution strategy of the flags."""
    from keras_dccrn.training import distribute

    return distribute.setup(
        threads=FLAGS.threads, mixed_precision=FLAGS.mixed_precision, seed=FLAGS.seed, strategy=FLAGS.strategy
    )


def training_config(monitor="val_loss", mode="min"):
    """The :class:`keras_dccrn.training.config.TrainingConfig` of the flags."""
    from keras_dccrn.training.config import TrainingConfig

    names = [f.name for f in dataclasses.fields(TrainingConfig) if f.name not in ("monitor", "mode")]
    return TrainingConfig(**{name: FLAGS[name].value for name in names}, monitor=monitor, mode=mode)


def mixture_config():
    """The :class:`keras_dccrn.data.MixtureConfig` of the data flags."""
    from keras_dccrn.data import MixtureConfig

    return MixtureConfig(
        segment_seconds=FLAGS.segment_seconds,
        snr_range=(FLAGS.snr_min, FLAGS.snr_max),
        level_range=(FLAGS.level_min, FLAGS.level_max),
        reverb_prob=FLAGS.reverb_prob,
        reverb_target=FLAGS.reverb_target,
        noise_sampling=FLAGS.noise_sampling,
    )


def data_sources():
    """The :class:`keras_dccrn.training.datasets.DataSources` of the data flags."""
    from keras_dccrn.training.datasets import DataSources

    return DataSources(
        train_speech=FLAGS.train_speech,
        train_noise=FLAGS.train_noise,
        train_rir=FLAGS.train_rir,
        valid_speech=FLAGS.valid_speech,
        valid_noise=FLAGS.valid_noise,
        valid_rir=FLAGS.valid_rir,
        exclude=tuple(FLAGS.exclude or ()),
    )


def make_optimizer():
    """Adam with the learning rate (or cosine schedule) and gradient clipping of the flags."""
    from keras_dccrn.training.schedules import make_optimizer

    return make_optimizer(training_config())


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
    """Writes the resolved flags into the run dir, builds the data, trains with resume, writes ``model.keras``.

    Returns:
        The exit status: 0, 2 when the data cannot be used, 128 + signal when a signal stopped
        training, 75 when ``--run_steps`` paused it.
    """
    import tensorflow as tf

    from keras_dccrn.training import distribute, loop, run_dir
    from keras_dccrn.training.datasets import make_datasets
    from keras_dccrn.training.weights import WeightsError

    if distribute.is_chief(strategy):
        values = {name: FLAGS[name].value for name in FLAGS}
        values.update(extra_config)
        run_dir.write_config(FLAGS.run_dir, FLAGS.flags_into_string(), values)
    config = training_config(monitor, mode)
    start_example = tf.Variable(0, dtype=tf.int64, trainable=False, name="start_example")
    try:
        train, valid, examples = make_datasets(
            data_sources(),
            mixture_config(),
            strategy,
            batch_size=FLAGS.batch_size,
            seed=FLAGS.seed,
            cache=FLAGS.cache,
            valid_examples=FLAGS.valid_examples,
            audio_examples=FLAGS.audio_examples,
            start_example=start_example,
            knowledge_dir=knowledge_dir,
        )
    except ValueError as exc:  # e.g. no usable audio files, or a cache written for other data
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        loop.fit(
            model,
            train,
            valid,
            FLAGS.run_dir,
            strategy,
            config,
            examples=examples,
            start_example=start_example,
            export_model=export_model,
        )
    except loop.Interrupted as exc:
        return exc.code
    except WeightsError as exc:
        print(f"{prog}: --init_weights: {exc}", file=sys.stderr)
        return 2
    loop.finish(model, FLAGS.run_dir, strategy, export_model=export_model)
    return 0
