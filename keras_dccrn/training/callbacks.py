"""Keras callbacks of a training run: step counting and checkpoints, pausing, signals, snapshots,
TensorBoard scalars, audio and spectrograms, and the plateau schedule and early stopping of a run
that spans several processes.

A resumed process continues the run's callback state from the run's progress log
(:func:`keras_dccrn.training.run_dir.read_progress`): :class:`ReduceLROnPlateau` and
:class:`EarlyStopping` replay the earlier epochs' log values through Keras' own logic when training
begins, so that their counters (epochs without improvement, best value) are those of an
uninterrupted run.
"""

import os
import types

import keras
import numpy as np


class Paused(Exception):
    """The process ran its ``run_steps`` steps; the run is not finished."""


class Checkpointer(keras.callbacks.Callback):
    """Counts the training steps and saves a checkpoint every ``every`` steps and at each epoch's end.

    First in the callback list: the others read the step counter it advances.

    Args:
        checkpoints: the run's :class:`~keras_dccrn.training.run_dir.Checkpoints`.
        every: steps between checkpoints.
    """

    def __init__(self, checkpoints, every):
        super().__init__()
        if every <= 0:
            raise ValueError(f"`every` must be positive; received {every!r}.")
        self.checkpoints = checkpoints
        self.every = int(every)

    def on_train_batch_end(self, batch, logs=None):
        self.checkpoints.step.assign_add(1)
        if self.checkpoints.steps_done % self.every == 0:
            self.checkpoints.save()

    def on_epoch_end(self, epoch, logs=None):
        self.checkpoints.epoch.assign(epoch + 1)
        self.checkpoints.save()


class StopOnSignal(keras.callbacks.Callback):
    """Raises ``KeyboardInterrupt`` at the end of a step once ``received`` (a list) holds a signal.

    A signal handler that appends to ``received`` stops training at a step boundary instead of
    raising inside TensorFlow's tracing or a step.
    """

    def __init__(self, received):
        super().__init__()
        self.received = received

    def on_train_batch_end(self, batch, logs=None):
        if self.received:
            raise KeyboardInterrupt


class Pauser(keras.callbacks.Callback):
    """Raises :class:`Paused` once this process has run ``run_steps`` steps.

    Last in the callback list. On the last step of an epoch it waits for the epoch's end (so the
    validation, the progress line and the best weights of that epoch are written first), and it
    never pauses a run that has just finished its last epoch (of ``epochs``).
    """

    def __init__(self, run_steps, epochs):
        super().__init__()
        if run_steps <= 0:
            raise ValueError(f"`run_steps` must be positive; received {run_steps!r}.")
        self.run_steps = int(run_steps)
        self.epochs = int(epochs)
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps >= self.run_steps and batch + 1 < self.params["steps"]:
            raise Paused()

    def on_epoch_end(self, epoch, logs=None):
        if self.steps >= self.run_steps and epoch + 1 < self.epochs:
            raise Paused()


class Snapshotter(keras.callbacks.Callback):
    """Saves ``model`` every ``every`` epochs as ``snapshots/step_<step>.keras`` of ``run_dir``.

    Args:
        run_dir: where the snapshots go.
        every: epochs between snapshots.
        step_counter: callable returning the number of training steps done.
        model: the model to save (default: the model being trained).
    """

    def __init__(self, run_dir, every, step_counter, model=None):
        super().__init__()
        if every <= 0:
            raise ValueError(f"`every` must be positive; received {every!r}.")
        self.run_dir = run_dir
        self.every = int(every)
        self.step_counter = step_counter
        self.export_model = model

    def on_epoch_end(self, epoch, logs=None):
        from keras_dccrn.training import run_dir

        if (epoch + 1) % self.every:
            return
        path = run_dir.snapshot_path(self.run_dir, self.step_counter())
        run_dir.save_model(self.export_model or self.model, path)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate to the epoch's logs and writes it to TensorBoard (``log_dir/train``)."""

    def __init__(self, log_dir):
        super().__init__()
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if logs is not None:
            logs["learning_rate"] = lr
        with self.writer.as_default():
            tf.summary.scalar("learning_rate", lr, step=epoch)
        self.writer.flush()


