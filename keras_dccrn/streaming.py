"""Frame-by-frame (streaming) re-expression of a causal DCCRN.

:class:`StreamingDCCRN` runs the **same variables** as a trained
:class:`~keras_dccrn.models.dccrn.DCCRN` one hop at a time: ``frame_step``
samples in, ``frame_step`` samples out, with every piece of memory the
offline graph keeps implicitly made an explicit tensor:

* ``input_buffer`` ``[1, frame_length - frame_step]``: the last input samples,
  completing the next STFT frame;
* ``ola_buffer`` ``[1, (ceil(frame_length / frame_step) - 1) * frame_step]``:
  the not yet complete part of the inverse-STFT overlap-add;
* ``state`` ``[1, state_size]``: the convolution caches (the previous
  ``(k_t - 1) * dilation_t`` input frames of every encoder convolution and
  the previous ``k_t - 1`` input frames of every decoder transposed
  convolution) and the LSTM ``(h, c)`` states, packed in the order given by
  :meth:`StreamingDCCRN.state_layout`. :meth:`StreamingDCCRN.step` takes
  and returns them as separate tensors instead (``{name: [1, *shape]}``),
  the form the TFLite export uses so that full-int8 quantization gives each
  its own scale.

Each step computes exactly what the offline model computes for one STFT
frame: the DFT of the frame, the encoder convolutions on a cached window,
batch norm in inference form, the LSTM cell equations written out with the
layers' ``kernel``, ``recurrent_kernel`` and ``bias`` (gate order i, f, c, o),
the causally cropped transposed convolutions, the mask, the inverse DFT and
the overlap-add. The overlap-added squared window, by which the offline
ISTFT divides, is the same for every sample the offline model returns (each
is covered by all ``ceil(frame_length / frame_step)`` frames), so the
streaming graph divides by its hop-periodic steady-state value.

**Delay.** The sample emitted at stream position ``m`` is the offline
model's output sample ``m - (frame_length - frame_step)`` (300 samples =
18.75 ms at 400/100): the first ``frame_length - frame_step`` output samples
belong to the STFT's left padding, and the last input samples need
``frame_length - frame_step`` more (zero) samples to come out. With that
shift the streaming output equals the offline output up to float rounding
(see ``tests/test_streaming.py``).

Only models whose every layer is causal can stream: ``time_crop="causal"``
(e.g. the ``distil_dccrn`` preset). The official DCCRN crop looks one frame
ahead per decoder layer and is rejected with a ``ValueError``.
"""

import contextlib
import math

import numpy as np
from keras import ops

from keras_dccrn.layers.complex_conv import _block_kernel
from keras_dccrn.layers.complex_ops import complex_concat, complex_merge, complex_split
from keras_dccrn.layers.stft import make_window
from keras_dccrn.models.dccrn import apply_mask

ANALYSIS_SCOPE = "dccrn_analysis"
SYNTHESIS_SCOPE = "dccrn_synthesis"


def _lstm_step(lstm, x, h, c):
    """One step of a keras ``LSTM`` layer: ``x [N, D]``, ``h, c [N, units]``."""
    cell = lstm.cell
    z = ops.matmul(x, cell.kernel) + ops.matmul(h, cell.recurrent_kernel)
    if cell.use_bias:
        z = z + cell.bias
    units = cell.units
    # Keras gate order: input, forget, cell candidate, output.
    i = cell.recurrent_activation(z[:, :units])
    f = cell.recurrent_activation(z[:, units : 2 * units])
    g = cell.activation(z[:, 2 * units : 3 * units])
    o = cell.recurrent_activation(z[:, 3 * units :])
    c_new = f * c + i * g
    h_new = o * cell.activation(c_new)
    return h_new, c_new


