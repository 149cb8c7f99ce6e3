"""Tests of benchmarks/harness.py: whole-process measurements (peak RSS of one process, output checks),
paired quality costs, scoring of enhanced pairs."""

import math
import sys

import numpy as np
import pytest
import soundfile as sf

from benchmarks import harness


def test_peak_rss_is_the_measured_process_alone(tmp_path):
    ballast = bytearray(300 * 2**20)  # this process is larger than the measured ones
    ballast[::4096] = b"x" * len(ballast[::4096])
    log = str(tmp_path / "err.txt")
    env = harness.child_env()
    small = harness.measure([sys.executable, "-c", "pass"], env, log)
    big = harness.measure(
        [sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"], env, log
    )
    assert small[0] == big[0] == 0
    assert small[3] < 60, small  # a bare interpreter, not this process's 300+ MB
    assert 190 < big[3] - small[3] < 260, (small, big)
    assert big[1] >= big[2] * 0.5 and big[2] > 0  # wall and CPU seconds
    failed = harness.measure([sys.executable, "-c", "import sys; sys.exit(3)"], env, log)
    assert failed[0] == 3


def test_run_case_checks_the_output_file(tmp_path):
    src, dst, log = (str(tmp_path / n) for n in ("in.wav", "out.wav", "err.txt"))
    sf.write(src, np.zeros(1600, np.float32), 16000)
    env = harness.child_env()
    copy = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
    ok = harness.run_case([sys.executable, "-c", copy, src, dst], env, src, dst, 2, log)
    assert set(ok) == {"wall_s", "cpu_s", "rss_mb"} and ok["wall_s"] > 0
    short = "import soundfile as sf, sys; sf.write(sys.argv[2], sf.read(sys.argv[1])[0][:-1], 16000)"
    assert (
        "output has 1599 frames, input 1600"
        in harness.run_case([sys.executable, "-c", short, src, dst], env, src, dst, 1, log)["error"]
    )
    none = harness.run_case([sys.executable, "-c", "pass"], env, src, dst, 1, log)
    assert none["error"].startswith("no readable output")
    fail = "import sys; print('bad input file', file=sys.stderr); sys.exit(2)"
    assert harness.run_case([sys.executable, "-c", fail], env, src, dst, 1, log) == {
        "error": "exit 2: bad input file"
    }


def test_paired_cost_uses_the_files_both_scored():
    mean, half = harness.paired_cost([10.0, 12.0, math.nan, 11.0], [9.5, 11.5, 3.0, 10.5])
    assert mean == pytest.approx(0.5) and half == pytest.approx(0.0, abs=1e-12)
    mean, half = harness.paired_cost([1.0, 2.0, 4.0], [0.0, 0.0, 0.0])
    # t(0.975, 2) = 4.303 times the standard error of [1, 2, 4]
    assert mean == pytest.approx(7 / 3) and half == pytest.approx(
        4.3027 * np.std([1, 2, 4], ddof=1) / 3**0.5, rel=1e-4
    )


def test_score_pairs_scores_times_and_keeps_outputs_on_request(rng):
    clean = [0.1 * rng.standard_normal(8000).astype(np.float32) for _ in range(2)]
    pairs = [
        (f"{i:04d}.wav", c + 0.05 * rng.standard_normal(c.size).astype(np.float32), c)
        for i, c in enumerate(clean)
    ]
    calls = []

    def run(noisy):
        calls.append(noisy.size)
        return noisy

    res = harness.score_pairs(run, pairs, use_pesq=False, keep_outputs=True)
    assert calls == [8000, 8000] and res["seconds"] == 1.0
    assert [o is p[1] for o, p in zip(res["outputs"], pairs, strict=True)] == [True, True]
    assert all(5 < s < 7 for s in res["si_snr"])  # 20 log10(0.1 / 0.05) = 6.02 dB, per file
    assert all(math.isnan(p) for p in res["pesq_wb"])
    assert res["wall"] >= 0 and res["cpu"] >= 0 and res["thread_cpu"] >= 0
    assert harness.score_pairs(run, pairs, use_pesq=False)["outputs"] is None
