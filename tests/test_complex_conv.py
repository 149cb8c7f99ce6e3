import keras
import numpy as np
import pytest

from keras_dccrn.layers.complex_conv import ComplexConv2D, ComplexConv2DTranspose, polyphase_taps
from keras_dccrn.testing import run_layer_test


def to_complex(x):
    c = x.shape[-1] // 2
    return x[..., :c] + 1j * x[..., c:]


def weights(layer):
    w = {v.path.split("/")[-1]: keras.ops.convert_to_numpy(v) for v in layer.weights}
    kernel = w["real_kernel"] + 1j * w["imag_kernel"]
    # complex bias of the DCCRN form: real_conv has br, imag_conv has bi
    bias = (w["real_bias"] - w["imag_bias"]) + 1j * (w["real_bias"] + w["imag_bias"])
    return kernel, bias


def reference_conv(z, kernel, bias, stride_f, pad_f, causal):
    kt, kf, cin, cout = kernel.shape
    b, t, f, _ = z.shape
    left = kt - 1 if causal else (kt - 1) // 2
    right = 0 if causal else kt - 1 - left
    zp = np.pad(z, [(0, 0), (left, right), (pad_f, pad_f), (0, 0)])
    fo = (f + 2 * pad_f - kf) // stride_f + 1
    out = np.zeros((b, t, fo, cout), complex)
    for ti in range(t):
        for fi in range(fo):
            patch = zp[:, ti : ti + kt, fi * stride_f : fi * stride_f + kf, :]
            out[:, ti, fi] = np.einsum("btfc,tfco->bo", patch, kernel)
    return out + bias


def reference_deconv(z, kernel, bias, stride_f, pad_f, out_pad, crop):
    kt, kf, cout, cin = kernel.shape
    b, t, f, _ = z.shape
    full = np.zeros((b, t + kt - 1, (f - 1) * stride_f + kf, cout), complex)
    for ti in range(t):
        for fi in range(f):
            full[:, ti : ti + kt, fi * stride_f : fi * stride_f + kf] += np.einsum(
                "bc,tfoc->btfo", z[:, ti, fi], kernel
            )
    fo = (f - 1) * stride_f + kf - 2 * pad_f + out_pad
    start = 0 if crop == "causal" else kt - 1
    return full[:, start : start + t, pad_f : pad_f + fo] + bias


def randomize(layer, rng):
    for v in layer.weights:
        v.assign(rng.standard_normal(v.shape).astype("float32") * 0.3)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kernel_size,strides,pad", [((5, 2), (2, 1), 2), ((3, 3), (1, 1), 1)])
def test_complex_conv_matches_numpy(rng, causal, kernel_size, strides, pad):
    x = rng.standard_normal((2, 7, 16, 6)).astype("float32")
    layer = ComplexConv2D(4, kernel_size, strides, freq_padding=pad, causal=causal)
    layer.build(x.shape)
    randomize(layer, rng)
    y = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = weights(layer)
    ref = reference_conv(to_complex(x), kernel, bias, strides[0], pad, causal)
    assert y.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(to_complex(y), ref, atol=1e-4)


@pytest.mark.parametrize("crop", ["causal", "dccrn"])
def test_complex_deconv_matches_numpy(rng, crop):
    x = rng.standard_normal((2, 5, 8, 4)).astype("float32")
    layer = ComplexConv2DTranspose(3, (5, 2), (2, 1), freq_padding=2, output_padding=1, time_crop=crop)
    layer.build(x.shape)
    randomize(layer, rng)
    y = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = weights(layer)
    ref = reference_deconv(to_complex(x), kernel, bias, 2, 2, 1, crop)
    assert y.shape == (2, 5, 16, 6) == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(to_complex(y), ref, atol=1e-4)


def test_conv_causality(rng):
    layer = ComplexConv2D(2, (5, 2), (2, 1), causal=True)
    x = rng.standard_normal((1, 10, 16, 2)).astype("float32")
    x2 = x.copy()
    x2[:, 6:] += 1.0
    a, b = (keras.ops.convert_to_numpy(layer(v)) for v in (x, x2))
    np.testing.assert_array_equal(a[:, :6], b[:, :6])
    assert np.abs(a[:, 6:] - b[:, 6:]).max() > 0


