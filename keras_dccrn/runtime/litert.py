"""The LiteRT runtime: runs ``.tflite`` files written by :func:`keras_dccrn.export.export_tflite`.

Needs NumPy and ``ai-edge-litert`` only (never TensorFlow). A file carries its model's
``lookahead_samples``, ``frame_step`` and ``sample_rate`` in a :data:`METADATA_NAME` metadata entry
(JSON); :func:`read_metadata` reads it. For a file without it (exported before the entry existed):
a streaming file's ``frame_step`` is its hop (the ``audio`` input length) and its
``lookahead_samples`` is ``delay_samples + hop - 1`` (after delay compensation, output sample ``n`` is
computed once the hop holding input sample ``n + delay`` is in); an offline file states neither and
the chunked runner uses its defaults (:mod:`keras_dccrn.runtime.backends`).
"""

import json
import math
import os

import numpy as np

from keras_dccrn.runtime.hops import HopStream

STREAM_INPUTS = ("audio", "input_buffer", "ola_buffer")
# Name of the flatbuffer metadata entry (UTF-8 JSON object) holding the model's integers.
METADATA_NAME = "keras_dccrn"


def tflite_op_names(path_or_bytes):
    """Set of operator names in a ``.tflite`` model (e.g. ``{"CONV_2D", ...}``)."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(path_or_bytes, (bytes, bytearray)):
        interpreter = Interpreter(model_content=bytes(path_or_bytes))
    else:
        interpreter = Interpreter(model_path=os.fspath(path_or_bytes))
    return {op["op_name"] for op in interpreter._get_ops_details()}


def undelegated_ops(interpreter):
    """Names of the ops an allocated interpreter runs outside its delegates, in graph order.

    After ``allocate_tensors`` the XNNPACK delegate has replaced the ops it takes by ``DELEGATE``
    nodes (one per partition); the others run on LiteRT's builtin kernels. Those are the ops whose
    outputs something needs (a graph output or a delegate's input) and that no delegate computes,
    and, recursively, the ops feeding them. ``interpreter._get_ops_details()`` still lists the
    replaced ops, so they are told apart this way. Without a delegate every op is listed.

    Args:
        interpreter: an ``ai_edge_litert`` ``Interpreter`` with tensors allocated.

    Returns:
        ``[op name]`` (e.g. ``["PACK", "PACK"]``); empty when the delegates run the whole graph.
    """
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    computed = {t for op in delegates for t in op["outputs"]}
    producer = {t: op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    needed = [d["index"] for d in interpreter.get_output_details()]
    needed += [t for op in delegates for t in op["inputs"]]
    outside, seen = {}, set()
    while needed:
        tensor = needed.pop()
        if tensor in seen or tensor in computed or tensor not in producer:  # inputs and constants
            continue
        seen.add(tensor)
        op = producer[tensor]
        outside[op["index"]] = op["op_name"]
        needed.extend(t for t in op["inputs"] if t >= 0)
    return [outside[i] for i in sorted(outside)]


def load_interpreter(model_path=None, model_content=None, num_threads=1):
    """LiteRT interpreter with tensors allocated: ``(interpreter, uses_xnnpack)``.

    The XNNPACK delegate is tried first; some full-int8 graphs (quantization
    parameters XNNPACK cannot take) make it fail to prepare, in which case the
    builtin reference kernels are used instead.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    args = dict(model_path=model_path, model_content=model_content, num_threads=num_threads)
    try:
        interpreter = Interpreter(**args)
        interpreter.allocate_tensors()
        return interpreter, True
    except RuntimeError as exc:
        if "XNNPACK" not in str(exc):
            raise
    interpreter = Interpreter(
        **args, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    return interpreter, False


def read_metadata(path_or_bytes):
    """The :data:`METADATA_NAME` entry of a ``.tflite`` model as a dict (empty if it has none).

    Args:
        path_or_bytes: a ``.tflite`` file or its bytes.
    """
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(path_or_bytes, (bytes, bytearray)):
        content = bytes(path_or_bytes)
    else:
        with open(os.fspath(path_or_bytes), "rb") as f:
            content = f.read()
    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is not None and entry.Name().decode() == METADATA_NAME:
            buffer = model.Buffers(entry.Buffer())
            if buffer.Offset() > 1:  # data stored after the flatbuffer (models over 2 GB)
                data = content[buffer.Offset() : buffer.Offset() + buffer.Size()]
            else:
                data = buffer.DataAsNumpy().tobytes()
            try:
                value = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return {}
            return value if isinstance(value, dict) else {}
    return {}


class TFLiteEnhancer:
    """Enhances whole 16 kHz signals with an exported ``.tflite`` model.

    The kind of file is detected from its ``serving_default`` signature:
    ``noisy`` -> offline (the signal is cut into chunks of the model's
    length, the last one zero-padded; chunks are enhanced independently,
    so the recurrent state restarts at every chunk boundary), or ``audio`` +
    ``input_buffer`` + ``ola_buffer`` + one input per state, each with its
    ``next_<name>`` output -> streaming (the hop loop of
    :mod:`keras_dccrn.runtime.hops` carrying the states; the fixed delay of
    ``input_buffer``'s length is compensated by feeding that many trailing
    zeros and dropping as many leading outputs). A streaming file also
    enhances a signal piece by piece (:meth:`open_stream`), which is how
    long files are processed (:mod:`keras_dccrn.runtime.chunking`).

    Args:
        path: ``.tflite`` file written by :func:`keras_dccrn.export.export_tflite`.
        num_threads: LiteRT CPU threads.

    Call arguments:
        audio: 1-D float32 signal at the model's 16 kHz rate.

    Returns:
        float32 ``[samples]``, the enhanced signal, same length as ``audio``.

    Attributes:
        mode: ``"offline"`` or ``"streaming"``.
        streams: ``mode == "streaming"``.
        delay_samples: streaming delay compensated (0 offline).
        uses_xnnpack: whether LiteRT's XNNPACK delegate runs the graph (see
            :func:`load_interpreter`).
        metadata: the file's :data:`METADATA_NAME` entry (empty for an old file).
        lookahead_samples: future input samples an output sample depends on, or None (unknown).
        frame_step: the model's STFT hop in samples, or None (unknown).
    """

    def __init__(self, path, num_threads=1):
        from keras_dccrn import extras

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such TFLite file")
        if not isinstance(num_threads, int) or num_threads <= 0:
            raise ValueError(f"`num_threads` must be a positive integer; received {num_threads!r}.")
        extras.require(["ai_edge_litert"], f"{path}: running a .tflite model")
        try:
            self.interpreter, self.uses_xnnpack = load_interpreter(model_path=path, num_threads=num_threads)
            signatures = self.interpreter.get_signature_list()
        except Exception as exc:
            raise ValueError(f"{path}: not a readable TFLite model ({str(exc).strip()[:200]})") from None
        if "serving_default" not in signatures:
            raise ValueError(f"{path}: no 'serving_default' signature (found {sorted(signatures)})")
        self.path = path
        self.runner = self.interpreter.get_signature_runner("serving_default")
        inputs = self.runner.get_input_details()
        names = set(inputs)
        if names == {"noisy"}:
            self.mode = "offline"
            self.chunk_samples = int(inputs["noisy"]["shape"][1])
            self.delay_samples = 0
        elif set(STREAM_INPUTS) <= names and self._carried(names, self.runner.get_output_details()):
            self.mode = "streaming"
            self.hop = int(inputs["audio"]["shape"][1])
            self.delay_samples = int(inputs["input_buffer"]["shape"][1])
            outputs = self.runner.get_output_details()
            carried = sorted(names - {"audio"})
            self._initial = [np.zeros(inputs[n]["shape"], "float32") for n in carried]
            self._step = _interpreter_step(
                self.interpreter,
                inputs["audio"]["index"],
                outputs["enhanced"]["index"],
                [(inputs[n]["index"], outputs[f"next_{n}"]["index"]) for n in carried],
            )
            # The step uses set_tensor / invoke / get_tensor on the tensor indices (less per-call
            # overhead); a live signature runner holds buffer references that make invoke() refuse.
            self.runner = None
        else:
            raise ValueError(
                f"{path}: unknown signature inputs {sorted(names)}; not written by export_tflite"
            )
        self.metadata = read_metadata(path)
        self.lookahead_samples, self.frame_step = self._geometry()

    @staticmethod
    def _carried(names, outputs):
        """Whether every input but ``audio`` has its ``next_<name>`` output, plus ``enhanced``."""
        return "enhanced" in outputs and all(f"next_{n}" in outputs for n in names - {"audio"})

    def _geometry(self):
        """``(lookahead_samples, frame_step)`` from the metadata, else the module docstring's rule."""
        lookahead, step = self.metadata.get("lookahead_samples"), self.metadata.get("frame_step")
        if self.mode == "streaming":
            step = self.hop if step is None else step
            lookahead = self.delay_samples + self.hop - 1 if lookahead is None else lookahead
        return (None if lookahead is None else int(lookahead)), (None if step is None else int(step))

    def _offline(self, audio):
        n = self.chunk_samples
        chunks = max(1, math.ceil(audio.size / n))
        padded = np.zeros(chunks * n, "float32")
        padded[: audio.size] = audio
        out = np.empty_like(padded)
        for k in range(chunks):
            res = self.runner(noisy=padded[None, k * n : (k + 1) * n])
            out[k * n : (k + 1) * n] = res["enhanced"][0]
        return out[: audio.size]

    @property
    def streams(self):
        """Whether the file is a streaming one: :meth:`open_stream` carries its state across pieces."""
        return self.mode == "streaming"

    def open_stream(self):
        """A new :class:`~keras_dccrn.runtime.hops.HopStream` of a streaming file, from zero state.

        Pushing a signal through it in pieces of any length gives exactly this enhancer's output for
        the whole signal (the same hops, the state carried), in memory independent of the length.
        Streams opened on one enhancer share its interpreter but not their states (e.g. one per
        channel); they must be pushed from one thread.

        Raises:
            ValueError: an offline file.
        """
        if not self.streams:
            raise ValueError(f"{self.path}: an offline .tflite file cannot stream; it runs in chunks.")
        return HopStream(self._step, list(self._initial), self.hop, self.delay_samples)

    def __call__(self, audio):
        audio = np.asarray(audio, dtype="float32")
        if audio.ndim != 1:
            raise ValueError(f"TFLiteEnhancer expects a 1-D signal; received shape {audio.shape}.")
        if audio.size == 0:
            return audio.copy()
        if self.mode == "offline":
            return self._offline(audio)
        return self.open_stream().push(audio, final=True)


def _interpreter_step(interpreter, audio_index, enhanced_index, carried):
    """A hop step (:mod:`keras_dccrn.runtime.hops`) of a streaming interpreter; states: a list of arrays.

    Args:
        interpreter: the allocated LiteRT interpreter.
        audio_index, enhanced_index: tensor indices of the ``audio`` input and the ``enhanced`` output.
        carried: ``[(input index, output index)]`` of every state, in the order of the states list.
    """
    set_tensor, get_tensor, invoke = interpreter.set_tensor, interpreter.get_tensor, interpreter.invoke
    inputs = [i for i, _ in carried]
    outputs = [o for _, o in carried]

    def step(audio, states):
        set_tensor(audio_index, audio)
        for index, value in zip(inputs, states, strict=True):
            set_tensor(index, value)
        invoke()
        return get_tensor(enhanced_index), [get_tensor(index) for index in outputs]

    return step
