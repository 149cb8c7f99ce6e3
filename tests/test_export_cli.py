"""``dccrn-export`` end to end: a trained-model file -> TF Serving layout + TFLite -> ``dccrn-enhance``."""

import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from keras_dccrn import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(module, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


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
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "student" / "1" / "saved_model.pb").is_file()
    assert (out / "student" / "1" / "variables").is_dir()
    for mode in ("offline", "streaming"):
        assert (out / "student" / f"student_{mode}_float32.tflite").is_file()

    wav = tmp_path / "noisy.wav"
    t = np.arange(24000) / 16000
    sf.write(
        wav,
        0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size),
        16000,
    )
    for spec in (out / "student" / "student_streaming_float32.tflite", out / "student"):
        enhanced = tmp_path / f"enhanced_{spec.name}.wav"
        result = run("trainers.enhance", f"--model={spec}", f"--input={wav}", f"--output={enhanced}")
        assert result.returncode == 0, result.stderr[-2000:]
        audio, rate = sf.read(enhanced)
        assert rate == 16000 and len(audio) == 24000 and np.all(np.isfinite(audio))


def test_export_cli_bad_model_is_a_one_line_error(tmp_path):
    (tmp_path / "broken.keras").write_text("not a model")
    result = run("trainers.export", f"--model={tmp_path / 'broken.keras'}", f"--output_dir={tmp_path}")
    assert result.returncode == 1
    assert "broken.keras: cannot load Keras model" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((tmp_path).glob("broken/*"))
