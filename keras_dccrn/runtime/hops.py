"""The hop loop: a streaming step run hop by hop over a signal, its state carried, its delay removed.

NumPy only (no TensorFlow), so that it serves the Keras stream
(:func:`keras_dccrn.streaming.stream`), the int8 calibration of
:mod:`keras_dccrn.export.tflite` and the LiteRT runtime
(:class:`keras_dccrn.runtime.litert.TFLiteEnhancer`) alike.

A *step* is ``step(audio [1, hop], states) -> (enhanced [1, hop], new_states)``; the states are
whatever the step carries (a dict of arrays for a Keras model, a list of arrays for a LiteRT
interpreter) and are never looked into here. A streaming model's output lags its input by ``delay``
samples; :class:`HopStream` drops the first ``delay`` output samples and, at the end, feeds zeros until
every input sample has its output, so the result aligns with the offline model's output and has the
input's length.
"""

import numpy as np


class HopStream:
    """A signal through ``step`` in pieces of any length, hop by hop, the state carried across pieces.

    Pushing a signal in several pieces gives exactly the output of pushing it at once: the same hops
    run in the same order (samples short of a whole hop wait for the next piece).

    Args:
        step: ``(audio [1, hop], states) -> (enhanced [1, hop], new_states)``.
        states: the initial states, as ``step`` takes them.
        hop: samples per step.
        delay: samples of stream delay (output sample ``n`` comes out of the step with input sample
            ``n + delay``).
        observe: optional ``(audio, states) -> None`` called with every step's inputs, e.g. to record
            int8 calibration samples (``audio`` is a ``[1, hop]`` view into the pushed signal).

    Attributes:
        states: the states after the last step run.
    """

    def __init__(self, step, states, hop, delay, observe=None):
        if int(hop) <= 0 or int(delay) < 0:
            raise ValueError(f"`hop` must be positive and `delay` non-negative; received {hop!r}, {delay!r}.")
        self.step, self.states, self.observe = step, states, observe
        self.hop, self.delay = int(hop), int(delay)
        self._pending = np.zeros(0, "float32")  # input samples short of a whole hop
        self._received = 0  # input samples pushed
        self._stepped = 0  # input samples (real and padding) run through the step
        self._emitted = 0  # output samples returned
        self._finished = False

    def push(self, audio, final=False):
        """Runs the whole hops now available; returns the output samples they complete.

        Args:
            audio: ``[samples]`` (any length, also 0).
            final: the signal ends with this piece: zeros are fed until every input sample has its
                output, after which the stream accepts nothing more.

        Returns:
            float32 ``[m]``: the next output samples; over all pushes, exactly as many as were pushed.
        """
        if self._finished:
            raise ValueError("HopStream: the stream has ended (a piece was pushed with final=True).")
        audio = np.asarray(audio, "float32").reshape(-1)
        self._received += audio.size
        samples = np.concatenate([self._pending, audio]) if self._pending.size else audio
        if final:
            hops = -(-(self._received + self.delay - self._stepped) // self.hop)
            samples = np.concatenate([samples, np.zeros(hops * self.hop - samples.size, "float32")])
            self._finished = True
        whole = samples.size // self.hop * self.hop
        self._pending = samples[whole:].copy()
        out = self._run(samples[:whole])
        self._stepped += whole
        skip = max(0, self.delay - (self._stepped - whole))  # leading output samples still to drop
        out = out[skip : skip + self._received - self._emitted]
        self._emitted += out.size
        return out

    def _run(self, samples):
        """``samples`` ``[hops * hop]`` through the step; returns ``[hops * hop]``."""
        hop, step, observe, states = self.hop, self.step, self.observe, self.states
        hops = samples.size // hop
        frames = samples.reshape(hops, 1, hop)  # [hops * hop] -> [hops, 1, hop]
        out = np.empty((hops, hop), "float32")
        for k in range(hops):
            if observe is not None:
                observe(frames[k], states)
            enhanced, states = step(frames[k], states)
            out[k] = enhanced[0]
        self.states = states
        return out.reshape(-1)  # [hops, hop] -> [hops * hop]


def run_hops(step, states, audio, hop, delay, observe=None):
    """The hop loop over a whole signal: :class:`HopStream` pushed ``audio`` once, as final.

    Args:
        step, states, hop, delay, observe: see :class:`HopStream`.
        audio: ``[samples]``.

    Returns:
        float32 ``[samples]``, aligned with the offline output.
    """
    return HopStream(step, states, hop, delay, observe).push(audio, final=True)
