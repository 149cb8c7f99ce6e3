"""The run directory of a training run: the one module that writes and reads its files.

Layout::

    flags.cfg            the resolved flags (a flagfile: rerun with --flagfile=run_dir/flags.cfg)
    config.json          the same values plus the model config, as JSON
    checkpoints/         tf.train.CheckpointManager files (the last 3): every model variable, the
                         optimizer, the epoch and step counters
    best.weights.h5      weights with the best validation value so far
    model.keras          the final model (Keras format), written when the run finishes
    progress.jsonl       one line per epoch (:mod:`keras_dccrn.training.progress`)
    snapshots/           step_<step>.keras every N epochs (learning curves)
    devset_scores.jsonl  development-set scores of the snapshots (:mod:`keras_dccrn.training.curves`)
    logs/train, logs/validation   TensorBoard events
    workers/<task>/      what the other workers of a multi-worker run write (the chief writes the run dir)

Checkpoints: Keras 3 layers held in Python lists are invisible to TensorFlow's object tracking, so a
``tf.train.Checkpoint`` of the model object alone holds no variable, and the trainable ones reach it
only through the optimizer. :func:`model_state` names every variable of the model explicitly (weights
by path, random-seed states by position) so that batch-norm statistics and seed states are restored
too. Checkpoints written before ``model_state`` existed hold the trainable weights (through the
optimizer) and the counters only; they still restore, with the other variables left as built.
"""

import json
import os
import re

from keras_dccrn.atomic import atomic_output, write_text

FLAGS_FILE = "flags.cfg"
CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"
BEST_WEIGHTS = "best.weights.h5"
MODEL_FILE = "model.keras"
PROGRESS_FILE = "progress.jsonl"
SNAPSHOTS = "snapshots"
SCORES_FILE = "devset_scores.jsonl"
LOGS = "logs"
KEEP_CHECKPOINTS = 3
_SNAPSHOT = re.compile(r"^step_(\d+)\.keras$")


# --- configuration ------------------------------------------------------------------------------


def write_config(run_dir, flags_text, values):
    """Writes ``flags.cfg`` (``flags_text``) and ``config.json`` (``values``) atomically.

    Args:
        run_dir: the run directory (created if needed).
        flags_text: the resolved flags as a flagfile.
        values: JSON-serialisable settings (values that are not are written as strings).
    """
    os.makedirs(run_dir, exist_ok=True)
    write_text(os.path.join(run_dir, FLAGS_FILE), flags_text)
    write_text(os.path.join(run_dir, CONFIG_FILE), json.dumps(values, indent=2, default=str) + "\n")


def read_config(run_dir):
    """The run's ``config.json`` as a dict.

    Raises:
        ValueError: no readable ``config.json`` (one line naming the file).
    """
    path = os.path.join(run_dir, CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (not a training run directory)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from None


# --- per-epoch logs -----------------------------------------------------------------------------


def _read_jsonl(path):
    if not os.path.exists(path):
        return []
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:  # a last line cut short by a killed process
                continue
    return entries


def _append_jsonl(path, entry):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def read_progress(run_dir):
    """The entries of ``run_dir/progress.jsonl`` as dicts (``[]`` if there is none).

    A last line cut short by a killed process is ignored.
    """
    return _read_jsonl(os.path.join(run_dir, PROGRESS_FILE))


def append_progress(run_dir, entry):
    """Appends one entry (a JSON-serialisable dict) to ``run_dir/progress.jsonl``."""
    _append_jsonl(os.path.join(run_dir, PROGRESS_FILE), entry)


def best_so_far(run_dir, monitor, mode):
    """The best ``monitor`` value in the progress log (``mode`` "min" or "max"; None before the first epoch)."""
    values = [e[monitor] for e in read_progress(run_dir) if monitor in e]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def read_scores(run_dir):
    """The lines of ``run_dir/devset_scores.jsonl`` as dicts (``[]`` if none)."""
    return _read_jsonl(os.path.join(run_dir, SCORES_FILE))


def append_score(run_dir, entry):
    """Appends one entry to ``run_dir/devset_scores.jsonl``."""
    _append_jsonl(os.path.join(run_dir, SCORES_FILE), entry)


# --- models -------------------------------------------------------------------------------------


def save_model(model, path):
    """Saves ``model`` to ``path`` (``.keras``) atomically: a reader never sees a partial file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp:
        model.save(tmp)


def snapshot_path(run_dir, step):
    """Path of the snapshot taken after ``step`` training steps."""
    return os.path.join(run_dir, SNAPSHOTS, f"step_{int(step):07d}.keras")


def snapshots(run_dir):
    """``[(step, path), ...]`` of the run's snapshots, by step."""
    folder = os.path.join(run_dir, SNAPSHOTS)
    if not os.path.isdir(folder):
        return []
    found = [
        (int(m.group(1)), os.path.join(folder, name))
        for name in os.listdir(folder)
        if (m := _SNAPSHOT.match(name))
    ]
    return sorted(found)


# --- checkpoints --------------------------------------------------------------------------------


def model_state(model):
    """``{name: variable}`` of every variable of ``model``, for ``tf.train.Checkpoint`` (see the module doc).

    Weights are named by their path; random-seed states by their position, because their paths are
    numbered per process (``seed_generator_<n>``) rather than per model.

    Raises:
        ValueError: two weights of the model share a path.
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


class Checkpoints:
    """The training checkpoints of a run: every model variable, the optimizer, epoch and step counters.

    Args:
        directory: the folder that writes (the run dir, or a worker's scratch folder).
        model: the compiled model being trained (its optimizer is checkpointed).
        state_model: the model whose variables are checkpointed (default ``model``; the student of a
            distiller, whose teacher is loaded from its own file).
        strategy: the distribution strategy the variables live under.
    """

    def __init__(self, directory, model, state_model=None, strategy=None):
        import tensorflow as tf

        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            # Create the optimizer's slots now so that a restore fills them instead of deferring.
            model.optimizer.build(model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(
            model=model,
            optimizer=model.optimizer,
            epoch=self.epoch,
            step=self.step,
            model_state=model_state(state_model or model),
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(directory, CHECKPOINTS), max_to_keep=KEEP_CHECKPOINTS
        )

    @property
    def latest(self):
        """Path prefix of the latest checkpoint, or None."""
        return self.manager.latest_checkpoint

    def restore(self):
        """Restores the latest checkpoint if there is one; returns its path (or None)."""
        if self.latest:
            self.checkpoint.restore(self.latest).expect_partial()
        return self.latest

    def save(self):
        """Saves a checkpoint numbered by the step counter; returns its path."""
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

    @property
    def steps_done(self):
        return int(self.step.numpy())

    @property
    def epochs_done(self):
        return int(self.epoch.numpy())


def checkpoint_counters(run_dir):
    """``(steps, epochs)`` stored in the run's latest checkpoint, or ``(None, None)``."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINTS))
    if not latest:
        return None, None
    reader = tf.train.load_checkpoint(latest)
    values = []
    for name in ("step", "epoch"):
        key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        values.append(int(reader.get_tensor(key)) if reader.has_tensor(key) else None)
    return tuple(values)
