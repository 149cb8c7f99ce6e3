"""The training loop of a run: ``model.fit`` with resume, checkpoints, pausing and clean interruption.

A run spans any number of processes. Each one restores the run's latest checkpoint (every model
variable, the optimizer, the epoch and step counters: :class:`~keras_dccrn.training.run_dir.Checkpoints`),
first finishes the interrupted epoch (its remaining steps), then runs the remaining epochs; the
training stream continues at the next unseen example and the plateau schedule, early stopping and
best-weights callbacks continue from the run's progress log, so an interrupted and resumed run ends
with the weights of an uninterrupted one for the same seed.
"""

import os
import signal
import sys
import time

from keras_dccrn.training import callbacks as cb
from keras_dccrn.training import run_dir as rd
from keras_dccrn.training.distribute import is_chief, prepare_model, worker_dir
from keras_dccrn.training.progress import ProgressLog, continue_log
from keras_dccrn.training.schedules import ResumedSchedule, learning_rate
from keras_dccrn.training.weights import read_weights

PAUSED_EXIT_CODE = 75  # EX_TEMPFAIL: try again (rerun the same command)
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """Training stopped before the end, a checkpoint saved; ``code`` is the exit status.

    128 + the signal number for SIGINT/SIGTERM/SIGHUP, :data:`PAUSED_EXIT_CODE` for a pause after
    ``run_steps`` steps.
    """

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def make_callbacks(model, run_dir, strategy, config, checkpoints, examples=None, export_model=None):
    """The callbacks of one process of a run, in the order they must run.

    The step counter first (the others read it), the signal check right after it; the plateau
    schedule before the learning-rate logger, the progress line after every other log value, the
    pauser last but for early stopping.

    Args:
        model: the model being trained.
        run_dir: the run directory.
        strategy: the distribution strategy (only the chief writes the run dir).
        config: :class:`~keras_dccrn.training.config.TrainingConfig`.
        checkpoints: the run's :class:`~keras_dccrn.training.run_dir.Checkpoints` (restored).
        examples: fixed ``(noisy, clean)`` validation examples for audio logging (None: none).
        export_model: the model snapshots save (default ``model``).

    Returns:
        ``(callbacks, signals)``: the list for ``fit`` and the list the signal handler appends to.
    """
    import keras

    write_dir = worker_dir(run_dir, strategy)
    log_dir = os.path.join(write_dir, rd.LOGS)
    chief = is_chief(strategy)
    history = [e for e in _by_epoch(rd.read_progress(run_dir)) if e["epoch"] <= checkpoints.epochs_done]
    received = []
    callbacks = [cb.Checkpointer(checkpoints, config.checkpoint_every), cb.StopOnSignal(received)]
    if config.lr_schedule == "plateau":
        callbacks.append(
            cb.ReduceLROnPlateau(
                monitor=config.monitor,
                mode=config.mode,
                factor=config.lr_factor,
                patience=config.lr_patience,
                verbose=1,
                history=history,
            )
        )
    callbacks += [
        cb.LearningRateLogger(log_dir),
        keras.callbacks.ModelCheckpoint(
            os.path.join(write_dir, rd.BEST_WEIGHTS),
            monitor=config.monitor,
            mode=config.mode,
            save_best_only=True,
            save_weights_only=True,
            # A resumed process keeps the best value of the earlier ones (else its first epoch always wins).
            initial_value_threshold=rd.best_so_far(run_dir, config.monitor, config.mode),
        ),
        keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch", write_graph=False, profile_batch=0),
    ]
    if examples is not None:
        callbacks.append(cb.AudioLogger(log_dir, examples))
    if config.snapshot_every and chief:
        callbacks.append(
            cb.Snapshotter(write_dir, config.snapshot_every, lambda: checkpoints.steps_done, export_model)
        )
    if chief:
        callbacks.append(ProgressLog(run_dir, lambda: checkpoints.steps_done, config.audio_seconds_per_step))
    if config.run_steps:
        callbacks.append(cb.Pauser(config.run_steps, config.epochs))
    if config.early_stop_patience:
        callbacks.append(
            cb.EarlyStopping(
                monitor=config.monitor, mode=config.mode, patience=config.early_stop_patience, history=history
            )
        )
    return callbacks, received


def _by_epoch(entries):
    """Progress entries, the last one per epoch, by epoch."""
    last = {int(e["epoch"]): e for e in entries if "epoch" in e}
    return [last[k] for k in sorted(last)]


def phases(steps_done, epochs_done, config):
    """``[(first epoch, end epoch, steps per epoch), ...]``: the ``fit`` calls that finish a run.

    The rest of an interrupted epoch comes first (its remaining steps), then the remaining epochs.
    A process killed between an epoch's last step and its end counts that epoch as done.
    """
    first = epochs_done
    done_in_epoch = steps_done - first * config.steps_per_epoch
    if done_in_epoch >= config.steps_per_epoch:
        first = steps_done // config.steps_per_epoch
        done_in_epoch = steps_done - first * config.steps_per_epoch
    calls = []
    if 0 < done_in_epoch < config.steps_per_epoch:
        calls.append((first, first + 1, config.steps_per_epoch - done_in_epoch))
        first += 1
    if first < config.epochs:
        calls.append((first, config.epochs, config.steps_per_epoch))
    return calls


