"""Tests of benchmarks/training_speed.py: a tiny timed run and its page (slow: it trains)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness, training_speed  # noqa: E402


@pytest.mark.slow
def test_tiny_run_writes_a_page_naming_the_timed_code(tmp_path):
    page = tmp_path / "speed.md"
    fastest = tmp_path / "fastest"
    argv = ["training_speed.py", "--presets=tiny", "--settings=float32,mixed_bfloat16", "--batch=1"]
    argv += ["--seconds=0.25", "--steps=1", "--warmup=1", f"--output={page}", f"--fastest_to={fastest}"]
    assert training_speed.main(argv) == 0
    text = page.read_text()
    assert "| tiny | float32 |" in text and "| tiny | mixed_bfloat16 |" in text
    assert f"code {harness.code_version()}" in text
    cpu = {
        row.split(" | ")[1]: float(row.split(" | ")[4])
        for row in text.splitlines()
        if row.startswith("| tiny")
    }
    assert fastest.read_text() == min(cpu, key=cpu.get) + "\n"


def test_source_without_the_package_is_one_line(tmp_path, capsys):
    assert training_speed.main(["training_speed.py", f"--source={tmp_path}", "--output="]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no keras_dccrn package there" in err and str(tmp_path) in err


def test_unknown_setting_is_one_line(capsys):
    assert training_speed.main(["training_speed.py", "--settings=fp8", "--output="]) == 2
    assert "unknown ['fp8']" in capsys.readouterr().err


def test_code_version(tmp_path):
    assert harness.code_version().endswith(f"({harness.ROOT})")
    assert harness.code_version(str(tmp_path)) == f"not a git checkout ({tmp_path})"
