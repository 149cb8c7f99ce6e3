import keras
import numpy as np
import pytest

from keras_dccrn.layers.stft import ISTFT, STFT, make_window, num_frames
from keras_dccrn.testing import run_layer_test


def db(err, ref):
    return 10 * np.log10(np.sum(err**2) / np.sum(ref**2))


@pytest.mark.parametrize(
    "frame_length,frame_step,fft_length,window",
    [
        (400, 100, 512, "hann"),
        (400, 160, 512, "hann"),
        (320, 160, 512, "sqrt_hann"),
        (512, 128, 512, "hamming"),
    ],
)
@pytest.mark.parametrize("length", [16000, 16037, 999])
def test_reconstruction_below_minus_60_db(rng, frame_length, frame_step, fft_length, window, length):
    x = rng.standard_normal((2, length)).astype("float32") * 0.1
    stft = STFT(frame_length, frame_step, fft_length, window)
    istft = ISTFT(frame_length, frame_step, fft_length, window)
    y = keras.ops.convert_to_numpy(istft(stft(x), length=length))
    assert y.shape == x.shape
    assert db(y - x, x) < -60


def test_stft_matches_numpy_reference(rng):
    x = rng.standard_normal((1, 1234)).astype("float32")
    spec = keras.ops.convert_to_numpy(STFT(400, 100, 512, "hann")(x))
    frames = num_frames(1234, 400, 100)
    assert spec.shape == (1, frames, 257, 2)
    padded = np.concatenate([np.zeros(300), x[0], np.zeros(frames * 100 + 400)])
    win = make_window("hann", 400)
    for t in (0, 3, frames - 1):
        ref = np.fft.rfft(padded[t * 100 : t * 100 + 400] * win, 512)
        np.testing.assert_allclose(spec[0, t, :, 0], ref.real, atol=2e-4)
        np.testing.assert_allclose(spec[0, t, :, 1], ref.imag, atol=2e-4)


def test_stft_is_causal_per_frame(rng):
    x = rng.standard_normal((1, 4000)).astype("float32")
    y = x.copy()
    y[0, 2000:] += 1.0
    stft = STFT()
    a = keras.ops.convert_to_numpy(stft(x))
    b = keras.ops.convert_to_numpy(stft(y))
    # frame t ends at sample (t + 1) * hop: frames 0..19 end at or before 2000
    np.testing.assert_array_equal(a[:, :20], b[:, :20])
    assert np.abs(a[:, 20] - b[:, 20]).max() > 0


@pytest.mark.parametrize(
    "bad", [dict(frame_length=0), dict(frame_step=500), dict(fft_length=256), dict(window="kaiser")]
)
def test_invalid_arguments_raise(bad):
    with pytest.raises(ValueError, match=str(list(bad.values())[0])):
        STFT(**bad)


def test_config_round_trip(rng):
    x = rng.standard_normal((2, 1600)).astype("float32")
    (spec,) = run_layer_test(STFT(320, 160, 512, "sqrt_hann"), x, atol=1e-4)
    run_layer_test(ISTFT(320, 160, 512, "sqrt_hann"), spec, atol=1e-5, length=1600)


def _hop_chunks(hops, sizes):
    start, k = 0, 0
    while start < hops:
        stop = min(hops, start + sizes[k % len(sizes)])
        yield start, stop
        start, k = stop, k + 1


@pytest.mark.parametrize("frame_length,frame_step", [(400, 100), (400, 160)])
def test_stft_and_istft_steps_on_chunks_equal_call(rng, frame_length, frame_step):
    hop, length = frame_step, 23 * frame_step + 17
    x = rng.standard_normal((2, length)).astype("float32") * 0.1
    stft, istft = STFT(frame_length, frame_step), ISTFT(frame_length, frame_step)
    spec = keras.ops.convert_to_numpy(stft(x))
    offline = keras.ops.convert_to_numpy(istft(spec, length=length))
    frames = spec.shape[1]
    padded = np.zeros((2, frames * hop), "float32")
    padded[:, :length] = x

    state = stft.initial_state(2)
    assert state.shape == (2, frame_length - frame_step)
    got = []
    for start, stop in _hop_chunks(frames, [1, 3, 2]):
        part, state = stft.step(padded[:, start * hop : stop * hop], state)
        got.append(keras.ops.convert_to_numpy(part))
    np.testing.assert_allclose(np.concatenate(got, 1), spec, atol=1e-5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(state), padded[:, -state.shape[1] :])

    ola = istft.initial_state(2)
    assert ola.shape == (2, (-(-frame_length // hop) - 1) * hop)
    out = []
    for start, stop in _hop_chunks(frames, [2, 1, 4]):
        samples, ola = istft.step(spec[:, start:stop], ola)
        assert samples.shape == (2, (stop - start) * hop)
        out.append(keras.ops.convert_to_numpy(samples))
    delay = frame_length - frame_step
    stream = np.concatenate(out, 1)
    np.testing.assert_allclose(stream[:, delay : delay + length], offline, atol=1e-5)
    assert db(stream[:, delay : delay + length] - x, x) < -60  # perfect reconstruction, delayed


def test_stft_step_takes_whole_hops(rng):
    stft = STFT()
    with pytest.raises(ValueError, match="whole hops of 100 samples; received 150"):
        stft.step(np.zeros((1, 150), "float32"), stft.initial_state(1))