class AudioLogger(keras.callbacks.Callback):
    """Enhanced audio and spectrograms of fixed validation examples, every epoch (``log_dir/validation``).

    Args:
        log_dir: the run's TensorBoard folder.
        examples: ``(noisy, clean)`` arrays ``[N, samples]``; the noisy and clean ones are written at
            the first epoch, the enhanced ones at every epoch.
        sample_rate: in Hz.
    """

    def __init__(self, log_dir, examples, sample_rate=16000):
        super().__init__()
        import tensorflow as tf

        self.noisy, self.clean = (np.asarray(x, np.float32) for x in examples)
        self.sample_rate = int(sample_rate)
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "validation"))

    def _write(self, name, waves, epoch):
        import tensorflow as tf

        n = len(waves)
        tf.summary.audio(name, waves[..., None], self.sample_rate, step=epoch, max_outputs=n)
        tf.summary.image(f"spectrogram/{name}", spectrogram_images(waves), step=epoch, max_outputs=n)

    def on_epoch_end(self, epoch, logs=None):
        enhanced = np.asarray(self.model.predict_on_batch(self.noisy))
        with self.writer.as_default():
            if epoch == 0:
                self._write("noisy", self.noisy, epoch)
                self._write("clean", self.clean, epoch)
            self._write("enhanced", enhanced, epoch)
        self.writer.flush()


def spectrogram_images(waves):
    """Log-magnitude spectrograms ``[N, freq, frames, 1]`` in [0, 1] (high frequencies first)."""
    import tensorflow as tf

    spec = tf.abs(tf.signal.stft(tf.convert_to_tensor(waves, tf.float32), 512, 128, 512))
    db = 20.0 * np.log10(spec.numpy() + 1e-6)  # [N, frames, bins]
    db = np.clip((db + 100.0) / 100.0, 0.0, 1.0)
    # [N, frames, bins] -> [N, bins (high first), frames, 1]
    return np.transpose(db, (0, 2, 1))[:, ::-1, :, None]


class _Resumed:
    """Mixin: continues the state of a run's earlier epochs (``history``).

    ``history`` holds the log dicts of the finished epochs (progress-log entries, ``epoch`` counted
    from 1). :meth:`replay` runs them through Keras' own ``on_epoch_end`` against a stand-in model,
    so the real optimizer (whose learning rate the checkpoint restored) is not touched. It runs once,
    at the latest when the first ``fit`` of this process begins; later ``fit`` calls of the same
    process continue the state instead of resetting it.
    """

    def __init__(self, *args, history=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.history = list(history)
        self.replayed_stop = False
        self._replayed = False

    def replay(self):
        """Resets the state and replays ``history`` (once); returns whether it had stopped the run."""
        if self._replayed:
            return self.replayed_stop
        self._replayed = True
        super().on_train_begin()
        real = getattr(self, "_model", None)
        stand_in = types.SimpleNamespace(
            optimizer=types.SimpleNamespace(learning_rate=1.0), stop_training=False, metrics=[]
        )
        verbose, self.verbose = self.verbose, 0
        self.set_model(stand_in)
        try:
            for entry in self.history:
                stand_in.optimizer.learning_rate = entry.get("learning_rate", 1.0)
                super().on_epoch_end(int(entry["epoch"]) - 1, dict(entry))
        finally:
            self.set_model(real)
            self.verbose = verbose
        self.replayed_stop = bool(stand_in.stop_training)
        return self.replayed_stop

    def on_train_begin(self, logs=None):
        self.replay()


class ReduceLROnPlateau(_Resumed, keras.callbacks.ReduceLROnPlateau):
    """``keras.callbacks.ReduceLROnPlateau`` that continues a run's state (``history=``, see the module doc)."""


class EarlyStopping(_Resumed, keras.callbacks.EarlyStopping):
    """``keras.callbacks.EarlyStopping`` that continues a run's state (``history=``); ``replayed_stop``
    tells whether the earlier epochs had already stopped the run."""
