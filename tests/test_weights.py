"""Tests of keras_dccrn.training.weights: weight archives for backups and warm starts."""

import keras
import numpy as np
import pytest

from keras_dccrn import build_model
from keras_dccrn.training.weights import WeightsError, read_average, read_weights, write_weights


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = build_model("tiny")
    model(np.zeros((1, 1600), "float32"))
    return model


def _values(model):
    """``{position: value}`` of the archived variables (paths differ between models of one process)."""
    return {
        i: np.asarray(v.numpy())
        for i, v in enumerate(v for v in model.variables if "seed_generator" not in v.path)
    }


def _perturb_statistics(model):
    for v in model.variables:
        if "moving_mean" in v.path:
            v.assign(np.full(v.shape, 0.25, "float32"))


def test_float32_round_trip_is_exact_and_includes_batch_norm_statistics(tmp_path):
    source, target = _model(0), _model(1)
    _perturb_statistics(source)
    path = tmp_path / "w.npz"
    write_weights(source, path)
    read_weights(target, path)
    expected, got = _values(source), _values(target)
    assert expected.keys() == got.keys()
    assert any("moving_mean" in v.path for v in target.variables)
    assert np.any([np.all(v.numpy() == 0.25) for v in target.variables if "moving_mean" in v.path])
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_float16_archive_holds_half_the_bytes_and_is_close(tmp_path):
    source, target = _model(0), _model(1)
    write_weights(source, tmp_path / "w32.npz")
    write_weights(source, tmp_path / "w16.npz", dtype="float16")
    payload = {n: sum(a.nbytes for a in np.load(tmp_path / f"w{n}.npz").values()) for n in (16, 32)}
    assert payload[16] * 2 == payload[32]
    read_weights(target, tmp_path / "w16.npz")
    for name, value in _values(source).items():
        np.testing.assert_allclose(_values(target)[name], value, rtol=1e-3, atol=1e-4, err_msg=name)
        assert _values(target)[name].dtype == np.float32


def test_reads_a_keras_file_of_the_same_preset(tmp_path):
    source, target = _model(0), _model(1)
    source.save(tmp_path / "m.keras")
    read_weights(target, tmp_path / "m.keras")
    for name, value in _values(source).items():
        np.testing.assert_array_equal(_values(target)[name], value, err_msg=name)


def test_errors_name_the_file_and_the_problem(tmp_path):
    model = _model(0)
    with pytest.raises(WeightsError, match="no such weights file"):
        read_weights(model, tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="junk.npz: not a readable weight archive"):
        read_weights(model, tmp_path / "junk.npz")
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(WeightsError, match="not a weight archive"):
        read_weights(model, tmp_path / "w.h5")
    other = build_model("tiny", channels=[6, 12, 12, 12, 12, 12])
    other(np.zeros((1, 1600), "float32"))
    write_weights(other, tmp_path / "other.npz")
    with pytest.raises(WeightsError, match="other.npz: .*shape"):
        read_weights(model, tmp_path / "other.npz")
    arrays = dict(np.load(tmp_path / "other.npz"))
    arrays.pop(next(iter(arrays)))
    np.savez(tmp_path / "fewer.npz", **arrays)
    with pytest.raises(WeightsError, match="another architecture"):
        read_weights(other, tmp_path / "fewer.npz")
    with pytest.raises(ValueError, match="float16"):
        write_weights(model, tmp_path / "w.npz", dtype="int8")
    with pytest.raises(ValueError, match=".npz"):
        write_weights(model, tmp_path / "w.h5")


def test_average_is_the_elementwise_mean_of_the_files(tmp_path):
    sources = [_model(seed) for seed in (0, 1, 2)]
    _perturb_statistics(sources[0])
    paths = []
    for i, source in enumerate(sources):
        paths.append(tmp_path / f"w{i}.npz")
        write_weights(source, paths[-1])
    paths[2] = tmp_path / "w2.keras"  # archives and .keras files mix
    sources[2].save(paths[2])
    target = _model(3)
    read_average(target, paths)
    values = [_values(source) for source in sources]
    for name, got in _values(target).items():
        expected = (values[0][name].astype("float64") + values[1][name] + values[2][name]) / 3
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=name)
    assert not np.allclose(_values(target)[0], values[0][0])  # not one of the sources


def test_average_checks_every_file_before_assigning(tmp_path):
    model = _model(0)
    write_weights(model, tmp_path / "w.npz")
    before = _values(model)
    other = build_model("tiny", channels=[6, 12, 12, 12, 12, 12])
    other(np.zeros((1, 1600), "float32"))
    write_weights(other, tmp_path / "other.npz")
    with pytest.raises(WeightsError, match="other.npz: .*shape"):
        read_average(model, [tmp_path / "w.npz", tmp_path / "other.npz"])
    for name, value in _values(model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    with pytest.raises(ValueError, match=r"received \[\]"):
        read_average(model, [])
