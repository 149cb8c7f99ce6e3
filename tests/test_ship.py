"""``scripts/ship.py``: a finished run -> SavedModel (+ TFLite), generated model card, training recipe."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from data_corpus import make_data_folder

from keras_dccrn import build_model
from keras_dccrn.runtime import registry
from keras_dccrn.training import run_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import ship  # noqa: E402

# with -n: on the worker that builds the session fixture tiny_runs (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("tiny_runs")


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


def data_run(tiny_runs, folder, target, exclude=None):
    """A copy of the tiny supervised run at ``target`` whose data flags name the data folder ``folder``."""
    shutil.copytree(tiny_runs["runs"]["student_nokd"], target)
    config = json.loads((target / "config.json").read_text())
    config.update(
        train_speech=[str(folder / "speech" / "train")],
        train_noise=[str(folder / "noise" / "train")],
        train_rir=[str(folder / "rir")],
        valid_speech=[str(folder / "speech" / "valid")],
        valid_noise=[str(folder / "noise" / "valid")],
        valid_rir=None,
        reverb_prob=0.3,
        exclude=exclude,
    )
    (target / "config.json").write_text(json.dumps(config, indent=2))
    return target


def stored_names(keras_file):
    """Names of the groups and datasets in a .keras file's weights."""
    names = []
    with zipfile.ZipFile(keras_file) as archive, archive.open("model.weights.h5") as f, h5py.File(f) as h5:
        h5.visit(names.append)
    return names


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


def test_keras_file_is_the_float32_model_without_optimizer_and_not_the_default(tiny_runs, shipped):
    path = shipped / "tiny_student.keras"
    model = keras.saving.load_model(path, compile=False)
    assert model.dtype_policy.name == "float32"
    x = np.random.default_rng(1).normal(0, 0.1, (2, 8000)).astype("float32")
    loaded = tf.saved_model.load(str(shipped / "1"))
    served = loaded.signatures["serving_default"](noisy=tf.constant(x))["enhanced"].numpy()
    np.testing.assert_allclose(np.asarray(model(x)), served, atol=1e-5)
    # the run's model.keras holds its optimizer; the shipped file does not
    assert any("optimizer" in n for n in stored_names(tiny_runs["runs"]["student_nokd"] / "model.keras"))
    assert not any("optimizer" in n for n in stored_names(path))
    # the folder's default model is still the SavedModel (no manifest.json: SavedModel before .keras)
    assert not (shipped / registry.MANIFEST).exists()
    assert registry.model_in_folder(str(shipped)) == str(shipped / "1")
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "| `tiny_student.keras` |" in card
    assert "dccrn-enhance --model=saved_models/tiny_student/tiny_student.keras --input=noisy.wav" in card


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
    assert (
        f"Shipped weights: `{tiny_runs['runs']['student_nokd'] / 'model.keras'}` (the run's final model)"
        in card
    )
    assert "Batch 2 x 0.5 s segments" in card
    assert "Precision (the run's latest process): mixed_bfloat16" in card and "shipped in float32" in card
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
    assert "Licence of the weights: unknown" in card and "Share-alike" not in card
    corpus = tiny_runs["root"] / "corpus" / "noise" / "train"
    assert (
        f"- `--train_noise={corpus}`: 2 files, 0.001 h; unknown source (check its licence yourself)" in card
    )


