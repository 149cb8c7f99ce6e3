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
import math
import os
import re

from keras_dccrn.atomic import atomic_output, write_text
from keras_dccrn.errors import first_line

FLAGS_FILE = "flags.cfg"
CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"
BEST_WEIGHTS = "best.weights.h5"
MODEL_FILE = "model.keras"
PROGRESS_FILE = "progress.jsonl"
SNAPSHOTS = "snapshots"
AVERAGES = "averages"
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


def _read_run_file(run_dir, name, parse):
    """``parse(text)`` of ``run_dir/name``; ``ValueError`` naming the file when it is missing or unreadable."""
    path = os.path.join(run_dir, name)
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f.read())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (not a training run directory)") from None
    except (OSError, ValueError) as exc:  # JSON and UTF-8 decoding errors are ValueErrors
        raise ValueError(f"{path}: unreadable ({exc})") from None


def read_config(run_dir):
    """The run's ``config.json`` as a dict.

    Raises:
        ValueError: no readable ``config.json`` (one line naming the file).
    """
    return _read_run_file(run_dir, CONFIG_FILE, json.loads)


def _flag_pairs(text):
    pairs = [line.strip()[2:].partition("=") for line in text.splitlines() if line.startswith("--")]
    return {name: value for name, _, value in pairs}


def read_flags(run_dir):
    """``{name: value}`` (both strings) of the ``--name=value`` lines of the run's ``flags.cfg``.

    Raises:
        ValueError: no readable ``flags.cfg`` (one line naming the file).
    """
    return _read_run_file(run_dir, FLAGS_FILE, _flag_pairs)


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


def read_progress_file(path):
    """The entries of a ``progress.jsonl`` file as dicts.

    Raises:
        ValueError: the file cannot be read (one line naming it).
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such progress log")
    try:
        return _read_jsonl(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the progress log ({exc})") from None


def finished(config, progress):
    """Whether a run finished its planned epochs.

    Args:
        config: the run's ``config.json`` values (``epochs``).
        progress: the entries of its ``progress.jsonl`` (:func:`read_progress_file`).

    Returns:
        True when the last entry's epoch reaches ``config["epochs"]``.
    """
    return bool(progress) and progress[-1].get("epoch", 0) >= config["epochs"]


def read_progress(run_dir):
    """The entries of ``run_dir/progress.jsonl`` as dicts (``[]`` if there is none).

    A last line cut short by a killed process is ignored.
    """
    return _read_jsonl(os.path.join(run_dir, PROGRESS_FILE))


def append_progress(run_dir, entry):
    """Appends one entry (a JSON-serialisable dict) to ``run_dir/progress.jsonl``."""
    _append_jsonl(os.path.join(run_dir, PROGRESS_FILE), entry)


def best_entry(entries, monitor, mode):
    """The progress entry with the best ``monitor`` value (``mode`` "min" or "max"; None if none has it)."""
    entries = [e for e in entries if monitor in e]
    if not entries:
        return None
    pick = min if mode == "min" else max
    return pick(entries, key=lambda e: e[monitor])


def best_so_far(run_dir, monitor, mode):
    """The best ``monitor`` value in the progress log (``mode`` "min" or "max"; None before the first epoch)."""
    entry = best_entry(read_progress(run_dir), monitor, mode)
    return None if entry is None else entry[monitor]


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


def snapshot_step(path):
    """The step of a snapshot file (named ``step_<step>.keras``, see :func:`snapshot_path`), else None."""
    match = _SNAPSHOT.match(os.path.basename(path))
    return int(match.group(1)) if match else None


def snapshots(run_dir):
    """``[(step, path), ...]`` of the run's snapshots, by step."""
    folder = os.path.join(run_dir, SNAPSHOTS)
    if not os.path.isdir(folder):
        return []
    found = [(snapshot_step(name), os.path.join(folder, name)) for name in os.listdir(folder)]
    return sorted((step, path) for step, path in found if step is not None)


def average_path(run_dir, step, count):
    """Path of the mean of the ``count`` snapshots up to step ``step`` (``scripts/average_snapshots.py``)."""
    return os.path.join(run_dir, AVERAGES, f"step_{int(step):07d}_mean{int(count)}.keras")


def write_average_record(path, steps, run_dir):
    """Writes ``<path>.json`` next to an averaged model: the steps of the snapshots it is the mean of."""
    write_text(path + ".json", json.dumps({"steps": [int(s) for s in steps], "run_dir": run_dir}) + "\n")


