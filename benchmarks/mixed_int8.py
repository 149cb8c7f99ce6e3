r"""Where dynamic-range int8 loses quality in the streaming TFLite export, layer by layer, and what the
mixed int8 recipe costs.

    python benchmarks/mixed_int8.py --model=saved_models/distil_dccrn/distil_dccrn.keras \
        --devset=/work/runs/devset --limit=20

The model is exported twice as a streaming file (:func:`keras_dccrn.export.export_tflite`,
``quantization="float32"`` and ``"dynamic_int8"``); the two conversions have the same ops in the same
order (:func:`keras_dccrn.export.mixed_int8.keep_float` checks it). The int8 ops of the dynamic-int8 file
are grouped by the layer they belong to (:func:`~keras_dccrn.export.mixed_int8.layer_groups`: the
analysis DFT ``dccrn_analysis``, each stateful layer, the inverse DFT ``dccrn_synthesis``). A variant is
the dynamic-int8 file with the float32 weights of some groups put back from the float32 file (those ops
then run in float32, ``keep_float``): "only X int8" restores every group but X, "X float, rest int8"
restores X alone; the recipe rows restore the ops :func:`~keras_dccrn.export.mixed_int8.mixed_float_ops`
chooses for each ``--encoder_ops`` value (the file ``export_tflite(..., quantization="mixed_int8",
mixed_encoder_ops=k)`` writes); the dequantized rows store the int8 weights of some groups as float32
values (:func:`~keras_dccrn.export.mixed_int8.dequantize`: int8 weights with float inputs).

Every file enhances the first ``--limit`` development-set files whole with
:class:`keras_dccrn.runtime.TFLiteEnhancer` on one thread. Cost = the float32 file's mean SI-SNR /
PESQ-WB (:mod:`keras_dccrn.metrics`, against the clean files) minus the variant's, ± the 95% t half
width of the per-file differences; output SNR = :func:`keras_dccrn.metrics.snr` of the variant's outputs
against the float32 file's over all files; CPU s = the calling thread's CPU time
(``time.thread_time``) of the enhancements. Speed: the float32, dynamic-int8 and recipe files enhance
the first ``--speed_seconds`` of the first file ``--rounds`` times, interleaved (the files' order
rotates every round), each enhancement timed with ``time.thread_time``; best and median CPU RTF.

The page (``docs/benchmarks/mixed_int8.md``, ``--output``) starts with the exact command.
"""

import math
import os
import platform
import statistics
import sys
import tempfile
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402

DEFAULT_OUTPUT = "docs/benchmarks/mixed_int8.md"

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "Trained causal .keras model.", flag_values=FLAGS)
flags.DEFINE_string("devset", None, "dccrn-mix development set (noisy/, clean/).", flag_values=FLAGS)
flags.DEFINE_integer("limit", 20, "Score the first N pairs (sorted by name); 0: all.", flag_values=FLAGS)
flags.DEFINE_list(
    "encoder_ops", ["0", "1", "2", "3"], "mixed_encoder_ops values of the recipe rows.", flag_values=FLAGS
)
flags.DEFINE_integer("rounds", 15, "Interleaved speed rounds (best and median kept).", flag_values=FLAGS)
flags.DEFINE_float(
    "speed_seconds", 5.0, "Seconds of the first file enhanced per speed round.", flag_values=FLAGS
)
flags.DEFINE_bool("pesq", True, "Score PESQ-WB (--nopesq: SI-SNR only).", flag_values=FLAGS)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown page to write ('' to only print).", flag_values=FLAGS)


def _encoder_ops(values):
    """The ``--encoder_ops`` values as non-negative integers (sorted, unique)."""
    try:
        ops = sorted({int(v) for v in values})
    except ValueError:
        ops = []
    if not ops or ops[0] < 0:
        raise harness.BenchmarkError(f"--encoder_ops must list integers >= 0; received {','.join(values)!r}")
    return ops


