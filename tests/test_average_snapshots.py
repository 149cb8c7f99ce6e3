"""Tests of scripts/average_snapshots.py: the averaged model, the chosen snapshots and the one-line errors."""

import json
import os
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "average_snapshots.py"
)


# The script is run in a subprocess, never imported: its absl flags are global and would clash with
# other scripts' flags (ship.py's --run_dir and --output) in the test process.
def _run(*args):
    import subprocess

    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    import keras

    from keras_dccrn import build_model
    from keras_dccrn.training.run_dir import snapshot_path

    folder = tmp_path_factory.mktemp("run")
    values = []
    for i, step in enumerate((100, 200, 300)):
        keras.utils.set_random_seed(i)
        model = build_model("tiny")
        model(np.zeros((1, 1600), "float32"))
        os.makedirs(os.path.dirname(snapshot_path(folder, step)), exist_ok=True)
        model.save(snapshot_path(folder, step))
        values.append([np.asarray(v.numpy()) for v in model.variables if "seed_generator" not in v.path])
    return folder, values


def test_the_average_of_the_last_two_snapshots(run_folder):
    from keras_dccrn.runtime import load_keras_model

    folder, values = run_folder
    result = _run(f"--run_dir={folder}", "--last=2")
    assert result.returncode == 0, result.stderr
    out = folder / "averages" / "step_0000300_mean2.keras"
    assert f"{out}: the mean of the snapshots at steps 200, 300" in result.stdout
    assert json.loads((folder / "averages" / "step_0000300_mean2.keras.json").read_text())["steps"] == [
        200,
        300,
    ]
    model = load_keras_model(str(out))
    got = [np.asarray(v.numpy()) for v in model.variables if "seed_generator" not in v.path]
    for g, b, c in zip(got, values[1], values[2], strict=True):
        np.testing.assert_allclose(g, (b.astype("float64") + c) / 2, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run_dir=/nonexistent"], "--run_dir=/nonexistent: no such folder"),
        (["--last=5"], "--last=5: only 3 snapshot(s) up to that step"),
        (["--last=3", "--until=200"], "--last=3: only 2 snapshot(s) up to that step"),
        (["--until=250"], "--until=250: no snapshot at that step"),
        (["--last=0"], "--last must be at least 1; received 0"),
        (["--output=x.h5"], "--output=x.h5: must end in .keras"),
    ],
)
def test_bad_input_is_one_line(run_folder, args, message):
    folder, _ = run_folder
    result = _run(f"--run_dir={folder}", *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"average_snapshots: {message}"]


def test_until_chooses_the_last_snapshots_up_to_that_step(run_folder, tmp_path):
    folder, _ = run_folder
    out = tmp_path / "early.keras"
    result = _run(f"--run_dir={folder}", "--last=2", "--until=200", f"--output={out}")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "early.keras.json").read_text())["steps"] == [100, 200]