def average_steps(path):
    """The steps of the snapshots a model file is the mean of (its ``<path>.json``), else None.

    Raises:
        ValueError: one line naming the record: unreadable, or without a list of integer steps.
    """
    record = path + ".json"
    if not os.path.isfile(record):
        return None
    try:
        with open(record) as f:
            steps = json.load(f)["steps"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{record}: not an average record ({first_line(exc)})") from None
    if not isinstance(steps, list) or not steps or not all(isinstance(s, int) for s in steps):
        raise ValueError(f"{record}: 'steps' must be a non-empty list of integers; received {steps!r}")
    return sorted(steps)


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
            # The step at which the optimizer started, when the run continued from backed-up weights.
            self.resumed_at = tf.Variable(0, dtype=tf.int64, trainable=False, name="resumed_at")
            # Create the optimizer's slots now so that a restore fills them instead of deferring.
            model.optimizer.build(model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(
            model=model,
            optimizer=model.optimizer,
            epoch=self.epoch,
            step=self.step,
            resumed_at=self.resumed_at,
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

    def continue_at(self, step, steps_per_epoch):
        """Sets the counters of a run continued at ``step`` by a fresh optimizer."""
        for variable, value in (
            (self.step, step),
            (self.epoch, step // steps_per_epoch),
            (self.resumed_at, step),
        ):
            variable.assign(value)

    @property
    def optimizer_offset(self):
        """Steps the run had done before its optimizer started (0 unless continued from weights)."""
        return int(self.resumed_at.numpy())


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


# --- reading a finished run -----------------------------------------------------------------
def _events(path):
    """``tf.compat.v1.Event`` records of one TensorBoard event file."""
    import tensorflow as tf

    for record in tf.data.TFRecordDataset(path):
        yield tf.compat.v1.Event.FromString(record.numpy())


def _event_files(log_dir):
    if not os.path.isdir(log_dir):
        return []
    return sorted(
        os.path.join(log_dir, f) for f in os.listdir(log_dir) if f.startswith("events.out.tfevents.")
    )


def read_scalars(log_dir):
    """``{tag: [(step, value), ...]}`` (sorted by step; a step logged twice keeps the later value)."""
    import tensorflow as tf

    found = {}
    for path in _event_files(log_dir):
        for event in _events(path):
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = float(value.simple_value)
                elif kind == "tensor" and value.metadata.plugin_data.plugin_name in ("scalars", ""):
                    array = tf.make_ndarray(value.tensor)
                    if array.size != 1 or array.dtype.kind not in "fiu":
                        continue
                    number = float(array.reshape(()))
                else:
                    continue
                found.setdefault(value.tag, {})[int(event.step)] = (event.wall_time, number)
    return {tag: [(s, v) for s, (_, v) in sorted(steps.items())] for tag, steps in found.items()}


def training_sessions(log_dir):
    """``[(first, last)]`` event wall times (s since the epoch) of each process that wrote ``log_dir``.

    Event files are named ``events.out.tfevents.<time>.<host>.<pid>.<n>.v2``; the files of one
    (host, pid) are one training session (a resumed run has several).
    """
    sessions = {}
    for path in _event_files(log_dir):
        parts = os.path.basename(path).split(".")
        key = tuple(parts[4:-2]) if len(parts) >= 7 else (path,)  # (host, pid)
        times = [event.wall_time for event in _events(path)]
        if times:
            lo, hi = sessions.get(key, (math.inf, -math.inf))
            sessions[key] = (min(lo, min(times)), max(hi, max(times)))
    return sorted(sessions.values())


def read_run(run_dir):
    """Everything a model card or a results page says about a run directory.

    Returns:
        dict with ``config`` (config.json), ``kind`` (``"train"`` / ``"distill"``), ``preset``,
        ``objective`` (loss or KD mode), ``teacher``, ``steps`` and ``epochs_done`` (latest checkpoint,
        else the logs), ``batch_size``, ``segment_seconds``, ``audio_hours`` (steps x batch x segment),
        ``sessions`` (``[(start, end)]`` wall times from ``logs/train``), ``wall_span`` (first to last
        event, s), ``wall_active`` (sum over sessions, s), ``val_tag``, ``val_epochs`` (``[(epoch,
        SI-SNR dB)]``, epochs counted from 1), ``val_curve`` (``[(training step, SI-SNR dB)]``),
        ``best_val`` (``(SI-SNR, epoch)`` or None), ``progress`` (the entries of ``progress.jsonl``:
        budgets summed over every process, restores included).

    The per-epoch validation SI-SNR comes from ``progress.jsonl`` when it holds more epochs than the
    TensorBoard logs (a run restored from a weight backup, whose logs start at the restore). A run's
    record without its checkpoints and TensorBoard logs (``config.json`` and ``progress.jsonl`` kept
    after the run folder was lost) gives the steps and epochs of its progress log too; its sessions are
    then unknown.

    Raises:
        ValueError: no readable ``config.json`` (one line naming the file).
    """
    config = read_config(run_dir)
    kind = "distill" if "student_preset" in config else "train"
    preset = config.get("student_preset") if kind == "distill" else config.get("preset")
    if kind == "distill":
        objective = f"distillation, kd_mode={config.get('kd_mode')}"
        if config.get("kd_mode") not in (None, "none"):
            objective += (
                f" (attention_dims={config.get('attention_dims')}, alpha={config.get('alpha')}, "
                f"temperature={config.get('temperature')}, at_weight={config.get('at_weight')}, "
                f"kl_weight={config.get('kl_weight')})"
            )
        teacher = config.get("teacher_file") or config.get("teacher")
    else:
        loss = config.get("loss", "auto")
        if loss == "auto":
            from keras_dccrn.models import PRESETS, default_loss

            loss = default_loss(preset) if preset in PRESETS else "si_snr"
        objective = f"supervised, loss={loss}"
        teacher = None
    validation = read_scalars(os.path.join(run_dir, LOGS, "validation"))
    val_tag = "si_snr_clean" if "epoch_si_snr_clean" in validation else "si_snr"
    val_epochs = [(step + 1, value) for step, value in validation.get(f"epoch_{val_tag}", [])]
    val_curve = validation.get(f"evaluation_{val_tag}_vs_iterations", [])
    progress = read_progress(run_dir)
    logged_tag, logged_epochs, logged_curve = _progress_validation(progress, kind)
    if len(logged_epochs) > len(val_epochs):  # a restored run's logs start at the restore
        val_tag, val_epochs, val_curve = logged_tag, logged_epochs, logged_curve
    steps, epochs_done = checkpoint_counters(run_dir)
    if steps is None and val_curve:
        steps = val_curve[-1][0]
    if epochs_done is None and val_epochs:
        epochs_done = val_epochs[-1][0]
    if progress and steps is None:
        steps = progress[-1].get("step")
    if progress and epochs_done is None:
        epochs_done = progress[-1].get("epoch")
    batch, segment = config.get("batch_size"), config.get("segment_seconds")
    sessions = training_sessions(os.path.join(run_dir, LOGS, "train"))
    best = max(val_epochs, key=lambda item: item[1]) if val_epochs else None
    return dict(
        run_dir=run_dir,
        progress=progress,
        config=config,
        kind=kind,
        preset=preset,
        objective=objective,
        teacher=teacher,
        steps=steps,
        epochs_done=epochs_done,
        batch_size=batch,
        segment_seconds=segment,
        audio_hours=steps * batch * segment / 3600 if None not in (steps, batch, segment) else None,
        sessions=sessions,
        wall_span=sessions[-1][1] - sessions[0][0] if sessions else None,
        wall_active=sum(end - start for start, end in sessions) if sessions else None,
        val_tag=val_tag,
        val_epochs=val_epochs,
        val_curve=val_curve,
        best_val=(best[1], best[0]) if best else None,
    )


def _progress_validation(progress, kind):
    """``(val_tag, val_epochs, val_curve)`` from progress entries: the validation SI-SNR of each epoch.

    The tag is the kind's (``si_snr_clean`` for a distillation run, else ``si_snr``) unless only the
    other one was logged. A restore repeats earlier epochs; the latest line of an epoch wins.
    """
    tag = "si_snr_clean" if kind == "distill" else "si_snr"
    if not any(f"val_{tag}" in e for e in progress):
        tag = "si_snr" if tag == "si_snr_clean" else "si_snr_clean"
    key = f"val_{tag}"
    by_epoch = {}
    for entry in progress:
        if key in entry and "epoch" in entry and "step" in entry:
            by_epoch[int(entry["epoch"])] = (int(entry["step"]), float(entry[key]))
    epochs = sorted(by_epoch)
    return tag, [(e, by_epoch[e][1]) for e in epochs], [by_epoch[e] for e in epochs]


def format_duration(seconds):
    """``"H h MM min"`` (``"M min SS s"`` under an hour) of a duration in seconds; ``"n/a"`` for None."""
    if seconds is None:
        return "n/a"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def load_float32_model(path):
    """Loads a ``.keras`` model without optimizer; a mixed-precision model is rebuilt in float32.

    Returns:
        ``(model, trained_policy_name)``.

    Raises:
        keras_dccrn.runtime.ModelLoadError: ``path`` is not a loadable ``.keras`` file (one line).
    """
    from keras_dccrn.runtime.loading import as_float32, load_keras_model

    model = load_keras_model(path, float32=False)
    return as_float32(model), model.dtype_policy.name


def model_from_config(config):
    """Builds (untrained, float32) the preset a run trained, for counting when it has no model.keras yet."""
    from keras_dccrn.models import build_model

    return build_model(config.get("student_preset") or config.get("preset"))
