"""scripts/campaign.sh: syntax and argument checks (its steps run the trainers and benchmarks tested elsewhere)."""

import json
import os
import subprocess
import sys

import pytest

from keras_dccrn.training import run_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "campaign.sh")


def run(*args, runs, fake=None, **env):
    """``scripts/campaign.sh <args>`` with ``RUNS=runs`` and ``env``; ``fake``: a folder put first on PATH."""
    env = dict(os.environ, RUNS=str(runs), **env)
    if fake:
        env["PATH"] = f"{fake}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=60)


def test_script_parses():
    assert subprocess.run(["bash", "-n", SCRIPT], capture_output=True).returncode == 0


def test_unknown_step_exits_2(tmp_path):
    result = run("no_such_step", runs=tmp_path)
    assert result.returncode == 2
    assert "unknown step: no_such_step" in result.stderr


@pytest.mark.parametrize(
    "args, missing",
    [
        (("ship",), "usage"),
        (("ship", "student_nokd"), "step"),
        (("ship", "student_nokd", "final"), "name"),
        (("average",), "usage"),
        (("average", "student_long"), "K"),
    ],
)
def test_a_step_names_its_missing_argument(tmp_path, args, missing):
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
    fake, calls = _fake_python(tmp_path)
    runs = tmp_path / "runs"
    os.makedirs(runs / "teacher")
    result = run("log", runs=runs, fake=fake)
    assert result.returncode == 0, result.stderr
    args = calls.read_text().split()
    assert f"--run=teacher={runs}/teacher" in args
    assert f"--run=student_nokd={runs}/records/student_nokd" in args
    assert not any(a.startswith("--run=student_atkl=") for a in args)  # neither folder nor record
    with open(runs / "records" / "student_nokd" / "progress.jsonl") as f, open(record[1]) as g:
        assert f.read() == g.read()
    assert (runs / "records" / "student_nokd" / "config.json").exists()


def _fake_python(tmp_path, failing=None, status=143):
    """A ``python`` on PATH that logs each call's arguments; a call containing ``failing`` exits ``status``.

    ``python -c`` (the script's one-line helpers) runs the real interpreter, unlogged.
    """
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls.txt"
    script = f'#!/bin/sh\n[ "$1" = -c ] && exec {sys.executable} "$@"\necho "$@" >> {calls}\n'
    if failing:
        script += f'case "$*" in *{failing}*) exit {status};; esac\n'
    (fake / "python").write_text(script)
    (fake / "python").chmod(0o755)
    return fake, calls


def _lane(tmp_path, lane, failing=None, folders=()):
    fake, calls = _fake_python(tmp_path, failing)
    runs = tmp_path / "runs"
    runs.mkdir()
    for folder in folders:  # run folders present (a kept machine)
        (runs / folder).mkdir()
    result = run("lane", lane, runs=runs, fake=fake, PRECISION="float32")
    lines = calls.read_text().splitlines() if calls.exists() else []
    return result, [line for line in lines if line.startswith("-m ")]


def test_teacher_lane_restores_a_lost_teacher_then_chains_cache_and_distillation(tmp_path):
    if not os.path.exists(os.path.join(ROOT, "campaign", "weights", "teacher.json")):
        pytest.skip("no committed teacher backup")
    result, calls = _lane(tmp_path, "teacher")
    assert result.returncode == 0, result.stderr
    modules = [c.split()[1] for c in calls]
    assert modules == ["trainers.train", "trainers.train", "trainers.teacher_cache", "trainers.distill"]
    assert "--init_weights=campaign/weights/teacher.npz" in calls[0].split()  # restore, then resume
    assert "--init_weights" not in calls[1]
    assert all("--flagfile=flags/campaign/teacher.cfg" in c.split() for c in calls[:2])


def _student_long_record_finished():
    """Whether the committed record of student_long shows its planned epochs done."""
    config = os.path.join(ROOT, "docs", "campaign", "student_long.config.json")
    progress = os.path.join(ROOT, "docs", "campaign", "student_long.progress.jsonl")
    if not (os.path.exists(config) and os.path.exists(progress)):
        return False
    with open(config) as f:
        return run_dir.finished(json.load(f), run_dir.read_progress_file(progress))


