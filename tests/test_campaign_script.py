"""scripts/campaign.sh: syntax and argument checks (its steps run the trainers and benchmarks tested elsewhere)."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "campaign.sh")


def run(*args, runs):
    env = dict(os.environ, RUNS=str(runs))
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=60)


def test_script_parses():
    assert subprocess.run(["bash", "-n", SCRIPT], capture_output=True).returncode == 0


def test_unknown_step_exits_2(tmp_path):
    result = run("no_such_step", runs=tmp_path)
    assert result.returncode == 2
    assert "unknown step: no_such_step" in result.stderr


@pytest.mark.parametrize(
    "args, missing",
    [(("ship",), "usage"), (("ship", "student_nokd"), "step"), (("ship", "student_nokd", "final"), "name")],
)
def test_ship_names_its_missing_argument(tmp_path, args, missing):
    result = run(*args, runs=tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr
    assert not os.listdir(tmp_path)


def test_kd_skips_a_run_whose_scores_are_newer_than_its_model(tmp_path):
    # Both students' model.keras older than their committed per-file scores: nothing is evaluated.
    scores = [
        os.path.join(ROOT, "docs", "campaign", f"{r}.per_file.csv") for r in ("student_atkl", "student_nokd")
    ]
    if not all(os.path.exists(s) for s in scores):
        pytest.skip("the students' per-file scores are not committed yet")
    for run_name, csv in zip(("student_atkl", "student_nokd"), scores, strict=True):
        os.makedirs(tmp_path / run_name)
        model = tmp_path / run_name / "model.keras"
        model.write_bytes(b"")
        stamp = os.path.getmtime(csv) - 10
        os.utime(model, (stamp, stamp))
    result = run("kd", runs=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already scored") == 2


def test_log_reads_a_lost_run_from_its_committed_record(tmp_path):
    # student_nokd's folder is gone: `log` passes its committed record (config, progress, scores) instead.
    record = [
        os.path.join(ROOT, "docs", "campaign", f"student_nokd.{s}") for s in ("config.json", "progress.jsonl")
    ]
    if not all(os.path.exists(f) for f in record):
        pytest.skip("student_nokd's record is not committed")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text('#!/bin/sh\necho "$@"\n')
    (fake / "python").chmod(0o755)
    runs = tmp_path / "runs"
    os.makedirs(runs / "teacher")
    env = dict(os.environ, RUNS=str(runs), PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", SCRIPT, "log"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    args = result.stdout.split()
    assert f"--run=teacher={runs}/teacher" in args
    assert f"--run=student_nokd={runs}/records/student_nokd" in args
    assert not any(a.startswith("--run=student_atkl=") for a in args)  # neither folder nor record
    with open(runs / "records" / "student_nokd" / "progress.jsonl") as f, open(record[1]) as g:
        assert f.read() == g.read()
    assert (runs / "records" / "student_nokd" / "config.json").exists()
