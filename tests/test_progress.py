"""Tests of keras_dccrn.training.progress (progress.jsonl of long runs)."""

import json

import keras
import numpy as np
import pytest

from keras_dccrn.training.progress import ProgressLog, continue_log
from keras_dccrn.training.run_dir import PROGRESS_FILE, read_progress


def _fit(run_dir, steps_so_far, epochs):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    counter = {"steps": steps_so_far}

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            counter["steps"] += 1

    x = np.zeros((8, 3), "float32")
    y = np.zeros((8, 1), "float32")
    log = ProgressLog(str(run_dir), lambda: counter["steps"], audio_seconds_per_step=8.0)
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=[Count(), log], validation_data=(x, y))


def test_lines_per_epoch_and_totals_carried_over_processes(tmp_path):
    _fit(tmp_path, 0, epochs=2)
    first = read_progress(tmp_path)
    assert [e["epoch"] for e in first] == [1, 2] and [e["step"] for e in first] == [2, 4]
    assert first[1]["audio_hours"] == pytest.approx(4 * 8.0 / 3600)
    assert {"loss", "val_loss", "cpu_hours", "wall_hours", "time"} <= set(first[1])
    _fit(tmp_path, 4, epochs=1)  # a resumed process continues the totals
    entries = read_progress(tmp_path)
    assert entries[-1]["step"] == 6
    assert entries[-1]["cpu_hours"] >= first[-1]["cpu_hours"]
    assert entries[-1]["wall_hours"] > first[-1]["wall_hours"]


def test_a_cut_last_line_is_ignored(tmp_path):
    (tmp_path / PROGRESS_FILE).write_text(
        json.dumps({"step": 3, "cpu_hours": 0.5, "wall_hours": 1.0}) + "\n{"
    )
    assert [e["step"] for e in read_progress(tmp_path)] == [3]
    log = ProgressLog(str(tmp_path), lambda: 3, 1.0)
    cpu, wall = log.totals()
    assert cpu >= 0.5 and wall >= 1.0
    assert read_progress(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="audio_seconds_per_step"):
        ProgressLog(str(tmp_path), lambda: 0, 0)


def test_a_continued_run_keeps_the_log_to_its_step_and_the_time_spent_after_it(tmp_path):
    source = tmp_path / "lost.progress.jsonl"
    lines = [
        {
            "epoch": e,
            "step": 10 * e,
            "audio_hours": e / 10,
            "cpu_hours": e / 4,
            "wall_hours": e / 2,
            "val_loss": -e,
        }
        for e in (1, 2, 3, 4)
    ]
    source.write_text("".join(json.dumps(e) + "\n" for e in lines))
    run = tmp_path / "run"
    run.mkdir()
    (run / PROGRESS_FILE).write_text(json.dumps({"step": 99}) + "\n")  # replaced
    continue_log(str(run), str(source), 20, "w.npz")
    entries = read_progress(run)
    assert [e["step"] for e in entries] == [10, 20, 20]
    restored = entries[-1]
    assert restored["restored_from"] == "w.npz" and restored["discarded_steps"] == 20
    assert (restored["epoch"], restored["audio_hours"], restored["val_loss"]) == (2, 0.2, -2)
    assert (restored["cpu_hours"], restored["wall_hours"]) == (1.0, 2.0)  # the lost run's last line
    log = ProgressLog(str(run), lambda: 20, 1.0)
    assert log.totals()[0] >= 1.0
    with pytest.raises(ValueError, match="no progress line at step 25"):
        continue_log(str(run), str(source), 25, "w.npz")
    with pytest.raises(ValueError, match="no such progress log"):
        continue_log(str(run), str(tmp_path / "missing.jsonl"), 20, "w.npz")
