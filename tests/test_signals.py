import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import signals


def test_speech_like_signals_levels_and_determinism():
    a = signals.speech_like_signals(count=3, seconds=1.0, seed=4)
    b = signals.speech_like_signals(count=3, seconds=1.0, seed=4)
    assert [x.shape for x in a] == [(16000,)] * 3 and all(x.dtype == np.float32 for x in a)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
        rms_db = 10 * np.log10(np.mean(x.astype(np.float64) ** 2))
        assert -40 < rms_db < -10 and np.abs(x).max() <= 1


def test_harmonic_speech_peak_pauses_and_seed():
    x = signals.harmonic_speech(2.0, seed=1)
    assert x.shape == (32000,) and np.abs(x).max() == pytest.approx(0.3, rel=1e-5)
    assert np.mean(np.abs(x) < 1e-4) > 0.2  # gated syllables: pauses between them
    assert not np.array_equal(x, signals.harmonic_speech(2.0, seed=2))


def test_folder_signals_reads_the_start_of_files_in_order(tmp_path):
    (tmp_path / "b").mkdir()
    sf.write(tmp_path / "b" / "z.wav", np.full(16000, 0.25, "float32"), 16000)
    sf.write(tmp_path / "a.flac", np.full(8000, 0.5, "float32"), 8000)  # resampled to 16 kHz
    (tmp_path / "notes.txt").write_text("not audio")
    got, paths = signals.folder_signals(str(tmp_path), count=5, seconds=0.5)
    assert paths == [str(tmp_path / "a.flac"), str(tmp_path / "b" / "z.wav")]
    assert [x.shape for x in got] == [(8000,), (8000,)]
    assert got[1][100] == pytest.approx(0.25, abs=1e-4)
    assert len(signals.folder_signals(str(tmp_path), count=1, seconds=0.5)[0]) == 1
    with pytest.raises(ValueError, match=f"{tmp_path / 'b' / 'z.wav'}: no such folder"):
        signals.folder_signals(str(tmp_path / "b" / "z.wav"), 1, 1.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no audio files"):
        signals.folder_signals(str(tmp_path / "empty"), 1, 1.0)