def variants(dynamic, reference, groups, encoder_ops):
    """Yields ``(kind, group or None, label, flatbuffer)`` of the diagnosis in page order (module docstring)."""
    from keras_dccrn.export.mixed_int8 import dequantize, keep_float, mixed_float_ops

    every = [i for ops in groups.values() for i in ops]
    yield "all", None, "all int8 (dynamic_int8)", dynamic
    for g, ops in groups.items():
        yield (
            "only",
            g,
            f"only `{g}` int8",
            keep_float(dynamic, reference, [i for i in every if i not in ops]),
        )
    for g, ops in groups.items():
        yield "float", g, f"`{g}` float, rest int8", keep_float(dynamic, reference, ops)
    for k in encoder_ops:
        ops = mixed_float_ops(dynamic, k)
        names = " + ".join(f"`{g}`" for g, members in groups.items() if set(members) & set(ops))
        label = f"mixed_int8, mixed_encoder_ops={k}: {names} float"
        yield "recipe", None, label, keep_float(dynamic, reference, ops)
    first = set(mixed_float_ops(dynamic, 1))  # the DFTs and the first int8 encoder layer
    for g, ops in groups.items():
        if set(ops) <= first:
            yield "dequantized", g, f"`{g}` dequantized, rest int8", dequantize(dynamic, ops)
    yield "dequantized", None, "all dequantized (int8 weights, float inputs)", dequantize(dynamic, every)


def score(path, pairs, use_pesq):
    """``{outputs, si_snr, pesq_wb, cpu}`` of one file enhancing every pair on one thread."""
    from keras_dccrn.runtime import TFLiteEnhancer

    res = harness.score_pairs(TFLiteEnhancer(path, num_threads=1), pairs, use_pesq, keep_outputs=True)
    return dict(outputs=res["outputs"], si_snr=res["si_snr"], pesq_wb=res["pesq_wb"], cpu=res["thread_cpu"])


def compare(reference, result):
    """The costs of ``result`` against ``reference`` (two :func:`score` results) and its output SNR."""
    import numpy as np

    from keras_dccrn.metrics import snr

    snr_cost, snr_ci = harness.paired_cost(reference["si_snr"], result["si_snr"])
    pesq_cost, pesq_ci = harness.paired_cost(reference["pesq_wb"], result["pesq_wb"])
    out_snr = snr(np.concatenate(reference["outputs"]), np.concatenate(result["outputs"]))
    return dict(snr_cost=snr_cost, snr_ci=snr_ci, pesq_cost=pesq_cost, pesq_ci=pesq_ci, out_snr=out_snr)