def test_deconv_lookahead(rng):
    x = rng.standard_normal((1, 10, 8, 2)).astype("float32")
    x2 = x.copy()
    x2[:, 6:] += 1.0
    for crop, unchanged in (("causal", 6), ("dccrn", 5)):
        layer = ComplexConv2DTranspose(2, time_crop=crop)
        a, b = (keras.ops.convert_to_numpy(layer(v)) for v in (x, x2))
        np.testing.assert_array_equal(a[:, :unchanged], b[:, :unchanged])
        assert np.abs(a[:, unchanged] - b[:, unchanged]).max() > 0


@pytest.mark.parametrize(
    "cls,bad,match",
    [
        (ComplexConv2D, dict(filters=0), "filters"),
        (ComplexConv2D, dict(filters=2, strides=(2, 2)), "Time stride"),
        (ComplexConv2D, dict(filters=2, freq_padding=-1), "freq_padding"),
        (ComplexConv2DTranspose, dict(filters=2, time_crop="future"), "future"),
        (ComplexConv2DTranspose, dict(filters=2, output_padding=2), "output_padding"),
    ],
)
def test_invalid_arguments(cls, bad, match):
    with pytest.raises(ValueError, match=match):
        cls(**bad)


def test_odd_channels_rejected():
    with pytest.raises(ValueError, match="even"):
        ComplexConv2D(2).build((None, 4, 8, 3))


@pytest.mark.parametrize("cls", [ComplexConv2D, ComplexConv2DTranspose])
def test_config_round_trip(rng, cls):
    x = rng.standard_normal((1, 4, 8, 4)).astype("float32")
    run_layer_test(cls(3, (5, 2), (2, 1)), x)


def _chunks(total, sizes):
    """Consecutive ``(start, stop)`` frame ranges of the given sizes, cycling until ``total``."""
    start, k = 0, 0
    while start < total:
        stop = min(total, start + sizes[k % len(sizes)])
        yield start, stop
        start, k = stop, k + 1


def _run_steps(layer, x, sizes, frame_rows=False):
    state = layer.initial_state(x.shape[0])
    outs = []
    for start, stop in _chunks(x.shape[1], sizes):
        y, state = layer.step(x[:, start:stop], state, frame_rows=frame_rows)
        outs.append(keras.ops.convert_to_numpy(y))
    return np.concatenate(outs, axis=1), keras.ops.convert_to_numpy(state)


@pytest.mark.parametrize("frame_rows", [False, True])
@pytest.mark.parametrize("kernel_size,dilation", [((5, 2), (1, 1)), ((3, 3), (1, 2))])
def test_conv_step_on_chunks_equals_call_and_numpy(rng, kernel_size, dilation, frame_rows):
    x = rng.standard_normal((2, 11, 16, 6)).astype("float32")
    layer = ComplexConv2D(4, kernel_size, (1, 1) if dilation[1] > 1 else (2, 1), 2, dilation_rate=dilation)
    layer.build(x.shape)
    randomize(layer, rng)
    full = keras.ops.convert_to_numpy(layer(x))
    # frame_rows: each output frame in a batch row of its own, the same outputs
    steps, state = _run_steps(layer, x, [1, 3, 2, 5], frame_rows)
    np.testing.assert_allclose(steps, full, atol=1e-5)
    span = (kernel_size[1] - 1) * dilation[1]
    assert layer.initial_state(2).shape == (2, span, 16, 6)
    np.testing.assert_array_equal(state, x[:, -span:])  # the cache is the last input frames
    if dilation == (1, 1):
        kernel, bias = weights(layer)
        ref = reference_conv(to_complex(x), kernel, bias, 2, 2, True)
        np.testing.assert_allclose(to_complex(steps), ref, atol=1e-4)


@pytest.mark.parametrize("frame_rows", [False, True])
@pytest.mark.parametrize("kt", [2, 3])
def test_deconv_step_on_chunks_equals_causal_call_and_numpy(rng, kt, frame_rows):
    x = rng.standard_normal((2, 9, 8, 4)).astype("float32")
    layer = ComplexConv2DTranspose(3, (5, kt), (2, 1), freq_padding=2, output_padding=1, time_crop="causal")
    layer.build(x.shape)
    randomize(layer, rng)
    full = keras.ops.convert_to_numpy(layer(x))
    steps, state = _run_steps(layer, x, [1, 4, 2], frame_rows)
    np.testing.assert_allclose(steps, full, atol=1e-5)
    np.testing.assert_array_equal(state, x[:, -(kt - 1) :])
    kernel, bias = weights(layer)
    ref = reference_deconv(to_complex(x), kernel, bias, 2, 2, 1, "causal")
    np.testing.assert_allclose(to_complex(steps), ref, atol=1e-4)


