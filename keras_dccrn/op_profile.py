"""Where the time of a TensorFlow step goes: op kernels traced with ``tf.profiler``, grouped by type and layer.

:func:`trace_ops` runs a callable (e.g. a ``train_on_batch`` step) under the TensorFlow profiler and
reads the op kernels' executions back from the profile (the XSpace protobuf the profiler writes,
``plugins/profile/<run>/<host>.xplane.pb``): one :class:`OpRun` per kernel execution, named as in
the graph (``distil_dccrn_1/dec_conv_3_1/convolution``, ``gradient_tape/...`` for the gradient,
``.../while/...`` for the body of a loop) with its op type (``_MklNativeConv2DBackpropFilter``).
:func:`op_shares` sums them by any key (:func:`op_type`, :func:`layer`, :func:`phase`).

A name's first component is the model's (or Keras' ``compile_loss``, the optimizer's) scope and its
second the layer's; Keras suffixes each scope with ``_<n>`` per call (``dec_conv_3_1``), which
:func:`layer` drops so the calls of one layer add up.
"""

import dataclasses
import glob
import os
import re
import tempfile

_SUFFIX = re.compile(r"_\d+$")
GRADIENT_SCOPE = "gradient_tape"
WRITTEN_GRADIENT_SUFFIX = "_gradient"


@dataclasses.dataclass(frozen=True)
class OpRun:
    """One execution of an op kernel.

    Attributes:
        name: the op's name in the graph.
        type: the kernel's op type (oneDNN kernels carry TensorFlow's ``_Mkl`` prefixes).
        seconds: its duration.
    """

    name: str
    type: str
    seconds: float


def read_xplane(path):
    """The op kernel executions of an XSpace profile file, in trace order.

    Raises:
        ValueError: the file is not an XSpace protobuf or holds no TensorFlow op.
    """
    from google.protobuf.message import DecodeError
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        try:
            space.ParseFromString(f.read())
        except DecodeError as exc:
            raise ValueError(f"{path}: not an XSpace profile ({exc})") from None
    runs = []
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                label = plane.event_metadata[event.metadata_id].name
                # op kernels are "name:Type"; the executor's own events are "Class::method", the
                # Python thread's "EagerLocalExecute: <function>"
                if "::" in label or ":" not in label or " " in label:
                    continue
                name, kind = label.rsplit(":", 1)
                runs.append(OpRun(name, kind, event.duration_ps * 1e-12))
    if not runs:
        raise ValueError(f"{path}: the profile holds no TensorFlow op")
    return runs


def trace_ops(fn, steps=1, logdir=None):
    """Runs ``fn()`` ``steps`` times under the TensorFlow profiler and returns its op kernel executions.

    Args:
        fn: a callable running TensorFlow ops (warm it up first: tracing would be profiled too).
        steps: calls profiled.
        logdir: where the profiler writes (default: a temporary folder, removed afterwards).

    Returns:
        ``[OpRun, ...]`` of all ``steps`` calls.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as scratch:
        folder = logdir or scratch
        before = set(glob.glob(os.path.join(folder, "plugins", "profile", "*", "*.xplane.pb")))
        tf.profiler.experimental.start(folder)
        try:
            for _ in range(steps):
                fn()
        finally:
            tf.profiler.experimental.stop()
        written = sorted(
            set(glob.glob(os.path.join(folder, "plugins", "profile", "*", "*.xplane.pb"))) - before
        )
        if not written:
            raise ValueError(f"{folder}: the profiler wrote no .xplane.pb file")
        return [run for path in written for run in read_xplane(path)]


def _scopes(name):
    parts = name.split("/")
    if parts[0] == GRADIENT_SCOPE:
        parts = parts[1:]
    return [_SUFFIX.sub("", p) for p in parts]


def op_type(run):
    """The op type without TensorFlow's oneDNN prefixes (``_MklNativeFusedConv2D`` -> ``FusedConv2D``)."""
    return re.sub(r"^_Mkl(Native)?", "", run.type)


def phase(run, optimizer="adam"):
    """``"backward"`` (gradient ops and the sums of a tensor's gradients), ``"optimizer"`` or ``"forward"``."""
    first = run.name.split("/")[0]
    root = _SUFFIX.sub("", first)
    # a root scope ending in "_gradient": the ops of a gradient written out (keras_dccrn.layers.prelu)
    if first == GRADIENT_SCOPE or root == "AddN" or root.endswith(WRITTEN_GRADIENT_SUFFIX):
        return "backward"
    if _SUFFIX.sub("", first) == optimizer:
        return "optimizer"
    return "forward"


def layer(run, model):
    """The layer an op belongs to: ``model``'s layer (``dec_conv_3``), ``"loss"``, or the op's root scope.

    Args:
        run: an :class:`OpRun`.
        model: the model's name (its scope is ``<model>_<n>``).
    """
    scopes = _scopes(run.name)
    if scopes[0] == model:
        return scopes[1] if len(scopes) > 2 else f"{model} (own ops)"
    if scopes[0] == "compile_loss":
        return "loss"
    return scopes[0]


def op_shares(runs, key, steps=1):
    """Time per group: ``[(group, seconds per step, share of all op time, executions per step), ...]``.

    Args:
        runs: :class:`OpRun` list (:func:`trace_ops`).
        key: callable ``OpRun -> group``.
        steps: the steps ``runs`` cover (seconds and counts are per step).

    Returns:
        The groups, most time first.
    """
    seconds, counts = {}, {}
    for run in runs:
        group = key(run)
        seconds[group] = seconds.get(group, 0.0) + run.seconds
        counts[group] = counts.get(group, 0) + 1
    total = sum(seconds.values()) or 1.0
    order = sorted(seconds, key=lambda g: (-seconds[g], str(g)))
    return [(g, seconds[g] / steps, seconds[g] / total, counts[g] / steps) for g in order]
