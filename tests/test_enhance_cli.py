import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import build_model
from trainers import enhance as enhance_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    # Untrained tiny model: only for exercising the CLI plumbing.
    path = str(tmp_path_factory.mktemp("model") / "m.keras")
    build_model("tiny", time_crop="causal").save(path)
    return path


def run(*args):
    return enhance_cli.cli(["dccrn-enhance", *args])


def write_noise(path, rng, seconds=1.0, rate=16000, channels=1, subtype="PCM_16"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
    data = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    sf.write(path, data, rate, subtype=subtype)
    return data


def test_enhance_one_file(model_path, tmp_path, rng, capsys):
    src = str(tmp_path / "in.wav")
    write_noise(src, rng)
    dst = str(tmp_path / "out" / "enhanced.wav")
    assert run("--model", model_path, "--input", src, "--output", dst) == 0
    info = sf.info(dst)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
    assert f"{src} -> {dst}" in capsys.readouterr().out
    # --output an existing directory: the input's name is kept.
    assert run("--model", model_path, "--input", src, "--output", str(tmp_path / "out")) == 0
    assert os.path.exists(tmp_path / "out" / "in.wav")


def test_stereo_44k_keeps_rate_channels_subtype(model_path, tmp_path, rng):
    src = str(tmp_path / "stereo.wav")
    data = write_noise(src, rng, seconds=2.0, rate=44100, channels=2, subtype="PCM_24")
    dst = str(tmp_path / "stereo_out.wav")
    assert run("--model", model_path, "--input", src, "--output", dst, "--chunk_seconds", "0.5") == 0
    info = sf.info(dst)
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, data.shape[0])
    assert (info.format, info.subtype) == ("WAV", "PCM_24")
    out = sf.read(dst)[0]
    assert np.all(np.std(out, axis=0) > 0)  # both channels carry signal
    assert not np.allclose(out[:, 0], out[:, 1])  # ...and were enhanced separately


def test_directory_with_a_bad_file(model_path, tmp_path, rng, capsys):
    src = tmp_path / "in"
    write_noise(str(src / "a.wav"), rng)
    write_noise(str(src / "sub" / "b.flac"), rng, rate=8000)
    (src / "bad.wav").write_text("this is not audio")
    (src / "README.txt").write_text("ignored: not an audio extension")
    out = tmp_path / "out"
    assert run("--model", model_path, "--input", str(src), "--output", str(out)) == 1
    assert sorted(os.listdir(out)) == ["a.wav", "sub"]
    assert os.listdir(out / "sub") == ["b.flac"] and sf.info(str(out / "sub" / "b.flac")).samplerate == 8000
    err = capsys.readouterr().err
    assert "enhanced 2 of 3 file(s); 1 failed" in err
    assert f"failed: {src / 'bad.wav'}: not a readable audio file" in err
    assert "Traceback" not in err


def test_glob_input_is_mirrored(model_path, tmp_path, rng):
    write_noise(str(tmp_path / "data" / "x" / "a.wav"), rng)
    write_noise(str(tmp_path / "data" / "y" / "b.wav"), rng)
    write_noise(str(tmp_path / "data" / "y" / "c.flac"), rng)
    out = tmp_path / "out"
    pattern = str(tmp_path / "data" / "**" / "*.wav")
    assert run("--model", model_path, "--input", pattern, "--output", str(out)) == 0
    assert sorted(os.listdir(out)) == ["x", "y"] and os.listdir(out / "y") == ["b.wav"]
    assert run("--model", model_path, "--input", str(tmp_path / "none*.wav"), "--output", str(out)) == 2


def test_bad_single_files_are_one_line_errors(model_path, tmp_path, rng, capsys):
    nan = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    nan[50] = np.inf
    sf.write(str(tmp_path / "inf.wav"), nan, 16000, subtype="FLOAT")
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0), 16000)
    (tmp_path / "text.flac").write_text("not audio at all")
    cases = {
        "missing.wav": "missing.wav: no such file",
        "inf.wav": "inf.wav: contains NaN or infinite samples",
        "empty.wav": "empty.wav: contains no samples",
        "text.flac": "text.flac: not a readable audio file",
    }
    for name, message in cases.items():
        dst = str(tmp_path / "out" / name)
        assert run("--model", model_path, "--input", str(tmp_path / name), "--output", dst) == 1
        err = capsys.readouterr().err
        error_lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and message in error_lines[0], err
        assert "Traceback" not in err
        assert not os.path.exists(dst)


def test_input_is_never_overwritten_without_flag(model_path, tmp_path, rng, capsys):
    src = str(tmp_path / "a.wav")
    write_noise(src, rng)
    before = open(src, "rb").read()
    assert run("--model", model_path, "--input", src, "--output", src) == 1
    assert "output is the input file; pass --overwrite" in capsys.readouterr().err
    assert open(src, "rb").read() == before
    # In-place over a directory is refused per file as well.
    assert run("--model", model_path, "--input", str(tmp_path), "--output", str(tmp_path)) == 1
    assert open(src, "rb").read() == before
    assert run("--model", model_path, "--input", src, "--output", src, "--overwrite") == 0
    assert open(src, "rb").read() != before and sf.info(src).frames == 16000


def test_existing_output_needs_overwrite(model_path, tmp_path, rng, capsys):
    src, dst = str(tmp_path / "a.wav"), str(tmp_path / "b.wav")
    write_noise(src, rng)
    write_noise(dst, rng)
    before = open(dst, "rb").read()
    assert run("--model", model_path, "--input", src, "--output", dst) == 1
    assert "b.wav: output exists; pass --overwrite" in capsys.readouterr().err
    assert open(dst, "rb").read() == before
    assert run("--model", model_path, "--input", src, "--output", dst, "--overwrite") == 0


def test_usage_errors(model_path, tmp_path, capsys):
    # No --model: the shipped default; a missing input is a per-file failure (exit 1) naming it.
    assert run("--input", str(tmp_path / "x.wav"), "--output", str(tmp_path / "y.wav")) == 1
    assert "x.wav: no such file" in capsys.readouterr().err
    assert not (tmp_path / "y.wav").exists()
    assert run("--model", str(tmp_path / "nope.keras"), "--input", "x.wav", "--output", "y.wav") == 2
    assert "nope.keras: no such model" in capsys.readouterr().err
    assert run("--model", model_path, "--output", "y.wav") == 2
    assert "--input is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run("--model", model_path, "--no_such_flag=1")
    assert exit_info.value.code == 2


def test_console_entry_point_with_the_default_model(tmp_path):
    # The README's main job in a fresh process: no --model, the shipped student, a real WAV out.
    from keras_dccrn.inference import DEFAULT_MODEL, shipped_models

    if DEFAULT_MODEL not in shipped_models():
        pytest.fail(f"the default model {DEFAULT_MODEL} is not shipped in saved_models/")
    src, dst = tmp_path / "noisy.wav", tmp_path / "enhanced.wav"
    sf.write(str(src), 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32), 8000)
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.enhance", "--input", str(src), "--output", str(dst)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out, rate = sf.read(str(dst))
    assert rate == 8000 and out.shape == (8000,) and np.all(np.isfinite(out))
