"""Tests of benchmarks/campaign.py (the campaign's progress page from run folders; no scoring)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(path, entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def _run(*args):
    return subprocess.run(
        [sys.executable, "benchmarks/campaign.py", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_page_budgets_discarded_steps_scores_and_raw_logs(tmp_path):
    run = tmp_path / "student"
    run.mkdir()
    line = {
        "epoch": 1,
        "step": 100,
        "audio_hours": 0.5,
        "cpu_hours": 1.0,
        "wall_hours": 2.0,
        "val_si_snr": 7.0,
    }
    restored = {**line, "cpu_hours": 1.5, "wall_hours": 3.0, "restored_from": "w.npz", "discarded_steps": 40}
    last = {
        "epoch": 2,
        "step": 200,
        "audio_hours": 1.0,
        "cpu_hours": 2.25,
        "wall_hours": 4.5,
        "val_si_snr": 8.5,
    }
    _write(run / "progress.jsonl", [line, restored, last])
    score = {"step": 100, "audio_hours": 0.5, "cpu_hours": 1.0, "pesq_wb": 1.5, "si_snr": 9.0, "files": 3}
    _write(run / "devset_scores.jsonl", [score])
    page = tmp_path / "docs" / "campaign.md"
    proc = _run(f"--run=student={run}", f"--output={page}")
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert "| student | 2 | 200 | 1.00 | 2.25 | 4.50 | 40 | val_si_snr 8.50 dB |" in text
    assert "## student: development set (3 files)" in text
    assert "| 100 | 0.50 | 1.00 | 1.500 | 9.000 | n/a | n/a | n/a |" in text
    copied = tmp_path / "docs" / "campaign"
    assert (copied / "student.progress.jsonl").read_text() == (run / "progress.jsonl").read_text()
    assert (copied / "student.devset_scores.jsonl").exists() and (copied / "curves.png").stat().st_size > 0


def test_a_missing_run_folder_is_one_line(tmp_path):
    proc = _run(f"--run=x={tmp_path / 'none'}", f"--output={tmp_path / 'page.md'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"campaign: no such run directory: {tmp_path / 'none'}"]
    assert not (tmp_path / "page.md").exists()
