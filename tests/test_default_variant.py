"""Tests of benchmarks/default_variant.py: cost, choice, manifest and the one-line errors."""

import json
import math
import os
import sys

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import default_variant as dv  # noqa: E402

SR = 16000


def _row(name, si_snr_cost, pesq_cost, cpu_rtf):
    return dict(name=name, si_snr_cost=si_snr_cost, pesq_cost=pesq_cost, cpu_rtf=cpu_rtf)


def test_choice_is_the_fastest_negligible_variant():
    rows = [
        _row("slow.tflite", 0.0, 0.0, 0.2),
        _row("fast_but_costly.tflite", 0.3, 0.0, 0.05),
        _row("fast_pesq_costly.tflite", 0.01, 0.021, 0.04),
        _row("fast.tflite", 0.05, 0.02, 0.06),  # the bounds are inclusive
        _row("better_than_reference.tflite", -0.2, -0.01, 0.1),
    ]
    assert dv.choose(rows, 0.05, 0.02)["name"] == "fast.tflite"
    assert [r["negligible"] for r in rows] == [True, False, False, True, True]
    assert dv.choose(rows[1:3], 0.05, 0.02) is None


def test_without_pesq_the_si_snr_cost_decides():
    rows = [_row("a.tflite", 0.01, math.nan, 0.1), _row("b.tflite", math.nan, math.nan, 0.01)]
    assert dv.choose(rows, 0.05, 0.02)["name"] == "a.tflite"


def test_paired_cost_uses_the_files_both_scored():
    mean, half = dv.paired_cost([10.0, 12.0, math.nan, 11.0], [9.5, 11.5, 3.0, 10.5])
    assert mean == pytest.approx(0.5) and half == pytest.approx(0.0, abs=1e-12)


def test_manifest_written_and_removed(tmp_path):
    path = dv.write_manifest(str(tmp_path), "x_streaming_dynamic_int8.tflite")
    assert json.loads(open(path).read()) == {"default": "x_streaming_dynamic_int8.tflite"}
    assert dv.write_manifest(str(tmp_path), None) is None and not os.path.exists(path)


@pytest.fixture(scope="module")
def shipped_folder(tiny_causal_files, tmp_path_factory):
    """A tiny causal model folder: its .keras file (the reference) and a streaming float32 .tflite."""
    import shutil

    folder = tmp_path_factory.mktemp("shipped") / "tiny_causal"
    shutil.copytree(tiny_causal_files, folder)
    return str(folder)


@pytest.fixture(scope="module")
def devset(tmp_path_factory):
    from keras_dccrn.signals import speech_like_signals

    root = tmp_path_factory.mktemp("devset")
    (root / "noisy").mkdir()
    (root / "clean").mkdir()
    rng = np.random.default_rng(3)
    for i, clean in enumerate(speech_like_signals(count=2, seconds=1.0, seed=7)):
        sf.write(root / "clean" / f"{i:04d}.wav", clean, SR, subtype="FLOAT")
        noisy = clean + 0.05 * rng.standard_normal(clean.shape[0]).astype(np.float32)
        sf.write(root / "noisy" / f"{i:04d}.wav", noisy, SR, subtype="FLOAT")
    return str(root)


def test_end_to_end_streaming_float32_is_negligible_and_becomes_the_default(tmp_path, shipped_folder, devset):
    page = tmp_path / "page.md"
    argv = ["default_variant.py", f"--folder={shipped_folder}", f"--devset={devset}", "--nopesq"]
    assert dv.main(argv + ["--write_manifest", f"--output={page}"]) == 0
    text = page.read_text()
    assert "| tiny_causal.keras (reference) |" in text
    assert "| tiny_causal_streaming_float32.tflite |" in text and "| yes |" in text
    assert "**Default: `tiny_causal_streaming_float32.tflite`**" in text
    manifest = json.loads(open(os.path.join(shipped_folder, "manifest.json")).read())
    assert manifest == {"default": "tiny_causal_streaming_float32.tflite"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--folder=/nonexistent/folder"], "--folder=/nonexistent/folder: no such folder"),
        (["--folder={tmp}"], "--devset is required"),
        (["--folder={tmp}", "--devset={tmp}"], "noisy: no such folder"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    argv = ["default_variant.py", "--output="] + [e.format(tmp=tmp_path) for e in extra]
    assert dv.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