def test_overwrite_with_a_distilled_run_card_names_teacher_and_kd_mode(tiny_runs, shipped, tmp_path, capsys):
    out = tmp_path / "models"
    shutil.copytree(shipped, out / "tiny_student")
    offline = sorted(p.name for p in (out / "tiny_student").glob("*_offline_float32.tflite"))
    assert offline
    (out / "tiny_student" / "manifest.json").write_text(json.dumps({"default": offline[0]}))
    args = base_args(tiny_runs, out, system="student_atkl", run="student_atkl")
    assert run(*args, "--overwrite") == 0
    # the manifest's default file is not shipped again (no --tflite): the manifest is dropped
    assert not (out / "tiny_student" / "manifest.json").exists()
    assert "which is not shipped any more; dropped" in capsys.readouterr().err
    card = (out / "tiny_student" / "MODEL_CARD.md").read_text()
    assert "kd_mode=at_kl" in card and "teacher.keras" in card
    assert "Precision (the run's latest process): float32" in card and "| student_atkl (this model) |" in card
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

    (out / "tiny_student" / "manifest.json").write_text(json.dumps({"default": "tiny_student.keras"}))
    assert run(*base_args(tiny_runs, out), "--version=2") == 0
    folder = out / "tiny_student"
    # the manifest names a file that is shipped again: kept (with a reminder to re-check it)
    assert json.loads((folder / "manifest.json").read_text()) == {"default": "tiny_student.keras"}
    assert "re-check it for the new weights" in capsys.readouterr().err
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
        ({"run_dir": "EMPTY"}, "no model.keras (is the run finished?"),
        ({"scores": "/nonexistent/scores"}, "/nonexistent/scores: no such scores directory"),
        ({"system": "nope"}, "--system=nope: not in"),
        ({"name": None}, "--name is required"),
        (
            {"model": "/nonexistent/step_0000001.keras"},
            "--model=/nonexistent/step_0000001.keras: no such file",
        ),
        ({"model": "CONFIG"}, "config.json: not a .keras file"),
        ({"model": "CORRUPT"}, "corrupt.keras: "),
        ({"multi_hop": "0"}, "--multi_hop must be >= 1; received 0"),
        ({"multi_hop_quantizations": "int4"}, "--multi_hop_quantizations: unknown ['int4']"),
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
    (tmp_path / "corrupt.keras").write_bytes(b"PK\x03\x04 not a zip archive")
    special = {
        "EMPTY": str(tmp_path / "empty"),
        "CONFIG": str(tiny_runs["runs"]["student_nokd"] / "config.json"),
        "CORRUPT": str(tmp_path / "corrupt.keras"),
    }
    values.update({k: special.get(v, v) for k, v in change.items()})
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


def test_card_data_section_from_the_data_folders_manifest(tiny_runs, tmp_path):
    folder = make_data_folder(tmp_path)
    run_path = data_run(tiny_runs, folder, tmp_path / "run")
    out = tmp_path / "models"
    assert run(*base_args(tiny_runs, out), f"--run_dir={run_path}") == 0
    card = (out / "tiny_student" / "MODEL_CARD.md").read_text()
    manifest = folder / "manifest.csv"
    for line in [
        f"- `--train_speech={folder}/speech/train`: 3 files, 0.850 h (`{manifest}`):",
        "  - KidSpeech: 1 file, 1 speaker, 0.100 h; licence: README: free for commercial and non-commercial use",
        "  - ReadSpeech: 2 files, 2 speakers, 0.750 h; licence: CC BY 4.0 (attribution)",
        f"- `--train_noise={folder}/noise/train`: 5 files, 2.200 h (`{manifest}`):",
        "  - GameAudio: 1 file, 0.200 h; licence: CC BY-SA 3.0 (share-alike)",
        "  - GameMusic: 1 file, 1.000 h; licence: GPL-2+",
        "  - StreetNoise: 2 files, 1.000 h; licence: CC BY-NC 3.0 (NON-COMMERCIAL)",
        "  - 1 file not listed in a manifest, 0.000 h: unknown source (check its licence yourself)",
        f"- `--train_rir={folder}/rir`: 1 file, 0.000 h (`{manifest}`):",
        "  - SimulatedRIRs: 1 file, 0.000 h; licence: generated",
        "  - LabNoise: 1 file, 0.020 h; licence: CC BY-NC-SA 4.0",
    ]:
        assert line in card.splitlines(), line
    assert "- Training speech: KidSpeech (1 speaker), ReadSpeech (2 speakers); other languages" in card
    # training sources only: LabNoise (validation) is not in the warnings, KidSpeech's "non-commercial use" is
    # not a restriction
    assert (
        "> **Licence of the weights: NON-COMMERCIAL use only.** The training data included "
        "StreetNoise (licence: CC BY-NC 3.0 (NON-COMMERCIAL))." in card
    )
    assert (
        "> **Share-alike / GPL training data:** the training data included GameAudio (licence: CC BY-SA 3.0 "
        "(share-alike)); GameMusic (licence: GPL-2+). Whether these licences extend to weights trained on the "
        "data is unclear; this card lists them so that users can decide." in card
    )
    assert "LabNoise (licence" not in card and "KidSpeech (licence" not in card