class StreamingDCCRN:
    """One-hop-at-a-time view of a causal DCCRN (shares its variables).

    Args:
        model: a built :class:`~keras_dccrn.models.dccrn.DCCRN` with
            ``time_crop="causal"``; its layers and variables are used as is
            (not copied), so later weight updates are seen by the stream.

    Call arguments:
        audio: ``[1, frame_step]`` float32, the next hop of input.
        input_buffer: ``[1, frame_length - frame_step]``.
        ola_buffer: ``[1, ola_size]``.
        state: ``[1, state_size]``.

    Input shape:
        See call arguments; all zeros is the initial state
        (:meth:`initial_state`).

    Output shape:
        dict with ``enhanced`` ``[1, frame_step]`` and ``next_input_buffer``,
        ``next_ola_buffer``, ``next_state`` shaped like the inputs.

    References:
        Hu et al., "DCCRN", Interspeech 2020; Han et al., "Distil-DCCRN",
        IEEE SPL 2024; the explicit-state streaming pattern of DTLN
        (Westhausen & Meyer, Interspeech 2020) and kws_streaming.
    """

    def __init__(self, model):
        if getattr(model, "time_crop", None) != "causal":
            raise ValueError(
                "Only causal models can stream (time_crop='causal', e.g. preset 'distil_dccrn'); "
                f"received a model with time_crop={getattr(model, 'time_crop', None)!r}."
            )
        if not model.built:
            raise ValueError("The model must be built (called once) before streaming.")
        self.model = model
        self.hop = int(model.frame_step)
        self.win = int(model.frame_length)
        self.input_size = self.win - self.hop
        self.blocks = math.ceil(self.win / self.hop)
        self.ola_size = (self.blocks - 1) * self.hop
        self.delay_samples = self.input_size
        self.bins = model.fft_length // 2 + 1
        forward = np.asarray(model.stft._kernel)[:, 0, :]  # [win, 1, 2 * bins] -> [win, 2 * bins]
        self._forward = forward.astype("float32")
        self._inverse = np.asarray(model.istft._inverse, "float32")  # [2 * bins, win]
        wsq = make_window(model.window, self.win) ** 2
        wsq = np.pad(wsq, (0, self.blocks * self.hop - self.win))
        # [blocks * hop] -> [blocks, hop]; the sum is the steady-state envelope.
        self._envelope = wsq.reshape(self.blocks, self.hop).sum(axis=0).astype("float32")
        if np.min(self._envelope) <= 1e-8:
            raise ValueError(
                f"Window {model.window!r} with frame_length={self.win}, frame_step={self.hop} does not "
                "overlap-add to a positive envelope; cannot stream."
            )
        self._layout = self._build_layout()

    # ------------------------------------------------------------------ layout
    def _build_layout(self):
        m = self.model
        layout = []
        freq = self.bins - 1
        channels = 2  # real | imag of the spectrum
        enc_outputs = []
        for i, conv in enumerate(m.encoder_convs):
            span = (conv.kernel_size[1] - 1) * conv.dilation_rate[1]
            layout.append((f"enc_conv_{i}", (span, freq, channels)))
            out = conv.compute_output_shape((1, 1, freq, channels))
            freq, channels = out[2], out[3]
            enc_outputs.append((freq, channels))
        if m.rnn_type == "complex":
            for i, rnn in enumerate(m.rnns):
                for part in ("h_r", "c_r", "h_i", "c_i"):
                    layout.append((f"clstm_{i}_{part}", (2, rnn.units)))
        else:
            for i, rnn in enumerate(m.rnns):
                layout.append((f"lstm_{i}_h", (1, rnn.units)))
                layout.append((f"lstm_{i}_c", (1, rnn.units)))
        # decoder i reads complex_concat([previous output, skip of encoder n-1-i]):
        # the encoder output's frequency size and twice its channel count.
        n = len(m.decoder_convs)
        for i, conv in enumerate(m.decoder_convs):
            skip_freq, skip_channels = enc_outputs[n - 1 - i]
            layout.append((f"dec_conv_{i}", (conv.kernel_size[1] - 1, skip_freq, 2 * skip_channels)))
        return layout

    def state_layout(self):
        """``[(name, shape)]`` of the packed ``state`` vector, in order."""
        return list(self._layout)

    @property
    def state_size(self):
        """Length of the packed ``state`` vector."""
        return int(sum(np.prod(shape) for _, shape in self._layout))

    def initial_state(self):
        """All-zero ``(input_buffer, ola_buffer, state)`` NumPy arrays."""
        return (
            np.zeros((1, self.input_size), "float32"),
            np.zeros((1, self.ola_size), "float32"),
            np.zeros((1, self.state_size), "float32"),
        )

    def initial_states(self):
        """All-zero ``{name: [1, *shape]}`` NumPy arrays for :meth:`step`."""
        return {name: np.zeros((1, *shape), "float32") for name, shape in self._layout}

    def pack(self, states):
        """``{name: [1, *shape]}`` -> the packed ``[1, state_size]`` NumPy vector."""
        # each [1, *shape] -> [1, size], concatenated in layout order
        return np.concatenate(
            [np.asarray(states[name], "float32").reshape(1, -1) for name, _ in self._layout], axis=1
        )

    def unpack(self, state):
        """The packed ``[1, state_size]`` vector -> ``{name: [1, *shape]}`` NumPy arrays."""
        return {name: np.asarray(v) for name, v in self._unpack(np.asarray(state, "float32")).items()}

    def _unpack(self, state):
        parts, offset = {}, 0
        for name, shape in self._layout:
            size = int(np.prod(shape))
            # [1, size] -> [1, *shape]
            parts[name] = ops.reshape(state[:, offset : offset + size], (1, *shape))
            offset += size
        return parts

    @staticmethod
    def _pack(parts, layout):
        # each [1, *shape] -> [1, size], then one [1, state_size] vector
        flat = [ops.reshape(parts[name], (1, int(np.prod(shape)))) for name, shape in layout]
        return ops.concatenate(flat, axis=1)

    # ------------------------------------------------------------- the layers
    @staticmethod
    def _conv_step(conv, x, cache):
        """Causal ComplexConv2D on the window ``[cache | x]`` -> one frame."""
        window = ops.concatenate([cache, x], axis=1)  # [1, span + 1, F, 2Cin]
        p = conv.freq_padding
        window_p = ops.pad(window, [[0, 0], [0, 0], [p, p], [0, 0]])
        kernel = _block_kernel(conv.real_kernel, conv.imag_kernel, in_axis=2, out_axis=3)
        y = ops.conv(
            window_p,
            kernel,
            strides=(1, conv.strides[0]),
            padding="valid",
            dilation_rate=(conv.dilation_rate[1], conv.dilation_rate[0]),
        )  # [1, 1, F', 2Cout]
        if conv.use_bias:
            y = y + ops.concatenate([conv.real_bias - conv.imag_bias, conv.real_bias + conv.imag_bias])
        return y, window[:, 1:]

    @staticmethod
    def _deconv_step(conv, x, cache):
        """Causally cropped ComplexConv2DTranspose for the newest frame.

        Output frame ``t`` of the causal crop is ``sum_k W[k] x[t - k]``; the
        ``k_t`` window frames are stacked on the channel axis and the time
        taps of the kernel on its input axis, so one transposed convolution
        of time extent 1 computes it.
        """
        kf, kt = conv.kernel_size
        window = ops.concatenate([cache, x], axis=1)  # [1, kt, F, 2Cin], oldest first
        block = _block_kernel(conv.real_kernel, conv.imag_kernel, in_axis=3, out_axis=2)  # [kt, kf, 2Co, 2Ci]
        # window position j holds x[t - (kt - 1 - j)]: tap k = kt - 1 - j
        kernel = ops.concatenate([block[kt - 1 - j] for j in range(kt)], axis=-1)  # [kf, 2Co, kt * 2Ci]
        kernel = ops.expand_dims(kernel, 0)  # [kf, 2Co, kt*2Ci] -> [1, kf, 2Co, kt*2Ci]
        freq = x.shape[2]
        # [1, kt, F, 2Ci] -> [1, F, kt, 2Ci] -> [1, 1, F, kt * 2Ci]
        stacked = ops.reshape(ops.transpose(window, (0, 2, 1, 3)), (1, 1, freq, kt * x.shape[3]))
        y = ops.conv_transpose(stacked, kernel, strides=(1, conv.strides[0]), padding="valid")
        freq_out = (freq - 1) * conv.strides[0] + kf - 2 * conv.freq_padding + conv.output_padding
        y = y[:, :, conv.freq_padding : conv.freq_padding + freq_out, :]
        if conv.use_bias:
            y = y + ops.concatenate([conv.real_bias - conv.imag_bias, conv.real_bias + conv.imag_bias])
        return y, window[:, 1:]

    def _bottleneck_step(self, x, parts, new):
        m = self.model
        c = m.channels[-1] // 2
        fb = m.bottom_freq
        if m.rnn_type == "complex":
            xr, xi = complex_split(x)
            # [1, 1, Fb, C] -> [1, Fb * C] for each part
            y = complex_merge(ops.reshape(xr, (1, fb * c)), ops.reshape(xi, (1, fb * c)))
            for i, rnn in enumerate(m.rnns):
                yr, yi = complex_split(y)
                stacked = ops.concatenate([yr, yi], axis=0)  # [2, D]: rows real | imag input
                names = [f"clstm_{i}_{p}" for p in ("h_r", "c_r", "h_i", "c_i")]
                # each [1, 2, units] -> [2, units]
                h_r, c_r, h_i, c_i = (ops.reshape(parts[n], (2, rnn.units)) for n in names)
                h_r, c_r = _lstm_step(rnn.real_lstm, stacked, h_r, c_r)
                h_i, c_i = _lstm_step(rnn.imag_lstm, stacked, h_i, c_i)
                for n, v in zip(names, (h_r, c_r, h_i, c_i), strict=True):
                    new[n] = v
                real = h_r[:1] - h_i[1:]
                imag = h_r[1:] + h_i[:1]
                if rnn.projection_dim:
                    real = rnn.real_dense(real)
                    imag = rnn.imag_dense(imag)
                y = complex_merge(real, imag)
            yr, yi = complex_split(y)
            # [1, Fb * C] -> [1, 1, Fb, C] for each part
            return complex_merge(ops.reshape(yr, (1, 1, fb, c)), ops.reshape(yi, (1, 1, fb, c)))
        # [1, 1, Fb, 2C] -> [1, Fb * 2C]
        y = ops.reshape(x, (1, fb * 2 * c))
        for i, rnn in enumerate(m.rnns):
            # each [1, 1, units] -> [1, units]
            h = ops.reshape(parts[f"lstm_{i}_h"], (1, rnn.units))
            cc = ops.reshape(parts[f"lstm_{i}_c"], (1, rnn.units))
            h, cc = _lstm_step(rnn, y, h, cc)
            new[f"lstm_{i}_h"], new[f"lstm_{i}_c"] = h, cc
            y = h
        y = m.rnn_dense(y)
        # [1, Fb * 2C] -> [1, 1, Fb, 2C]
        return ops.reshape(y, (1, 1, fb, 2 * c))

    # ------------------------------------------------------------------- step
    def __call__(self, audio, input_buffer, ola_buffer, state):
        """One hop with the packed ``state`` vector (see the class docstring)."""
        res = self.step(audio, input_buffer, ola_buffer, self._unpack(state))
        new = {name: res.pop(f"next_{name}") for name, _ in self._layout}
        res["next_state"] = self._pack(new, self._layout)
        return res

    def step(self, audio, input_buffer, ola_buffer, states, scope=None):
        """One hop with every cache and LSTM state as its own tensor.

        Args:
            audio: ``[1, frame_step]``.
            input_buffer: ``[1, frame_length - frame_step]``.
            ola_buffer: ``[1, ola_size]``.
            states: ``{name: [1, *shape]}`` for every ``(name, shape)`` of
                :meth:`state_layout` (all zeros initially,
                :meth:`initial_states`).
            scope: optional ``name -> context manager`` (e.g.
                ``tf.name_scope``) entered around the signal-processing ends:
                :data:`ANALYSIS_SCOPE` (input buffer, framing, DFT) and
                :data:`SYNTHESIS_SCOPE` (mask application, inverse DFT,
                overlap-add). The full-int8 export keeps the ops named so in
                float and quantizes the network between them.

        Returns:
            dict with ``enhanced`` ``[1, frame_step]``, ``next_input_buffer``,
            ``next_ola_buffer`` and ``next_<name>`` for every state, shaped
            like the inputs. Full-int8 TFLite export uses this form: each
            tensor gets its own quantization scale, whereas one packed vector
            would share one scale between conv caches and LSTM cell states
            of very different ranges.
        """
        m = self.model
        scope = scope or (lambda name: contextlib.nullcontext())
        missing = [name for name, _ in self._layout if name not in states]
        if missing:
            raise ValueError(f"`states` lacks {missing}; expected the names of state_layout().")
        with scope(ANALYSIS_SCOPE):
            audio = ops.cast(audio, "float32")
            frame = ops.concatenate([input_buffer, audio], axis=1)  # [1, win]
            spec = ops.matmul(
                frame, ops.convert_to_tensor(self._forward)
            )  # [1, 2 * bins] (re, im interleaved)
            spec = ops.reshape(spec, (1, 1, self.bins, 2))  # [1, 2 * bins] -> [1, 1, bins, 2]
        parts = dict(states)
        new = {}
        x = spec[:, :, 1:, :]
        skips = []
        for i, (conv, norm, act) in enumerate(
            zip(m.encoder_convs, m.encoder_norms, m.encoder_acts, strict=True)
        ):
            y, new[f"enc_conv_{i}"] = self._conv_step(conv, x, parts[f"enc_conv_{i}"])
            x = act(norm(y, training=False))
            skips.append(x)
        x = self._bottleneck_step(x, parts, new)
        n = len(m.decoder_convs)
        for i, conv in enumerate(m.decoder_convs):
            inp = complex_concat([x, skips[-1 - i]])
            x, new[f"dec_conv_{i}"] = self._deconv_step(conv, inp, parts[f"dec_conv_{i}"])
            if i < n - 1:
                x = m.decoder_acts[i](m.decoder_norms[i](x, training=False))
        with scope(SYNTHESIS_SCOPE):
            # The offline model pads the mask with 0 at DC, so its DC output is exactly 0 for every masking
            # mode; setting it directly avoids the 0 / 0 of mode E's tanh(|M|) / |M| when float16 weight
            # conversion flushes the 1e-8 under the square root to zero.
            est = apply_mask(spec[:, :, 1:, :], ops.cast(x, "float32"), m.masking_mode)
            est = ops.pad(est, [[0, 0], [0, 0], [1, 0], [0, 0]])  # [1, 1, bins - 1, 2] -> [1, 1, bins, 2]
            flat = ops.reshape(est, (1, 2 * self.bins))  # [1, 1, bins, 2] -> [1, 2 * bins]
            frame_out = ops.matmul(flat, ops.convert_to_tensor(self._inverse))  # [1, win]
            frame_out = ops.pad(frame_out, [[0, 0], [0, self.blocks * self.hop - self.win]])
            acc = ops.pad(ola_buffer, [[0, 0], [0, self.hop]]) + frame_out  # [1, blocks * hop]
            out = acc[:, : self.hop] / ops.convert_to_tensor(self._envelope)[None, :]
            result = {
                "enhanced": ops.clip(out, -1.0, 1.0),
                "next_input_buffer": frame[:, self.hop :],
                "next_ola_buffer": acc[:, self.hop :],
            }
        # LSTM states [2 or 1, units] -> [1, *shape]; conv caches keep their shape
        result.update({f"next_{name}": ops.reshape(new[name], (1, *shape)) for name, shape in self._layout})
        return result

    def stream(self, audio, step=None):
        """Runs ``audio`` ``[samples]`` through the stream and realigns it.

        Pads with zeros to whole hops plus the delay, runs every hop through
        ``step`` (default: this object called eagerly; pass e.g. a
        ``tf.function`` of it for speed) and drops the first
        :attr:`delay_samples` outputs, so the result aligns with the offline
        model's output for ``audio``.

        Returns:
            float32 NumPy array ``[samples]``.
        """
        audio = np.asarray(audio, "float32").reshape(-1)
        length = audio.shape[0]
        hops = -(-(length + self.delay_samples) // self.hop)
        padded = np.zeros(hops * self.hop, "float32")
        padded[:length] = audio
        step = step or self
        buf, ola, state = self.initial_state()
        out = []
        for k in range(hops):
            res = step(padded[None, k * self.hop : (k + 1) * self.hop], buf, ola, state)
            buf, ola, state = res["next_input_buffer"], res["next_ola_buffer"], res["next_state"]
            out.append(ops.convert_to_numpy(res["enhanced"])[0])
        return np.concatenate(out)[self.delay_samples : self.delay_samples + length]
