"""Tests of scripts/backup_weights.py (best weights of a run -> a committed weight archive)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_dccrn import build_model
from keras_dccrn.training.weights import read_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "scripts/backup_weights.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_backs_up_the_best_weights_of_a_run(tmp_path):
    keras.utils.set_random_seed(3)
    model = build_model("tiny")
    model(np.zeros((1, 1600), "float32"))
    run = tmp_path / "run"
    run.mkdir()
    model.save_weights(run / "best.weights.h5")
    (run / "config.json").write_text(json.dumps({"preset": "tiny"}))
    lines = [{"step": 10, "val_loss": -3.0}, {"step": 20, "val_loss": -4.5}, {"step": 30, "val_loss": -4.0}]
    (run / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    proc = _run(f"--run=tiny={run}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "tiny.json").read_text()) == {"step": 20, "val_loss": -4.5}
    fresh = build_model("tiny")
    fresh(np.zeros((1, 1600), "float32"))
    read_weights(fresh, tmp_path / "out" / "tiny.npz")
    x = np.random.default_rng(0).standard_normal((1, 3200)).astype("float32") * 0.1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fresh(x)), keras.ops.convert_to_numpy(model(x)))


def test_a_run_without_best_weights_is_one_line(tmp_path):
    proc = _run(f"--run=x={tmp_path}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("backup_weights: --run=x=")
    assert "no best.weights.h5 and no snapshots" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_distillation_run_is_refused_in_one_line(tmp_path):
    (tmp_path / "best.weights.h5").write_bytes(b"x")
    (tmp_path / "config.json").write_text(json.dumps({"student_preset": "tiny", "preset": "tiny"}))
    (tmp_path / "progress.jsonl").write_text(json.dumps({"step": 1, "val_loss": 0.0}) + "\n")
    proc = _run(f"--run=s={tmp_path}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert "a distillation run" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_later_snapshot_is_backed_up_instead_of_older_best_weights(tmp_path):
    from keras_dccrn.training import run_dir

    keras.utils.set_random_seed(4)
    best, later = build_model("tiny"), build_model("tiny")
    for m in (best, later):
        m(np.zeros((1, 1600), "float32"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"preset": "tiny"}))
    lines = [{"step": 10, "val_loss": -3.0}, {"step": 20, "val_loss": -2.0}, {"step": 30, "val_loss": -2.5}]
    (run / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    run_dir.save_model(later, run_dir.snapshot_path(run, 30))
    proc = _run(f"--run=tiny={run}", f"--output_dir={tmp_path / 'out'}")  # snapshots only
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "tiny.json").read_text()) == {
        "step": 30,
        "snapshot": "step_0000030.keras",
    }
    fresh = build_model("tiny")
    fresh(np.zeros((1, 1600), "float32"))
    read_weights(fresh, tmp_path / "out" / "tiny.npz")
    x = np.random.default_rng(1).standard_normal((1, 3200)).astype("float32") * 0.1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fresh(x)), keras.ops.convert_to_numpy(later(x)))
    best.save_weights(run / "best.weights.h5")  # best at step 10, older than the snapshot: still the snapshot
    assert _run(f"--run=tiny={run}", f"--output_dir={tmp_path / 'out'}").returncode == 0
    assert json.loads((tmp_path / "out" / "tiny.json").read_text())["step"] == 30
    lines.append({"step": 40, "val_loss": -5.0})  # best weights newer than the snapshot: the best weights
    (run / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert _run(f"--run=tiny={run}", f"--output_dir={tmp_path / 'out'}").returncode == 0
    assert json.loads((tmp_path / "out" / "tiny.json").read_text()) == {"step": 40, "val_loss": -5.0}
