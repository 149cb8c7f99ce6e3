import keras
import numpy as np
import pytest

from keras_dccrn.layers.complex_norm import ComplexBatchNormalization
from keras_dccrn.testing import run_layer_test


def inv_sqrt_2x2(m):
    vals, vecs = np.linalg.eigh(m)
    return vecs @ np.diag(vals**-0.5) @ vecs.T


def test_complex_whitening_matches_numpy(rng):
    c = 3
    mix = rng.standard_normal((c, 2, 2))
    z = rng.standard_normal((4, 5, 6, c, 2))
    z = np.einsum("...ck,cjk->...cj", z, mix) + rng.standard_normal((c, 2))
    x = np.concatenate([z[..., 0], z[..., 1]], -1).astype("float32")  # [..., real | imag]
    layer = ComplexBatchNormalization(mode="complex", epsilon=1e-5)
    layer.build(x.shape)
    w_rr, w_ri, w_ii = 1.3, 0.2, 0.7
    layer.w_rr.assign(np.full(c, w_rr, "float32"))
    layer.w_ri.assign(np.full(c, w_ri, "float32"))
    layer.w_ii.assign(np.full(c, w_ii, "float32"))
    layer.b_r.assign(np.arange(c, dtype="float32"))
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    flat = z.reshape(-1, c, 2)
    for ch in range(c):
        d = flat[:, ch] - flat[:, ch].mean(0)
        cov = d.T @ d / len(d) + 1e-5 * np.eye(2)
        white = d @ inv_sqrt_2x2(cov).T
        ref = white @ np.array([[w_rr, w_ri], [w_ri, w_ii]]).T + np.array([ch, 0.0])
        got = np.stack([y[..., ch].ravel(), y[..., c + ch].ravel()], -1)
        np.testing.assert_allclose(got, ref, atol=1e-4)


def test_moving_statistics_used_in_inference(rng):
    x = (rng.standard_normal((16, 4, 4, 4)) + 5).astype("float32")
    layer = ComplexBatchNormalization(momentum=0.0)
    train_out = keras.ops.convert_to_numpy(layer(x, training=True))
    infer_out = keras.ops.convert_to_numpy(layer(x, training=False))
    # momentum 0: the moving statistics equal the last batch's
    np.testing.assert_allclose(infer_out, train_out, atol=1e-3)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(mode="batch"), "batch"),
        (dict(mode="naive"), r"`mode` must be one of \('complex',\).*received 'naive'"),
        (dict(momentum=1.5), "1.5"),
        (dict(epsilon=0), "epsilon"),
    ],
)
def test_invalid_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        ComplexBatchNormalization(**bad)


def test_config_round_trip(rng):
    x = rng.standard_normal((2, 5, 3, 8)).astype("float32")
    layer = ComplexBatchNormalization(mode="complex", momentum=0.8, epsilon=1e-3)
    run_layer_test(layer, x, training=False, expected_output_shape=x.shape)
