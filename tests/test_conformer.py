import keras
import numpy as np
import pytest
from feature_map_references import ATOL, dense, layer_norm, npy, randomize, sigmoid, swish

from keras_dccrn import layers
from keras_dccrn.layers import conformer
from keras_dccrn.layers.conformer import DilatedConvModule, DualPathConformerBlock, FeedForward
from keras_dccrn.testing import run_layer_test


@pytest.mark.parametrize("complex_valued", [True, False])
def test_feed_forward_matches_numpy(rng, complex_valued):
    x = rng.standard_normal((2, 5, 3, 8)).astype("float32")
    layer = FeedForward(expansion=3, complex_valued=complex_valued, dropout=0.0)
    layer.build(x.shape)
    randomize(layer, rng)
    hidden = swish(dense(layer_norm(x, layer.norm), layer.dense_in))
    ref = x + 0.5 * dense(hidden, layer.dense_out)
    np.testing.assert_allclose(npy(layer(x)), ref, atol=ATOL)
    assert layer.dense_in.units == (12 if complex_valued else 24)


def np_complex_depthwise(z, kernel, bias, dilation, causal, kf):
    """Direct complex depthwise convolution, one tap at a time."""
    b, t, f, w = z.shape
    c = w // 2
    x = z[..., :c] + 1j * z[..., c:]
    k = kernel[..., 0]  # (kt, kf, 2c)
    k = k[..., :c] + 1j * k[..., c:]
    kt = k.shape[0]
    total = (kt - 1) * dilation
    left = total if causal else total // 2
    pf = kf // 2
    xp = np.pad(x, [(0, 0), (left, total - left), (pf, pf), (0, 0)])
    y = np.zeros((b, t, f, c), complex)
    for i in range(kt):
        for j in range(kf):
            y += k[i, j] * xp[:, i * dilation : i * dilation + t, j : j + f]
    return np.concatenate([y.real, y.imag], -1) + bias


@pytest.mark.parametrize("causal", [True, False])
def test_complex_depthwise_convolution_matches_numpy(rng, causal):
    x = rng.standard_normal((2, 10, 5, 6)).astype("float32")
    layer = DilatedConvModule(kernel_size=(3, 3), dilations=(1, 2), complex_valued=True, causal=causal)
    layer.build(x.shape)
    randomize(layer, rng)
    for kernel, bias, d in zip(layer.depth_kernels, layer.depth_biases, layer.dilations, strict=True):
        got = npy(layer._depthwise(x, kernel, bias, d))
        ref = np_complex_depthwise(x, npy(kernel), npy(bias), d, causal, 3)
        np.testing.assert_allclose(got, ref, atol=1e-4)


@pytest.mark.parametrize("complex_valued", [True, False])
def test_dilated_conv_module_matches_numpy(rng, complex_valued):
    x = rng.standard_normal((1, 9, 4, 8)).astype("float32")
    layer = DilatedConvModule((3, 2), (1, 2), complex_valued=complex_valued, causal=True, dropout=0.0)
    layer.build(x.shape)
    randomize(layer, rng)
    c = layer.channels
    y = dense(layer_norm(x, layer.norm), layer.pointwise_in)
    if complex_valued:
        z = np.concatenate(
            [y[..., :c] * sigmoid(y[..., c : 2 * c]), y[..., 2 * c : 3 * c] * sigmoid(y[..., 3 * c :])], -1
        )
    else:
        z = y[..., :c] * sigmoid(y[..., c:])
    for kernel, bias, norm, d in zip(
        layer.depth_kernels, layer.depth_biases, layer.depth_norms, layer.dilations, strict=True
    ):
        k, bb = npy(kernel), npy(bias)
        if complex_valued:
            conv = np_complex_depthwise(z, k, bb, d, True, 3)
        else:  # a real depthwise conv is the complex one with a zero imaginary kernel and input
            zz = np.concatenate([z, np.zeros_like(z)], -1)
            kk = np.concatenate([k, np.zeros_like(k)], 2)
            conv = np_complex_depthwise(zz, kk, 0.0, d, True, 3)[..., :c] + bb
        z = z + swish(layer_norm(conv, norm))
    ref = x + dense(z, layer.pointwise_out)
    np.testing.assert_allclose(npy(layer(x)), ref, atol=1e-4)


