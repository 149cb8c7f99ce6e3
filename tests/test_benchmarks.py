"""Tests of benchmarks/tflite_speed.py: every variant row, memory, RTF, dev-set quality and the issue 16 goals."""

import math
import os
import re

import numpy as np
import pytest
import soundfile as sf

from benchmarks import harness
from benchmarks import tflite_speed as bench

SR = 16000


@pytest.fixture(scope="module")
def devset(tmp_path_factory):
    """Three 1 s pairs: speech-like clean signals, noisy = clean + white noise at 5 dB SNR."""
    from keras_dccrn.signals import speech_like_signals

    root = tmp_path_factory.mktemp("devset")
    (root / "noisy").mkdir()
    (root / "clean").mkdir()
    rng = np.random.default_rng(3)
    for i, clean in enumerate(speech_like_signals(count=3, seconds=1.0, seed=7)):
        noise = rng.standard_normal(clean.shape[0]).astype(np.float32)
        noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (5 / 10))
        sf.write(root / "clean" / f"{i:04d}.wav", clean, SR, subtype="FLOAT")
        sf.write(root / "noisy" / f"{i:04d}.wav", clean + noise, SR, subtype="FLOAT")
    return str(root)


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory):
    """A causal tiny model (so that the streaming variants exist) saved as .keras."""
    import keras

    from keras_dccrn import build_model

    keras.utils.set_random_seed(1)
    model = build_model("tiny", time_crop="causal")
    path = str(tmp_path_factory.mktemp("model") / "tiny_causal.keras")
    model.save(path)
    return path


