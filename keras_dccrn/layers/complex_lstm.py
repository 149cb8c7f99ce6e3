"""Complex LSTM (DCCRN-CL's ``NavieComplexLSTM``) over ``[batch, frames, 2 * D]``, and LSTM streaming steps."""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import complex_merge, complex_split
from keras_dccrn.layers.slicing import index, take


def lstm_initial_state(lstm, batch_size=1):
    """All-zero streaming state ``[batch_size, 2, units]`` (rows ``h``, ``c``) of a Keras ``LSTM``."""
    return ops.zeros((batch_size, 2, lstm.units), lstm.compute_dtype)


def lstm_step(lstm, inputs, state):
    """Runs a Keras ``LSTM`` layer's own cell over a chunk of frames, state in and out.

    The cell is the computation the layer iterates offline, so the frames
    equal the layer's output on the whole sequence. Frames are unrolled (the
    chunk length is static), so the graph has no loop (full-int8 TFLite
    calibration fails on the ``WHILE`` loop of a recurrent layer).

    Args:
        lstm: a built ``keras.layers.LSTM``.
        inputs: ``[batch, frames, features]`` with a static frame count.
        state: ``[batch, 2, units]``: ``h`` then ``c``.

    Returns:
        ``(outputs [batch, frames, units], new_state [batch, 2, units])``.
    """
    h, c = index(state, 1, 0), index(state, 1, 1)
    outputs = []
    for t in range(inputs.shape[1]):
        out, (h, c) = lstm.cell(index(inputs, 1, t), [h, c], training=False)
        outputs.append(out)
    # concatenation of [B, 1, units] rows rather than a stack: TFLite's PACK is not delegated to XNNPACK
    return _rows(outputs), _rows([h, c])


def _rows(tensors):
    """``[B, n]`` tensors as the rows of ``[B, len(tensors), n]``."""
    return ops.concatenate([ops.expand_dims(t, 1) for t in tensors], axis=1)


