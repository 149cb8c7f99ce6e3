"""Attention of the Uformer: real and complex scaled dot-product attention, axial self-attention.

Conventions of the complex and real flavours: ``layers.feature_map``.
"""

import math

import keras
from keras import ops

from keras_dccrn.layers.complex_dense import dense
from keras_dccrn.layers.complex_ops import complex_merge, complex_split
from keras_dccrn.layers.feature_map import ResidualModule, feature_channels, positive_int

NEG_INF = -1e9


def local_attention_mask(length, context, causal):
    """Boolean ``[length, length]`` mask (``True`` = query row may attend key column).

    Args:
        length: sequence length (int or scalar tensor).
        context: frames visible on each side of the query: only the past
            ``context`` frames when ``causal``, ``context`` past and
            ``context`` future frames otherwise; ``None`` means unlimited.
        causal: forbid every key after the query.
    """
    pos = ops.arange(length)
    delta = ops.expand_dims(pos, 1) - ops.expand_dims(pos, 0)  # query - key: [T, T]
    keep = ops.ones_like(delta, dtype="bool")
    if causal:
        keep = ops.logical_and(keep, delta >= 0)
    if context is not None:
        keep = ops.logical_and(keep, ops.abs(delta) <= context)
    return keep


def _softmax(scores, mask):
    """Softmax over the last axis in float32, masked entries get zero weight.

    The mask is added as a bias (0 or ``NEG_INF``, the mask's size) rather than selected into the
    scores: the same weights and gradients (a masked score's weight is exactly 0 either way), without
    the broadcast select over the scores and its gradient.
    """
    dtype = scores.dtype
    scores = ops.cast(scores, "float32")
    if mask is not None:
        scores = scores + ops.where(mask, 0.0, NEG_INF)
    return ops.cast(ops.softmax(scores, axis=-1), dtype)


def real_attention(q, k, v, mask=None):
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d)) v``.

    Args:
        q: ``[..., Tq, d]``.
        k: ``[..., Tk, d]``.
        v: ``[..., Tk, dv]``.
        mask: optional boolean, broadcastable to ``[..., Tq, Tk]``.

    Returns:
        ``[..., Tq, dv]``.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) * scale  # [..., Tq, Tk]
    return ops.matmul(_softmax(scores, mask), v)


def complex_attention(q, k, v, mask=None):
    """Complex attention composed of real attentions (Complex Transformer, Yang et al. 2020).

    With ``A(a, b, c) = softmax(a b^T / sqrt(d)) c`` the real scaled
    dot-product attention and ``q = q_r + i q_i`` (likewise ``k``, ``v``)::

        Re = A(qr, kr, vr) - A(qr, ki, vi) - A(qi, kr, vi) - A(qi, ki, vr)
        Im = A(qr, kr, vi) + A(qr, ki, vr) + A(qi, kr, vr) - A(qi, ki, vi)

    i.e. ``(q k^T) v`` expanded by the complex product rule with a softmax on
    each of the four real score matrices. Computed with one batched matmul for
    the four ``(q_a, k_b)`` score matrices and one for their products with
    ``[v_r | v_i]`` (eight real attentions, four softmaxes).

    Args:
        q: ``[..., Tq, 2d]`` complex (real parts first).
        k: ``[..., Tk, 2d]`` complex.
        v: ``[..., Tk, 2dv]`` complex.
        mask: optional boolean, broadcastable to ``[..., Tq, Tk]``.

    Returns:
        ``[..., Tq, 2dv]`` complex.
    """
    qr, qi = complex_split(q)
    kr, ki = complex_split(k)
    scale = 1.0 / math.sqrt(qr.shape[-1])
    queries = ops.stack([qr, qr, qi, qi], axis=0)  # (a, b) = rr, ri, ir, ii: [4, ..., Tq, d]
    keys = ops.stack([kr, ki, kr, ki], axis=0)  # [4, ..., Tk, d]
    scores = ops.matmul(queries, ops.swapaxes(keys, -1, -2)) * scale  # [4, ..., Tq, Tk]
    out = ops.matmul(_softmax(scores, mask), ops.expand_dims(v, 0))  # [4, ..., Tq, 2dv]
    a_r, a_i = complex_split(out)  # A(q_a, k_b, v_r), A(q_a, k_b, v_i)
    rr_r, ri_r, ir_r, ii_r = ops.unstack(a_r, 4, axis=0)  # 4 x [..., Tq, dv]
    rr_i, ri_i, ir_i, ii_i = ops.unstack(a_i, 4, axis=0)
    real = rr_r - ri_i - ir_i - ii_r
    imag = rr_i + ri_r + ir_r - ii_i
    return complex_merge(real, imag)


AXES = ("time", "freq")


