r"""Per-layer profile of the streaming TFLite graph: where a hop's time goes, layer by layer.

    python benchmarks/tflite_layers.py --preset=distil_dccrn
    python benchmarks/tflite_layers.py --model=run/model.keras --quantizations=float32,dynamic_int8

LiteRT's Python API has no op profiler (the ``benchmark_model`` binary with op profiling is not
installable from the package registries), so each stateful layer's streaming step
(``layer.step(inputs, state)``, the very function the streaming graph runs, with the input and state
shapes of one hop recorded from ``model.step``) is converted on its own to a ``.tflite`` graph,
builtin ops only, and its ``invoke`` is timed with LiteRT on one thread (XNNPACK), like the whole
streaming graph (:func:`keras_dccrn.export.export_tflite`). "everything else" is the whole graph's
time minus the layers' sum: framing and DFT are in the STFT row; what remains is batch norms,
activations, skip concatenations, the mask and the inverse DFT of the synthesis. MACs per hop are
counted from each layer's traced graph (:mod:`keras_dccrn.profiling`); GMAC/s = MACs / time shows
how close each layer runs to the CPU's peak.

Timing: ``--repeats`` rounds of ``--invokes`` calls after a warm-up; the best round's mean per call
of the calling thread's CPU time (``time.thread_time``: with one thread LiteRT runs ``invoke`` on it).
Wall time also counts the time the process waits for a core busy with other work, which short
per-layer rounds escape more often than the whole graph's, and so inflates "everything else" on a
loaded machine; the whole graph's wall time is printed below the table. Each layer graph alone keeps
its weights in the core's L2 cache; the whole float32 graph's weights (about 10 MB for
distil_dccrn) do not fit, so the line "layer graphs in sequence" times the layer graphs called one
after another (one call of each per hop, caches shared as in the whole graph). The page also lists
the ops of the whole graph that LiteRT runs outside the XNNPACK delegate
(:func:`keras_dccrn.runtime.litert.undelegated_ops`). Inputs are zeros: invoke time does not depend
on the values (no subnormal slow-down was measured with speech, noise or zeros, trained or random
weights).
The page (``docs/benchmarks/tflite_layers.md``, ``--output``) starts with the exact command.
"""

import os
import platform
import sys
import tempfile
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402

DEFAULT_OUTPUT = "docs/benchmarks/tflite_layers.md"
QUANTIZATIONS = ("float32", "dynamic_int8")

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "Trained .keras file (overrides --preset).", flag_values=FLAGS)
flags.DEFINE_string(
    "preset", "distil_dccrn", "Preset with random weights (when no --model).", flag_values=FLAGS
)
flags.DEFINE_list("quantizations", list(QUANTIZATIONS), f"Any of {list(QUANTIZATIONS)}.", flag_values=FLAGS)
flags.DEFINE_integer("invokes", 300, "Calls per timed round.", flag_values=FLAGS)
flags.DEFINE_integer("repeats", 3, "Timed rounds (the best is kept).", flag_values=FLAGS)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown page to write ('' to only print).", flag_values=FLAGS)


def record_steps(model):
    """``[(layer, input shape, state shape)]`` of every stateful layer's step in one ``model.step`` hop."""
    import numpy as np

    from keras_dccrn.models import base

    calls = []
    original = base.run_layer
    users = [m for m in list(sys.modules.values()) if getattr(m, "run_layer", None) is original]

    def recording(layer, x, states, new_states, *args, **kwargs):
        if states is not None:
            calls.append((layer, tuple(x.shape), tuple(states[layer.name].shape)))
        return original(layer, x, states, new_states, *args, **kwargs)

    for module in users:  # the estimators call the name they imported
        module.run_layer = recording
    try:
        states = model.initial_states(1)
        model.step(np.zeros((1, model.frame_step), "float32"), states)
    finally:
        for module in users:
            module.run_layer = original
    return calls


