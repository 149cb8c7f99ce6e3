"""Tests of keras_dccrn.runtime.level: input level normalisation into the training range."""

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn.runtime import Enhancer, enhance, enhance_file
from keras_dccrn.runtime.level import (
    LEVEL_RANGE_DBFS,
    LeveledEnhancer,
    channel_levels,
    level_gains,
    leveled,
)


def _db(x):
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))


class Saturating(Enhancer):
    """A scale-dependent stand-in for a model: ``tanh(10 x) / 10``; records the level of its inputs."""

    def __init__(self):
        super().__init__("saturating", lookahead_samples=0, alignment=1)
        self.levels = []

    def run(self, batch):
        self.levels.append([_db(row) for row in batch])
        return np.tanh(10 * batch) / 10


def _reader(x):
    def read(start, stop):
        out = np.zeros((x.shape[0], stop - start), np.float32)
        lo, hi = max(start, 0), min(stop, x.shape[1])
        out[:, lo - start : hi - start] = x[:, lo:hi]
        return out

    return read


def test_range_is_the_mixing_default():
    from keras_dccrn.data import MixtureConfig

    assert tuple(MixtureConfig().level_range) == LEVEL_RANGE_DBFS


def test_level_is_the_rms_without_digital_silence(rng):
    rate = 8000
    # 1 s at -20, 1 s at -40 and 1 s at -30 dBFS, then 2 s of digital silence (blocks of 1 s: a block that
    # is partly silent counts whole); a silent second channel.
    parts = [10 ** (db / 20) * rng.standard_normal(n) for db, n in ((-20, rate), (-40, rate), (-30, rate))]
    speech = np.concatenate(parts)
    x = np.stack([np.concatenate([speech, np.zeros(2 * rate)]), np.zeros(len(speech) + 2 * rate)])
    levels = channel_levels(_reader(x.astype(np.float32)), x.shape[1], rate)
    np.testing.assert_allclose(levels[0], _db(speech), atol=1e-4)
    assert levels[1] == -np.inf
    # A signal shorter than a block; a long one.
    short = x[:, :100].astype(np.float32)
    np.testing.assert_allclose(channel_levels(_reader(short), 100, rate)[0], _db(short[0]), atol=1e-4)
    long = np.tile(speech, 30)[None].astype(np.float32)
    np.testing.assert_allclose(channel_levels(_reader(long), long.shape[1], rate)[0], _db(long[0]), atol=1e-4)
    with pytest.raises(ValueError, match="received 0"):
        channel_levels(_reader(short), 0, rate)


def test_gains_move_levels_to_the_nearest_edge_of_the_range():
    gains = level_gains([-50.0, -35.0, -25.0, -15.0, -5.0, -np.inf, -200.0])
    np.testing.assert_allclose(20 * np.log10(gains), [15.0, 0.0, 0.0, 0.0, -10.0, 0.0, 60.0], atol=1e-9)
    np.testing.assert_allclose(level_gains([-50.0], level_range=(-30.0, -20.0), max_gain_db=10.0), [10**0.5])
    with pytest.raises(ValueError, match=r"received \(-10.0, -20.0\)"):
        level_gains([-50.0], level_range=(-10.0, -20.0))
    with pytest.raises(ValueError, match="received -1"):
        level_gains([-50.0], max_gain_db=-1)


def test_leveled_enhancer_scales_in_and_back_out(rng):
    x = (0.001 * rng.standard_normal((2, 1000))).astype(np.float32)
    wrapped = LeveledEnhancer(Saturating(), [100.0, 1.0])
    expected = np.stack([np.tanh(1000 * x[0]) / 1000, np.tanh(10 * x[1]) / 10])
    np.testing.assert_allclose(wrapped(x), expected, rtol=1e-5, atol=1e-9)
    assert (wrapped.lookahead_samples, wrapped.alignment, wrapped.streams) == (0, 1, False)
    with pytest.raises(ValueError, match="2 gains for 3 channels"):
        wrapped(np.zeros((3, 10), np.float32))
    with pytest.raises(ValueError, match="finite and positive"):
        LeveledEnhancer(Saturating(), [0.0])
    inner = Saturating()
    assert leveled(inner, _reader(x), 1000, 16000, None) is inner
    assert leveled(inner, _reader(x * 30), 1000, 16000) is inner  # -25 dBFS: inside the range


@pytest.mark.parametrize("db", [-55.0, -25.0, -8.0])
def test_enhance_feeds_the_model_inside_the_range_and_keeps_the_input_level(rng, db):
    x = (10 ** (db / 20) * rng.standard_normal(16000)).astype(np.float32)
    model = Saturating()
    y = enhance(x, 16000, model=model, chunk_seconds=None)
    seen = model.levels[-1][0]
    assert -35.0 - 0.5 <= seen <= -15.0 + 0.5
    np.testing.assert_allclose(seen, np.clip(db, -35.0, -15.0), atol=0.5)
    gain = 10 ** ((seen - _db(x)) / 20)
    np.testing.assert_allclose(y, np.tanh(10 * gain * x) / (10 * gain), rtol=1e-4, atol=1e-8)
    raw = enhance(x, 16000, model=model, chunk_seconds=None, level_range=None)
    np.testing.assert_allclose(model.levels[-1][0], _db(x), atol=1e-3)
    np.testing.assert_allclose(raw, np.tanh(10 * x) / 10, rtol=1e-5, atol=1e-9)


def test_enhance_file_normalises_each_channel(tmp_path, rng):
    x = np.stack([0.0005 * rng.standard_normal(24000), 0.05 * rng.standard_normal(24000)]).astype(np.float32)
    sf.write(tmp_path / "in.wav", x.T, 8000, subtype="FLOAT")
    model = Saturating()
    enhance_file(model, str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), chunk_seconds=None)
    seen = model.levels[-1]
    np.testing.assert_allclose(seen[0], -35.0, atol=1.0)  # resampled to 16 kHz: about the same level
    np.testing.assert_allclose(seen[1], _db(x[1]), atol=1.0)  # -26 dBFS: unchanged
    out, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    np.testing.assert_allclose(_db(out[:, 0]), _db(x[0]), atol=1.0)  # the input's level kept


def test_streaming_backend_is_normalised_like_a_manual_gain(streaming_tflite_path, rng):
    from keras_dccrn.runtime import load_enhancer

    enhancer = load_enhancer(streaming_tflite_path)
    assert enhancer.streams
    x = (10 ** (-60 / 20) * rng.standard_normal(8000)).astype(np.float32)
    y = enhance(x, 16000, model=enhancer, chunk_seconds=0.1)
    gain = 10 ** ((-35 - _db(x)) / 20)
    manual = enhance(x * gain, 16000, model=enhancer, chunk_seconds=0.1, level_range=None) / gain
    np.testing.assert_allclose(y, manual, rtol=1e-4, atol=1e-7)


@pytest.fixture(scope="module")
def streaming_tflite_path(tiny_causal_files):
    return str(tiny_causal_files / "tiny_causal_streaming_float32.tflite")
