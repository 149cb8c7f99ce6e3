"""``dccrn-mix`` writes a fixed, reproducible set of WAV pairs."""

import csv
import os

import numpy as np
import pytest
import soundfile as sf

from trainers import mix


def _corpus(root):
    rng = np.random.default_rng(0)
    (root / "speech").mkdir()
    (root / "noise").mkdir()
    t = np.arange(24000) / 16000
    for i in range(3):
        sf.write(root / "speech" / f"s{i}.wav", 0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t), 16000)
        sf.write(root / "noise" / f"n{i}.flac", 0.1 * rng.standard_normal(16000), 16000)


def test_writes_the_same_pairs_for_the_same_seed(tmp_path):
    _corpus(tmp_path)
    outs = []
    for run in ("a", "b"):
        argv = [
            "dccrn-mix",
            f"--speech={tmp_path}/speech",
            f"--noise={tmp_path}/noise",
            f"--output_dir={tmp_path}/{run}",
            "--num_examples=3",
            "--min_seconds=1",
            "--max_seconds=2",
            "--seed=7",
        ]
        assert mix.main(cli_parse(argv)) == 0
        outs.append(tmp_path / run)
    for name in ("0000.wav", "0001.wav", "0002.wav"):
        for kind in ("noisy", "clean"):
            a, sr = sf.read(outs[0] / kind / name)
            b, _ = sf.read(outs[1] / kind / name)
            assert sr == 16000 and 16000 <= len(a) <= 32000
            np.testing.assert_array_equal(a, b)
    rows = list(csv.DictReader(open(outs[0] / "mixtures.csv")))
    assert len(rows) == 3 and all(-5 <= float(r["snr_db"]) <= 20 for r in rows)


def test_missing_inputs_are_usage_errors(tmp_path, capsys):
    assert mix.main(cli_parse(["dccrn-mix", f"--output_dir={tmp_path}"])) == 2
    assert "--speech is required" in capsys.readouterr().err
    argv = [
        "dccrn-mix",
        f"--speech={tmp_path}/none",
        f"--noise={tmp_path}/none",
        f"--output_dir={tmp_path}/o",
    ]
    assert mix.main(cli_parse(argv)) == 2
    assert "dccrn-mix: error:" in capsys.readouterr().err


def cli_parse(argv):
    from trainers.cli import parse_flags

    return parse_flags(argv, mix.FLAGS, mix.PROG, mix.__doc__)


# --- issue 18: bounded sizes, interruption-safe output folder -------------------------------------------


@pytest.mark.parametrize(
    "flag, limit",
    [
        ("--num_examples=100000000", "between 1 and 100000 pairs"),
        ("--num_examples=0", "between 1 and 100000 pairs"),
        ("--max_seconds=100000", "between 0.1 and 600 seconds"),
        ("--min_seconds=nan", "between 0.1 and 600 seconds"),
        ("--min_seconds=0", "between 0.1 and 600 seconds"),
    ],
)
def test_absurd_sizes_are_one_line_usage_errors(tmp_path, capsys, flag, limit):
    _corpus(tmp_path)
    argv = [
        "dccrn-mix",
        f"--speech={tmp_path}/speech",
        f"--noise={tmp_path}/noise",
        f"--output_dir={tmp_path}/o",
    ]
    assert mix.main(cli_parse([*argv, flag])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and limit in err and flag.split("=")[0] in err
    assert not os.path.exists(tmp_path / "o")


def test_a_set_larger_than_the_free_disk_is_refused(tmp_path):
    problem = mix.disk_problem(str(tmp_path / "o"), 100_000, 600.0, "FLOAT")  # 7.7 TB
    assert problem is not None and "need up to 7680.0 GB; only" in problem and "GB free" in problem
    assert mix.disk_problem(str(tmp_path / "o"), 3, 2.0, "PCM_16") is None


def test_rerun_over_an_existing_set_and_no_temporary_folder_left(tmp_path):
    _corpus(tmp_path)
    argv = ["dccrn-mix", f"--speech={tmp_path}/speech", f"--noise={tmp_path}/noise", f"--output_dir={tmp_path}/o",
            "--num_examples=2", "--min_seconds=1", "--max_seconds=1"]  # fmt: skip
    assert mix.main(cli_parse(argv)) == 0
    first = (tmp_path / "o" / "noisy" / "0001.wav").read_bytes()
    assert mix.main(cli_parse([*argv, "--seed=99"])) == 0
    assert sorted(os.listdir(tmp_path / "o")) == ["clean", "mixtures.csv", "noisy"]
    assert (tmp_path / "o" / "noisy" / "0001.wav").read_bytes() != first


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_signals_leave_no_partial_set(tmp_path, signame):
    import signal
    import subprocess
    import sys
    import time

    _corpus(tmp_path)
    out = tmp_path / "o"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = [sys.executable, "-m", "trainers.mix", f"--speech={tmp_path}/speech", f"--noise={tmp_path}/noise",
            f"--output_dir={out}", "--num_examples=5000", "--min_seconds=1", "--max_seconds=1"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    stage = None
    while time.monotonic() < deadline and proc.poll() is None:
        stages = [n for n in os.listdir(out) if n.startswith(".tmp-")] if os.path.isdir(out) else []
        if (
            stages
            and os.path.isdir(out / stages[0] / "noisy")
            and len(os.listdir(out / stages[0] / "noisy")) > 5
        ):
            stage = stages[0]
            break
        time.sleep(0.1)
    assert stage is not None, proc.communicate()
    sig = getattr(signal, signame)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if signame == "SIGKILL":
        assert os.listdir(out) == [stage] and stage.startswith(f".tmp-{proc.pid}-")
        small = ["dccrn-mix", f"--speech={tmp_path}/speech", f"--noise={tmp_path}/noise", f"--output_dir={out}",
                 "--num_examples=1", "--min_seconds=1", "--max_seconds=1"]  # fmt: skip
        assert mix.main(cli_parse(small)) == 0  # the next run into the folder removes the leftover
        assert sorted(os.listdir(out)) == ["clean", "mixtures.csv", "noisy"]
        return
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == f"dccrn-mix: stopped by {signame}; no partial output left"
    assert "Traceback" not in err and not os.path.exists(out)  # created by the run, removed with it