def _table(text, heading):
    """Rows (lists of cells) of the first Markdown table after ``heading``."""
    lines = text[text.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    header, body = rows[0], rows[2:]
    return header, {row[0]: dict(zip(header, row, strict=True)) for row in body}


def _positive(cell):
    value = float(cell)
    assert math.isfinite(value) and value > 0, cell
    return value


@pytest.mark.slow
def test_full_run_with_model_and_devset(tmp_path, devset, tiny_keras):
    output = tmp_path / "tflite.md"
    argv = [
        "tflite_speed.py",
        f"--model={tiny_keras}",
        "--seconds=1",
        "--repeats=1",
        f"--devset={devset}",
        "--devset_limit=2",
        f"--output={output}",
    ]
    assert bench.main(argv) == 0
    text = output.read_text()
    # the page starts with the exact command and names the model file and its trained weights
    first = text.splitlines()[:5]
    assert first[2] == "```" and first[3] == "python benchmarks/tflite_speed.py " + " ".join(argv[1:])
    assert f"`{tiny_keras}`, trained weights" in text and "random weights" not in text

    header, speed = _table(text, "## Speed and memory")
    assert list(speed) == list(bench.VARIANT_NAMES)
    for name, row in speed.items():
        assert _positive(row["size (MB)"])
        rtf = _positive(row["RTF (1 thread)"])
        _positive(row["CPU RTF"])
        peak = _positive(row["peak RSS (MB)"])
        after_imports = _positive(row["RSS after imports (MB)"])
        assert peak >= after_imports
        if name.startswith("streaming"):
            assert _positive(row["per-hop time (ms)"]) < 6.25 * 20  # sanity: not seconds per hop
        if name in ("keras", "savedmodel"):
            assert row["XNNPACK"] == "-" and row["RTF goal (issue 16)"] == "-"
            assert after_imports > 200  # TensorFlow is loaded in these workers
        elif name.startswith("offline"):
            assert row["RTF goal (issue 16)"] == "-"
        else:
            target = 0.12 if row["quantization"] == "float32" else 0.03
            assert row["RTF goal (issue 16)"] == f"<= {target:g}: {'met' if rtf <= target else 'not met'}"
    # LiteRT workers do not import TensorFlow, so their baseline is far below TF's
    assert "checked, `tensorflow` absent" in text
    assert float(speed["streaming_float32"]["RSS after imports (MB)"]) < float(
        speed["keras"]["RSS after imports (MB)"]
    )

    _, goals = _table(text, "## Goals (issue 16)")
    best = float(speed["streaming_float32"]["RTF (1 thread)"])
    assert goals["streaming float32"]["status"] == ("met" if best <= 0.12 else "not met")
    assert float(goals["streaming float32"]["best measured RTF"]) == pytest.approx(best, abs=1e-4)

    _, quality = _table(text, "## Quality")
    assert list(quality) == list(bench.VARIANT_NAMES)
    for name, row in quality.items():
        for column in ("SI-SNR (dB)", "delta SI-SNR vs Keras (dB)", "PESQ-WB"):
            assert math.isfinite(float(row[column])), (name, column, row[column])
        if name == "keras":
            assert row["SI-SNR vs Keras float32 (dB)"] == "reference"
        else:
            assert math.isfinite(float(row["SI-SNR vs Keras float32 (dB)"]))
    # float32 LiteRT and the SavedModel reproduce the Keras model; float16 weights stay close
    assert float(quality["savedmodel"]["SI-SNR vs Keras float32 (dB)"]) > 50
    assert float(quality["streaming_float32"]["SI-SNR vs Keras float32 (dB)"]) > 40
    assert float(quality["streaming_float16"]["SI-SNR vs Keras float32 (dB)"]) > 30
    assert "first 2 noisy/clean pairs" in text
    # full-int8 calibration uses the unscored third file, never a scored one
    assert "the dev-set noisy file 0002.wav (not scored)" in text
    assert "Latency: algorithmic latency = the look-ahead `model.lookahead_samples` = 399 samples" in text
    _, floor = _table(text, "## Compute floor of this CPU")
    assert float(floor["streaming float32"]["best measured RTF"]) == pytest.approx(best, abs=1e-4)
    assert _positive(floor["streaming float32"]["x float32 floor"]) > 0


@pytest.mark.slow
def test_preset_random_weights_without_devset(tmp_path):
    output = tmp_path / "preset.md"
    argv = ["tflite_speed.py", "--preset=tiny", "--seconds=1", "--repeats=1", "--variants=keras"]
    assert bench.main(argv + [f"--output={output}"]) == 0
    text = output.read_text()
    assert "preset `tiny`, random weights" in text and "trained weights" not in text
    # the machine line names the CPU and the load around the timed variants (whether the cores were shared)
    assert re.search(r"^Run on .+ \(\d+ cores; 1-minute load average \d+\.\d before the timed variants and "
                     r"\d+\.\d after", text, re.M), text.splitlines()[6]  # fmt: skip
    _, speed = _table(text, "## Speed and memory")
    assert list(speed) == ["keras"]
    _positive(speed["keras"]["RTF (1 thread)"])
    _positive(speed["keras"]["peak RSS (MB)"])
    _, quality = _table(text, "## Quality")
    assert list(quality) == ["keras"] and quality["keras"]["SI-SNR vs Keras float32 (dB)"] == "reference"
    assert "No development set given" in text and "Full-int8 calibration (streaming_int8): not used" in text
    _, goals = _table(text, "## Goals (issue 16)")
    assert {r["status"] for r in goals.values()} == {"not measured"}


def test_goal_rows_are_computed():
    def row(name, quantization, rtf, mode="streaming", si_snr=10.0):
        return {
            "name": name,
            "kind": "tflite",
            "mode": mode,
            "quantization": quantization,
            "rtf": rtf,
            "si_snr": si_snr,
        }

    rows = [
        row("offline_float32", "float32", 0.01, mode="offline"),  # goals are for streaming files
        row("streaming_float32", "float32", 0.12),
        row("streaming_int8", "int8", 0.02, si_snr=9.8),  # 0.2 dB cost: does not count
        row("streaming_dynamic_int8", "dynamic_int8", 0.031, si_snr=9.95),
        {
            "name": "keras",
            "kind": "keras",
            "mode": "whole signal",
            "quantization": "float32",
            "rtf": 0.001,
            "si_snr": 10.0,
        },
    ]
    (_, t1, best1, met1), (_, t2, best2, met2) = bench.goal_rows(rows)
    assert (t1, best1["name"], met1) == (0.12, "streaming_float32", True)  # <= is met
    assert (t2, best2["name"], met2) == (0.03, "streaming_dynamic_int8", False)
    assert bench._row_goal(rows[3]) == "<= 0.03: not met" and bench._row_goal(rows[4]) == "-"
    assert bench._row_goal(rows[0]) == "-"


def test_floor_section_states_the_gap_to_the_measured_floors():
    litert = {"float32": 40e9, "dynamic_int8": 44e9, "int8": 50e9}
    floor = {"cpu": "Test CPU, avx2 fma", "macs_per_second": 4e9, "gemm_flops": 100e9}
    floor.update(litert_macs=litert)
    best = {"name": "streaming_k4_float32", "rtf": 0.2, "quantization": "float32"}
    quantized = {"name": "streaming_k4_mixed_int8", "rtf": 0.1, "quantization": "mixed_int8"}
    lines = bench._floor_lines(
        floor,
        [
            ("streaming float32", 0.12, best, False),
            ("quantized", 0.03, quantized, False),
            ("x", 0.03, None, None),
        ],
    )
    text = "\n".join(lines)
    assert "CPU: Test CPU, avx2 fma (one thread)" in text and "4.000 GMACs per second" in text
    assert "float32 40.0 GMAC/s, dynamic_int8 44.0 GMAC/s, int8 50.0 GMAC/s" in text
    # float32 floor: TensorFlow's 50 GMAC/s beats LiteRT's 40 -> 4 / 50 = RTF 0.08, goal 1.3 x 0.08
    assert "TensorFlow's float32" in text and "50.0 GMAC/s; LiteRT's" in text
    assert "faster float32 GEMM (50.0 GMAC/s)" in text and "RTF 0.0800" in text
    assert "RTF <= 0.1040 here" in text
    # int8 floor: 4 GMAC/s of audio at the faster int8 GEMM (50 GMAC/s), 1.25x LiteRT's float32
    assert "run at 1.25x LiteRT's float32" in text and "cannot go below RTF 0.0800" in text
    assert "below that floor, out of reach on this CPU" in text
    assert "| streaming float32 | 0.2000 | streaming_k4_float32 | 2.50 | 2.50 | no |" in text
    assert "| quantized | 0.1000 | streaming_k4_mixed_int8 | 1.25 | 1.25 | yes |" in text
    assert "| x | n/a | n/a | n/a | n/a | not measured |" in text
    floor.update(litert_macs=dict(litert, int8=400e9))
    assert "above it" in "\n".join(bench._floor_lines(floor, []))


def test_float32_floor_takes_the_faster_gemm():
    floor = {"macs_per_second": 4e9, "gemm_flops": 60e9, "litert_macs": {"float32": 40e9}}
    assert bench.float32_floor(floor) == (40e9, 0.1)  # LiteRT's 40 GMAC/s beats TensorFlow's 30
    floor["gemm_flops"] = 100e9
    assert bench.float32_floor(floor) == (50e9, 0.08)


@pytest.mark.slow
def test_litert_gemm_probe_measures_each_quantization():
    macs = harness.litert_gemm_macs(n=128, rounds=2)
    assert set(macs) == set(harness.LITERT_GEMM_QUANTIZATIONS)
    assert all(1e8 < v < 1e13 for v in macs.values()), macs


@pytest.mark.slow
def test_gemm_probe_measures_this_cpu():
    flops = harness.gemm_flops(n=256, rounds=2)
    assert 1e8 < flops < 1e13  # one core: between 0.1 GFLOP/s and 10 TFLOP/s
    assert harness.cpu_description()


def test_calibration_sources(tmp_path, devset):
    rest = [os.path.join(devset, "noisy", "0002.wav")]
    signals, text = bench.calibration_signals(None, rest, count=4, seconds=0.5)
    assert len(signals) == 1 and signals[0].shape == (8000,)
    assert "0002.wav (not scored)" in text and "only 1 of the 4" in text
    signals, text = bench.calibration_signals(None, [], count=2, seconds=0.5)
    assert len(signals) == 2 and "synthetic" in text
    signals, text = bench.calibration_signals(os.path.join(devset, "clean"), rest, count=2, seconds=2.0)
    assert [s.shape for s in signals] == [(SR,), (SR,)] and "clean" in text
    with pytest.raises(bench.BenchmarkError, match=f"calibration: {tmp_path}: no audio files"):
        bench.calibration_signals(str(tmp_path), rest, count=2, seconds=1.0)


@pytest.mark.slow
def test_streaming_rows_with_several_hops_per_call(tmp_path, tiny_keras):
    output = tmp_path / "hops.md"
    argv = ["tflite_speed.py", f"--model={tiny_keras}", "--seconds=1", "--repeats=1"]
    argv += ["--variants=streaming_float32"]
    assert bench.main(argv + ["--hops_per_call=4,1", f"--output={output}"]) == 0
    text = output.read_text()
    _, speed = _table(text, "## Speed and memory")
    assert list(speed) == ["streaming_float32", "streaming_k4_float32", "keras"]
    one, four = (
        _positive(speed[n]["per-hop time (ms)"]) for n in ("streaming_float32", "streaming_k4_float32")
    )
    assert four < 4 * one  # per STFT hop, not per invoke of four hops
    _, quality = _table(text, "## Quality")
    for name in ("streaming_float32", "streaming_k4_float32"):
        assert float(quality[name]["SI-SNR vs Keras float32 (dB)"]) > 40
    assert "A `streaming_kK_*` row runs K hops per invoke" in text


@pytest.mark.slow
def test_per_call_scale_rows(tmp_path, tiny_keras):
    output = tmp_path / "per_call.md"
    argv = ["tflite_speed.py", f"--model={tiny_keras}", "--seconds=1", "--repeats=1", "--per_call_scales"]
    argv += [
        "--variants=streaming_float32,streaming_dynamic_int8",
        "--hops_per_call=1,4",
        f"--output={output}",
    ]
    assert bench.main(argv) == 0
    _, speed = _table(output.read_text(), "## Speed and memory")
    # one per-call row for the dynamic-range file of several hops only
    assert sorted(speed) == sorted(
        [
            "streaming_float32",
            "streaming_k4_float32",
            "streaming_dynamic_int8",
            "streaming_k4_dynamic_int8",
            "streaming_k4_dynamic_int8_per_call",
            "keras",
        ]
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--hops_per_call=0"], r"--hops_per_call: each must be in \[1, 64\]; received \['0'\]"),
        (["--model=/nonexistent/model.keras"], r"/nonexistent/model.keras: no such \.keras file"),
        (["--variants=savedmodel,bogus"], r"--variants: unknown \['bogus'\]"),
        (["--devset=/nonexistent/devset"], r"/nonexistent/devset/noisy: no such folder"),
    ],
)
def test_bad_input_one_line_error(tmp_path, capsys, extra, message):
    output = tmp_path / "never.md"
    assert bench.main(["tflite_speed.py", "--preset=tiny", f"--output={output}"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not output.exists()