@keras.saving.register_keras_serializable(package="keras_dccrn")
class AxialAttention(ResidualModule):
    """Multi-head self-attention along time (TA) or frequency (FA) of a ``[B, T, F, C]`` map.

    Pre-norm residual module ``x + Dropout(W_o MHA(W_q y, W_k y, W_v y))``
    with ``y = LN(x)``. Time attention runs one sequence per frequency bin
    (``B * F`` sequences of ``T`` frames), frequency attention one per frame
    (``B * T`` sequences of ``F`` bins); heads split the channels. In the
    complex flavour the projections are complex and the attention is
    :func:`complex_attention`.

    Time attention is **local**: a frame attends to at most ``context``
    frames on each side, only past ones when ``causal`` (then output frame
    ``t`` depends on input frames ``t - context .. t``). It is evaluated as a
    band-masked ``T x T`` attention (batched matmuls, no loops over frames).

    Args:
        num_heads: attention heads; must divide the channels ``C``.
        axis: ``"time"`` or ``"freq"``.
        complex_valued: complex or real flavour.
        causal: time attention sees no future frame (ignored for ``"freq"``).
        context: frames visible on each side for time attention (``None``:
            the whole sequence); ignored for ``"freq"``.
        dropout: dropout rate of the module output.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, freq, channels]``.
        training: dropout on/off.

    Input shape:
        ``[batch, frames, freq, channels]`` (``2 * C`` when complex).

    Output shape:
        Same as input.

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
        Yang et al., "Complex Transformer", ICASSP 2020.
        Fu et al., "Uformer", ICASSP 2022.
    """

    def __init__(
        self, num_heads=4, axis="time", complex_valued=True, causal=True, context=None, dropout=0.1, **kwargs
    ):
        super().__init__(complex_valued=complex_valued, dropout=dropout, **kwargs)
        self.num_heads = positive_int(num_heads, "num_heads")
        if axis not in AXES:
            raise ValueError(f"`axis` must be one of {AXES}; received {axis!r}.")
        if context is not None:
            context = positive_int(context, "context")
        self.axis = axis
        self.causal = bool(causal)
        self.context = context

    def build(self, input_shape):
        c = feature_channels(input_shape, self.complex_valued, self.name)
        if c % self.num_heads:
            raise ValueError(
                f"{self.name}: channels ({c}) must be divisible by num_heads ({self.num_heads}); "
                f"received input shape {input_shape}."
            )
        self.channels = c
        self.norm.build(input_shape)
        self.projections = []
        for name in ("query", "key", "value", "output"):
            layer = dense(self.complex_valued, c, name, self.dtype_policy)
            layer.build(input_shape)
            self.projections.append(layer)

    @property
    def lookahead_frames(self):
        """Future frames an output frame depends on (``None``: unbounded)."""
        if self.axis == "freq" or self.causal:
            return 0
        return self.context

    def _heads(self, x):
        """``[B, T, F, P * C]`` -> ``[B, T, F, H, P * d]`` (``P`` = 2 parts when complex)."""
        b, t, f = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        h, d = self.num_heads, self.channels // self.num_heads
        if not self.complex_valued:
            return ops.reshape(x, (b, t, f, h, d))  # [B, T, F, C] -> [B, T, F, H, d]
        xr, xi = complex_split(x)
        xr = ops.reshape(xr, (b, t, f, h, d))  # [B, T, F, C] -> [B, T, F, H, d]
        xi = ops.reshape(xi, (b, t, f, h, d))  # [B, T, F, C] -> [B, T, F, H, d]
        return ops.concatenate([xr, xi], axis=-1)

    def _merge_heads(self, x):
        """Inverse of :meth:`_heads`."""
        b, t, f = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        c = self.channels
        if not self.complex_valued:
            return ops.reshape(x, (b, t, f, c))  # [B, T, F, H, d] -> [B, T, F, C]
        xr, xi = complex_split(x)
        xr = ops.reshape(xr, (b, t, f, c))  # [B, T, F, H, d] -> [B, T, F, C]
        xi = ops.reshape(xi, (b, t, f, c))  # [B, T, F, H, d] -> [B, T, F, C]
        return complex_merge(xr, xi)

    def call(self, inputs, training=None):
        y = self.norm(inputs)
        q, k, v = (self._heads(p(y)) for p in self.projections[:3])
        if self.axis == "time":
            perm = (0, 2, 3, 1, 4)  # [B, T, F, H, d] -> [B, F, H, T, d]
            mask = local_attention_mask(ops.shape(inputs)[1], self.context, self.causal)
        else:
            perm = (0, 1, 3, 2, 4)  # [B, T, F, H, d] -> [B, T, H, F, d]
            mask = None
        q, k, v = (ops.transpose(z, perm) for z in (q, k, v))
        outer = ops.shape(q)[:4]
        width = q.shape[-1]

        def flat(z):
            return ops.reshape(z, (-1, outer[3], width))  # [B, S1, H, S2, d] -> [B * S1 * H, S2, d]

        attend = complex_attention if self.complex_valued else real_attention
        out = attend(flat(q), flat(k), flat(v), mask)
        out = ops.reshape(
            out, (outer[0], outer[1], outer[2], outer[3], width)
        )  # [N, S2, d] -> [B, S1, H, S2, d]
        inverse = (0, 3, 1, 2, 4) if self.axis == "time" else (0, 1, 3, 2, 4)
        out = ops.transpose(out, inverse)  # back to [B, T, F, H, d]
        out = self.projections[3](self._merge_heads(out))
        return inputs + self.drop(out, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, axis=self.axis, causal=self.causal, context=self.context)
        return config