def test_ship_a_snapshot_of_a_run_in_progress(tiny_runs, tmp_path):
    folder = make_data_folder(tmp_path)
    run_path = data_run(tiny_runs, folder, tmp_path / "run", exclude=["street_*"])
    snapshot = run_dir.snapshot_path(run_path, 1)
    os.makedirs(os.path.dirname(snapshot))
    shutil.copyfile(run_path / "model.keras", snapshot)
    os.remove(run_path / "model.keras")  # the run has not finished
    out = tmp_path / "models"
    assert run(*base_args(tiny_runs, out), f"--run_dir={run_path}", f"--model={snapshot}") == 0
    card = (out / "tiny_student" / "MODEL_CARD.md").read_text()
    assert (
        f"- Shipped weights: `{snapshot}`, the snapshot taken at step 1 (not the run's final model.keras)"
        in card
    )
    assert "- Steps done: 1 at the snapshot (the run's latest checkpoint when shipped: step 2, 2 of 2" in card
    assert "Steps done: 2" not in card and "Small training budget: 1 steps" in card
    assert "the shipped file holds the weights of step 1" in card and "model.keras holds" not in card
    # --exclude=street_* removes the non-commercial source: no warning; the share-alike one stays
    assert f"- `--train_noise={folder}/noise/train`: 3 files, 1.200 h (`{folder / 'manifest.csv'}`); " in card
    assert "2 files left out by --exclude=street_*:" in card
    assert "StreetNoise" not in card and "NON-COMMERCIAL use only" not in card
    assert "Share-alike / GPL training data:** the training data included GameAudio" in card
    shipped_model = keras.saving.load_model(out / "tiny_student" / "tiny_student.keras", compile=False)
    trained = keras.saving.load_model(snapshot, compile=False)
    for a, b in zip(shipped_model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b, a.dtype))


def test_steps_of_a_shipped_file_that_is_no_snapshot_are_unknown(tiny_runs):
    run = run_dir.read_run(str(tiny_runs["runs"]["student_nokd"]))
    weights = ship.shipped_weights(run, "/elsewhere/best.keras")
    assert weights == dict(path="/elsewhere/best.keras", kind="file", steps=None, audio_hours=None)
    lines = ship._budget_lines(run, weights)
    assert lines[0].endswith("(not the run's model.keras; the step it was taken at is unknown)")
    assert lines[1].startswith("- Steps done: unknown for the shipped file (the run's latest checkpoint")
    snapshot = ship.shipped_weights(run, run_dir.snapshot_path(run["run_dir"], 7200))
    assert snapshot["kind"] == "snapshot" and snapshot["steps"] == 7200
    assert math.isclose(snapshot["audio_hours"], 7200 * 2 * 0.5 / 3600)  # steps x batch x segment
    final = ship.shipped_weights(run, os.path.join(run["run_dir"], "model.keras"))
    assert final["kind"] == "final" and final["steps"] == run["steps"] == 2


def test_a_shipped_average_names_its_snapshots_and_counts_its_newest_step(tiny_runs, tmp_path):
    run = run_dir.read_run(str(tiny_runs["runs"]["student_nokd"]))
    path = run_dir.average_path(str(tmp_path), 7200, 2)
    os.makedirs(os.path.dirname(path))
    run_dir.write_average_record(path, [7200, 5200], run["run_dir"])
    weights = ship.shipped_weights(run, path)
    assert weights["kind"] == "average" and weights["averaged"] == [5200, 7200] and weights["steps"] == 7200
    assert math.isclose(weights["audio_hours"], 7200 * 2 * 0.5 / 3600)
    lines = ship._budget_lines(run, weights)
    assert lines[0] == (
        f"- Shipped weights: `{path}`, the mean of the weights of the snapshots taken at steps 5200, 7200 "
        "(weight averaging; not the run's final model.keras)"
    )
    assert lines[1].startswith(
        "- Steps done: 7200 at the newest averaged snapshot (the run's latest checkpoint"
    )
    assert ship._validation_line(run, weights).endswith(
        "; the shipped file holds the mean of the weights of steps 5200, 7200, not those of the best epoch"
    )
    with open(path + ".json", "w") as f:
        f.write("{")
    with pytest.raises(ship.UsageError, match=r"\.keras\.json: not an average record"):
        ship.shipped_weights(run, path)


