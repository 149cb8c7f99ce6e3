"""Tests of scripts/average_snapshots.py: the chosen snapshots, the averaged model and the one-line errors."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))

import average_snapshots as avg  # noqa: E402

SNAPS = [(100, "a"), (200, "b"), (300, "c"), (400, "d")]


def test_the_last_snapshots_up_to_a_step():
    assert avg.chosen_snapshots(SNAPS, 2, 0) == [(300, "c"), (400, "d")]
    assert avg.chosen_snapshots(SNAPS, 3, 300) == [(100, "a"), (200, "b"), (300, "c")]
    with pytest.raises(ValueError, match="--until=250: no snapshot at that step"):
        avg.chosen_snapshots(SNAPS, 1, 250)
    with pytest.raises(ValueError, match="--last=3: only 2 snapshot"):
        avg.chosen_snapshots(SNAPS, 3, 200)
    with pytest.raises(ValueError, match="received 0"):
        avg.chosen_snapshots(SNAPS, 0, 0)


def _run(*args):
    import subprocess

    script = os.path.join(os.path.dirname(avg.__file__), "average_snapshots.py")
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=300)


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
        (["--output=x.h5"], "--output=x.h5: must end in .keras"),
    ],
)
def test_bad_input_is_one_line(run_folder, args, message):
    folder, _ = run_folder
    result = _run(f"--run_dir={folder}", *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"average_snapshots: {message}"]
