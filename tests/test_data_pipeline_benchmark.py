"""Tests of benchmarks/data_pipeline.py (CPU cost per training batch, with and without the cache)."""

import os
import subprocess
import sys

import numpy as np
from data_corpus import make_corpus, make_rir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import data_pipeline  # noqa: E402


def test_rounds_per_setting_on_a_small_corpus(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    speech, noise = make_corpus(root, rng)
    os.rename(speech, root / "speech_train")
    os.rename(noise, root / "noise_train")
    for name in ("speech", "noise"):
        (root / name).mkdir()
        os.rename(root / f"{name}_train", root / name / "train")
    (root / "rir").mkdir()
    make_rir(root / "rir" / "room.wav")
    page = tmp_path / "page.md"
    argv = [
        sys.executable,
        os.path.join(REPO, "benchmarks", "data_pipeline.py"),
        f"--data={root}",
        "--seconds=0.5",
        "--rounds=2",
        "--batches=2",
        f"--output={page}",
    ]
    # its own process: it sets TensorFlow's thread pools, which a process can do only before TF runs
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    text = page.read_text()
    assert "6 speech, 3 noise and 1 RIR files" in text
    rows = [line for line in text.splitlines() if line.startswith(("| False", "| True"))]
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| False", "1"],
        ["| False", "2"],
        ["| True", "1"],
        ["| True", "2"],
    ]
    assert all(float(row.split(" | ")[2]) > 0 for row in rows)


def test_missing_data_is_skipped_with_a_message(tmp_path, capsys):
    argv = ["data_pipeline.py", f"--data={tmp_path / 'none'}", f"--output={tmp_path / 'page.md'}"]
    assert data_pipeline.main(argv) == 0
    assert "Skipping the data-pipeline benchmark" in capsys.readouterr().out
    assert not (tmp_path / "page.md").exists()


def test_a_bad_flag_is_one_line(capsys):
    assert data_pipeline.main(["data_pipeline.py", "--rounds=x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
