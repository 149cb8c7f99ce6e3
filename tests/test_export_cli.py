"""``dccrn-export`` end to end: a trained-model file -> TF Serving layout + TFLite -> ``dccrn-enhance``."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import build_model
from trainers import enhance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(module, *args, env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3") if env is None else env
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_export_cli_writes_serving_layout_and_tflite_that_enhance_uses(tmp_path):
    model = build_model("tiny", time_crop="causal")
    model.save(tmp_path / "student.keras")
    out = tmp_path / "saved_models"
    result = run(
        "trainers.export",
        f"--model={tmp_path / 'student.keras'}",
        "--name=student",
        f"--output_dir={out}",
        "--tflite",
        "--quantizations=float32",
        "--chunk_samples=16000",
        "--hops_per_call=4",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "student" / "1" / "saved_model.pb").is_file()
    assert (out / "student" / "1" / "variables").is_dir()
    # the streaming file runs four hops per invoke (its name says so)
    for mode in ("offline", "streaming_k4"):
        assert (out / "student" / f"student_{mode}_float32.tflite").is_file()

    wav = tmp_path / "noisy.wav"
    t = np.arange(24000) / 16000
    sf.write(
        wav,
        0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size),
        16000,
    )
    # the .tflite file by the dccrn-enhance command; the folder (its SavedModel) in this process
    for spec in (out / "student" / "student_streaming_k4_float32.tflite", out / "student"):
        enhanced = tmp_path / f"enhanced_{spec.name}.wav"
        args = [f"--model={spec}", f"--input={wav}", f"--output={enhanced}"]
        if spec.suffix == ".tflite":
            result = run("trainers.enhance", *args)
            assert result.returncode == 0, result.stderr[-2000:]
        else:
            assert enhance.cli(["dccrn-enhance", *args]) == 0
        audio, rate = sf.read(enhanced)
        assert rate == 16000 and len(audio) == 24000 and np.all(np.isfinite(audio))


def test_export_cli_bad_model_is_a_one_line_error(tmp_path):
    (tmp_path / "broken.keras").write_text("not a model")
    result = run("trainers.export", f"--model={tmp_path / 'broken.keras'}", f"--output_dir={tmp_path}")
    assert result.returncode == 1
    assert "broken.keras: not a Keras model" in result.stderr
    assert "Traceback" not in result.stderr and "not found" not in result.stderr.lower()
    assert result.stderr.count("\n") == 1  # TensorFlow's start-up chatter is not shown either
    assert not any((tmp_path).glob("broken/*"))


@pytest.mark.parametrize(
    "flag, limit",
    [
        ("--chunk_samples=1000000000", "between 1600 and 1920000 samples"),
        ("--calibration_files=0", "between 1 and 1000 files"),
        ("--version=0", "between 1 and 2147483647"),
        ("--hops_per_call=65", "between 1 and 64 hops"),
        ("--mixed_encoder_ops=9", "between 0 and 8 ops"),
    ],
)
def test_export_cli_bounds(flag, limit, capsys):
    from trainers import cli, export

    assert export.main(cli.parse_flags(["dccrn-export", "--preset=tiny", flag], export.FLAGS, "x", "")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and limit in err


@pytest.mark.slow
def test_mixed_int8_files_are_streaming_only(tmp_path, caplog):
    from trainers.export import export_tflite_files

    model = build_model("tiny", time_crop="causal")
    written = export_tflite_files(
        model, str(tmp_path), "tiny", ["offline", "streaming"], ["mixed_int8"], 16000, mixed_encoder_ops=0
    )
    assert written == [("streaming", "mixed_int8", str(tmp_path / "tiny_streaming_mixed_int8.tflite"))]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_streaming_mixed_int8.tflite"]
    assert "mixed_int8 is streaming-only; skipping offline mixed_int8" in caplog.text


def test_frame_rows_reaches_the_streaming_files_only(tmp_path, monkeypatch):
    import keras_dccrn.export as export
    from trainers.export import export_tflite_files

    calls = []
    monkeypatch.setattr(export, "export_tflite", lambda model, path, **kwargs: calls.append(kwargs))
    model = build_model("tiny", time_crop="causal")
    export_tflite_files(
        model, str(tmp_path), "tiny", ["offline", "streaming"], ["dynamic_int8"], 16000, hops_per_call=4,
        frame_rows=False,
    )  # fmt: skip
    assert [(c["mode"], c["hops_per_call"], c["frame_rows"]) for c in calls] == [
        ("offline", 1, None),
        ("streaming", 4, False),
    ]


def test_export_cli_tflite_without_the_extra_names_it(tmp_path, monkeypatch, capsys):
    from trainers import cli, export

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    argv = ["dccrn-export", "--preset=tiny", "--tflite", f"--output_dir={tmp_path}"]
    assert export.main(cli.parse_flags(argv, export.FLAGS, "x", "")) == 2
    err = capsys.readouterr().err
    assert "ai-edge-litert" in err and "keras-dccrn[tflite]" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_apps_print_no_tensorflow_chatter(tmp_path):
    # Audit: about 7 lines of TensorFlow C++ logging (port.cc, cudart_stub.cc, a CUDA error) came before the
    # real message; TF_CPP_MIN_LOG_LEVEL alone does not hide the lines written while tensorflow is imported.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = run("trainers.export", f"--model={tmp_path / 'none.keras'}", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"dccrn-export: {tmp_path / 'none.keras'}: no such model file"]


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGKILL"])
def test_signal_during_export_leaves_no_partial_folder(tmp_path, signame):
    import signal
    import time

    model = build_model("tiny", time_crop="causal")
    model.save(tmp_path / "m.keras")
    out = tmp_path / "saved_models"
    args = [sys.executable, "-m", "trainers.export", f"--model={tmp_path / 'm.keras'}", "--name=m",
            f"--output_dir={out}"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    folder = out / "m"
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.is_dir() and any(n.startswith(".tmp-") for n in os.listdir(folder)):
            break
        time.sleep(0.05)
    sig = getattr(signal, signame)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    if proc.returncode == 0:
        pytest.skip("the export finished before the signal")
    leftovers = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    if signame == "SIGKILL":
        assert leftovers and all(n.startswith(f".tmp-{proc.pid}-") for n in leftovers)
        assert (
            run(
                "trainers.export", f"--model={tmp_path / 'm.keras'}", "--name=m", f"--output_dir={out}"
            ).returncode
            == 0
        )
        assert os.listdir(folder) == ["1"]
        return
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == f"dccrn-export: stopped by {signame}; no partial output left"
    assert "Traceback" not in err and leftovers == [] and not (folder / "1").exists()


def test_export_cli_streaming_a_uformer_is_a_one_line_error(uformer_tiny, tmp_path, capsys):
    from trainers import cli, export

    uformer_tiny.save(tmp_path / "teacher.keras")
    argv = ["dccrn-export", f"--model={tmp_path / 'teacher.keras'}", f"--output_dir={tmp_path / 'out'}",
            "--tflite", "--modes=streaming", "--quantizations=float32"]  # fmt: skip
    assert export.main(cli.parse_flags(argv, export.FLAGS, "x", "")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "AttributeError" not in err
    assert err.startswith("dccrn-export: teacher: cannot stream: a Uformer has no streaming step")
    assert not (tmp_path / "out").exists()  # refused before the SavedModel is written