def interleaved_speed(paths, audio, rounds):
    """``{label: (best, median) CPU RTF}``: each file enhances ``audio`` once per round, order rotating."""
    from keras_dccrn.runtime import TFLiteEnhancer

    enhancers = {label: TFLiteEnhancer(path, num_threads=1) for label, path in paths.items()}
    for enhancer in enhancers.values():  # warm-up (allocation), untimed
        enhancer(audio[: harness.SAMPLE_RATE // 10])
    times = {label: [] for label in paths}
    order = list(paths)
    for _ in range(rounds):
        order = order[1:] + order[:1]
        for label in order:
            start = time.thread_time()
            enhancers[label](audio)
            times[label].append(time.thread_time() - start)
    seconds = audio.size / harness.SAMPLE_RATE
    return {label: (min(t) / seconds, statistics.median(t) / seconds) for label, t in times.items()}


def _cost(mean, half, digits):
    """``"+0.009 ± 0.179"`` (``digits`` decimals), the mean alone without a half width, ``n/a`` without a mean."""
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:+.{digits}f}" + (f" ± {half:.{digits}f}" if math.isfinite(half) else "")


def render(command, model_path, devset, pairs, measured, rounds, loads):
    """The page's Markdown text of :func:`measure`'s results."""
    groups, rows, reference = measured["groups"], measured["rows"], measured["reference"]
    speed, sizes, speed_seconds = measured["speed"], measured["sizes"], measured["speed_seconds"]
    seconds = sum(noisy.size for _, noisy, _ in pairs) / harness.SAMPLE_RATE
    header = (
        "variant",
        "SI-SNR cost (dB)",
        "PESQ-WB cost",
        "output SNR vs float32 (dB)",
        f"CPU s ({len(pairs)} files, {seconds:.0f} s audio)",
    )
    table = [("float32 (reference)", "-", "-", "-", f"{reference['cpu']:.2f}")]
    for r in rows:
        table.append(
            (
                r["label"],
                _cost(r["snr_cost"], r["snr_ci"], 3),
                _cost(r["pesq_cost"], r["pesq_ci"], 4),
                f"{r['out_snr']:.1f}",
                f"{r['cpu']:.2f}",
            )
        )
    groups_text = ", ".join(f"`{g}` ({len(ops)})" for g, ops in groups.items())
    alone = sorted((r for r in rows if r["kind"] == "only"), key=lambda r: r["out_snr"])
    alone_text = ", ".join(f"`{r['group']}` {r['out_snr']:.1f} dB" for r in alone)
    speed_table = [
        (label, f"{best:.4f}", f"{median:.4f}", f"{sizes[label] / 1e3:.0f}")
        for label, (best, median) in speed.items()
    ]
    return "\n".join(
        [
            f"# Mixed int8: where dynamic-range int8 loses quality (`{model_path}`, streaming)",
            "",
            f"Generated by `{command}` on {platform.machine()} ({os.cpu_count()} cores), code "
            f"{harness.code_version()}; 1-minute load average {loads[0]:.1f} before and {loads[1]:.1f} after "
            "(CPU times are the calling thread's; other work on the cores still slows them).",
            "",
            "**Method** (the script's docstring has it in full). The float32 and dynamic-int8 streaming files "
            "of the model have the same ops in the same order; the int8 ops of the dynamic-int8 file, by "
            f"layer (ops): {groups_text}. A variant is the dynamic-int8 file with the float32 weights of some "
            "groups put back from the float32 file (those ops then run in float32: `keep_float`); "
            '"only X int8": every group but X restored; "X float": X alone restored; `mixed_int8, '
            "mixed_encoder_ops=k`: the ops `mixed_float_ops` chooses (what `export_tflite(..., "
            'quantization="mixed_int8", mixed_encoder_ops=k)` writes); "dequantized": the int8 weights '
            "times their scales stored as float32 (`dequantize`: int8 weight values, float inputs). Each "
            f"file enhanced the first {len(pairs)} files of `{devset}` ({seconds:.0f} s) whole, one "
            "thread, with `TFLiteEnhancer`; cost = the float32 file's mean minus the variant's, ± the 95% t "
            "half width of the per-file differences (SI-SNR and PESQ-WB by `keras_dccrn.metrics` against "
            "the clean files); output SNR = `keras_dccrn.metrics.snr` of the variant's outputs against the "
            "float32 file's over all files.",
            "",
            *harness.markdown_table(header, table),
            "",
            f"Alone in int8, by output SNR against float32: {alone_text}.",
            "",
            f"**Speed, interleaved** (one thread, the files' `TFLiteEnhancer` on the first {speed_seconds:g} s "
            f"of `{pairs[0][0]}` in rotating order, {rounds} rounds, `time.thread_time` per enhancement):",
            "",
            *harness.markdown_table(("file", "best CPU RTF", "median CPU RTF", "size (kB)"), speed_table),
            "",
        ]
    )


def measure(model, pairs, encoder_ops, use_pesq, rounds, speed_seconds):
    """Exports ``model``, scores every variant and times the recipe; the results :func:`render` shows.

    Returns:
        ``{groups, reference, rows, speed, sizes, speed_seconds}``: :func:`layer_groups`'s groups, the
        float32 file's :func:`score`, one row per variant (``kind``, ``label``, ``cpu`` and
        :func:`compare`'s figures), :func:`interleaved_speed`'s figures and the speed files' bytes.
    """
    from keras_dccrn.export import export_tflite
    from keras_dccrn.export.mixed_int8 import keep_float, layer_groups, mixed_float_ops

    with tempfile.TemporaryDirectory(prefix="mixed-int8-") as tmp:
        files = {}
        for q in ("float32", "dynamic_int8"):
            path = export_tflite(model, os.path.join(tmp, f"{q}.tflite"), mode="streaming", quantization=q)
            with open(path, "rb") as f:
                files[q] = f.read()
        dynamic, float32 = files["dynamic_int8"], files["float32"]
        groups = layer_groups(dynamic, [layer.name for layer in model.stateful_layers()])
        reference = score(os.path.join(tmp, "float32.tflite"), pairs, use_pesq)
        variant_path = os.path.join(tmp, "variant.tflite")
        rows = []
        for kind, group, label, content in variants(dynamic, float32, groups, encoder_ops):
            with open(variant_path, "wb") as f:
                f.write(content)
            result = score(variant_path, pairs, use_pesq)
            rows.append(
                dict(kind=kind, group=group, label=label, cpu=result["cpu"], **compare(reference, result))
            )
            r = rows[-1]
            print(
                f"{label}: SI-SNR cost {r['snr_cost']:+.3f} dB, PESQ-WB cost {r['pesq_cost']:+.4f}, "
                f"output SNR {r['out_snr']:.1f} dB, CPU {r['cpu']:.1f} s",
                flush=True,
            )
        speed_files = {"streaming float32": float32, "streaming dynamic int8": dynamic}
        for k in encoder_ops:
            ops = mixed_float_ops(dynamic, k)
            speed_files[f"streaming mixed int8, mixed_encoder_ops={k}"] = keep_float(dynamic, float32, ops)
        paths = {}
        for i, (label, content) in enumerate(speed_files.items()):
            paths[label] = os.path.join(tmp, f"speed_{i}.tflite")
            with open(paths[label], "wb") as f:
                f.write(content)
        audio = pairs[0][1][: int(speed_seconds * harness.SAMPLE_RATE)]
        speed = interleaved_speed(paths, audio, rounds)
    return dict(
        groups=groups,
        reference=reference,
        rows=rows,
        speed=speed,
        sizes={label: len(content) for label, content in speed_files.items()},
        speed_seconds=audio.size / harness.SAMPLE_RATE,
    )


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "mixed_int8.py", __doc__)
    if status is not None:
        return status
    from keras_dccrn.runtime import ModelLoadError, configure_threads, load_keras_model

    try:
        if not FLAGS.model:
            raise harness.BenchmarkError("--model is required (a causal .keras model)")
        if not FLAGS.devset:
            raise harness.BenchmarkError("--devset is required (a dccrn-mix folder with noisy/ and clean/)")
        if FLAGS.rounds < 1 or FLAGS.speed_seconds <= 0:
            raise harness.BenchmarkError(
                f"--rounds must be >= 1 and --speed_seconds > 0; received {FLAGS.rounds} and {FLAGS.speed_seconds:g}"
            )
        encoder_ops = _encoder_ops(FLAGS.encoder_ops)
        pairs = harness.load_pairs(harness.find_pairs(FLAGS.devset, FLAGS.limit))
        configure_threads(1)
        harness.limit_blas_threads()
        model = load_keras_model(FLAGS.model)
        if not getattr(model, "supports_streaming", False):
            raise harness.BenchmarkError(f"{FLAGS.model}: the model cannot stream")
    except (ModelLoadError, ValueError) as exc:
        print(f"mixed_int8.py: {exc}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    try:
        measured = measure(model, pairs, encoder_ops, FLAGS.pesq, FLAGS.rounds, FLAGS.speed_seconds)
    except ValueError as exc:  # export or grouping refused the model
        print(f"mixed_int8.py: {FLAGS.model}: {exc}", file=sys.stderr)
        return 2
    loads = (load_before, os.getloadavg()[0])
    command = harness.command_line(__file__, argv)
    text = render(command, FLAGS.model, FLAGS.devset, pairs, measured, FLAGS.rounds, loads)
    print(text)
    if FLAGS.output:
        harness.write_page(FLAGS.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
