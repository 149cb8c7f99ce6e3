"""Tests of benchmarks/tflite_layers.py: every stateful layer profiled, the rows add up to the whole."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import tflite_layers  # noqa: E402


@pytest.fixture(scope="module")
def tiny_causal(tmp_path_factory):
    import keras

    from keras_dccrn import build_model

    keras.utils.set_random_seed(1)
    path = str(tmp_path_factory.mktemp("model") / "tiny_causal.keras")
    build_model("tiny", time_crop="causal").save(path)
    return path


@pytest.mark.slow
def test_page_lists_every_stateful_layer_and_the_whole_graph(tiny_causal, tmp_path):
    page = tmp_path / "layers.md"
    argv = ["tflite_layers.py", f"--model={tiny_causal}", "--quantizations=float32", "--invokes=5"]
    assert tflite_layers.main(argv + ["--repeats=1", f"--output={page}"]) == 0
    rows = [line for line in page.read_text().splitlines() if line.startswith("| ")][1:]
    names = [r.split("|")[1].strip() for r in rows]
    assert names[0] == "STFT (framing + DFT)" and names[-1] == "whole streaming graph"
    assert sum(n.endswith("(ComplexConv2D)") for n in names) == 6
    assert sum(n.endswith("(ComplexConv2DTranspose)") for n in names) == 6
    assert any(n.endswith("(ComplexLSTM)") for n in names)
    cells = {n: r.split("|")[2:-1] for n, r in zip(names, rows, strict=True)}
    layer_macs = sum(float(c[0]) for n, c in cells.items() if n != "whole streaming graph")
    assert float(cells["whole streaming graph"][0]) == pytest.approx(layer_macs, abs=0.02)
    assert float(cells["whole streaming graph"][1]) > 0
    (summary,) = [line for line in page.read_text().splitlines() if line.startswith("* float32:")]
    assert "Layer graphs in sequence" in summary and summary.endswith("Ops outside XNNPACK: none.")


def test_record_steps_finds_every_stateful_layer_of_one_hop():
    from keras_dccrn import build_model

    model = build_model("tiny", time_crop="causal")
    calls = tflite_layers.record_steps(model)
    kinds = [type(layer).__name__ for layer, _, _ in calls]
    assert kinds.count("ComplexConv2D") == 6 and kinds.count("ComplexConv2DTranspose") == 6
    assert "ComplexLSTM" in kinds
    assert all(x_shape[0] == 1 and state_shape[0] == 1 for _, x_shape, state_shape in calls)


def test_bad_flags_are_one_line(capsys):
    assert tflite_layers.main(["tflite_layers.py", "--quantizations=int4", "--output="]) == 2
    assert tflite_layers.main(["tflite_layers.py", "--preset=tiny", "--output="]) == 2  # not causal
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown ['int4']" in err[0] and "cannot stream" in err[1]
