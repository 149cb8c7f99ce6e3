import numpy as np
import pytest
from feature_map_references import (
    ATOL,
    attention,
    dense,
    layer_norm,
    np_complex_attention,
    npy,
    randomize,
)

from keras_dccrn.layers.attention import (
    AxialAttention,
    complex_attention,
    local_attention_mask,
    real_attention,
)
from keras_dccrn.testing import run_layer_test


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


def test_config_round_trip(rng):
    layer = AxialAttention(2, "time", complex_valued=True, causal=False, context=5, dropout=0.0, name="ta")
    run_layer_test(layer, rng.standard_normal((2, 6, 4, 8)).astype("float32"))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(axis="channel"), "channel"),
        (dict(num_heads=0), "num_heads"),
        (dict(context=0), "context"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AxialAttention(**kwargs)


def test_heads_must_divide_channels():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        AxialAttention(num_heads=3)(np.zeros((1, 2, 2, 8), "float32"))
