"""Tests of keras_dccrn.training.callbacks (resumed plateau and early stopping, pausing, checkpoints)."""

import keras
import numpy as np
import pytest

from keras_dccrn.training import callbacks as cb
from keras_dccrn.training import run_dir

VALUES = [5.0, 4.0, 4.5, 4.2, 4.1, 3.0, 3.5, 3.6, 3.7, 3.8]


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1.0), loss="mse")
    return model


def _epochs(callback, model, first, values):
    """Feeds epoch ends to ``callback``; returns the log dicts (the progress-log entries)."""
    callback.set_model(model)
    callback.on_train_begin()
    entries = []
    for epoch, value in enumerate(values, start=first):
        logs = {"val_loss": value}
        callback.on_epoch_end(epoch, logs)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        entries.append({"epoch": epoch + 1, **logs})
        if model.stop_training:
            break
    return entries


@pytest.mark.parametrize("split", [1, 3, 5, 8])
def test_resumed_plateau_schedule_equals_an_uninterrupted_one(split):
    make = dict(monitor="val_loss", mode="min", factor=0.5, patience=2, cooldown=1)
    whole_model = _model()
    whole = _epochs(cb.ReduceLROnPlateau(**make), whole_model, 0, VALUES)
    model = _model()
    first = _epochs(cb.ReduceLROnPlateau(**make), model, 0, VALUES[:split])
    # A new process: a fresh callback continues from the log; the restored learning rate is kept.
    resumed = cb.ReduceLROnPlateau(**make, history=first)
    rest = _epochs(resumed, model, split, VALUES[split:])
    assert [e["learning_rate"] for e in first + rest] == [e["learning_rate"] for e in whole]
    assert whole[-1]["learning_rate"] < 1.0


def test_resumed_early_stopping_stops_at_the_same_epoch_and_knows_a_stopped_run():
    whole_model = _model()
    whole = _epochs(cb.EarlyStopping(monitor="val_loss", mode="min", patience=4), whole_model, 0, VALUES)
    model = _model()
    first = _epochs(cb.EarlyStopping(monitor="val_loss", mode="min", patience=4), model, 0, VALUES[:7])
    resumed = cb.EarlyStopping(monitor="val_loss", mode="min", patience=4, history=first)
    rest = _epochs(resumed, model, 7, VALUES[7:])
    assert len(first + rest) == len(whole) == 10 and model.stop_training
    finished = cb.EarlyStopping(monitor="val_loss", mode="min", patience=4, history=whole)
    finished.set_model(_model())
    assert finished.replay() and finished.replay()  # idempotent
    assert not cb.EarlyStopping(monitor="val_loss", mode="min", patience=4, history=first).replay()


class _Checkpoints:
    def __init__(self):
        import tensorflow as tf

        self.step = tf.Variable(0, dtype=tf.int64)
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.saved = []

    @property
    def steps_done(self):
        return int(self.step.numpy())

    def save(self):
        self.saved.append(self.steps_done)


def test_checkpointer_counts_steps_and_saves_every_n_and_at_epoch_end():
    checkpoints = _Checkpoints()
    checkpointer = cb.Checkpointer(checkpoints, every=2)
    for batch in range(5):
        checkpointer.on_train_batch_end(batch)
    checkpointer.on_epoch_end(0)
    assert checkpoints.saved == [2, 4, 5] and int(checkpoints.epoch.numpy()) == 1


def test_pauser_waits_for_the_epoch_end_and_never_pauses_a_finished_run():
    pauser = cb.Pauser(run_steps=2, epochs=2)
    pauser.set_params({"steps": 3})
    pauser.on_train_batch_end(0)
    with pytest.raises(cb.Paused):
        pauser.on_train_batch_end(1)
    last = cb.Pauser(run_steps=1, epochs=2)
    last.set_params({"steps": 3})
    last.on_train_batch_end(2)  # the epoch's last step: wait for its end
    with pytest.raises(cb.Paused):
        last.on_epoch_end(0)
    last.on_epoch_end(1)  # the run's last epoch: no pause
    with pytest.raises(ValueError, match="`run_steps` must be positive"):
        cb.Pauser(run_steps=0, epochs=1)


def test_stop_on_signal_raises_once_a_signal_is_recorded():
    received = []
    stop = cb.StopOnSignal(received)
    stop.on_train_batch_end(0)
    received.append(15)
    with pytest.raises(KeyboardInterrupt):
        stop.on_train_batch_end(1)


def test_snapshotter_saves_every_n_epochs(tmp_path):
    from keras_dccrn import build_model

    snap = cb.Snapshotter(str(tmp_path), every=2, step_counter=lambda: 6, model=build_model("tiny"))
    snap.on_epoch_end(0)
    assert run_dir.snapshots(tmp_path) == []
    snap.on_epoch_end(1)
    assert [s for s, _ in run_dir.snapshots(tmp_path)] == [6]


def test_spectrogram_images_are_in_unit_range_high_frequencies_first():
    t = np.arange(8000) / 16000
    images = cb.spectrogram_images(np.stack([np.sin(2 * np.pi * 7000 * t), np.sin(2 * np.pi * 200 * t)]))
    assert images.shape == (2, 257, 59, 1) and 0.0 <= images.min() and images.max() <= 1.0
    # Row r holds bin 256 - r (31.25 Hz per bin): 7 kHz near the top, 200 Hz near the bottom.
    rows = images[..., 0].mean(axis=2).argmax(axis=1)
    assert abs(rows[0] - (256 - 224)) <= 4 and abs(rows[1] - (256 - 6)) <= 4  # clipped rows tie
