"""Tests of keras_dccrn.training.run_dir (the run directory's files and checkpoints)."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn import build_model
from keras_dccrn.training import run_dir


def test_config_round_trip_and_unreadable_config(tmp_path):
    run_dir.write_config(tmp_path / "run", "--preset=tiny\n", {"preset": "tiny", "path": tmp_path})
    assert (tmp_path / "run" / "flags.cfg").read_text() == "--preset=tiny\n"
    assert run_dir.read_config(tmp_path / "run") == {"preset": "tiny", "path": str(tmp_path)}
    with pytest.raises(ValueError, match="config.json: no such file"):
        run_dir.read_config(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ValueError, match="config.json: unreadable"):
        run_dir.read_config(tmp_path)


def test_read_flags_and_format_duration(tmp_path):
    run_dir.write_config(tmp_path, "# recipe\n--preset=tiny\n--exclude=a=b,c\n--nojit_compile\n", {})
    assert run_dir.read_flags(tmp_path) == {"preset": "tiny", "exclude": "a=b,c", "nojit_compile": ""}
    with pytest.raises(ValueError, match="flags.cfg: no such file"):
        run_dir.read_flags(tmp_path / "none")
    assert run_dir.format_duration(None) == "n/a"
    assert run_dir.format_duration(65.4) == "1 min 05 s"
    assert run_dir.format_duration(2 * 3600 + 7 * 60 + 59) == "2 h 07 min"


def test_read_run_of_a_folder_without_config(tmp_path):
    with pytest.raises(ValueError, match="config.json: no such file"):
        run_dir.read_run(str(tmp_path))


def test_read_run_of_a_record_without_checkpoints_or_logs(tmp_path):
    """A lost run's committed record (config.json + progress.jsonl) gives steps, epochs and validation."""
    run_dir.write_config(
        tmp_path, "--preset=tiny\n", {"preset": "tiny", "batch_size": 4, "segment_seconds": 2.0}
    )
    for epoch, step, val in [(1, 100, 3.0), (2, 200, 5.0), (3, 300, 4.0), (2, 200, 5.0), (3, 300, 4.5)]:
        run_dir.append_progress(tmp_path, {"epoch": epoch, "step": step, "val_si_snr": val, "cpu_hours": 1.0})
    info = run_dir.read_run(str(tmp_path))  # epochs 2 and 3 again after a restore: the later lines win
    assert (info["steps"], info["epochs_done"], info["audio_hours"]) == (300, 3, 300 * 4 * 2.0 / 3600)
    assert info["val_epochs"] == [(1, 3.0), (2, 5.0), (3, 4.5)]
    assert info["val_curve"] == [(100, 3.0), (200, 5.0), (300, 4.5)]
    assert info["best_val"] == (5.0, 2) and info["val_tag"] == "si_snr"
    assert info["sessions"] == [] and info["wall_active"] is None
    distill = tmp_path / "distill"
    run_dir.write_config(distill, "", {"student_preset": "tiny", "kd_mode": "atkl"})
    run_dir.append_progress(distill, {"epoch": 1, "step": 10, "val_si_snr_clean": 7.0})
    info = run_dir.read_run(str(distill))
    assert (info["val_tag"], info["best_val"], info["steps"]) == ("si_snr_clean", (7.0, 1), 10)


def test_progress_and_scores_logs_skip_a_cut_line(tmp_path):
    run_dir.append_progress(tmp_path, {"epoch": 1, "step": 3, "val_loss": 2.0})
    run_dir.append_progress(tmp_path, {"epoch": 2, "step": 6, "val_loss": 1.5})
    with open(tmp_path / run_dir.PROGRESS_FILE, "a") as f:
        f.write('{"epoch": 3, "st')
    assert [e["step"] for e in run_dir.read_progress(tmp_path)] == [3, 6]
    assert run_dir.best_so_far(tmp_path, "val_loss", "min") == 1.5
    assert run_dir.best_so_far(tmp_path, "val_loss", "max") == 2.0
    assert run_dir.best_so_far(tmp_path, "val_si_snr", "max") is None
    run_dir.append_score(tmp_path, {"step": 3})
    assert run_dir.read_scores(tmp_path) == [{"step": 3}]
    assert run_dir.read_progress(tmp_path / "missing") == [] == run_dir.read_scores(tmp_path / "missing")


