"""Tests of benchmarks/training_profile.py: job parsing and a tiny profiled run (slow: it trains)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import training_profile  # noqa: E402


def test_parse_job():
    assert training_profile.parse_job("distil_dccrn:si_snr_spectral:4") == (
        "distil_dccrn",
        "si_snr_spectral",
        4,
    )
    for bad in ("distil_dccrn:si_snr:0", "distil_dccrn:l2:4", "distil_dccrn:4"):
        with pytest.raises(ValueError, match=bad):
            training_profile.parse_job(bad)


def test_a_bad_job_is_one_line(capsys):
    assert training_profile.main(["training_profile.py", "--jobs=tiny:fp8:1", "--output="]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'tiny:fp8:1' is not preset:loss:batch" in err


@pytest.mark.slow
def test_tiny_run_writes_the_shares(tmp_path):
    page = tmp_path / "profile.md"
    argv = ["training_profile.py", "--jobs=tiny:si_snr_spectral:1", "--seconds=0.25", "--threads=0"]
    argv += ["--warmup=1", "--timed=1", "--profiled=1", "--top=100", f"--output={page}"]
    assert training_profile.main(argv) == 0
    text = page.read_text()
    assert "## tiny, loss si_snr_spectral, batch 1 x 0.25 s" in text
    assert "| op type | ms / step | share | runs / step |" in text
    assert "| backward enc_conv_1 |" in text and "| forward loss |" in text and "more)" in text
