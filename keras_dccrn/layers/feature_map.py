"""Feature maps of the Uformer layers: complex-or-real conventions, shared helpers, residual module base.

Every Uformer layer works on feature maps ``[batch, frames, freq, channels]``
and exists in two flavours selected by ``complex_valued``:

* complex (``True``): the channel axis holds ``2 * C`` values in the package's
  convention (real parts first, then imaginary parts, see
  ``layers.complex_ops``); linear maps are complex
  (``layers.complex_dense.ComplexDense``) and attention is the complex
  attention of ``layers.attention.complex_attention``.
* real (``False``): the channel axis holds ``C`` real values (Uformer's
  magnitude branch).

Choices made where the Uformer paper leaves room (documented once here,
referenced by the layers):

* Layer normalization of a complex map normalizes the ``2 * C`` real values
  of a time-frequency bin jointly (mean and variance over real and imaginary
  parts, one scale/offset per real channel).
* Non-linearities of complex maps are *split* activations (applied to the real
  and the imaginary parts separately), as DCCRN's PReLU.
* Complex linear maps have one complex bias ``b_r + i b_i``.
* No positional encoding: the dilated convolution of every block carries the
  order information, and the local time-attention window bounds the context.
"""

import keras
from keras import ops


def positive_int(value, name):
    """Returns ``value`` if it is a positive ``int``, else raises ``ValueError`` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    return value


def dropout_rate(value):
    """Returns ``value`` as a float if it is in ``[0, 1)``, else raises ``ValueError``."""
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1); received {value!r}.")
    return float(value)


def feature_channels(input_shape, complex_valued, name):
    """Feature count ``C`` (complex or real channels) of a map's last axis."""
    width = input_shape[-1]
    if width is None:
        raise ValueError(f"{name}: the channel axis must be known; received input shape {input_shape}.")
    if complex_valued:
        if width % 2:
            raise ValueError(
                f"{name}: a complex map needs an even channel axis; received shape {input_shape}."
            )
        return width // 2
    return width


def split_swish(x):
    """Swish applied elementwise (to real and imaginary parts separately)."""
    return x * ops.sigmoid(x)


def layer_norm(name, dtype):
    """The layer normalization of every Uformer module (over the whole channel axis)."""
    return keras.layers.LayerNormalization(epsilon=1e-5, name=name, dtype=dtype)


class ResidualModule(keras.layers.Layer):
    """Base of the pre-norm residual modules ``x + Dropout(f(LN(x)))`` on feature maps.

    Owns the flavour, the input layer normalization ``norm`` and the output
    dropout ``drop``; subclasses build ``f`` and call them.

    Args:
        complex_valued: complex or real flavour.
        dropout: dropout rate of the module output.
        **kwargs: base ``Layer`` arguments.
    """

    def __init__(self, complex_valued=True, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.complex_valued = bool(complex_valued)
        self.dropout = dropout_rate(dropout)
        self.norm = layer_norm("norm", self.dtype_policy)
        self.drop = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(complex_valued=self.complex_valued, dropout=self.dropout)
        return config