def fit(
    model,
    train,
    valid,
    run_dir,
    strategy,
    config,
    examples=None,
    start_example=None,
    export_model=None,
    callbacks=(),
    log=print,
):
    """Trains ``model`` to the end of the run (or an interruption), resuming from the run's checkpoint.

    Args:
        model: compiled Keras model, built, created under ``strategy``'s scope.
        train: the training dataset (infinite; see :func:`keras_dccrn.data.training_dataset`).
        valid: the validation dataset.
        run_dir: the run directory.
        strategy: the distribution strategy.
        config: :class:`~keras_dccrn.training.config.TrainingConfig`.
        examples: fixed ``(noisy, clean)`` validation examples for audio logging.
        start_example: scalar int64 variable read by ``train`` when iteration starts; set to the
            next unseen example before each ``fit`` call.
        export_model: the model snapshots save and whose variables are checkpointed (default
            ``model``; the student of a distiller).
        callbacks: more Keras callbacks, run after the run's own (:func:`make_callbacks`).
        log: callable for the resume, pause and timing lines.

    Returns:
        The Keras ``History`` of the last ``fit`` call (None if the run had already finished).

    Raises:
        keras_dccrn.training.weights.WeightsError: ``config.init_weights`` does not fit the model.
        ValueError: ``config.init_progress`` has no line at ``config.init_step``.
        Interrupted: a signal stopped training (``code`` 128 + signal) or ``run_steps`` paused it
            (``code`` :data:`PAUSED_EXIT_CODE`); a checkpoint was saved either way.
    """
    checkpoints = rd.Checkpoints(worker_dir(run_dir, strategy), model, export_model, strategy)
    if checkpoints.restore():
        log(
            f"Resuming from {checkpoints.latest} "
            f"(epoch {checkpoints.epochs_done}, step {checkpoints.steps_done})"
        )
    elif config.init_weights:
        read_weights(export_model or model, config.init_weights)
        if config.init_step:
            checkpoints.continue_at(config.init_step, config.steps_per_epoch)
            if config.init_progress and is_chief(strategy):
                continue_log(run_dir, config.init_progress, config.init_step, config.init_weights)
            log(f"Continuing from the weights of {config.init_weights} at step {config.init_step}")
        else:
            log(f"Starting from the weights of {config.init_weights}")
    if checkpoints.optimizer_offset:
        # The schedule goes on from the run's step, not from the fresh optimizer's step counter.
        optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
        optimizer.learning_rate = ResumedSchedule(learning_rate(config), checkpoints.optimizer_offset)
    if checkpoints.epochs_done >= config.epochs:
        log(f"Run already finished ({checkpoints.epochs_done} of {config.epochs} epochs).")
        return None
    own, received = make_callbacks(model, run_dir, strategy, config, checkpoints, examples, export_model)
    callbacks = own + list(callbacks)
    stopper = next((c for c in own if isinstance(c, cb.EarlyStopping)), None)
    if stopper is not None:
        stopper.set_model(model)
        if stopper.replay():
            log(f"Run already finished (early stopping after epoch {checkpoints.epochs_done}).")
            return None

    def on_signal(signum, frame):
        # The first signal is acted on at the end of the current step (raising inside TensorFlow's
        # tracing or a step would surface as another exception); a second one stops at once.
        received.append(signum)
        if len(received) > 1:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in _SIGNALS}
    prepare_model(model, strategy)
    start = time.time()
    history = None
    try:
        for first_epoch, epochs, steps in phases(checkpoints.steps_done, checkpoints.epochs_done, config):
            if start_example is not None:
                start_example.assign(checkpoints.steps_done * config.batch_size)
            with strategy.scope():
                history = model.fit(
                    train,
                    epochs=epochs,
                    initial_epoch=first_epoch,
                    steps_per_epoch=steps,
                    validation_data=valid,
                    callbacks=callbacks,
                    verbose=config.verbose,
                    shuffle=False,  # the dataset shuffles itself
                )
            if model.stop_training:
                break
    except KeyboardInterrupt:
        path = checkpoints.save()
        signum = received[-1] if received else signal.SIGINT
        print(
            f"\n{signal.Signals(signum).name}: checkpoint saved to {path} (step {checkpoints.steps_done}); "
            "rerun the same command to resume.",
            file=sys.stderr,
        )
        raise Interrupted(128 + int(signum)) from None
    except cb.Paused:
        path = checkpoints.save()
        print(
            f"Paused after --run_steps={config.run_steps} steps: checkpoint saved to {path} "
            f"(step {checkpoints.steps_done}); rerun the same command to continue.",
            file=sys.stderr,
        )
        raise Interrupted(PAUSED_EXIT_CODE) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log(f"Training time this run: {time.time() - start:.1f} s; steps so far: {checkpoints.steps_done}")
    return history


def finish(model, run_dir, strategy, export_model=None, log=print):
    """Loads the best validation weights (if any) and writes ``model.keras`` atomically.

    ``export_model`` (default ``model``) is what gets saved, e.g. the student of a distiller. The
    chief writes ``run_dir/model.keras``; the other workers write theirs into their scratch folder.
    """
    write_dir = worker_dir(run_dir, strategy)
    best = os.path.join(write_dir, rd.BEST_WEIGHTS)
    if os.path.exists(best):
        model.load_weights(best)
    final = os.path.join(write_dir, rd.MODEL_FILE)
    rd.save_model(export_model or model, final)
    log(f"Saved {final}")
