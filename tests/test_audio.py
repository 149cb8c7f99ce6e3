import numpy as np
import pytest
import soundfile as sf

from keras_dccrn.audio import AudioError, ResampleStream, read_audio, resample, write_audio


def dominant_freq(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resample_keeps_sine_frequency(sr):
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 1000 * t).astype("float32")
    y = resample(x, sr, 16000)
    assert len(y) == 16000
    assert abs(dominant_freq(y, 16000) - 1000) < 2


def test_resample_removes_content_above_new_nyquist():
    sr = 48000
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 12000 * t)  # above 8 kHz: must not alias to 4 kHz
    y = resample(x, sr, 16000)
    # interior (away from the filter's edge transients) is > 60 dB down
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 1e-3


@pytest.mark.parametrize(
    "rates", [(44100, 16000), (16000, 44100), (22050, 16000), (16000, 8000), (16000, 16000)]
)
@pytest.mark.parametrize("piece", [1, 7, 500, 20000])
def test_resample_stream_equals_resampling_whole(rates, piece):
    x = np.random.default_rng(0).standard_normal((2, 12345)).astype("float32")
    whole = resample(x, *rates)
    stream = ResampleStream(*rates, channels=2)
    starts = range(0, x.shape[1], piece)
    got = np.concatenate([stream.push(x[:, s : s + piece], final=s == starts[-1]) for s in starts], axis=1)
    assert got.shape == whole.shape
    np.testing.assert_allclose(got, whole, atol=1e-6)


def test_read_mixes_to_mono_and_resamples(tmp_path):
    path = tmp_path / "st.flac"
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([left, -left * 0 + 0.25], 1), 44100)
    mono, sr = read_audio(str(path))
    assert sr == 16000 and mono.ndim == 1 and len(mono) == 16000
    both, _ = read_audio(str(path), mono=False)
    assert both.shape == (2, 16000)
    np.testing.assert_allclose(mono, both.mean(0), atol=1e-6)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("not audio"), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros((0, 1)), 16000, format="WAV"), "no samples"),
        (lambda p: sf.write(p, np.array([0.1, np.nan, 0.2]), 16000, format="WAV", subtype="FLOAT"), "NaN"),
    ],
)
def test_bad_files_raise_one_line_error_naming_the_file(tmp_path, make, match):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=match) as info:
        read_audio(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_write_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "sub" / "x.wav"
    x = (np.random.default_rng(0).uniform(-0.5, 0.5, 1000)).astype("float32")
    write_audio(str(path), x, 16000, subtype="FLOAT")
    y, sr = read_audio(str(path))
    np.testing.assert_array_equal(x, y)
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]
    with pytest.raises(AudioError, match="x.xyz"):
        write_audio(str(tmp_path / "x.xyz"), x, 16000)
    assert not list(tmp_path.glob(".tmp-*"))
