"""``scripts/ship.py``: a finished run -> SavedModel (+ TFLite), generated model card, training recipe."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn import build_model
from keras_dccrn.training import run_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import ship  # noqa: E402


def run(*args):
    return ship.cli_main(["ship.py", *args])


def base_args(tiny_runs, out, system="student_nokd", run="student_nokd"):
    return [
        "--name=tiny_student",
        f"--run_dir={tiny_runs['runs'][run]}",
        f"--scores={tiny_runs['scores']}",
        f"--system={system}",
        f"--output_dir={out}",
        "--macs_seconds=0.5",
    ]


def system_means(scores_dir, system):
    with open(os.path.join(scores_dir, "per_file.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["system"] == system]
    return {c: float(np.mean([float(r[c]) for r in rows])) for c in ("pesq_wb", "pesq_nb", "stoi", "si_snr")}


@pytest.fixture(scope="module")
def shipped(tiny_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved_models")
    rc = run(*base_args(tiny_runs, out), "--tflite", "--quantizations=float32", "--chunk_samples=8000")
    assert rc == 0
    return out / "tiny_student"


def test_savedmodel_runs_like_the_float32_model_and_holds_no_optimizer(tiny_runs, shipped):
    trained = keras.saving.load_model(tiny_runs["runs"]["student_nokd"] / "model.keras", compile=False)
    assert trained.dtype_policy.name == "mixed_bfloat16"  # the run used mixed precision
    reference = build_model("tiny")  # float32, same architecture
    reference.set_weights(trained.get_weights())
    x = np.random.default_rng(0).normal(0, 0.1, (2, 8000)).astype("float32")
    loaded = tf.saved_model.load(str(shipped / "1"))
    out = loaded.signatures["serving_default"](noisy=tf.constant(x))["enhanced"].numpy()
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, np.asarray(reference(x)), atol=1e-5)

    stored = tf.train.list_variables(str(shipped / "1" / "variables" / "variables"))
    assert not [n for n, _ in stored if "optimizer" in n.lower() or "iteration" in n.lower()]
    # the stored values are the model's weights, each once (keras-team/keras#23553 stored them twice),
    # and nothing else: Adam's two slots per trainable weight would add twice the trainable count
    model_floats = sum(int(np.prod(w.shape)) for w in reference.weights)
    trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    stored_floats = sum(int(np.prod(shape)) for n, shape in stored if n.endswith("VARIABLE_VALUE"))
    assert trainable <= stored_floats <= model_floats


def test_tflite_and_training_config(tiny_runs, shipped):
    assert (shipped / "tiny_student_offline_float32.tflite").stat().st_size > 0  # the dccrn-export code path
    assert not list(shipped.glob("*streaming*"))  # the tiny preset is not causal
    with open(tiny_runs["runs"]["student_nokd"] / "config.json") as f:
        assert json.load(open(shipped / "training_config.json")) == json.load(f)
    assert not [p for p in shipped.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_model_card_is_generated_from_the_run_and_the_scores(tiny_runs, shipped):
    card = (shipped / "MODEL_CARD.md").read_text()
    model = build_model("tiny")
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert f"Parameters: {params:,} trainable" in card
    assert f"look-ahead {model.lookahead_samples} samples" in card
    assert "Steps done: 2 (2 of 2 epochs" in card
    assert "Batch 2 x 0.5 s segments" in card
    assert "Precision: mixed_bfloat16" in card and "shipped in float32" in card
    assert "Best validation SI-SNR:" in card and "at epoch" in card
    assert "Objective: supervised, loss=si_snr" in card
    means = system_means(tiny_runs["scores"], "student_nokd")
    row = next(line for line in card.splitlines() if line.startswith("| student_nokd (this model)"))
    for column in ("pesq_wb", "pesq_nb", "stoi", "si_snr"):
        assert f"{means[column]:.3f} ±" in row
    assert next(line for line in card.splitlines() if line.startswith("| noisy (unprocessed input)"))
    for name in ("1/saved_model.pb", "tiny_student_offline_float32.tflite", "training_config.json"):
        assert f"| `{name}` |" in card
    assert "dccrn-enhance --model=tiny_student" in card
    assert "unknown source" in card  # synthetic corpus: no licence claimed


def test_overwrite_with_a_distilled_run_card_names_teacher_and_kd_mode(tiny_runs, shipped, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(shipped, out / "tiny_student")
    args = base_args(tiny_runs, out, system="student_atkl", run="student_atkl")
    assert run(*args, "--overwrite") == 0
    card = (out / "tiny_student" / "MODEL_CARD.md").read_text()
    assert "kd_mode=at_kl" in card and "teacher.keras" in card
    assert "Precision: float32" in card and "| student_atkl (this model) |" in card
    assert not list((out / "tiny_student").glob("*.tflite"))  # replaced, not merged
    assert sorted(p.name for p in out.iterdir()) == ["tiny_student"]


def test_refuses_existing_version_and_keeps_other_versions(tiny_runs, shipped, tmp_path, capsys):
    out = tmp_path / "models"
    shutil.copytree(shipped, out / "tiny_student")
    before = (out / "tiny_student" / "MODEL_CARD.md").read_text()
    assert run(*base_args(tiny_runs, out)) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("already exists (pass --overwrite to replace it)") and "\n" not in err
    assert (out / "tiny_student" / "MODEL_CARD.md").read_text() == before

    assert run(*base_args(tiny_runs, out), "--version=2") == 0
    folder = out / "tiny_student"
    assert (folder / "1" / "saved_model.pb").is_file() and (folder / "2" / "saved_model.pb").is_file()
    assert "# tiny_student (version 2)" in (folder / "MODEL_CARD.md").read_text()
    assert not list(folder.glob("*.tflite"))  # the top-level files describe version 2 (no --tflite)
    assert sorted(p.name for p in out.iterdir()) == ["tiny_student"]


def test_failure_half_way_leaves_the_previous_folder_untouched(
    tiny_runs, shipped, tmp_path, monkeypatch, capsys
):
    import keras_dccrn.export

    out = tmp_path / "models"
    shutil.copytree(shipped, out / "tiny_student")

    def broken(model, export_dir, version, **kwargs):
        os.makedirs(os.path.join(export_dir, str(version)))
        (open(os.path.join(export_dir, str(version), "saved_model.pb"), "w")).write("half")
        raise ValueError("conversion failed on purpose")

    monkeypatch.setattr(keras_dccrn.export, "export_saved_model", broken)
    assert run(*base_args(tiny_runs, out), "--version=3") == 1
    assert "conversion failed on purpose" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["tiny_student"]
    assert not (out / "tiny_student" / "3").exists()
    assert (out / "tiny_student" / "MODEL_CARD.md").read_text() == (shipped / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"run_dir": "/nonexistent/run"}, "/nonexistent/run: no such run directory"),
        ({"run_dir": "EMPTY"}, "no model.keras (is the run finished?)"),
        ({"scores": "/nonexistent/scores"}, "/nonexistent/scores: no such scores directory"),
        ({"system": "nope"}, "--system=nope: not in"),
        ({"name": None}, "--name is required"),
    ],
)
def test_one_line_errors_exit_2_and_write_nothing(tiny_runs, tmp_path, capsys, change, message):
    values = dict(
        name="tiny_student",
        run_dir=str(tiny_runs["runs"]["student_nokd"]),
        scores=str(tiny_runs["scores"]),
        system="student_nokd",
    )
    (tmp_path / "empty").mkdir()
    values.update({k: (str(tmp_path / "empty") if v == "EMPTY" else v) for k, v in change.items()})
    args = [f"--{k}={v}" for k, v in values.items() if v is not None]
    assert run(*args, f"--output_dir={tmp_path / 'out'}") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_command_line_entry_point_unknown_system(tiny_runs, tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/ship.py", *base_args(tiny_runs, tmp_path, system="nope")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ship: --system=nope: not in {tiny_runs['scores']}/per_file.csv (systems: noisy, student_nokd, student_atkl)"
    ]


def test_training_data_of_the_shared_corpus_is_non_commercial():
    config = {
        "train_speech": ["../shared/data/speech/train"],
        "train_noise": ["../shared/data/noise/train"],
        "train_rir": ["../shared/data/rir"],
        "reverb_prob": 0.1,
        "valid_speech": ["/my/own/speech"],
    }
    lines, non_commercial, unknown = ship.data_lines(config)
    text = "\n".join(lines)
    assert non_commercial == ["UrbanSound8K folds 1-2"]
    assert unknown == ["/my/own/speech"]
    assert "CC BY-NC 3.0 (NON-COMMERCIAL)" in text and "NOISEX-92" in text and "licence unclear" in text
    assert "8 training speakers" in text and "ODC-By 1.0" in text
    lines, non_commercial, _ = ship.data_lines(dict(config, train_noise=["/my/noise"], reverb_prob=0.0))
    assert non_commercial == [] and "not used: reverb_prob = 0" in "\n".join(lines)


def test_training_time_sums_sessions(tiny_runs):
    info = run_dir.read_run(str(tiny_runs["runs"]["student_atkl"]))
    assert info["kind"] == "distill" and info["steps"] == 2 and info["epochs_done"] == 2
    assert len(info["sessions"]) == 1 and 0 < info["wall_active"] < 300
    assert math.isclose(info["wall_active"], info["wall_span"])
    assert [epoch for epoch, _ in info["val_epochs"]] == [1, 2] and info["val_tag"] == "si_snr_clean"
    assert info["best_val"] == max(((v, e) for e, v in info["val_epochs"]), key=lambda t: t[0])
