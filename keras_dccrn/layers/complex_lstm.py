"""Complex LSTM (DCCRN-CL's ``NavieComplexLSTM``) over ``[batch, frames, 2 * D]``."""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import complex_merge, complex_split


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
        initial_state: optional list ``[h_r, c_r, h_i, c_i]`` of
            ``[2 * batch, units]`` tensors (states of the real LSTM and of the
            imaginary LSTM, rows ``[real input | imag input]``), for streaming.
        return_state: also return the final states in the same layout.
        training: passed to the LSTMs.

    Input shape:
        ``[batch, frames, 2 * D]``.

    Output shape:
        ``[batch, frames, 2 * out]`` with ``out = projection_dim or units``;
        with ``return_state``, ``(output, [h_r, c_r, h_i, c_i])``.

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

    def call(self, inputs, initial_state=None, return_state=False, training=None):
        xr, xi = complex_split(inputs)
        batch = ops.shape(inputs)[0]
        stacked = ops.concatenate([xr, xi], axis=0)  # [2B, T, D]
        r_state = i_state = None
        if initial_state is not None:
            r_state, i_state = list(initial_state[:2]), list(initial_state[2:])
        r_out, r_h, r_c = self.real_lstm(stacked, initial_state=r_state, training=training)
        i_out, i_h, i_c = self.imag_lstm(stacked, initial_state=i_state, training=training)
        # rows [:B] saw the real input, rows [B:] the imaginary input
        real = r_out[:batch] - i_out[batch:]
        imag = r_out[batch:] + i_out[:batch]
        if self.projection_dim:
            real = self.real_dense(real)
            imag = self.imag_dense(imag)
        out = complex_merge(real, imag)
        if return_state:
            return out, [r_h, r_c, i_h, i_c]
        return out

    def compute_output_shape(self, input_shape):
        width = self.projection_dim or self.units
        return (input_shape[0], input_shape[1], 2 * width)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, projection_dim=self.projection_dim)
        return config
