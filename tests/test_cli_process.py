"""Tests of benchmarks/cli_process.py: the input files and a tiny page."""

import os

import numpy as np
import pytest
import soundfile as sf

from benchmarks import cli_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_input_files_have_the_length_asked(tmp_path):
    path = str(tmp_path / "x.wav")
    cli_process.write_input(path, 2.5, [], [])
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 40000, "PCM_16")
    speech, noise = tmp_path / "s.wav", tmp_path / "n.wav"
    sf.write(speech, 0.1 * np.sin(np.arange(16000) / 5.0), 16000)
    sf.write(noise, 0.01 * np.random.default_rng(0).standard_normal(7000), 8000)  # looped, resampled
    cli_process.write_input(path, 3.2, [str(speech)], [str(noise)])
    assert sf.info(path).frames == 51200


@pytest.fixture(scope="module")
def model_dir(tiny_causal_files, tmp_path_factory):
    import shutil

    folder = tmp_path_factory.mktemp("models")
    shutil.copyfile(tiny_causal_files / "tiny_causal_streaming_float32.tflite", folder / "tiny.tflite")
    return folder


def test_tiny_page(model_dir, tmp_path, capsys):
    page = tmp_path / "page.md"
    argv = ["cli_process.py", f"--model_dir={model_dir}", "--seconds=1,2", "--variants=tflite:tiny.tflite"]
    argv += ["--peers=", f"--output={page}", "--speech_dir=/nonexistent", "--repeats=2"]
    assert cli_process.main(argv) == 0
    text = page.read_text()
    assert "python benchmarks/cli_process.py " in text and "synthetic noisy speech" in text
    row = next(line for line in text.splitlines() if line.startswith("| `tflite:tiny.tflite`"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    wall, cpu, rss, rtf = (float(c) for c in cells[:4])
    assert wall > 0 and cpu > 0 and 20 < rss < 300 and rtf == pytest.approx(wall / 1, abs=0.006)
    assert len(cells) == 8


def test_bad_flags_are_one_line(capsys):
    assert cli_process.main(["cli_process.py", "--seconds=0"]) == 2
    assert cli_process.main(["cli_process.py", "--peers=nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--seconds" in err[0] and "unknown ['nope']" in err[1]


def test_default_row_runs_the_readme_command(tmp_path):
    page = tmp_path / "page.md"
    argv = ["cli_process.py", "--seconds=1", "--variants=default", "--peers=", f"--output={page}"]
    assert cli_process.main(argv + ["--speech_dir=/nonexistent"]) == 0
    text = page.read_text()
    assert "`default` row (no `--model`): `saved_models/distil_dccrn" in text
    row = next(line for line in text.splitlines() if line.startswith("| `default`"))
    assert float(row.strip("|").split("|")[1]) > 0  # wall seconds of a successful run
