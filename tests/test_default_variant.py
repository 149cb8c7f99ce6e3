"""Tests of benchmarks/default_variant.py: cost, choice, manifest and the one-line errors."""

import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import default_variant as dv  # noqa: E402


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


def test_end_to_end_streaming_float32_is_negligible_and_becomes_the_default(
    tmp_path, shipped_folder, small_devset
):
    import shutil

    page = tmp_path / "page.md"
    # a second file that --variants leaves out: it is named on the page and not compared
    shutil.copy(
        os.path.join(shipped_folder, "tiny_causal_streaming_float32.tflite"),
        os.path.join(shipped_folder, "tiny_causal_other.tflite"),
    )
    argv = ["default_variant.py", f"--folder={shipped_folder}", f"--devset={small_devset}", "--nopesq"]
    argv += ["--variants=tiny_causal_streaming_float32.tflite"]
    assert dv.main(argv + ["--write_manifest", f"--output={page}"]) == 0
    text = page.read_text()
    assert "| tiny_causal.keras (reference) |" in text
    assert "| tiny_causal_streaming_float32.tflite |" in text and "| yes |" in text
    assert "| tiny_causal_other.tflite |" not in text
    assert "(tiny_causal_other.tflite) were not compared" in text
    assert "**Default: `tiny_causal_streaming_float32.tflite`**" in text
    manifest = json.loads(open(os.path.join(shipped_folder, "manifest.json")).read())
    assert manifest == {"default": "tiny_causal_streaming_float32.tflite"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--folder=/nonexistent/folder"], "--folder=/nonexistent/folder: no such folder"),
        (["--folder={tmp}"], "--devset is required"),
        (["--folder={tmp}", "--devset={tmp}"], "noisy: no such folder"),
        (["--folder={tmp}", "--devset={tmp}", "--variants=a.tflite"], "--variants: a.tflite: not a .tflite"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    argv = ["default_variant.py", "--output="] + [e.format(tmp=tmp_path) for e in extra]
    assert dv.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