@keras.saving.register_keras_serializable(package="keras_dccrn")
class ComplexLSTM(keras.layers.Layer):
    """Complex LSTM built from two real LSTMs by the complex product rule.

    With ``LSTM_r`` and ``LSTM_i`` two real, unidirectional LSTMs of ``units``
    cells each, and input ``X = Xr + i Xi``::

        Fr = LSTM_r(Xr) - LSTM_i(Xi)
        Fi = LSTM_r(Xi) + LSTM_i(Xr)

    (DCCRN-CL, Hu et al. 2020, Eq. 2). Each LSTM runs once on the real and
    imaginary inputs stacked along the batch axis. When ``projection_dim`` is
    set, ``Fr`` and ``Fi`` are each mapped by their own dense layer
    (DCCRN's ``r_trans`` / ``i_trans``).

    Args:
        units: LSTM cells per part (real and imaginary LSTM each).
        projection_dim: optional output width per part after projection.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, 2 * D]``, real features then imaginary.
        training: passed to the LSTMs.

    Input shape:
        ``[batch, frames, 2 * D]``.

    Output shape:
        ``[batch, frames, 2 * out]`` with ``out = projection_dim or units``.

    Streaming: :meth:`step` ``(chunk, state) -> (output, new_state)`` with
    ``state`` ``[batch, 4, 2, units]``: the :func:`lstm_step` states (``h``,
    ``c``) of the real LSTM on the real input, the real LSTM on the imaginary
    input, the imaginary LSTM on the real input and on the imaginary input
    (zeros at the start, :meth:`initial_state`).

    References:
        Hu et al., "DCCRN", Interspeech 2020.
    """

    def __init__(self, units, projection_dim=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive integer; received {units!r}.")
        if projection_dim is not None and (not isinstance(projection_dim, int) or projection_dim <= 0):
            raise ValueError(
                f"`projection_dim` must be None or a positive integer; received {projection_dim!r}."
            )
        self.units = units
        self.projection_dim = projection_dim
        self.real_lstm = keras.layers.LSTM(
            units, return_sequences=True, return_state=True, name="real_lstm", dtype=self.dtype_policy
        )
        self.imag_lstm = keras.layers.LSTM(
            units, return_sequences=True, return_state=True, name="imag_lstm", dtype=self.dtype_policy
        )
        if projection_dim:
            self.real_dense = keras.layers.Dense(projection_dim, name="real_dense", dtype=self.dtype_policy)
            self.imag_dense = keras.layers.Dense(projection_dim, name="imag_dense", dtype=self.dtype_policy)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"{self.name}: last axis must be even (real | imag); received {input_shape}.")
        part = (None, input_shape[1], channels // 2)
        self.real_lstm.build(part)
        self.imag_lstm.build(part)
        if self.projection_dim:
            self.real_dense.build((None, input_shape[1], self.units))
            self.imag_dense.build((None, input_shape[1], self.units))

    def _combine(self, real_on_real, real_on_imag, imag_on_real, imag_on_imag):
        """Complex product rule and projection of the four real LSTM outputs ``[B, T, units]``."""
        real = real_on_real - imag_on_imag
        imag = real_on_imag + imag_on_real
        if self.projection_dim:
            real = self.real_dense(real)
            imag = self.imag_dense(imag)
        return complex_merge(real, imag)

    def call(self, inputs, training=None):
        xr, xi = complex_split(inputs)
        stacked = ops.concatenate([xr, xi], axis=0)  # [2B, T, D]
        r_out = self.real_lstm(stacked, training=training)[0]
        i_out = self.imag_lstm(stacked, training=training)[0]
        # rows [:B] saw the real input, rows [B:] the imaginary input
        return self._combine(*ops.split(r_out, 2, axis=0), *ops.split(i_out, 2, axis=0))

    def initial_state(self, batch_size=1):
        """All-zero streaming state ``[batch_size, 4, 2, units]`` (see the class docstring)."""
        return ops.zeros((batch_size, 4, 2, self.units), self.compute_dtype)

    def step(self, inputs, state):
        """Runs the next chunk of frames from the carried LSTM states.

        Args:
            inputs: ``[batch, frames, 2 * D]`` with a static frame count.
            state: ``[batch, 4, 2, units]`` (see the class docstring).

        Returns:
            ``(outputs [batch, frames, 2 * out], new_state [batch, 4, 2, units])``.
        """
        if tuple(state.shape[1:]) != (4, 2, self.units):
            raise ValueError(
                f"{self.name}: the state must be [batch, 4, 2, {self.units}]; received shape {tuple(state.shape)}."
            )
        xr, xi = complex_split(inputs)
        stacked = ops.concatenate([xr, xi], axis=0)  # [2B, T, D], as in `call`
        batch = ops.shape(inputs)[0]
        # [B, 4, 2, units] -> [4, B, 2, units] -> [4B, 2, units]: rows k * B + b
        rows = ops.reshape(
            ops.transpose(ops.cast(state, inputs.dtype), (1, 0, 2, 3)), (4 * batch, 2, self.units)
        )
        r_out, r_new = lstm_step(self.real_lstm, stacked, take(rows, 0, 0, 2 * batch))
        i_out, i_new = lstm_step(self.imag_lstm, stacked, take(rows, 0, 2 * batch, 4 * batch))
        # [4B, 2, units] -> [4, B, 2, units] -> [B, 4, 2, units]
        new = ops.reshape(ops.concatenate([r_new, i_new], axis=0), (4, batch, 2, self.units))
        new = ops.transpose(new, (1, 0, 2, 3))
        # rows [:B] saw the real input, rows [B:] the imaginary input
        return self._combine(*ops.split(r_out, 2, axis=0), *ops.split(i_out, 2, axis=0)), new

    def compute_output_shape(self, input_shape):
        width = self.projection_dim or self.units
        return (input_shape[0], input_shape[1], 2 * width)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, projection_dim=self.projection_dim)
        return config
