"""NumPy references of the Uformer feature-map layers (shared by their test modules)."""

import keras
import numpy as np

from keras_dccrn.layers.complex_dense import ComplexDense

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
