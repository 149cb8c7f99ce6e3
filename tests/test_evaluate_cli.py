import csv
import math
import os
import sys

import numpy as np
import pytest
import soundfile as sf
from test_metrics import mix_at_snr, speech_like

from keras_dccrn import build_model, evaluation
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
    mean, half, n = evaluation.confidence_interval(a_si_snr)
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
    mean, half, n = evaluation.confidence_interval(values)
    finite = np.array([v for v in values if not math.isnan(v)])
    low, high = stats.t.interval(0.95, finite.size - 1, loc=finite.mean(), scale=stats.sem(finite))
    assert n == 5 and mean == pytest.approx(finite.mean()) and half == pytest.approx((high - low) / 2)
    assert evaluation.confidence_interval([2.0])[:2] == (2.0, pytest.approx(math.nan, nan_ok=True))
    assert evaluation.confidence_interval([])[2] == 0


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


@pytest.mark.slow
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


# --- issue 18: honest scoring of length mismatches, bounds, missing extras, non-UTF-8 names, signals ---


def _pairs(root, lengths, name="sys"):
    """clean/ of 1 s speech-like files and a system whose file i has ``lengths[i]`` samples."""
    rng = np.random.default_rng(1)
    for i, n in enumerate(lengths):
        clean = speech_like(1.0, seed=20 + i)
        (root / "clean").mkdir(parents=True, exist_ok=True)
        (root / name).mkdir(parents=True, exist_ok=True)
        sf.write(str(root / "clean" / f"f{i}.wav"), clean, 16000, subtype="FLOAT")
        est = np.resize(mix_at_snr(clean, rng.standard_normal(clean.size), 10.0), n)
        sf.write(str(root / name / f"f{i}.wav"), est, 16000, subtype="FLOAT")


def test_pairs_of_different_lengths_are_refused_unless_trimmed(tmp_path, capsys):
    # Audit: a 0.1 s "enhanced" file against a 2.6 s reference was cut and scored 16.75 dB SI-SNR.
    _pairs(tmp_path, [16000, 1600, 16000 + 400])  # equal, 0.1 s, within the 0.05 s tolerance
    common = [
        "--clean_dir",
        str(tmp_path / "clean"),
        "--system",
        f"S={tmp_path / 'sys'}",
        "--metrics",
        "si_snr",
    ]
    assert run(*common, "--output_dir", str(tmp_path / "r")) == 1
    err = capsys.readouterr().err
    refusals = [line for line in err.splitlines() if line.startswith("error: S: lengths differ")]
    assert len(refusals) == 1 and "f1.wav 0.100 s vs clean 1.000 s" in refusals[0]
    assert "1 pair(s) refused" in err and "--trim_lengths" in err
    rows = {r["file"]: r for r in read_csv(tmp_path / "r" / "per_file.csv")}
    assert rows["f1"]["si_snr"] == "nan" and rows["f1"]["error"].startswith("lengths differ")
    assert "cut to 16000" in rows["f2"]["notes"] and not rows["f2"]["error"]
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "| S | 2 |" in summary and "Refused pairs" in summary and ": 1;" in summary
    mean = evaluation.confidence_interval([float(rows[k]["si_snr"]) for k in ("f0", "f2")])[0]
    assert f"{mean:.3f}" in summary  # the refused pair is not in the mean
    assert run(*common, "--output_dir", str(tmp_path / "t"), "--trim_lengths") == 0
    rows = {r["file"]: r for r in read_csv(tmp_path / "t" / "per_file.csv")}
    assert math.isfinite(float(rows["f1"]["si_snr"])) and "cut to 1600" in rows["f1"]["notes"]


@pytest.mark.parametrize(
    "flag, limit",
    [
        ("--chunk_seconds=1e9", "between 0 and 120 seconds"),
        ("--chunk_seconds=inf", "between 0 and 120 seconds"),
        ("--workers=100000", "between 1 and 64 processes"),
        ("--workers=0", "between 1 and 64 processes"),
        ("--length_tolerance=-1", "between 0 and 10 seconds"),
        ("--threads=99999", "between 0 and 256 threads"),
    ],
)
def test_absurd_sizes_are_one_line_usage_errors(corpus, tmp_path, flag, limit, capsys):
    argv = [
        "--clean_dir",
        str(corpus / "clean"),
        "--system",
        f"A={corpus / 'A'}",
        "--output_dir",
        str(tmp_path),
    ]
    assert run(*argv, flag) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and limit in err and flag.split("=")[0] in err


@pytest.mark.parametrize(
    "module, metrics", [("pystoi", "stoi"), ("onnxruntime", "dnsmos"), ("matplotlib", "si_snr")]
)
def test_missing_eval_extra_is_one_line_naming_the_extra(
    corpus, tmp_path, monkeypatch, capsys, module, metrics
):
    # Audit: after the main install dccrn-evaluate crashed with a 35-line ModuleNotFoundError (pystoi).
    monkeypatch.setitem(sys.modules, module, None)
    argv = ["--clean_dir", str(corpus / "clean"), "--system", f"A={corpus / 'A'}", "--metrics", metrics]
    assert run(*argv, "--output_dir", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "keras-dccrn[eval]" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "o")


def test_non_utf8_file_names(tmp_path, capsys):
    name = os.fsdecode(b"\xe9t\xe9")
    clean = speech_like(1.0, seed=3)
    for folder in ("clean", "sys"):
        (tmp_path / folder).mkdir()
        sf.write(os.fsencode(tmp_path / folder / f"{name}.wav"), clean, 16000)
    argv = [
        "--clean_dir",
        str(tmp_path / "clean"),
        "--system",
        f"S={tmp_path / 'sys'}",
        "--metrics",
        "si_snr",
    ]
    assert run(*argv, "--output_dir", str(tmp_path / "r")) == 0
    assert os.fsencode(name) in (tmp_path / "r" / "per_file.csv").read_bytes()
    assert "| S | 1 |" in capsys.readouterr().out


def test_folder_scans_skip_temporary_outputs(tmp_path):
    (tmp_path / ".tmp-123-abc").mkdir()
    sf.write(str(tmp_path / ".tmp-123-abc" / "x.wav"), np.zeros(160), 16000)
    sf.write(str(tmp_path / ".tmp-123-def.wav"), np.zeros(160), 16000)
    sf.write(str(tmp_path / "y.wav"), np.zeros(160), 16000)
    assert evaluation.scan(str(tmp_path), {"wav"})[0] == {"y": str(tmp_path / "y.wav")}


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_during_scoring_exits_128_plus_signal_with_one_line(corpus, tmp_path, signame):
    import signal
    import subprocess
    import time

    out = tmp_path / "r"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = [sys.executable, "-m", "trainers.evaluate", "--clean_dir", str(corpus / "clean"), "--noisy_dir",
            str(corpus / "noisy"), "--system", f"A={corpus / 'A'}", "--metrics", "pesq_wb,stoi,dnsmos",
            "--workers=2", "--output_dir", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not os.path.isdir(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)  # --output_dir is created right before scoring starts
    time.sleep(1.0)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert err.strip().splitlines()[-1] == f"dccrn-evaluate: stopped by {signame}; no partial output left"
    assert "Traceback" not in err
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-") or n == "per_file.csv"]