@pytest.mark.parametrize("crop", ["causal", "dccrn"])
def test_deconv_full_output_and_crop(rng, crop):
    x = rng.standard_normal((2, 6, 8, 4)).astype("float32")
    layer = ComplexConv2DTranspose(3, (5, 2), (2, 1), freq_padding=2, output_padding=1, time_crop=crop)
    layer.build(x.shape)
    randomize(layer, rng)
    full = layer(x, crop_time=False)
    assert tuple(full.shape) == (2, 7, 16, 6) == layer.compute_output_shape(x.shape, crop_time=False)
    kernel, bias = weights(layer)
    z = to_complex(x)
    # every frame of the uncropped transposed convolution: the causal crop of x padded with one frame
    ref = reference_deconv(np.pad(z, [(0, 0), (0, 1), (0, 0), (0, 0)]), kernel, bias, 2, 2, 1, "causal")
    np.testing.assert_allclose(to_complex(keras.ops.convert_to_numpy(full)), ref, atol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.crop(full)), keras.ops.convert_to_numpy(layer(x)), atol=1e-6
    )


def test_only_causal_layers_step(rng):
    x = rng.standard_normal((1, 3, 8, 2)).astype("float32")
    conv = ComplexConv2D(2, causal=False)
    conv.build(x.shape)
    with pytest.raises(ValueError, match="causal=False"):
        conv.step(x, conv.initial_state(1))
    deconv = ComplexConv2DTranspose(2, time_crop="dccrn")
    deconv.build(x.shape)
    with pytest.raises(ValueError, match="time_crop='dccrn'"):
        deconv.step(x, deconv.initial_state(1))
    causal = ComplexConv2D(2)
    with pytest.raises(ValueError, match="build the layer"):
        causal.initial_state(1)
    causal.build(x.shape)
    with pytest.raises(ValueError, match="1 frames"):
        causal.step(x, np.zeros((1, 2, 8, 2), "float32"))


@pytest.mark.parametrize("crop", ["causal", "dccrn"])
@pytest.mark.parametrize(
    "kernel_size,stride,pad,out_pad",
    [
        ((5, 2), 2, 2, 1),  # DCCRN's decoder
        ((4, 2), 2, 1, 0),  # even kernel
        ((3, 1), 1, 1, 0),  # stride 1, one time tap
        ((3, 3), 1, 0, 0),  # stride 1, no crop
        ((3, 2), 1, 3, 0),  # crop longer than the kernel's overhang: inputs cropped too
        ((5, 2), 3, 2, 2),
        ((4, 2), 3, 2, 1),
        ((2, 2), 3, 0, 0),  # kernel shorter than the stride: a phase with no taps
        ((6, 3), 2, 3, 1),
    ],
)
def test_deconv_polyphase_matches_numpy(rng, crop, kernel_size, stride, pad, out_pad):
    x = rng.standard_normal((2, 5, 7, 4)).astype("float32")
    layer = ComplexConv2DTranspose(
        3, kernel_size, (stride, 1), freq_padding=pad, output_padding=out_pad, time_crop=crop
    )
    layer.build(x.shape)
    randomize(layer, rng)
    y = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = weights(layer)
    ref = reference_deconv(to_complex(x), kernel, bias, stride, pad, out_pad, crop)
    assert y.shape == layer.compute_output_shape(x.shape) == (2, 5, ref.shape[2], 6)
    np.testing.assert_allclose(to_complex(y), ref, rtol=1e-5, atol=1e-5)


def test_polyphase_taps_dccrn_and_every_tap_once():
    # DCCRN's decoder (k_f 5, stride 2, crop 2): out[2j] = w4 x[j-1] + w2 x[j] + w0 x[j+1], out[2j+1] = w3 x[j] + w1 x[j+1]
    assert polyphase_taps(5, 2, 2) == (-1, [[4, 2, 0], [None, 3, 1]])
    for kf, s, crop in [(5, 2, 2), (4, 3, 1), (2, 3, 0), (3, 1, 3), (6, 2, 3)]:
        _, taps = polyphase_taps(kf, s, crop)
        assert len({len(row) for row in taps}) == 1
        for p, row in enumerate(taps):
            assert sorted(k for k in row if k is not None) == [
                k for k in range(kf) if k % s == (p + crop) % s
            ]
