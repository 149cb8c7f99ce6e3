import keras
import numpy as np
import pytest

from keras_dccrn.layers.conformer import (
    AxialAttention,
    BranchInteraction,
    ComplexDense,
    DilatedConvModule,
    DualPathConformerBlock,
    EncoderDecoderAttention,
    FeedForward,
    complex_attention,
    local_attention_mask,
    real_attention,
)
from keras_dccrn.testing import run_layer_test

ATOL = 2e-5


def npy(x):
    return keras.ops.convert_to_numpy(x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, mask=None):
    if mask is not None:
        x = np.where(mask, x, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention(q, k, v, mask=None):
    return softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]), mask) @ v


def np_complex_attention(q, k, v, mask=None):
    """The eight real attentions of the Complex Transformer, written out."""
    d, dv = q.shape[-1] // 2, v.shape[-1] // 2
    qr, qi, kr, ki = q[..., :d], q[..., d:], k[..., :d], k[..., d:]
    vr, vi = v[..., :dv], v[..., dv:]

    def a(x, y, z):
        return attention(x, y, z, mask)

    real = a(qr, kr, vr) - a(qr, ki, vi) - a(qi, kr, vi) - a(qi, ki, vr)
    imag = a(qr, kr, vi) + a(qr, ki, vr) + a(qi, kr, vr) - a(qi, ki, vi)
    return np.concatenate([real, imag], -1)


def layer_norm(x, layer, eps=1e-5):
    gamma, beta = (npy(w) for w in layer.weights)
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def dense(x, layer):
    """NumPy ComplexDense / Dense with the layer's weights."""
    if isinstance(layer, ComplexDense):
        wr, wi = npy(layer.real_kernel), npy(layer.imag_kernel)
        c = wr.shape[0]
        xr, xi = x[..., :c], x[..., c:]
        y = np.concatenate([xr @ wr - xi @ wi, xr @ wi + xi @ wr], -1)
        return y + npy(layer.bias) if layer.use_bias else y
    w = [npy(v) for v in layer.weights]
    return x @ w[0] + (w[1] if len(w) > 1 else 0.0)


def swish(x):
    return x * sigmoid(x)


def randomize(layer, rng, scale=0.3):
    """Non-trivial weights (norm offsets and biases are zero at init)."""
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * scale + (1.0 if "gamma" in w.path else 0.0))


def test_complex_dense_is_complex_matmul(rng):
    x = rng.standard_normal((3, 5, 8)).astype("float32")
    layer = ComplexDense(6)
    layer.build(x.shape)
    randomize(layer, rng)
    y = npy(layer(x))
    z = x[..., :4] + 1j * x[..., 4:]
    w = npy(layer.real_kernel) + 1j * npy(layer.imag_kernel)
    b = npy(layer.bias)
    ref = z @ w + (b[:6] + 1j * b[6:])
    assert y.shape == (3, 5, 12)
    np.testing.assert_allclose(y[..., :6], ref.real, atol=ATOL)
    np.testing.assert_allclose(y[..., 6:], ref.imag, atol=ATOL)


@pytest.mark.parametrize("masked", [False, True])
def test_complex_attention_is_combination_of_real_attentions(rng, masked):
    q = rng.standard_normal((3, 7, 8)).astype("float32")
    k = rng.standard_normal((3, 7, 8)).astype("float32")
    v = rng.standard_normal((3, 7, 10)).astype("float32")
    mask = npy(local_attention_mask(7, 2, True)) if masked else None
    got = npy(complex_attention(q, k, v, mask))
    np.testing.assert_allclose(got, np_complex_attention(q, k, v, mask), atol=ATOL)
    np.testing.assert_allclose(npy(real_attention(q, k, v, mask)), attention(q, k, v, mask), atol=ATOL)


def test_complex_attention_closed_form_for_real_inputs(rng):
    # With zero imaginary parts, A(x, 0, v) and A(0, x, v) attend uniformly
    # (all scores 0), so Re = A(qr, kr, vr) - mean(vr), Im = 2 mean(vr).
    zeros = np.zeros((2, 5, 4))
    q = np.concatenate([rng.standard_normal((2, 5, 4)), zeros], -1).astype("float32")
    k = np.concatenate([rng.standard_normal((2, 5, 4)), zeros], -1).astype("float32")
    v = np.concatenate([rng.standard_normal((2, 5, 3)), zeros[..., :3]], -1).astype("float32")
    got = npy(complex_attention(q, k, v))
    qr, kr, vr = q[..., :4], k[..., :4], v[..., :3]
    mean = np.broadcast_to(vr.mean(-2, keepdims=True), vr.shape)
    np.testing.assert_allclose(got[..., :3], attention(qr, kr, vr) - mean, atol=ATOL)
    np.testing.assert_allclose(got[..., 3:], 2.0 * mean, atol=ATOL)