def test_lane_stops_at_the_first_step_that_does_not_finish(tmp_path):
    result, calls = _lane(tmp_path, "student", failing="student_long.cfg", folders=["student_long"])
    assert result.returncode == 143
    assert len(calls) == 1 and "--flagfile=flags/campaign/student_long.cfg" in calls[0].split()


def test_student_lane_runs_the_baseline_after_student_long(tmp_path):
    result, calls = _lane(tmp_path, "student", folders=["student_long"])
    assert result.returncode == 0, result.stderr
    flagfiles = [a for c in calls for a in c.split() if a.startswith("--flagfile=")]
    assert flagfiles == [
        "--flagfile=flags/campaign/student_long.cfg",
        "--flagfile=flags/campaign/dccrn_cl.cfg",
    ]


def test_a_lost_student_long_whose_record_finished_is_not_trained_again(tmp_path):
    if not _student_long_record_finished():
        pytest.skip("student_long's committed record has not finished")
    result, calls = _lane(tmp_path, "student")
    assert result.returncode == 0, result.stderr
    assert "student_long: finished" in result.stdout
    flagfiles = [a for c in calls for a in c.split() if a.startswith("--flagfile=")]
    assert flagfiles == ["--flagfile=flags/campaign/dccrn_cl.cfg"]


def test_unknown_lane_exits_2(tmp_path):
    result = run("lane", "nowhere", runs=tmp_path)
    assert result.returncode == 2
    assert "unknown lane: nowhere" in result.stderr


def test_student_long_continues_from_its_own_backup_only_when_its_folder_is_gone(tmp_path):
    if not os.path.exists(os.path.join(ROOT, "campaign", "weights", "student_long.json")):
        pytest.skip("no committed student_long backup")
    if _student_long_record_finished():
        pytest.skip("student_long finished: a lost folder is not trained again (test above)")
    fake, calls = _fake_python(tmp_path)
    runs = tmp_path / "runs"
    for present in (False, True):
        if present:
            (runs / "student_long").mkdir(parents=True)
        result = run("student_long", runs=runs, fake=fake, PRECISION="float32")
        assert result.returncode == 0, result.stderr
    trains = [c.split() for c in calls.read_text().splitlines() if c.startswith("-m trainers.train")]
    assert "--init_weights=campaign/weights/student_long.npz" in trains[0]  # lost: its own backup
    assert "--init_weights=campaign/weights/student_nokd.npz" in trains[1]  # kept: its checkpoints resume
    assert "--init_step=27000" in trains[1]


def test_ship_of_an_average_scores_and_ships_the_averaged_file(tmp_path):
    fake, calls = _fake_python(tmp_path)
    runs = tmp_path / "runs"
    args = ("ship", "student_long", "36000_mean3", "distil_dccrn")
    missing = run(*args, runs=runs, fake=fake)
    average = runs / "student_long" / "averages" / "step_0036000_mean3.keras"
    assert missing.returncode == 2 and not calls.exists()
    assert missing.stderr.strip() == (
        f"ship: {average}: no such file (scripts/campaign.sh average student_long <K> first)"
    )
    average.parent.mkdir(parents=True)
    average.write_bytes(b"")
    # the fake evaluation writes no summary, so the step stops at copying it (nothing reaches docs/)
    run(*args, runs=runs, fake=fake)
    evaluate = calls.read_text().split()
    assert evaluate[:2] == ["-m", "trainers.evaluate"]
    assert f"--model={average}" in evaluate and "--model_name=student_long_step36000_mean3" in evaluate
    assert f"--output_dir={runs}/scores/student_long_step36000_mean3" in evaluate


def test_average_averages_the_last_snapshots_then_scores_the_mean(tmp_path):
    fake, calls = _fake_python(tmp_path)
    runs = tmp_path / "runs"
    (runs / "student_long" / "snapshots").mkdir(parents=True)
    for step in (34000, 36000, 38000):
        (runs / "student_long" / "snapshots" / f"step_{step:07d}.keras").write_bytes(b"")
    # the fake evaluation writes no summary, so the step stops at copying it (nothing reaches docs/)
    run("average", "student_long", "3", runs=runs, fake=fake)
    average, evaluate = (c.split() for c in calls.read_text().splitlines())
    assert average == ["scripts/average_snapshots.py", f"--run_dir={runs}/student_long", "--last=3"]
    assert f"--model={runs}/student_long/averages/step_0038000_mean3.keras" in evaluate
    assert "--model_name=student_long_step38000_mean3" in evaluate
