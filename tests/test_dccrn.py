import keras
import numpy as np
import pytest

from keras_dccrn import build_model
from keras_dccrn.losses import SISNRLoss
from keras_dccrn.models import list_presets


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return build_model("tiny")


@pytest.mark.parametrize("length", [1600, 16000, 16123, 537])
def test_output_has_input_length(tiny, length):
    x = np.random.default_rng(0).standard_normal((2, length)).astype("float32") * 0.1
    y = tiny(x)
    assert tuple(y.shape) == (2, length)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))


def test_features_shapes(tiny):
    x = np.zeros((2, 1600), "float32")
    _, feats = tiny(x, return_features=True)
    assert len(feats) == 12
    frames = tiny.stft.compute_output_shape((2, 1600))[1]
    enc_freqs = [128, 64, 32, 16, 8, 4]
    enc_ch = [4, 8, 8, 8, 8, 8]
    for f, fr, ch in zip(feats[:6], enc_freqs, enc_ch, strict=False):
        assert tuple(f.shape) == (2, frames, fr, ch)
    dec_freqs = [8, 16, 32, 64, 128, 256]
    dec_ch = [8, 8, 8, 8, 4, 2]
    for f, fr, ch in zip(feats[6:], dec_freqs, dec_ch, strict=False):
        assert tuple(f.shape) == (2, frames, fr, ch)


@pytest.mark.parametrize("time_crop", ["causal", "dccrn"])
def test_causality_and_documented_lookahead(time_crop):
    keras.utils.set_random_seed(1)
    model = build_model("tiny", time_crop=time_crop)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8000)).astype("float32") * 0.1
    t = 5000
    x2 = x.copy()
    x2[:, t:] = rng.standard_normal((1, 8000 - t)) * 0.1
    a = keras.ops.convert_to_numpy(model(x))
    b = keras.ops.convert_to_numpy(model(x2))
    limit = t - model.lookahead_samples
    np.testing.assert_allclose(a[:, :limit], b[:, :limit], atol=1e-6)
    # the bound is tight to within two hops (the exact first affected sample
    # depends on where t falls in its hop and on the window's zero end point;
    # through six untrained look-ahead layers the dependence is tiny but real)
    assert (
        np.abs(a[:, limit : limit + 2 * model.frame_step] - b[:, limit : limit + 2 * model.frame_step]).max()
        > 0
    )
    expected = 399 if time_crop == "causal" else 999
    assert model.lookahead_samples == expected


def test_dccrn_cl_parameter_count():
    model = build_model("dccrn_cl")
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert abs(params - 3.67e6) / 3.67e6 < 0.02, params


@pytest.mark.parametrize("preset", ["dccrn_e", "dccrn_c", "dccrn_r"])
def test_dccrn_e_c_r_use_the_official_default_channels(preset):
    # The official DCCRN code's default kernel_num is (16, 32, 64, 128, 256, 256): 3.74M parameters for
    # DCCRN-E, the paper's 3.7M (32-64-128-128-256-256 gave 3.98M).
    model = build_model(preset)
    assert model.get_config()["channels"] == [16, 32, 64, 128, 256, 256]
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert abs(params - 3.74e6) / 3.74e6 < 0.02, params


@pytest.mark.parametrize(
    "overrides", [dict(masking_mode="C"), dict(masking_mode="R", rnn_type="real"), dict(batch_norm="complex")]
)
def test_variants_run(overrides):
    model = build_model("tiny", **overrides)
    y = model(np.zeros((1, 900), "float32"))
    assert tuple(y.shape) == (1, 900)


def test_keras_save_load_round_trip(tiny, tmp_path):
    x = np.random.default_rng(1).standard_normal((1, 3000)).astype("float32") * 0.1
    path = tmp_path / "tiny.keras"
    tiny.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(tiny(x)))
    assert loaded.get_config() == tiny.get_config()


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(masking_mode="X"), "masking_mode"),
        (dict(channels=[3, 4]), "channels"),
        (dict(fft_length=200), "fft_length"),
        (dict(rnn_type="gru"), "gru"),
    ],
)
def test_invalid_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        build_model("tiny", build=False, **bad)


def test_unknown_preset():
    with pytest.raises(ValueError, match="nope"):
        build_model("nope")
    assert "dccrn_cl" in list_presets()


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
    model = build_model("tiny")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SISNRLoss())
    before = model.evaluate(noisy, clean, verbose=0)
    model.fit(noisy, clean, batch_size=4, epochs=8, verbose=0)
    after = model.evaluate(noisy, clean, verbose=0)
    assert after < before - 1.0, (before, after)


def _np_prelu(x, alpha):
    return np.maximum(x, 0) + alpha * np.minimum(x, 0)


@pytest.mark.parametrize("time_crop", ["dccrn", "causal"])
def test_decoder_batch_norm_statistics_are_taken_before_the_time_crop(time_crop):
    """Official DCCRN: ``decoder[i] = ConvTranspose -> BN -> PReLU`` on every frame, then ``out[..., 1:]``."""
    from test_complex_conv import reference_deconv, to_complex, weights

    keras.utils.set_random_seed(3)
    model = build_model("tiny", time_crop=time_crop)
    rng = np.random.default_rng(3)
    norm = model.decoder_norms[1]
    norm.gamma.assign(rng.uniform(0.5, 1.5, norm.gamma.shape).astype("float32"))
    norm.beta.assign(rng.uniform(-0.2, 0.2, norm.beta.shape).astype("float32"))
    x = (rng.standard_normal((2, 1600)) * 0.1).astype("float32")
    _, feats = model(x, training=True, return_features=True)
    feats = [keras.ops.convert_to_numpy(f) for f in feats]
    # decoder layer 1 reads complex_concat([decoder 0 output, encoder 4 output])
    z = np.concatenate([to_complex(feats[6]), to_complex(feats[4])], axis=-1)
    kernel, bias = weights(model.decoder_convs[1])
    # every frame of the transposed convolution (frames + 1): the causal crop of z padded by one frame
    full = reference_deconv(np.pad(z, [(0, 0), (0, 1), (0, 0), (0, 0)]), kernel, bias, 2, 2, 1, "causal")
    full = np.concatenate([full.real, full.imag], axis=-1)  # [B, T + 1, F, 2C] in the channel convention
    gamma, beta = keras.ops.convert_to_numpy(norm.gamma), keras.ops.convert_to_numpy(norm.beta)
    alpha = float(keras.ops.convert_to_numpy(model.decoder_acts[1].alpha).reshape(-1)[0])
    frames = z.shape[1]
    start = 1 if time_crop == "dccrn" else 0

    def bn_prelu(y):
        mean, var = y.mean(axis=(0, 1, 2)), y.var(axis=(0, 1, 2))
        return _np_prelu((y - mean) / np.sqrt(var + 1e-5) * gamma + beta, alpha)

    official = bn_prelu(full)[:, start : start + frames]
    np.testing.assert_allclose(feats[7], official, atol=1e-4)
    stats_after_crop = bn_prelu(full[:, start : start + frames])
    assert np.abs(stats_after_crop - official).max() > 1e-2  # the orders really differ on this input