@pytest.mark.parametrize("complex_valued", [True, False])
def test_dilated_conv_causality_and_lookahead(rng, complex_valued):
    x = rng.standard_normal((1, 40, 3, 8)).astype("float32")
    causal = DilatedConvModule((3, 3), (1, 2, 4), complex_valued=complex_valued, causal=True, dropout=0.0)
    a = npy(causal(x))
    x2 = x.copy()
    x2[:, 20:] += rng.standard_normal(x2[:, 20:].shape).astype("float32")
    b = npy(causal(x2))
    np.testing.assert_allclose(a[:, :20], b[:, :20], atol=1e-6)
    # receptive field: (3 - 1) * (1 + 2 + 4) = 14 past frames
    x3 = x.copy()
    x3[:, :5] += rng.standard_normal(x3[:, :5].shape).astype("float32")
    c = npy(causal(x3))
    np.testing.assert_allclose(a[:, 5 + 14 :], c[:, 5 + 14 :], atol=1e-6)
    assert np.abs(a[:, 5 + 13] - c[:, 5 + 13]).max() > 0
    centred = DilatedConvModule((3, 3), (1, 2, 4), complex_valued=complex_valued, causal=False, dropout=0.0)
    assert centred.lookahead_frames == 7 and causal.lookahead_frames == 0
    a, b = npy(centred(x)), npy(centred(x2))
    np.testing.assert_allclose(a[:, : 20 - 7], b[:, : 20 - 7], atol=1e-6)
    assert np.abs(a[:, 20 - 7] - b[:, 20 - 7]).max() > 0


def test_conformer_block_causal_and_shapes(rng):
    x = rng.standard_normal((1, 30, 4, 16)).astype("float32")
    for complex_valued in (True, False):
        block = DualPathConformerBlock(
            num_heads=2,
            ffn_expansion=2,
            dilations=(1, 2),
            complex_valued=complex_valued,
            context=4,
            dropout=0.0,
        )
        a = npy(block(x))
        assert a.shape == x.shape and block.lookahead_frames == 0
        x2 = x.copy()
        x2[:, 17:] = rng.standard_normal(x2[:, 17:].shape)
        b = npy(block(x2))
        np.testing.assert_allclose(a[:, :17], b[:, :17], atol=1e-5)
        assert np.abs(a[:, 17:] - b[:, 17:]).max() > 1e-3
    block = DualPathConformerBlock(num_heads=2, dilations=(1, 2), causal=False, context=4)
    assert block.lookahead_frames == 4 + 3
    assert DualPathConformerBlock(causal=False, context=None).lookahead_frames is None


LAYERS = [
    lambda: FeedForward(expansion=2, complex_valued=False, dropout=0.2, name="ff"),
    lambda: DilatedConvModule((3, 2), (1, 4), complex_valued=True, causal=False, dropout=0.0, name="dc"),
    lambda: DualPathConformerBlock(2, 2, (3, 2), (1, 2), complex_valued=False, context=6, name="blk"),
]


@pytest.mark.parametrize("make", LAYERS)
def test_config_round_trip(rng, make):
    x = rng.standard_normal((2, 6, 4, 8)).astype("float32")
    run_layer_test(make(), x)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: FeedForward(expansion=-1), "expansion"),
        (lambda: FeedForward(dropout=1.5), "dropout"),
        (lambda: DilatedConvModule(kernel_size=(2, 3)), "odd"),
        (lambda: DilatedConvModule(dilations=()), "dilations"),
    ],
)
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_mixed_precision_block(rng):
    x = rng.standard_normal((1, 8, 4, 8)).astype("float32")
    block = DualPathConformerBlock(2, 2, dilations=(1, 2), context=4, dtype="mixed_bfloat16")
    ref = DualPathConformerBlock(2, 2, dilations=(1, 2), context=4)
    y = block(x)
    ref(x)
    ref.set_weights(block.get_weights())
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    np.testing.assert_allclose(npy(keras.ops.cast(y, "float32")), npy(ref(x)), atol=0.15)


@pytest.mark.parametrize("name", conformer.__all__)
def test_conformer_module_keeps_its_names(name):
    # models saved before the layers were split into modules import them from here
    obj = getattr(conformer, name)
    if isinstance(obj, type):
        assert getattr(layers, name) is obj
        assert keras.saving.get_registered_name(obj) == f"keras_dccrn>{name}"
