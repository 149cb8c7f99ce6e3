"""``dccrn-mix`` writes a fixed, reproducible set of WAV pairs."""

import csv

import numpy as np
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
