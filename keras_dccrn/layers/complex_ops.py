"""Complex-valued tensor helpers on real tensors.

The complex convention of keras-dccrn (used by every layer and model):

    A complex feature map with ``C`` complex channels is a real tensor whose
    **last (channel) axis has 2 * C entries: the real parts first, then the
    imaginary parts**: ``x[..., :C]`` is ``Re(z)`` and ``x[..., C:]`` is
    ``Im(z)``. A spectrogram is the special case ``C = 1``:
    ``[batch, frames, freq, 2]`` with ``[..., 0]`` real and ``[..., 1]`` imag.

No complex dtype is ever created, so every graph exports to SavedModel and
TFLite with builtin ops only.
"""

from keras import ops


def complex_split(x):
    """Splits ``[..., 2C]`` into ``(real [..., C], imag [..., C])``."""
    c = x.shape[-1]
    if c is None or c % 2:
        raise ValueError(f"A complex tensor needs an even, known channel count; received shape {x.shape}.")
    real, imag = ops.split(x, 2, axis=-1)
    return real, imag


def complex_merge(real, imag):
    """Inverse of :func:`complex_split`: ``[..., C]`` x 2 -> ``[..., 2C]``."""
    return ops.concatenate([real, imag], axis=-1)


def complex_concat(tensors):
    """Concatenates complex tensors along channels, keeping the convention.

    ``complex_concat([a, b])`` returns ``[Re a, Re b, Im a, Im b]``, which is
    what DCCRN's ``complex_cat`` does for its skip connections.
    """
    parts = [complex_split(t) for t in tensors]
    return ops.concatenate([p[0] for p in parts] + [p[1] for p in parts], axis=-1)


def complex_multiply(a, b):
    """Elementwise complex product of two tensors in the channel convention."""
    ar, ai = complex_split(a)
    br, bi = complex_split(b)
    return complex_merge(ar * br - ai * bi, ar * bi + ai * br)


def complex_abs(x, epsilon=0.0):
    """Magnitude ``sqrt(re^2 + im^2 + epsilon)``, shape ``[..., C]``."""
    re, im = complex_split(x)
    return ops.sqrt(re * re + im * im + epsilon)


def block_kernel(real, imag, in_axis, out_axis):
    """Real kernel ``[[Wr, Wi], [-Wi, Wr]]`` of the complex linear map ``Wr + i Wi``.

    Rows (``in_axis``) are fed by ``[xr | xi]``, columns (``out_axis``) give
    ``[yr | yi]``: ``yr = Wr xr - Wi xi`` and ``yi = Wi xr + Wr xi``, so one
    real convolution or matmul computes the complex product.

    Args:
        real: ``Wr``, any rank.
        imag: ``Wi``, same shape as ``real``.
        in_axis: axis of the input channels.
        out_axis: axis of the output channels.

    Returns:
        The block kernel, twice as large along ``in_axis`` and ``out_axis``.
    """
    top = ops.concatenate([real, imag], axis=out_axis)  # from xr
    bottom = ops.concatenate([-imag, real], axis=out_axis)  # from xi
    return ops.concatenate([top, bottom], axis=in_axis)


def complex_bias(real_bias, imag_bias):
    """Output bias ``[2C]`` of DCCRN's pair of real layers with their own biases.

    DCCRN computes ``real = real_layer(xr) - imag_layer(xi)`` and
    ``imag = real_layer(xi) + imag_layer(xr)``, each real layer adding its bias,
    so the real output carries ``br - bi`` and the imaginary output ``br + bi``.
    """
    return ops.concatenate([real_bias - imag_bias, real_bias + imag_bias])
