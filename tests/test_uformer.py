import keras
import numpy as np
import pytest

from keras_dccrn import build_model
from keras_dccrn.losses import SISNRLoss
from keras_dccrn.models import list_presets
from keras_dccrn.models.uformer import Uformer


def npy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return build_model("uformer_tiny")


def test_presets_registered():
    presets = list_presets()
    for name in ("uformer", "uformer_noncausal", "uformer_tiny"):
        assert name in presets
    assert build_model("uformer", build=False).causal
    assert not build_model("uformer_noncausal", build=False).causal


def test_tiny_is_small(tiny):
    params = sum(int(np.prod(w.shape)) for w in tiny.trainable_weights)
    assert 2_000 < params < 20_000, params


@pytest.mark.parametrize("length", [537, 1601, 4001])
def test_output_has_input_length(tiny, length):
    x = np.random.default_rng(0).standard_normal((2, length)).astype("float32") * 0.1
    y = npy(tiny(x))
    assert y.shape == (2, length)
    assert np.all(np.isfinite(y))


def test_stft_configuration(tiny):
    assert (tiny.stft.frame_length, tiny.stft.frame_step, tiny.stft.fft_length) == (400, 160, 512)
    assert (tiny.istft.frame_length, tiny.istft.frame_step, tiny.istft.fft_length) == (400, 160, 512)


def test_features_shapes(tiny):
    x = np.zeros((2, 3200), "float32")
    _, feats = tiny(x, return_features=True)
    assert len(feats) == 12
    frames = tiny.stft.compute_output_shape((2, 3200))[1]
    enc_freqs = [128, 64, 32, 16, 8, 4]
    enc_ch = [2 * c for c in tiny.complex_channels]
    for f, fr, ch in zip(feats[:6], enc_freqs, enc_ch, strict=True):
        assert tuple(f.shape) == (2, frames, fr, ch)
    dec_freqs = [8, 16, 32, 64, 128, 256]
    dec_ch = enc_ch[-2::-1] + [2]
    for f, fr, ch in zip(feats[6:], dec_freqs, dec_ch, strict=True):
        assert tuple(f.shape) == (2, frames, fr, ch)


def _future_change(model, length=16000, t=11000, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, length)).astype("float32") * 0.1
    x2 = x.copy()
    x2[:, t:] = rng.standard_normal((1, length - t)) * 0.1
    return npy(model(x)), npy(model(x2)), t


def test_causal_variant_is_causal_up_to_documented_lookahead(tiny):
    assert tiny.causal and tiny.lookahead_samples == 399
    a, b, t = _future_change(tiny)
    limit = t - tiny.lookahead_samples
    np.testing.assert_allclose(a[:, :limit], b[:, :limit], atol=1e-6)
    # tight to within two hops (where t falls in its hop, the window's zero end point)
    assert (
        np.abs(a[:, limit : limit + 2 * tiny.frame_step] - b[:, limit : limit + 2 * tiny.frame_step]).max()
        > 0
    )


def test_non_causal_variant_looks_ahead_within_its_bound():
    keras.utils.set_random_seed(1)
    model = build_model("uformer_tiny", causal=False)
    # 6 encoder + 6 decoder frames, attention context 8 and dilated convs (1 + 2) in the block
    assert model.lookahead_frames == 6 + 6 + 8 + 3
    assert model.lookahead_samples == 399 + 23 * 160
    a, b, t = _future_change(model)
    bound = t - model.lookahead_samples
    np.testing.assert_allclose(a[:, :bound], b[:, :bound], atol=1e-6)
    # it does look ahead: outputs well before t - 399 change
    assert np.abs(a[:, bound : t - 399 - 320] - b[:, bound : t - 399 - 320]).max() > 1e-6


@pytest.mark.slow
def test_uformer_parameter_count():
    model = build_model("uformer")
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert abs(params - 9.46e6) / 9.46e6 < 0.05, params
    assert model.lookahead_samples == 399
    noncausal = build_model("uformer_noncausal", build=False)
    assert noncausal.lookahead_samples == 399 + (6 + 6 + 4 * (100 + 15)) * 160


def test_keras_save_load_round_trip(tiny, tmp_path):
    x = np.random.default_rng(1).standard_normal((1, 3000)).astype("float32") * 0.1
    path = tmp_path / "uformer_tiny.keras"
    tiny.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Uformer)
    np.testing.assert_array_equal(npy(loaded(x)), npy(tiny(x)))
    assert loaded.get_config() == tiny.get_config()


def test_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = build_model("uformer_tiny")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(2).standard_normal((2, 2001)).astype("float32") * 0.1
    y, feats = model(x, return_features=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert tuple(y.shape) == (2, 2001) and np.all(np.isfinite(npy(y)))
    assert all(keras.backend.standardize_dtype(f.dtype) == "bfloat16" for f in feats)
    assert all(np.all(np.isfinite(npy(keras.ops.cast(f, "float32")))) for f in feats)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(complex_channels=[4, 0]), "complex_channels"),
        (dict(magnitude_channels=[4, 4]), "same length"),
        (dict(fft_length=200), "fft_length"),
        (dict(batch_norm="group"), "group"),
        (dict(num_blocks=-1), "num_blocks"),
        (dict(kernel_size=(5,)), "kernel_size"),
    ],
)
def test_invalid_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        build_model("uformer_tiny", build=False, **bad)


@pytest.mark.slow
def test_training_smoke_reduces_si_snr_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    clean = np.stack(
        [
            0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            for f in rng.uniform(200, 800, 8)
        ]
    )
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    clean, noisy = clean.astype("float32"), noisy.astype("float32")
    model = build_model("uformer_tiny")
    loss = SISNRLoss()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, jit_compile=False)
    before = float(npy(loss(clean, model(noisy))))
    model.fit(noisy, clean, batch_size=4, epochs=8, verbose=0)
    after = float(npy(loss(clean, model(noisy))))
    assert after < before - 1.0, (before, after)