def test_local_attention_mask():
    causal = npy(local_attention_mask(5, 2, True))
    expected = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(causal, expected.astype(bool))
    sym = npy(local_attention_mask(5, 1, False))
    np.testing.assert_array_equal(sym, np.abs(np.subtract.outer(np.arange(5), np.arange(5))) <= 1)
    assert npy(local_attention_mask(4, None, False)).all()
    np.testing.assert_array_equal(npy(local_attention_mask(4, None, True)), np.tril(np.ones((4, 4), bool)))


def np_axial_attention(x, layer):
    """NumPy reference of AxialAttention (inference)."""
    b, t, f, _ = x.shape
    h, c = layer.num_heads, layer.channels
    d = c // h
    y = layer_norm(x, layer.norm)
    q, k, v = (dense(y, p) for p in layer.projections[:3])

    def heads(z):
        parts = [z[..., :c], z[..., c:]] if layer.complex_valued else [z]
        parts = [p.reshape(b, t, f, h, d) for p in parts]
        z = np.concatenate(parts, -1)
        return z.transpose(0, 2, 3, 1, 4) if layer.axis == "time" else z.transpose(0, 1, 3, 2, 4)

    mask = None
    if layer.axis == "time":
        delta = np.subtract.outer(np.arange(t), np.arange(t))
        mask = np.ones((t, t), bool)
        if layer.causal:
            mask &= delta >= 0
        if layer.context is not None:
            mask &= np.abs(delta) <= layer.context
    attend = np_complex_attention if layer.complex_valued else attention
    out = attend(heads(q), heads(k), heads(v), mask)
    out = out.transpose(0, 3, 1, 2, 4) if layer.axis == "time" else out.transpose(0, 1, 3, 2, 4)
    if layer.complex_valued:
        out = np.concatenate([out[..., :d].reshape(b, t, f, c), out[..., d:].reshape(b, t, f, c)], -1)
    else:
        out = out.reshape(b, t, f, c)
    return x + dense(out, layer.projections[3])


@pytest.mark.parametrize(
    "axis,complex_valued,causal,context",
    [
        ("time", True, True, 3),
        ("time", True, False, 2),
        ("time", False, True, None),
        ("time", False, False, 3),
        ("freq", True, True, None),
        ("freq", False, False, None),
    ],
)
def test_axial_attention_matches_numpy(rng, axis, complex_valued, causal, context):
    x = rng.standard_normal((2, 9, 4, 16 if complex_valued else 8)).astype("float32")
    layer = AxialAttention(
        num_heads=2, axis=axis, complex_valued=complex_valued, causal=causal, context=context, dropout=0.0
    )
    layer.build(x.shape)
    randomize(layer, rng)
    np.testing.assert_allclose(npy(layer(x)), np_axial_attention(x, layer), atol=1e-4)


@pytest.mark.parametrize("complex_valued", [True, False])
def test_time_attention_causal_and_local(rng, complex_valued):
    x = rng.standard_normal((1, 12, 4, 8)).astype("float32")
    layer = AxialAttention(2, "time", complex_valued=complex_valued, causal=True, context=3, dropout=0.0)
    a = npy(layer(x))
    x2 = x.copy()
    x2[:, 7:] += rng.standard_normal(x2[:, 7:].shape).astype("float32")  # change the future of frame 6
    b = npy(layer(x2))
    np.testing.assert_allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert np.abs(a[:, 7:] - b[:, 7:]).max() > 1e-3
    x3 = x.copy()
    x3[:, :3] += rng.standard_normal(x3[:, :3].shape).astype(
        "float32"
    )  # frames 0..2 are outside the window of frames >= 6
    c = npy(layer(x3))
    np.testing.assert_allclose(a[:, 6:], c[:, 6:], atol=1e-6)
    assert np.abs(a[:, 3:6] - c[:, 3:6]).max() > 1e-3


def test_non_causal_time_attention_looks_ahead_within_context(rng):
    x = rng.standard_normal((1, 12, 2, 8)).astype("float32")
    layer = AxialAttention(2, "time", complex_valued=True, causal=False, context=2, dropout=0.0)
    assert layer.lookahead_frames == 2
    a = npy(layer(x))
    x2 = x.copy()
    x2[:, 8:] += rng.standard_normal(x2[:, 8:].shape).astype("float32")
    b = npy(layer(x2))
    np.testing.assert_allclose(a[:, :6], b[:, :6], atol=1e-6)
    assert np.abs(a[:, 6] - b[:, 6]).max() > 1e-3


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


