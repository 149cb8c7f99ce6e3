import csv
import math
import os

import numpy as np
import pytest
import soundfile as sf
from test_metrics import mix_at_snr, speech_like

from keras_dccrn import build_model
from keras_dccrn import metrics as M
from trainers import evaluate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return evaluate.cli(["dccrn-evaluate", *args])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """clean/, noisy/ (0 dB) and two systems: A at 15 dB SNR, B at 5 dB; A has an extra file, B lacks one."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(5)
    for i, key in enumerate(["spk1/u1", "spk1/u2", "spk2/u3"]):
        clean = speech_like(2.5, seed=i)
        noise = rng.standard_normal(clean.size)
        for folder, snr, ext in (("noisy", 0.0, "wav"), ("A", 15.0, "wav"), ("B", 5.0, "flac")):
            if folder == "B" and key == "spk2/u3":
                continue
            path = root / folder / f"{key}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            subtype = "FLOAT" if ext == "wav" else "PCM_24"
            sf.write(str(path), mix_at_snr(clean, noise, snr), 16000, subtype=subtype)
        (root / "clean" / key).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / "clean" / f"{key}.flac"), clean, 16000)
    (root / "A" / "spk9").mkdir()
    sf.write(str(root / "A" / "spk9" / "extra.wav"), speech_like(1.0), 16000)
    return root


def test_two_systems_csv_markdown_plots(corpus, tmp_path, capsys):
    out = tmp_path / "results"
    rc = run(
        "--clean_dir", str(corpus / "clean"),
        "--noisy_dir", str(corpus / "noisy"),
        "--system", f"A={corpus / 'A'}",
        "--system", f"B={corpus / 'B'}",
        "--metrics", "pesq_wb,stoi,si_snr",
        "--output_dir", str(out),
        "--spectrogram_file", "spk1/u2.wav",
    )  # fmt: skip
    assert rc == 0
    rows = read_csv(out / "per_file.csv")
    assert list(rows[0]) == ["system", "file", "pesq_wb", "stoi", "si_snr", "si_snri", "notes", "error"]
    assert [(r["system"], r["file"]) for r in rows] == [
        ("noisy", "spk1/u1"), ("noisy", "spk1/u2"), ("noisy", "spk2/u3"),
        ("A", "spk1/u1"), ("A", "spk1/u2"), ("A", "spk2/u3"),
        ("B", "spk1/u1"), ("B", "spk1/u2"),
    ]  # fmt: skip
    by = {(r["system"], r["file"]): r for r in rows}
    for key in ("spk1/u1", "spk1/u2"):
        # White noise mixed at a known SNR: SI-SNR within 0.1 dB, SI-SNRi relative to the 0 dB input.
        assert float(by["A", key]["si_snr"]) == pytest.approx(15.0, abs=0.1)
        assert float(by["B", key]["si_snr"]) == pytest.approx(5.0, abs=0.1)
        assert float(by["noisy", key]["si_snri"]) == 0.0
        assert float(by["A", key]["si_snri"]) == pytest.approx(15.0, abs=0.2)
        assert (
            float(by["A", key]["pesq_wb"])
            > float(by["B", key]["pesq_wb"])
            > float(by["noisy", key]["pesq_wb"])
        )
        assert float(by["A", key]["stoi"]) > float(by["noisy", key]["stoi"])
    summary = (out / "summary.md").read_text()
    table_lines = [line for line in summary.splitlines() if line.startswith("| ")]
    assert table_lines[0] == "| system | files | pesq_wb | stoi | si_snr | si_snri |"
    assert [line.split(" | ")[0] for line in table_lines[1:]] == ["| noisy", "| A", "| B"]
    a_si_snr = [float(by["A", k]["si_snr"]) for k in ("spk1/u1", "spk1/u2", "spk2/u3")]
    mean, half, n = evaluate.confidence_interval(a_si_snr)
    assert f"{mean:.3f} ± {half:.3f}" in table_lines[2]
    assert "A: 1 file(s) without a clean reference: spk9/extra" in summary
    assert "B: 1 clean file(s) without a B file: spk2/u3" in summary
    captured = capsys.readouterr()
    assert table_lines[0] in captured.out
    assert "spk9/extra" in captured.err
    for png in ("distributions.png", "spectrogram_spk1_u2.png"):
        data = (out / png).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_confidence_interval_matches_scipy():
    from scipy import stats

    values = [1.0, 2.5, 2.0, 4.0, math.nan, 3.5]
    mean, half, n = evaluate.confidence_interval(values)
    finite = np.array([v for v in values if not math.isnan(v)])
    low, high = stats.t.interval(0.95, finite.size - 1, loc=finite.mean(), scale=stats.sem(finite))
    assert n == 5 and mean == pytest.approx(finite.mean()) and half == pytest.approx((high - low) / 2)
    assert evaluate.confidence_interval([2.0])[:2] == (2.0, pytest.approx(math.nan, nan_ok=True))
    assert evaluate.confidence_interval([])[2] == 0


def test_model_run_bad_file_and_parallel_workers(corpus, tmp_path, capsys):
    model = str(tmp_path / "student.keras")
    build_model("tiny", time_crop="causal").save(model)
    broken = tmp_path / "C"
    broken.mkdir()
    (broken / "spk1").mkdir()
    (broken / "spk1" / "u1.wav").write_text("not audio")
    sf.write(str(broken / "spk1" / "u2.wav"), sf.read(str(corpus / "A" / "spk1" / "u2.wav"))[0], 16000)
    common = [
        "--clean_dir", str(corpus / "clean"),
        "--noisy_dir", str(corpus / "noisy"),
        "--model", model,
        "--system", f"C={broken}",
        "--metrics", "si_snr,estoi",
    ]  # fmt: skip
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    assert run(*common, "--output_dir", str(out1)) == 1  # C/spk1/u1.wav is unreadable
    err = capsys.readouterr().err
    assert "error: C: " in err and "u1.wav: not a readable audio file" in err
    enhanced = sorted(os.listdir(out1 / "enhanced" / "student" / "spk1"))
    assert enhanced == ["u1.wav", "u2.wav"] and os.listdir(out1 / "enhanced" / "student" / "spk2") == [
        "u3.wav"
    ]
    rows = read_csv(out1 / "per_file.csv")
    assert {r["system"] for r in rows} == {"noisy", "C", "student"}
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and bad[0]["system"] == "C" and bad[0]["si_snr"] == "nan"
    good = next(r for r in rows if r["system"] == "C" and r["file"] == "spk1/u2")
    assert float(good["si_snr"]) == pytest.approx(15.0, abs=0.1)
    assert "## Failures" in (out1 / "summary.md").read_text()
    # The same scores from two worker processes.
    assert run(*common, "--output_dir", str(out2), "--workers", "2") == 1
    assert read_csv(out2 / "per_file.csv") == rows


def test_dnsmos_columns(corpus, tmp_path):
    out = tmp_path / "r"
    rc = run(
        "--clean_dir", str(corpus / "clean"),
        "--system", f"B={corpus / 'B'}",
        "--metrics", "dnsmos",
        "--output_dir", str(out),
        "--workers", "2",
    )  # fmt: skip
    assert rc == 0
    rows = read_csv(out / "per_file.csv")
    assert len(rows) == 2
    for row in rows:
        for column in M.METRIC_GROUPS["dnsmos"]:
            assert 0.5 < float(row[column]) < 5.5


def test_usage_errors(corpus, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert run("--output_dir", out, "--system", f"A={corpus / 'A'}") == 2
    assert "--clean_dir is required" in capsys.readouterr().err
    assert run("--clean_dir", str(corpus / "clean"), "--output_dir", out, "--system", "A") == 2
    assert "expected name=folder" in capsys.readouterr().err
    assert run("--clean_dir", str(corpus / "clean"), "--output_dir", out, "--model", "m.keras") == 2
    assert "--model needs --noisy_dir" in capsys.readouterr().err
    assert run("--clean_dir", str(corpus / "clean"), "--output_dir", out, "--system", f"A={corpus / 'A'}",
               "--metrics", "mosnet") == 2  # fmt: skip
    assert "--metrics" in capsys.readouterr().err
    assert run("--clean_dir", str(corpus / "clean"), "--output_dir", out, "--noisy_dir", str(corpus / "noisy"),
               "--model", str(tmp_path / "none.keras")) == 2  # fmt: skip
    assert "none.keras: no such model" in capsys.readouterr().err