def test_snapshots_are_saved_atomically_and_listed_by_step(tmp_path):
    model = build_model("tiny")
    for step in (20, 3):
        run_dir.save_model(model, run_dir.snapshot_path(tmp_path, step))
    (tmp_path / "snapshots" / "notes.txt").write_text("x")
    assert [s for s, _ in run_dir.snapshots(tmp_path)] == [3, 20]
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
        "notes.txt",
        "step_0000003.keras",
        "step_0000020.keras",
    ]
    assert run_dir.snapshots(tmp_path / "missing") == []
    assert run_dir.snapshot_step(run_dir.snapshot_path(tmp_path, 1234567)) == 1234567
    for name in ("model.keras", "step_12.keras.tmp", "step_.keras", "notes.txt"):
        assert run_dir.snapshot_step(str(tmp_path / name)) is None


def test_average_records_name_their_steps_and_bad_records_fail_in_one_line(tmp_path):
    path = run_dir.average_path(tmp_path, 36000, 3)
    assert path == str(tmp_path / "averages" / "step_0036000_mean3.keras")
    assert run_dir.snapshot_step(path) is None  # an average is no snapshot
    assert run_dir.average_steps(path) is None  # no record: not an average
    (tmp_path / "averages").mkdir()
    run_dir.write_average_record(path, [36000, 32000, 34000], str(tmp_path))
    assert run_dir.average_steps(path) == [32000, 34000, 36000]
    record = tmp_path / "averages" / "step_0036000_mean3.keras.json"
    for text, problem in [
        ("{", "not an average record"),
        ('{"run_dir": "x"}', "not an average record"),
        ('{"steps": []}', "'steps' must be a non-empty list of integers; received []"),
        ('{"steps": ["36000"]}', "'steps' must be a non-empty list of integers; received ['36000']"),
    ]:
        record.write_text(text)
        with pytest.raises(ValueError, match=re.escape(problem)) as info:
            run_dir.average_steps(path)
        assert str(info.value).startswith(f"{record}: ") and "\n" not in str(info.value)


def test_model_state_names_every_variable_once(uformer_tiny):
    model = uformer_tiny
    state = run_dir.model_state(model)
    assert len(state) == len(model.variables) > len(model.weights)
    assert sum(name.startswith("seed_generator_state_") for name in state) == len(model.variables) - len(
        model.weights
    )


def _compiled(seed):
    keras.utils.set_random_seed(seed)
    model = build_model("tiny")
    model.compile(optimizer="adam", loss="mse")
    return model


def _values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def test_checkpoints_restore_batch_norm_statistics_and_counters(tmp_path):
    model = _compiled(0)
    saved = run_dir.Checkpoints(tmp_path, model)
    for v in model.non_trainable_variables:
        v.assign(keras.ops.convert_to_numpy(v) + 0.5)
    saved.step.assign(7)
    saved.epoch.assign(2)
    saved.save()
    other = _compiled(1)
    restored = run_dir.Checkpoints(tmp_path, other)
    assert restored.restore().endswith("ckpt-7")
    assert (restored.steps_done, restored.epochs_done) == (7, 2) == run_dir.checkpoint_counters(tmp_path)
    for a, b in zip(_values(model.variables), _values(other.variables), strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoints_of_the_older_layout_still_restore(tmp_path):
    """Before model_state: the model's trainable weights reached the checkpoint through the optimizer only."""
    model = _compiled(0)
    model.optimizer.build(model.trainable_variables)
    step = tf.Variable(5, dtype=tf.int64)
    epoch = tf.Variable(1, dtype=tf.int64)
    old = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch, step=step)
    tf.train.CheckpointManager(old, tmp_path / "checkpoints", max_to_keep=3).save(checkpoint_number=5)
    other = _compiled(1)
    restored = run_dir.Checkpoints(tmp_path, other)
    restored.restore()
    assert (restored.steps_done, restored.epochs_done) == (5, 1)
    for a, b in zip(_values(model.trainable_variables), _values(other.trainable_variables), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_empty_run_dir_has_no_checkpoint(tmp_path):
    assert run_dir.Checkpoints(tmp_path, _compiled(0)).restore() is None
    assert run_dir.checkpoint_counters(tmp_path) == (None, None)
    assert json.loads(json.dumps(run_dir.read_progress(tmp_path))) == []


def test_finished_compares_the_last_logged_epoch_with_the_planned_epochs():
    config = {"epochs": 3}
    assert run_dir.finished(config, [{"epoch": 1}, {"epoch": 3}])
    assert not run_dir.finished(config, [{"epoch": 3}, {"epoch": 2}])
    assert not run_dir.finished(config, [])
