"""Tests of keras_dccrn.training.curves (development-set scores of training snapshots)."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
from test_metrics import mix_at_snr, speech_like

from keras_dccrn import build_model
from keras_dccrn.training import curves, run_dir


@pytest.fixture(scope="module")
def devset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dev")
    rng = np.random.default_rng(0)
    for i in range(3):
        clean = speech_like(1.0, seed=20 + i)
        for folder, audio in (
            ("clean", clean),
            ("noisy", mix_at_snr(clean, rng.standard_normal(clean.size), 5.0)),
        ):
            os.makedirs(root / folder, exist_ok=True)
            sf.write(root / folder / f"{i:04d}.wav", audio, 16000)
    return root


@pytest.mark.slow
def test_snapshots_are_scored_once_with_their_budget(tmp_path, devset):
    run = tmp_path / "run"
    os.makedirs(run / "snapshots")
    model = build_model("tiny")
    for step in (3, 6):
        model.save(run / "snapshots" / f"step_{step:07d}.keras")
    (run / "snapshots" / ".snapshot.tmp.keras").write_text("partial")  # never scored
    with open(run / "progress.jsonl", "w") as f:
        for step in (3, 6):
            f.write(json.dumps({"step": step, "audio_hours": step / 100, "cpu_hours": step / 10}) + "\n")
    lines = []
    new = curves.score_snapshots(str(run), str(devset), limit=2, metrics=("si_snr",), log=lines.append)
    assert [e["step"] for e in new] == [3, 6] and len(lines) == 2
    assert new[1]["audio_hours"] == pytest.approx(0.06) and new[1]["cpu_hours"] == pytest.approx(0.6)
    assert new[0]["files"] == 2 and np.isfinite(new[0]["si_snr"]) and np.isfinite(new[0]["si_snri"])
    assert curves.score_snapshots(str(run), str(devset), limit=2, metrics=("si_snr",)) == []  # done already
    assert [e["step"] for e in run_dir.read_scores(str(run))] == [3, 6]


def test_mean_scores_and_devset_pairs(tmp_path, devset):
    rows = [{"file": "a", "x": 1.0}, {"file": "b", "x": float("nan")}, {"file": "c", "x": 3.0}]
    assert curves.mean_scores(rows) == {"x": 2.0, "files": 3}
    assert [k for k, _, _ in curves.devset_pairs(str(devset))] == ["0000", "0001", "0002"]
    with pytest.raises(ValueError, match="no paired files"):
        curves.devset_pairs(str(tmp_path))


def test_plot_curves_draws_every_run_and_reference(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    drawn = {}
    close = plt.close

    def keep(fig):  # inspect the figure before it is closed
        drawn["axes"] = fig.axes
        close(fig)

    monkeypatch.setattr(plt, "close", keep)
    entries = [
        {"step": 1, "cpu_hours": 0.5, "pesq_wb": 1.5, "si_snr": 8.0},
        {"step": 2, "cpu_hours": 1.0, "pesq_wb": 1.7, "si_snr": 9.0},
        {"step": 3, "pesq_wb": 1.8, "si_snr": 9.5},  # no CPU hours: left out
    ]
    path = tmp_path / "curves.png"
    curves.plot_curves({"a": entries, "b": []}, str(path), references={"peer": {"pesq_wb": 1.6}})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pesq, si_snr = drawn["axes"]
    assert [list(line.get_xdata()) for line in pesq.get_lines()] == [[0.5, 1.0], [0, 1]]
    assert list(pesq.get_lines()[0].get_ydata()) == [1.5, 1.7]
    assert list(pesq.get_lines()[1].get_ydata()) == [1.6, 1.6]  # the peer's dashed line
    assert len(si_snr.get_lines()) == 1  # the peer has no SI-SNR
    assert pesq.get_ylabel() == "PESQ-WB" and si_snr.get_xlabel() == "CPU hours"
