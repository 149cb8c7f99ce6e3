import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import data
from trainers import prepare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000


@pytest.fixture
def corpus(tmp_path, rng):
    good = {}
    for i, (sr, seconds, channels) in enumerate([(16000, 1.0, 1), (44100, 0.5, 2), (8000, 2.0, 1)]):
        folder = tmp_path / "audio" / f"d{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        x = 0.1 * rng.standard_normal((int(sr * seconds), channels))
        path = folder / f"ok{i}.{'flac' if i == 1 else 'wav'}"
        sf.write(path, x, sr)
        good[str(path)] = seconds
    bad = tmp_path / "audio" / "bad"
    bad.mkdir()
    (bad / "garbage.wav").write_bytes(b"RIFF but not really")
    sf.write(bad / "silent.wav", np.zeros(SR), SR)
    nan = np.full(SR, 0.1, np.float32)
    nan[5] = np.nan
    sf.write(bad / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(bad / "empty.wav", np.zeros(0), SR)
    (tmp_path / "audio" / "notes.txt").write_text("not audio, ignored by the folder scan")
    return tmp_path, good


def run_cli(*args):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "trainers.prepare", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_writes_manifest_and_reports_skipped(corpus):
    tmp_path, good = corpus
    out = tmp_path / "all.csv"
    result = run_cli(f"--inputs={tmp_path / 'audio'}", f"--output={out}", "--kind=noise")
    assert result.returncode == 0, result.stderr
    with open(out) as f:
        rows = list(csv.DictReader(f))
    got = {os.path.normpath(os.path.join(out.parent, r["path"])): float(r["duration"]) for r in rows}
    assert got.keys() == good.keys()
    for path, seconds in good.items():
        assert abs(got[path] - seconds) < 1e-3
    assert all(not os.path.isabs(r["path"]) for r in rows)  # relative to the manifest's folder
    assert {r["kind"] for r in rows} == {"noise"}
    assert "Wrote" in result.stdout and "3 files" in result.stdout
    assert "Skipped 4 file(s)" in result.stdout
    for name, reason in [
        ("garbage.wav", "not a readable"),
        ("silent.wav", "silent"),
        ("nan.wav", "NaN"),
        ("empty.wav", "no samples"),
    ]:
        line = next(x for x in result.stdout.splitlines() if name in x)
        assert reason in line
    # The manifest is a valid input for the pipeline.
    assert sorted(p for p, _ in data.find_audio(str(out))) == sorted(good)


def test_cli_no_usable_files_is_a_one_line_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"junk")
    out = tmp_path / "m.csv"
    result = run_cli(f"--inputs={tmp_path / 'bad'}", f"--output={out}")
    assert result.returncode == 1
    errors = [x for x in result.stderr.splitlines() if x.startswith("prepare: error:")]
    assert len(errors) == 1 and "no usable audio" in errors[0] and "bad" in errors[0]
    assert not out.exists()


def test_prepare_jsonl_globs_min_seconds_and_header_only(corpus):
    tmp_path, good = corpus
    out = str(tmp_path / "m.jsonl")
    pattern = str(tmp_path / "audio" / "**" / "ok*.*")
    entries, skipped = prepare.prepare([pattern, str(tmp_path / "audio" / "d0")], out, min_seconds=0.75)
    kept = {p for p, d in good.items() if d >= 0.75}
    assert {p for p, _ in entries} == kept  # duplicates from the second input are dropped
    assert [os.path.basename(p) for p, r in skipped] == ["ok1.flac"] and "too short" in skipped[0][1]
    with open(out) as f:
        rows = [json.loads(line) for line in f]
    assert {os.path.normpath(os.path.join(tmp_path, r["path"])) for r in rows} == kept
    # Header-only scan does not decode: silent and NaN files pass, unreadable/empty ones do not.
    entries, skipped = prepare.prepare([str(tmp_path / "audio" / "bad")], out, verify=False)
    assert sorted(os.path.basename(p) for p, _ in entries) == ["nan.wav", "silent.wav"]
    assert sorted(os.path.basename(p) for p, _ in skipped) == ["empty.wav", "garbage.wav"]
    # Outside the manifest's folder: absolute paths. RIRs: only all-zero files are "silent".
    out = str(tmp_path / "audio" / "d0" / "rir.csv")
    entries, skipped = prepare.prepare([str(tmp_path / "audio")], out, kind="rir")
    assert sorted(os.path.basename(p) for p, _ in skipped) == [
        "empty.wav",
        "garbage.wav",
        "nan.wav",
        "silent.wav",
    ]
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {r["kind"] for r in rows} == {"rir"}
    assert sum(os.path.isabs(r["path"]) for r in rows) == 1  # d1/ok1.flac is outside d0/
    assert data.find_audio(out + "?kind=rir") and not data.find_audio(out + "?kind=speech")
    with pytest.raises(ValueError, match="nowhere"):
        prepare.prepare([str(tmp_path / "nowhere")], out)
    with pytest.raises(ValueError, match="must end with"):
        prepare.prepare([pattern], str(tmp_path / "m.txt"))
