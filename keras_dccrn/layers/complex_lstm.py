"""Complex LSTM (DCCRN-CL's ``NavieComplexLSTM``) over ``[batch, frames, 2 * D]``, and LSTM streaming steps."""

import keras
from keras import ops

from keras_dccrn.layers.complex_ops import complex_merge, complex_split
from keras_dccrn.layers.slicing import index


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

    (DCCRN-CL, Hu et al. 2020, Eq. 2). When ``projection_dim`` is set, ``Fr``
    and ``Fi`` are each mapped by their own dense layer (DCCRN's ``r_trans`` /
    ``i_trans``).

    The two LSTMs are Keras ``LSTM`` layers (their weights), run by this
    layer's own loop with the equations of Keras' ``LSTMCell``: the real and
    imaginary inputs are stacked along the batch axis, the input projections
    ``x_t W`` of both LSTMs and every frame are one matrix product before the
    loop, and each time step is one batched matrix product ``h_{t-1} U`` of
    both LSTMs (a Keras ``LSTM`` multiplies ``x_t W`` and casts its weights
    to the compute dtype inside every step). ``call`` loops over time
    (``keras.ops.scan``, any frame count), :meth:`step` unrolls the same time
    step over a chunk's static frames.

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
        # No autocast scope: the loop reads the LSTM weights in float32 and casts them itself.
        super().__init__(autocast=False, **kwargs)
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

    def _frame(self, z_input, h, c):
        """One LSTM time step of both LSTMs: the Keras ``LSTMCell`` equations.

        The recurrent kernels are read and cast to the compute dtype here, inside the time loop, so
        a mixed-precision gradient accumulates over time steps in float32 (as a Keras ``LSTM``'s does).

        Args:
            z_input: ``[2, N, 4 * units]``, ``x_t W + b`` of the real and the imaginary LSTM
                (:meth:`_input_projection`, ``N`` stacked sequences each).
            h: ``[2, N, units]``, the previous outputs.
            c: ``[2, N, units]``, the previous carries.

        Returns:
            ``(h, c)``, the new outputs and carries.
        """
        cells = (self.real_lstm.cell, self.imag_lstm.cell)
        # 2 x [U, 4U] -> [2, U, 4U]
        recurrent = ops.concatenate([ops.expand_dims(cell.recurrent_kernel, 0) for cell in cells], axis=0)
        z = ops.add(z_input, ops.matmul(h, ops.cast(recurrent, z_input.dtype)))  # [2, N, 4U]
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)  # Keras gate order i, f, c, o
        act, gate = cells[0].activation, cells[0].recurrent_activation
        c = gate(z_f) * c + gate(z_i) * act(z_c)
        h = gate(z_o) * act(c)
        return h, c

    def _input_projection(self, stacked):
        """``x W + b`` of both LSTMs for every frame at once: ``[N, T, D]`` -> ``[T, 2, N, 4 * units]``."""
        cells = (self.real_lstm.cell, self.imag_lstm.cell)
        kernel = ops.concatenate([cell.kernel for cell in cells], axis=1)  # 2 x [D, 4U] -> [D, 8U]
        bias = ops.concatenate([cell.bias for cell in cells], axis=0)  # 2 x [4U] -> [8U]
        z = ops.matmul(stacked, ops.cast(kernel, stacked.dtype)) + ops.cast(bias, stacked.dtype)  # [N, T, 8U]
        # [N, T, 8U] -> [N, T, 2, 4U] (real LSTM, imaginary LSTM)
        z = ops.reshape(z, (ops.shape(z)[0], ops.shape(z)[1], 2, 4 * self.units))
        return ops.transpose(z, (1, 2, 0, 3))  # [N, T, 2, 4U] -> [T, 2, N, 4U]

    def _combine_runs(self, outputs):
        """:meth:`_combine` of the runs ``[2 (real, imag LSTM), 2B (real rows, imag rows), T, units]``."""
        r_out, i_out = (ops.squeeze(o, 0) for o in ops.split(outputs, 2, axis=0))  # [2B, T, U] each
        # rows [:B] saw the real input, rows [B:] the imaginary input
        return self._combine(*ops.split(r_out, 2, axis=0), *ops.split(i_out, 2, axis=0))

    def call(self, inputs, training=None):
        xr, xi = complex_split(ops.cast(inputs, self.compute_dtype))
        stacked = ops.concatenate([xr, xi], axis=0)  # [2B, T, D]
        z_input = self._input_projection(stacked)  # [T, 2, 2B, 4U]
        zeros = ops.zeros((2, ops.shape(stacked)[0], self.units), z_input.dtype)

        def frame(carry, z_t):
            carry = self._frame(z_t, *carry)
            return carry, carry

        _, (outputs, _) = ops.scan(frame, (zeros, zeros), z_input)  # [T, 2, 2B, U]
        return self._combine_runs(ops.transpose(outputs, (1, 2, 0, 3)))  # -> [2, 2B, T, U]

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
        inputs = ops.cast(inputs, self.compute_dtype)
        xr, xi = complex_split(inputs)
        z_input = self._input_projection(ops.concatenate([xr, xi], axis=0))  # [T, 2, 2B, 4U]
        batch = ops.shape(inputs)[0]
        # state rows k = 2 * lstm + part: [B, 4, 2, U] -> [B, 2, 2, 2, U] -> [2 (h, c), 2, 2, B, U]
        carry = ops.transpose(ops.reshape(state, (batch, 2, 2, 2, self.units)), (3, 1, 2, 0, 4))
        # [2, 2, 2, B, U] -> [2, 2, 2B, U]: (h, c) of (lstm, part-major rows)
        carry = ops.reshape(ops.cast(carry, inputs.dtype), (2, 2, 2 * batch, self.units))
        h, c = index(carry, 0, 0), index(carry, 0, 1)
        outputs = []
        for t in range(inputs.shape[1]):  # frames unrolled (static count)
            h, c = self._frame(index(z_input, 0, t), h, c)
            outputs.append(ops.expand_dims(h, 2))
        # (concatenations, not stacks: LiteRT's PACK would split the XNNPACK partition of a streaming graph)
        new = ops.concatenate(
            [ops.expand_dims(h, 0), ops.expand_dims(c, 0)], axis=0
        )  # 2 x [2, 2B, U] -> [2, 2, 2B, U]
        new = ops.reshape(new, (2, 2, 2, batch, self.units))  # [2, 2, 2B, U] -> [2, 2, 2, B, U]
        # [2 (h, c), 2, 2, B, U] -> [B, 2, 2, 2, U] -> [B, 4, 2, U]
        new = ops.reshape(ops.transpose(new, (3, 1, 2, 0, 4)), (batch, 4, 2, self.units))
        return self._combine_runs(ops.concatenate(outputs, axis=2)), new  # T x [2, 2B, 1, U] -> [2, 2B, T, U]

    def compute_output_shape(self, input_shape):
        width = self.projection_dim or self.units
        return (input_shape[0], input_shape[1], 2 * width)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, projection_dim=self.projection_dim)
        return config