def test_rir_flags_count_only_with_reverberation(tiny_runs, tmp_path):
    folder = make_data_folder(tmp_path)
    config = dict(
        train_speech=[str(folder / "speech" / "train")], train_rir=[str(folder / "rir")], reverb_prob=0
    )
    lines = ship.data_lines(config)["lines"]
    assert f"- `--train_rir`: {folder}/rir (not used: reverb_prob = 0)" in lines
    assert not any("SimulatedRIRs" in line for line in lines)


def test_training_time_sums_sessions(tiny_runs):
    info = run_dir.read_run(str(tiny_runs["runs"]["student_atkl"]))
    assert info["kind"] == "distill" and info["steps"] == 2 and info["epochs_done"] == 2
    assert len(info["sessions"]) == 1 and 0 < info["wall_active"] < 300
    assert math.isclose(info["wall_active"], info["wall_span"])
    assert [epoch for epoch, _ in info["val_epochs"]] == [1, 2] and info["val_tag"] == "si_snr_clean"
    assert info["best_val"] == max(((v, e) for e, v in info["val_epochs"]), key=lambda t: t[0])
    resumed = run_dir.read_run(str(tiny_runs["runs"]["student_nokd"]))  # trained, then resumed
    assert resumed["steps"] == 2 and len(resumed["sessions"]) == 2
    (start1, end1), (start2, end2) = resumed["sessions"]
    assert start1 <= end1 < start2 <= end2
    assert math.isclose(resumed["wall_active"], end1 - start1 + end2 - start2)
    assert math.isclose(resumed["wall_span"], end2 - start1) and resumed["wall_active"] < resumed["wall_span"]


def test_schedule_text_states_the_runs_schedule():
    cosine = {"lr_schedule": "cosine", "learning_rate": 0.001, "warmup_steps": 300, "min_lr_ratio": 0.05}
    assert ship._schedule_text(cosine) == (
        "learning rate 0.001 after 300 linear warm-up steps, cosine decay to 0.05 x that at the last of the "
        "run's planned steps"
    )
    plateau = {"lr_schedule": "plateau", "learning_rate": 0.002, "lr_factor": 0.5, "lr_patience": 2}
    assert ship._schedule_text(plateau) == "learning rate 0.002 (x0.5 after 2 epochs without improvement)"


def test_progress_lines_state_the_compute_and_restores_up_to_the_shipped_step():
    progress = [
        {"step": 100, "cpu_hours": 1.0, "wall_hours": 2.0},
        {"step": 100, "cpu_hours": 1.5, "wall_hours": 3.0, "restored_from": "w.npz", "discarded_steps": 40},
        {"step": 200, "cpu_hours": 2.0, "wall_hours": 4.0},
        {"step": 300, "cpu_hours": 3.0, "wall_hours": 6.0},
    ]
    lines = ship._progress_lines({"progress": progress}, {"steps": 200})
    assert lines[0] == (
        "- Compute spent up to step 200 (progress.jsonl, summed over every process of the run): "
        "2.00 CPU hours, 4.00 wall hours"
    )
    assert (
        "Continued at step 100 from the weights `w.npz`" in lines[1] and "40 later logged steps" in lines[1]
    )
    assert ship._progress_lines({"progress": []}, {"steps": 200}) == []
    assert ship._progress_lines({"progress": progress}, {"steps": None})[0].startswith(
        "- Compute spent up to step 300"
    )
