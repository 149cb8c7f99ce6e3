"""Contiguous slices of a tensor along one axis, with a cheap gradient.

``x[:, a:b]`` lowers to TensorFlow's ``StridedSlice``, whose gradient
(``StridedSliceGrad``) runs about 20 times slower on CPU than the gradient of
``Slice`` (a zero pad) for the feature maps of these models; in a DCCRN
training step it took 44% of the time. Model code therefore slices with
:func:`take` (``keras.ops.slice``) or splits with ``keras.ops.split``; the
forward values and the gradients are the same as with ``[]`` indexing.
"""

from keras import ops


def take(x, axis, start, stop=None):
    """``x`` restricted to ``[start, stop)`` along ``axis``, all of every other axis.

    Args:
        x: a tensor of known rank.
        axis: the sliced axis (negative counts from the end).
        start: first index kept, a non-negative int or scalar int tensor.
        stop: end index (exclusive), a non-negative int or scalar int tensor,
            or ``None`` for the end of the axis.

    Returns:
        The slice, same rank as ``x``.

    Raises:
        ValueError: if ``axis`` is not an axis of ``x``, or a Python ``start`` /
            ``stop`` is negative or ``stop < start``.
    """
    rank = len(x.shape)
    if not -rank <= axis < rank:
        raise ValueError(f"`axis` must be an axis of a rank-{rank} tensor; received axis={axis}.")
    axis %= rank
    for name, value in (("start", start), ("stop", stop)):
        if isinstance(value, int) and value < 0:
            raise ValueError(f"`{name}` must be non-negative; received {name}={value}.")
    if isinstance(start, int) and isinstance(stop, int) and stop < start:
        raise ValueError(f"`stop` must be >= `start`; received start={start}, stop={stop}.")
    begin = [0] * rank
    begin[axis] = start
    # static sizes where known: with a tensor in `begin`, a -1 size loses the static dimension
    size = [-1 if d is None else d for d in x.shape]
    if stop is not None:
        size[axis] = stop - start
    elif isinstance(start, int) and x.shape[axis] is not None:
        size[axis] = x.shape[axis] - start
    else:
        size[axis] = -1
    return ops.slice(x, begin, size)


def index(x, axis, i):
    """``x`` at index ``i`` of ``axis``, that axis removed (``x[:, i]`` for ``axis=1``)."""
    return ops.squeeze(take(x, axis, i, i + 1), axis=axis)