def _convert(fn, specs, quantization):
    """A builtin-ops ``.tflite`` flatbuffer of the ``tf.function`` ``fn`` on ``specs``."""
    import tensorflow as tf

    concrete = fn.get_concrete_function(*specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def time_invoke(content, invokes, repeats):
    """``(cpu, wall)``: best round's mean seconds per ``invoke`` of a flatbuffer (one thread, zero inputs)."""
    return time_sequence([content], invokes, repeats)


def time_sequence(contents, invokes, repeats):
    """``(cpu, wall)`` best round's mean seconds per pass of one ``invoke`` of each flatbuffer in turn.

    CPU time is the calling thread's (``time.thread_time``); each is the best of ``repeats`` rounds.
    """
    from keras_dccrn.runtime.litert import load_interpreter

    interpreters = [load_interpreter(model_content=c, num_threads=1)[0] for c in contents]
    for _ in range(max(10, invokes // 10)):
        for interpreter in interpreters:
            interpreter.invoke()
    cpu = wall = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        for _ in range(invokes):
            for interpreter in interpreters:
                interpreter.invoke()
        cpu = min(cpu, (time.thread_time() - start_cpu) / invokes)
        wall = min(wall, (time.perf_counter() - start) / invokes)
    return cpu, wall


def layer_function(layer):
    """``(inputs, state) -> (outputs, new_state)`` of one layer's streaming step, as a ``tf.function``."""
    import keras
    import tensorflow as tf

    from keras_dccrn.layers.complex_lstm import lstm_step

    step = lstm_step if isinstance(layer, keras.layers.LSTM) else type(layer).step
    return tf.function(lambda x, s: step(layer, x, s))


def _macs(fn, specs):
    from keras_dccrn import profiling

    graph = fn.get_concrete_function(*specs).graph
    return profiling._graph_macs(graph, {})


def profile(model, quantizations, invokes, repeats):
    """Rows ``{name, macs, <quantization>: CPU seconds}`` per stateful layer, the whole graph's, and extras.

    Returns:
        ``(rows, whole, extra)`` with ``extra[quantization]`` = ``{wall, sequence, outside}``: the whole
        graph's wall seconds, the layer graphs' CPU seconds run in sequence, and its
        :func:`~keras_dccrn.runtime.litert.undelegated_ops`.
    """
    import tensorflow as tf

    from keras_dccrn.export import export_tflite

    rows = []
    hop = model.frame_step
    stft_fn = tf.function(lambda a, s: model.stft.step(a, s))
    stft_specs = [tf.TensorSpec([1, hop], tf.float32), tf.TensorSpec([1, model.stft.state_size], tf.float32)]
    rows.append(dict(name="STFT (framing + DFT)", fn=stft_fn, specs=stft_specs))
    for layer, x_shape, s_shape in record_steps(model):
        specs = [tf.TensorSpec(x_shape, tf.float32), tf.TensorSpec(s_shape, tf.float32)]
        rows.append(
            dict(name=f"{layer.name} ({type(layer).__name__})", fn=layer_function(layer), specs=specs)
        )
    from keras_dccrn.runtime.litert import load_interpreter, undelegated_ops

    contents = {q: [] for q in quantizations}
    for row in rows:
        row["macs"] = _macs(row["fn"], row["specs"])
        for q in quantizations:
            contents[q].append(_convert(row["fn"], row["specs"], q))
            row[q] = time_invoke(contents[q][-1], invokes, repeats)[0]
    whole = dict(name="whole streaming graph", macs=sum(r["macs"] for r in rows))
    extra = {}
    with tempfile.TemporaryDirectory() as tmp:
        for q in quantizations:
            path = export_tflite(model, os.path.join(tmp, f"{q}.tflite"), mode="streaming", quantization=q)
            with open(path, "rb") as f:
                content = f.read()
            whole[q], wall = time_invoke(content, invokes, repeats)
            outside = undelegated_ops(load_interpreter(model_content=content, num_threads=1)[0])
            extra[q] = dict(
                wall=wall, sequence=time_sequence(contents[q], invokes, repeats)[0], outside=outside
            )
    return rows, whole, extra


def render(rows, whole, extra, quantizations, command, model_text, hop_ms):
    header = ["layer", "MACs per hop (M)"]
    for q in quantizations:
        header += [f"{q} µs per hop", f"{q} share", f"{q} GMAC/s"]
    table = []

    def cells(name, macs, times):
        out = [name, f"{macs / 1e6:.2f}"]
        for q in quantizations:
            t = times[q]
            share = t / whole[q] if whole[q] else float("nan")
            rate = f"{macs / t / 1e9:.1f}" if macs and t > 0 else "-"
            out += [f"{t * 1e6:.1f}", f"{100 * share:.0f}%", rate]
        return out

    for r in rows:
        table.append(cells(r["name"], r["macs"], r))
    rest = {q: whole[q] - sum(r[q] for r in rows) for q in quantizations}
    table.append(cells("everything else (norms, activations, skips, mask, inverse DFT)", 0, rest))
    table.append(cells(whole["name"], whole["macs"], whole))
    lines = [
        f"# Per-layer profile of the streaming TFLite graph: {model_text}",
        "",
        f"Generated by `{command}` on {platform.machine()} ({os.cpu_count()} cores), code "
        f"{harness.code_version()}. LiteRT `num_threads=1` (XNNPACK), `invoke` only (no Python hop loop), "
        f"CPU time of the calling thread; one hop = {hop_ms:g} ms of audio. "
        "See the script's docstring for the method.",
        "",
        *harness.markdown_table(header, table, align="l" + "r" * (len(header) - 1)),
        "",
    ]
    for q in quantizations:
        rtf = whole[q] / (hop_ms / 1000)
        e = extra[q]
        outside = ", ".join(f"{n} x{e['outside'].count(n)}" for n in sorted(set(e["outside"]))) or "none"
        lines += [
            f"* {q}: {whole[q] * 1e6:.0f} µs per hop, RTF {rtf:.3f} (`invoke` only; wall time "
            f"{e['wall'] * 1e6:.0f} µs). Layer graphs in sequence (one call of each per hop, caches shared): "
            f"{e['sequence'] * 1e6:.0f} µs (each alone: {sum(r[q] for r in rows) * 1e6:.0f} µs). "
            f"Ops outside XNNPACK: {outside}."
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "tflite_layers.py", __doc__)
    if status is not None:
        return status
    unknown = [q for q in FLAGS.quantizations if q not in QUANTIZATIONS]
    if unknown or not FLAGS.quantizations:
        print(
            f"tflite_layers.py: --quantizations: unknown {unknown}; choose from {list(QUANTIZATIONS)}",
            file=sys.stderr,
        )
        return 2
    if FLAGS.invokes < 1 or FLAGS.repeats < 1:
        print("tflite_layers.py: --invokes and --repeats must be >= 1", file=sys.stderr)
        return 2
    import numpy as np

    from keras_dccrn import build_model
    from keras_dccrn.runtime import ModelLoadError, load_keras_model

    try:
        if FLAGS.model:
            model = load_keras_model(FLAGS.model)
            model_text = f"`{FLAGS.model}`"
        else:
            model = build_model(FLAGS.preset)
            model(np.zeros((1, 1600), "float32"))
            model_text = f"preset `{FLAGS.preset}`, random weights (speed does not depend on them)"
        if not getattr(model, "supports_streaming", False):
            raise ValueError(f"{FLAGS.model or FLAGS.preset}: the model cannot stream")
    except (ModelLoadError, ValueError) as exc:
        print(f"tflite_layers.py: {exc}", file=sys.stderr)
        return 2
    rows, whole, extra = profile(model, FLAGS.quantizations, FLAGS.invokes, FLAGS.repeats)
    hop_ms = 1000 * model.frame_step / harness.SAMPLE_RATE
    text = render(
        rows, whole, extra, FLAGS.quantizations, harness.command_line(__file__, argv), model_text, hop_ms
    )
    print(text)
    if FLAGS.output:
        harness.write_page(FLAGS.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
