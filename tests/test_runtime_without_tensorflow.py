"""A ``.tflite`` model enhances files in a process where TensorFlow and Keras cannot be imported."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKED = ("tensorflow", "keras", "tf_keras")

# Installed by sitecustomize in every subprocess: a meta-path finder refusing the blocked packages, and a
# report of the imported module names written at exit.
SITECUSTOMIZE = f"""
import atexit, importlib.abc, os, sys

BLOCKED = {BLOCKED!r}


class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError(f"{{fullname}} is blocked in this test")
        return None


sys.meta_path.insert(0, BlockTensorFlow())


@atexit.register
def _report():
    with open(os.environ["IMPORT_REPORT"], "a") as f:
        f.write(" ".join(sorted(sys.modules)) + "\\n")
"""

SCRIPT = """
import sys

import numpy as np
import soundfile as sf

import keras_dccrn

for name in ("tensorflow", "keras", "tf_keras"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} imported despite the blocker")
audio, rate = sf.read(sys.argv[1], dtype="float32", always_2d=True)
out = keras_dccrn.enhance(audio.T, rate, model=sys.argv[2]).T  # [n, C] -> [C, n] -> [n, C]
sf.write(sys.argv[3], out, rate, subtype="FLOAT")
"""


@pytest.fixture(scope="module")
def files(tiny_causal_files, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("no_tf")
    tflite = str(tmp / "tiny_streaming.tflite")
    shutil.copyfile(tiny_causal_files / "tiny_causal_streaming_float32.tflite", tflite)
    rng = np.random.default_rng(0)
    rate = 22050  # resampled to 16 kHz and back with SciPy
    t = np.arange(int(1.5 * rate)) / rate
    noisy = 0.3 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((t.size, 2))
    wav = str(tmp / "noisy.wav")
    sf.write(wav, noisy.astype(np.float32), rate, subtype="FLOAT")
    expected = runtime.enhance(sf.read(wav, dtype="float32")[0].T, rate, model=tflite).T
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"tmp": tmp, "tflite": tflite, "wav": wav, "rate": rate, "expected": expected, "site": str(site)}


def _run(files, args, name, extra_env=None):
    report = files["tmp"] / f"{name}.modules"
    env = dict(os.environ, IMPORT_REPORT=str(report), **(extra_env or {}))
    env["PYTHONPATH"] = os.pathsep.join([files["site"], ROOT, env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    imported = report.read_text().split()
    assert "keras_dccrn" in imported and "ai_edge_litert" in imported  # the report is real
    assert "keras_dccrn.runtime.hops" in imported  # the one hop loop runs without TensorFlow
    assert not [m for m in imported if m.split(".")[0] in BLOCKED]
    return run


def _check_output(files, path):
    out, rate = sf.read(path, dtype="float32")
    assert rate == files["rate"] and out.shape == files["expected"].shape
    np.testing.assert_allclose(out, files["expected"], atol=1e-5)
    assert np.sqrt(np.mean(out**2)) > 1e-3


def test_enhance_api(files):
    out = str(files["tmp"] / "api.wav")
    _run(files, ["-c", SCRIPT, files["wav"], files["tflite"], out], "api")
    _check_output(files, out)


def test_enhance_cli(files):
    out = str(files["tmp"] / "cli.wav")
    run = _run(
        files,
        [
            "-m",
            "trainers.enhance",
            f"--model={files['tflite']}",
            f"--input={files['wav']}",
            f"--output={out}",
        ],
        "cli",
    )
    assert "->" in run.stdout
    _check_output(files, out)


def test_shipped_default_can_be_a_tflite_file(files):
    # The manifest makes the .tflite file the folder's model; the decoy SavedModel would fail to load.
    folder = files["tmp"] / "models" / runtime.DEFAULT_MODEL
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    (folder / "model.tflite").write_bytes(open(files["tflite"], "rb").read())
    (folder / runtime.registry.MANIFEST).write_text(json.dumps({"default": "model.tflite"}))
    out = str(files["tmp"] / "default.wav")
    env = {runtime.MODELS_ENV: str(files["tmp"] / "models")}
    _run(files, ["-m", "trainers.enhance", f"--input={files['wav']}", f"--output={out}"], "default", env)
    _check_output(files, out)


def test_the_readme_main_command_runs_without_tensorflow(files):
    # `dccrn-enhance --input=examples/noisy.wav --output=enhanced.wav`: the shipped default model's folder
    # serves its manifest's .tflite file (benchmarks/default_variant.py chose it), so no TensorFlow import.
    out = str(files["tmp"] / "readme.wav")
    example = os.path.join(ROOT, "examples", "noisy.wav")
    run = _run(files, ["-m", "trainers.enhance", f"--input={example}", f"--output={out}"], "readme")
    assert "->" in run.stdout
    enhanced, rate = sf.read(out, dtype="float32")
    assert rate == sf.info(example).samplerate and enhanced.shape[0] == sf.info(example).frames