def test_branch_interaction_matches_numpy(rng):
    z = rng.standard_normal((2, 3, 4, 10)).astype("float32")
    m = rng.standard_normal((2, 3, 4, 7)).astype("float32")
    layer = BranchInteraction()
    layer.build([z.shape, m.shape])
    randomize(layer, rng)
    zo, mo = (npy(t) for t in layer([z, m]))
    gate_c = sigmoid(dense(m, layer.complex_gate))
    mag = np.sqrt(z[..., :5] ** 2 + z[..., 5:] ** 2 + 1e-8)
    gate_m = sigmoid(dense(mag, layer.real_gate))
    np.testing.assert_allclose(zo, z * np.concatenate([gate_c, gate_c], -1), atol=ATOL)
    np.testing.assert_allclose(mo, m * gate_m, atol=ATOL)
    # the magnitude branch changes magnitudes, never the phase of the complex features
    np.testing.assert_allclose(
        np.arctan2(zo[..., 5:], zo[..., :5]), np.arctan2(z[..., 5:], z[..., :5]), atol=1e-4
    )


@pytest.mark.parametrize("complex_valued", [True, False])
def test_encoder_decoder_attention_matches_numpy(rng, complex_valued):
    enc = rng.standard_normal((2, 3, 5, 8)).astype("float32")
    dec = rng.standard_normal((2, 3, 5, 8)).astype("float32")
    layer = EncoderDecoderAttention(attention_channels=3, complex_valued=complex_valued)
    layer.build([enc.shape, dec.shape])
    randomize(layer, rng)
    h = np.maximum(dense(enc, layer.encoder_proj) + dense(dec, layer.decoder_proj), 0.0)
    gate = sigmoid(dense(h, layer.gate))
    if complex_valued:
        gate = np.concatenate([gate, gate], -1)
    np.testing.assert_allclose(npy(layer([enc, dec])), enc * gate, atol=ATOL)


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
    lambda: ComplexDense(3, use_bias=False, name="cd"),
    lambda: FeedForward(expansion=2, complex_valued=False, dropout=0.2, name="ff"),
    lambda: AxialAttention(2, "time", complex_valued=True, causal=False, context=5, dropout=0.0, name="ta"),
    lambda: DilatedConvModule((3, 2), (1, 4), complex_valued=True, causal=False, dropout=0.0, name="dc"),
    lambda: DualPathConformerBlock(2, 2, (3, 2), (1, 2), complex_valued=False, context=6, name="blk"),
]


@pytest.mark.parametrize("make", LAYERS)
def test_config_round_trip(rng, make):
    x = rng.standard_normal((2, 6, 4, 8)).astype("float32")
    run_layer_test(make(), x)


@pytest.mark.parametrize(
    "make", [BranchInteraction, lambda: EncoderDecoderAttention(4, complex_valued=False)]
)
def test_config_round_trip_two_inputs(rng, make):
    layer = make()
    a = rng.standard_normal((2, 3, 4, 8)).astype("float32")
    b = rng.standard_normal((2, 3, 4, 6 if isinstance(layer, BranchInteraction) else 8)).astype("float32")
    run_layer_test(layer, [a, b])


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: ComplexDense(0), "units"),
        (lambda: FeedForward(expansion=-1), "expansion"),
        (lambda: FeedForward(dropout=1.5), "dropout"),
        (lambda: AxialAttention(axis="channel"), "channel"),
        (lambda: AxialAttention(num_heads=0), "num_heads"),
        (lambda: AxialAttention(context=0), "context"),
        (lambda: DilatedConvModule(kernel_size=(2, 3)), "odd"),
        (lambda: DilatedConvModule(dilations=()), "dilations"),
        (lambda: EncoderDecoderAttention(attention_channels=-2), "attention_channels"),
    ],
)
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        AxialAttention(num_heads=3)(np.zeros((1, 2, 2, 8), "float32"))
    with pytest.raises(ValueError, match="even channel axis"):
        ComplexDense(2)(np.zeros((1, 3), "float32"))


def test_mixed_precision_block(rng):
    x = rng.standard_normal((1, 8, 4, 8)).astype("float32")
    block = DualPathConformerBlock(2, 2, dilations=(1, 2), context=4, dtype="mixed_bfloat16")
    ref = DualPathConformerBlock(2, 2, dilations=(1, 2), context=4)
    y = block(x)
    ref(x)
    ref.set_weights(block.get_weights())
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    np.testing.assert_allclose(npy(keras.ops.cast(y, "float32")), npy(ref(x)), atol=0.15)
