"""Tests of benchmarks/level_robustness.py: scaling, the page and the one-line errors."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import level_robustness as lr  # noqa: E402


def test_pairs_are_scaled_to_the_level_and_clipping_ones_left_out(rng):
    quiet = (0.01 * rng.standard_normal(1000)).astype(np.float32)
    spiky = quiet.copy()
    spiky[0] = 0.5  # peak 50x the RMS: clips at -20 dBFS
    pairs = [("a", quiet, 0.5 * quiet), ("b", spiky, 0.5 * spiky)]
    scaled = lr.scaled_pairs(pairs, -20.0)
    assert [name for name, _, _ in scaled] == ["a"]
    _, noisy, clean = scaled[0]
    np.testing.assert_allclose(10 * np.log10(np.mean(noisy.astype(np.float64) ** 2)), -20.0, atol=1e-4)
    np.testing.assert_allclose(clean, 0.5 * noisy, rtol=1e-6)  # the reference at the same scale
    assert len(lr.scaled_pairs(pairs, -50.0)) == 2


def test_page_compares_as_is_and_normalised(tmp_path, small_devset, tiny_causal_files):
    page = tmp_path / "page.md"
    model = str(tiny_causal_files / "tiny_causal_streaming_float32.tflite")
    argv = ["level_robustness.py", f"--devset={small_devset}", f"--model={model}", "--nopesq"]
    assert lr.main(argv + ["--levels=-60,-25", f"--output={page}"]) == 0
    rows = [line.split("|") for line in page.read_text().splitlines() if line.startswith("| -")]
    assert [r[1].strip() for r in rows] == ["-60", "-25"]
    quiet, inside = ([float(c) for c in r[3:6]] for r in rows)
    assert inside[1] == inside[2]  # inside the range normalisation changes nothing
    assert quiet[1] != quiet[2]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--devset is required"),
        (["--devset={tmp}"], "noisy: no such folder"),
        (["--devset={tmp}", "--levels=-20,x"], "--levels=-20,x: not numbers"),
        (["--devset={tmp}", "--levels=3"], "--levels=3: dBFS levels below 0 expected"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    argv = ["level_robustness.py", "--output="] + [e.format(tmp=tmp_path) for e in extra]
    assert lr.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
