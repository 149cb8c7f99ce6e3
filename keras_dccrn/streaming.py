"""Streaming: a causal model run hop by hop with its states passed in and out.

There is no separate streaming model. A model that can stream
(``model.supports_streaming``: a causal DCCRN, ``time_crop="causal"``, e.g.
the ``distil_dccrn`` preset) is stepped as it is: ``model.step(audio,
states) -> (enhanced, new_states)`` runs the **same layers** as ``call``, each
stateful layer (``STFT``, ``ComplexConv2D``, ``ComplexLSTM``,
``ComplexConv2DTranspose``, ``ISTFT``) through its ``step(inputs, state)``
with one state tensor, ``model.initial_states(batch_size)`` giving the
all-zero start (see :class:`~keras_dccrn.models.base.SpectralMaskingModel`):

* ``input_buffer`` ``[1, frame_length - frame_step]``: the last input
  samples, completing the next STFT frame;
* ``ola_buffer`` ``[1, (ceil(frame_length / frame_step) - 1) * frame_step]``:
  the not yet complete part of the inverse-STFT overlap-add;
* ``enc_conv_<i>`` / ``dec_conv_<i>``: the last ``k_t - 1`` input frames of
  every (transposed) convolution; ``clstm_<i>`` ``[1, 4, 2, units]`` or
  ``lstm_<i>`` ``[1, 2, units]``: the LSTM ``(h, c)`` states.

This module holds the entry check and :func:`stream`, which runs the model's
step through the one hop loop of :mod:`keras_dccrn.runtime.hops` (NumPy only;
the int8 calibration and the LiteRT runtime use it too).

**Delay.** The sample emitted at stream position ``m`` is the offline
model's output sample ``m - (frame_length - frame_step)`` (300 samples =
18.75 ms at 400/100); :func:`stream` feeds that many trailing zeros and drops
as many leading outputs, so its result equals the offline output up to float
rounding (``tests/test_streaming.py``).
"""

import numpy as np

from keras_dccrn.runtime.hops import run_hops


def streaming_refusal(model):
    """Why ``model`` cannot stream (one line), or ``None`` when it can."""
    from keras_dccrn.models.base import SpectralMaskingModel

    if not isinstance(model, SpectralMaskingModel):
        return f"a {type(model).__name__} is not a keras-dccrn masking model"
    return model.streaming_refusal()


def check_streamable(model):
    """Raises a one-line ``ValueError`` unless ``model`` is a built model that can stream."""
    reason = streaming_refusal(model)
    if reason is not None:
        raise ValueError(f"{getattr(model, 'name', type(model).__name__)}: cannot stream: {reason}.")
    model.require_streaming()


def delay_samples(model):
    """Stream delay in samples: ``frame_length - frame_step``."""
    return int(model.frame_length) - int(model.frame_step)


def numpy_step(step, states):
    """``(step, states)`` for :mod:`~keras_dccrn.runtime.hops` from a model step and its initial states.

    Args:
        step: ``model.step`` or a ``tf.function`` of it (``(audio, {name: tensor})`` ->
            ``(enhanced, {name: tensor})``).
        states: the initial ``{name: array}`` (``model.initial_states(1)``).

    Returns:
        ``(step, states)``: the step returning NumPy arrays (so that observers and the next hop get
        NumPy), and the states as float32 NumPy arrays.
    """
    names = list(states)

    def run(audio, current):
        enhanced, new = step(audio, current)
        return np.asarray(enhanced), {name: np.asarray(new[name]) for name in names}

    return run, {name: np.asarray(value, "float32") for name, value in states.items()}


def stream(model, audio, step=None):
    """Enhances ``audio`` ``[samples]`` hop by hop with ``model.step``.

    Args:
        model: a built model with ``supports_streaming``.
        audio: 1-D signal.
        step: the step function (default ``model.step`` called eagerly; pass
            e.g. ``tf.function(model.step)`` for speed).

    Returns:
        float32 NumPy array ``[samples]``, aligned with ``model(audio)``.
    """
    check_streamable(model)
    step, initial = numpy_step(step or model.step, model.initial_states(1))
    return run_hops(step, initial, audio, int(model.frame_step), delay_samples(model))
