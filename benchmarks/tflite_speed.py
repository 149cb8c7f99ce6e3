r"""Deployment benchmark: speed, memory and quality cost of the TFLite (LiteRT), Keras and SavedModel runtimes.

    python benchmarks/tflite_speed.py --model=/work/runs/student_atkl/model.keras \
        --devset=/work/runs/devset --devset_limit=20
    python benchmarks/tflite_speed.py --preset=distil_dccrn --seconds=10     # random weights

The model is either a trained ``.keras`` file (``--model``) or a preset with
random weights (``--preset``; speed does not depend on the weights, quality
does). It is exported to every TFLite variant (offline and streaming, float32,
dynamic-range int8 and float16 weights, streaming full int8) with
:func:`keras_dccrn.export.export_tflite` and to a TF Serving SavedModel with
:func:`keras_dccrn.export.export_saved_model`.

Every variant is then run in a **fresh subprocess** (this script with the
hidden ``--worker`` flag), one at a time, on one thread:

* LiteRT rows: :class:`keras_dccrn.runtime.litert.TFLiteEnhancer` with
  ``num_threads=1``, end to end (STFT, network, inverse STFT and overlap-add
  are inside the ``.tflite`` graph; the streaming rows include the Python hop
  loop that sets and gets the state tensors). TensorFlow is **not** imported
  by these workers (the LiteRT runtime never imports it; the worker checks
  that ``tensorflow`` is absent from ``sys.modules``);
* ``keras``: the Keras model in graph mode, one ``tf.function`` over the whole
  signal (:class:`keras_dccrn.runtime.KerasEnhancer`, no ``model.predict``,
  no XLA), TensorFlow limited to one intra-op and one inter-op thread
  (``tf.config.threading``, set right after ``import tensorflow``, before TF
  runs anything; the worker checks the setting took);
* ``savedmodel``: the exported SavedModel's ``serving_default`` signature
  (:class:`keras_dccrn.runtime.SavedModelEnhancer`), same threading.

Speed: after one untimed warm-up call on the test signal (a synthetic noisy
speech signal of ``--seconds``, :func:`keras_dccrn.signals.speech_like_signals`),
the best of ``--repeats`` timed calls; RTF = processing time / audio duration,
and the CPU-time RTF of that call (close to the wall RTF when one core was
used). Memory: the worker's peak resident set size (``VmHWM`` of
``/proc/self/status``) after the timed calls, i.e. Python + NumPy/SciPy + the
runtime (LiteRT, or TensorFlow + Keras) + the model + the buffers of one
whole-signal call; the RSS right after the imports (before the model is
loaded) is reported too, so the difference is the model and its buffers.

Quality: with ``--devset`` (a ``dccrn-mix`` folder, ``noisy/`` and ``clean/``
WAV pairs), every variant enhances the first ``--devset_limit`` noisy files
(sorted by name) and is scored with :mod:`keras_dccrn.metrics` against the
clean references (SI-SNR, and PESQ-WB unless ``--nopesq``) and against the
float32 Keras output (SI-SNR of the variant with the Keras output as the
reference: how closely the variant reproduces the model). Without a dev set
only the closeness to the Keras output on the synthetic test signal is
reported. Full-int8 calibration uses ``--calibration_files`` signals of at
most ``--calibration_seconds`` each, from ``--calibration_dir`` if given, else
the dev-set noisy files that follow the scored ones, else synthetic
speech-like signals (a different seed from the test signal); the page says
which.

The Markdown page (``docs/benchmarks/tflite.md``, ``--output``) starts with
the exact command and compares the measured streaming LiteRT RTFs with the
goals of issue 16 (student, one thread, end to end: streaming float32 RTF <=
0.12, i.e. 1.3x the float32 floor of this CPU; streaming quantized RTF <= 0.03
at a quality cost <= 0.1 dB SI-SNR on the dev set); "met" / "not met" is
computed from the measured numbers.
"""

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import harness  # noqa: E402
from benchmarks.harness import BenchmarkError  # noqa: E402
from keras_dccrn.errors import first_line  # noqa: E402

SAMPLE_RATE = 16000
DEFAULT_OUTPUT = "docs/benchmarks/tflite.md"
# Issue 16: student RTF on LiteRT, streaming, one thread, end to end.
GOAL_RTF_FLOAT32 = 0.12
GOAL_FLOOR_RATIO = 1.3  # the float32 goal as a multiple of the CPU's float32 floor (0.12 on the issue's CPU)
GOAL_RTF_QUANTIZED = 0.03
GOAL_MAX_SI_SNR_COST = 0.1  # dB, quantized streaming variants

TFLITE_VARIANTS = (
    ("offline", "float32"),
    ("offline", "dynamic_int8"),
    ("offline", "float16"),
    ("streaming", "float32"),
    ("streaming", "dynamic_int8"),
    ("streaming", "float16"),
    ("streaming", "int8"),
    ("streaming", "mixed_int8"),
)
VARIANT_NAMES = tuple(f"{m}_{q}" for m, q in TFLITE_VARIANTS) + ("keras", "savedmodel")

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "model", None, "Trained .keras file to benchmark (overrides --preset).", flag_values=FLAGS
)
flags.DEFINE_string(
    "preset", "distil_dccrn", "Model preset with random weights (when no --model).", flag_values=FLAGS
)
flags.DEFINE_float("seconds", 10.0, "Length of the synthetic timing signal.", flag_values=FLAGS)
flags.DEFINE_integer("chunk_samples", 64000, "Offline TFLite chunk length.", flag_values=FLAGS)
flags.DEFINE_integer("repeats", 3, "Timed runs per variant (the best is reported).", flag_values=FLAGS)
flags.DEFINE_string(
    "devset", None, "dccrn-mix development set (noisy/, clean/) for quality.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "devset_limit", 20, "Score the first N dev-set pairs (sorted by name); 0: all.", flag_values=FLAGS
)
flags.DEFINE_string(
    "calibration_dir",
    None,
    "Folder of audio files (.wav/.flac, recursive) for full-int8 calibration.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("calibration_files", 8, "Number of full-int8 calibration signals.", flag_values=FLAGS)
flags.DEFINE_float(
    "calibration_seconds", 2.0, "Maximum length of each calibration signal.", flag_values=FLAGS
)
flags.DEFINE_boolean("pesq", True, "Compute PESQ-WB on the dev set (--nopesq to skip).", flag_values=FLAGS)
flags.DEFINE_list(
    "variants",
    list(VARIANT_NAMES),
    f"Rows to run, from {list(VARIANT_NAMES)} (keras always runs: it is the quality reference).",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "hops_per_call",
    ["1"],
    "Streaming files with these STFT hops per invoke (export_tflite(hops_per_call=K)); K > 1 adds rows "
    "streaming_kK_<quantization> for every streaming variant asked for.",
    flag_values=FLAGS,
)
flags.DEFINE_boolean(
    "per_call_scales",
    False,
    "Also export every dynamic_int8/mixed_int8 streaming file of K > 1 hops with one int8 scale per invoke "
    "(export_tflite(frame_rows=False)): rows streaming_kK_<quantization>_per_call.",
    flag_values=FLAGS,
)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown file to write ('' to only print).", flag_values=FLAGS)
flags.DEFINE_string("worker", None, "Internal: run one variant from this job file (JSON).", flag_values=FLAGS)


# ----------------------------------------------------------------------------------------------------------
# Worker (one fresh process per variant).


def run_worker(job):
    """Loads one variant, times it on the test signal, runs the dev set; returns the result dict.

    Args:
        job: dict with ``kind`` ("tflite", "keras" or "savedmodel"), ``path``,
            ``signals`` (``.npz`` with ``test`` and ``dev_<i>`` arrays),
            ``outputs`` (``.npz`` to write) and ``repeats``.
    """
    kind = job["kind"]
    if kind == "tflite":
        from keras_dccrn.runtime.litert import TFLiteEnhancer

        import_rss = harness.proc_status_kb("VmRSS")
        runner = TFLiteEnhancer(job["path"], num_threads=1)
        fn = runner
        info = {
            "xnnpack": bool(runner.uses_xnnpack),
            "delay_samples": int(runner.delay_samples),
            "hop": int(getattr(runner, "hop", 0)) or None,
        }
    else:
        harness.tensorflow_threads(1)
        from keras_dccrn.runtime import KerasEnhancer, SavedModelEnhancer, load_keras_model

        import_rss = harness.proc_status_kb("VmRSS")
        if kind == "keras":
            enhancer = KerasEnhancer(load_keras_model(job["path"]))
        elif kind == "savedmodel":
            enhancer = SavedModelEnhancer(job["path"])
        else:
            raise ValueError(f"unknown worker kind {kind!r}")

        def fn(x):
            return enhancer.run(x[None])[0]  # [samples] -> [1, samples] -> [samples]

        info = {"xnnpack": None, "delay_samples": 0, "hop": None}
    signals = np.load(job["signals"])
    test = signals["test"]
    fn(test)  # warm-up: tracing, allocation, XNNPACK packing
    best, best_cpu, out = math.inf, math.nan, None
    for _ in range(int(job["repeats"])):
        out, wall, cpu = harness.timed(fn, test)
        if wall < best:
            best, best_cpu = wall, cpu
    peak_rss = harness.proc_status_kb("VmHWM")
    dev_names = sorted((k for k in signals.files if k.startswith("dev_")), key=lambda k: int(k[4:]))
    outputs = {"test": np.asarray(out, np.float32)}
    for name in dev_names:
        outputs[name] = np.asarray(fn(signals[name]), np.float32)
    np.savez(job["outputs"], **outputs)
    return {
        **info,
        "best_s": best,
        "cpu_s": best_cpu,
        "import_rss_kb": import_rss,
        "peak_rss_kb": peak_rss,
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def _worker_main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    result = run_worker(job)
    with open(job["result"], "w") as f:
        json.dump(result, f)
    return 0


# ----------------------------------------------------------------------------------------------------------
# Parent: model, exports, signals, workers.


def load_model(model_path, preset):
    """``(model, description)``: a trained ``.keras`` file, or ``preset`` with random weights (seed 0)."""
    import keras

    from keras_dccrn import build_model
    from keras_dccrn.runtime import ModelLoadError, load_keras_model

    if model_path:
        if not os.path.isfile(model_path):
            raise BenchmarkError(f"{model_path}: no such .keras file")
        if not model_path.lower().endswith(".keras"):
            raise BenchmarkError(f"{model_path}: --model must be a .keras file")
        try:
            model = load_keras_model(model_path)
        except ModelLoadError as exc:
            raise BenchmarkError(str(exc)) from None
        if not getattr(model, "built", False):
            raise BenchmarkError(f"{model_path}: the loaded model is not built")
        return model, f"`{model_path}`, trained weights"
    keras.utils.set_random_seed(0)
    try:
        model = build_model(preset)
    except (KeyError, ValueError) as exc:
        raise BenchmarkError(f"--preset: {exc}") from None
    return model, f"preset `{preset}`, random weights"


def calibration_signals(calibration_dir, devset_rest, count, seconds):
    """``(signals, description)`` for full-int8 calibration, never overlapping the scored files.

    Args:
        calibration_dir: folder of audio files (:func:`keras_dccrn.signals.folder_signals`), or None.
        devset_rest: dev-set noisy paths that are not scored (may be empty).
        count: number of signals.
        seconds: maximum length of each.
    """
    from keras_dccrn.signals import file_signals, folder_signals, speech_like_signals

    if calibration_dir:
        try:
            signals, files = folder_signals(calibration_dir, count, seconds)
        except ValueError as exc:
            raise BenchmarkError(f"calibration: {exc}") from None
        return (
            signals,
            f"the first {len(files)} audio files of `{calibration_dir}`; at most the first {seconds:g} s of each",
        )
    if devset_rest:
        files = list(devset_rest[:count])
        names = [os.path.basename(f) for f in files]
        source = (
            f"{len(files)} dev-set noisy files that are not scored ({names[0]} to {names[-1]})"
            if len(names) > 1
            else f"the dev-set noisy file {names[0]} (not scored)"
        )
        if len(files) < count:
            source += f" (only {len(files)} of the {count} requested are left after the scored ones)"
        return file_signals(files, seconds), f"{source}; at most the first {seconds:g} s of each"
    signals = speech_like_signals(count=count, seconds=seconds, seed=1)
    return (
        signals,
        f"{count} synthetic noisy speech-like signals of {seconds:g} s (seed 1, not the test signal)",
    )


def streaming_name(quantization, hops_per_call):
    """Row name of a streaming file: ``streaming_<q>``, or ``streaming_k<K>_<q>`` for K hops per invoke."""
    return f"streaming_{quantization}" if hops_per_call == 1 else f"streaming_k{hops_per_call}_{quantization}"


def export_variants(
    model, keras_path, workdir, names, calibration, chunk_samples, log=print, hops=(1,), per_call=False
):
    """Writes the requested variants into ``workdir``; returns ``(variants, notes)``.

    Each variant is a dict with ``name``, ``kind``, ``mode``, ``quantization``,
    ``hops_per_call``, ``path`` and ``size`` (bytes); every streaming variant asked for is written
    once per entry of ``hops`` (STFT hops per invoke), and with ``per_call`` every dynamic-range one of
    several hops once more with one int8 scale per invoke (``export_tflite(frame_rows=False)``, row
    ``streaming_kK_<q>_per_call``). A variant that cannot be exported is left out with a note.
    """
    from keras_dccrn.export import export_saved_model, export_tflite
    from keras_dccrn.export.tflite import DYNAMIC_RANGE
    from keras_dccrn.streaming import streaming_refusal

    variants, notes = [], []
    variants.append(
        dict(name="keras", kind="keras", mode="whole signal", quantization="float32", path=keras_path,
             size=os.path.getsize(keras_path))
    )  # fmt: skip
    jobs = [
        (mode, quantization, k, rows)
        for mode, quantization in TFLITE_VARIANTS
        if f"{mode}_{quantization}" in names
        for k in (hops if mode == "streaming" else (1,))
        for rows in ((None, False) if per_call and k > 1 and quantization in DYNAMIC_RANGE else (None,))
    ]
    for mode, quantization, k, rows in jobs:
        name = streaming_name(quantization, k) if mode == "streaming" else f"{mode}_{quantization}"
        name += "_per_call" if rows is False else ""
        refusal = streaming_refusal(model) if mode == "streaming" else None
        if refusal is not None:
            notes.append(f"{name}: not exported (cannot stream: {refusal})")
            continue
        path = os.path.join(workdir, f"{name}.tflite")
        start = time.perf_counter()
        try:
            export_tflite(
                model,
                path,
                mode=mode,
                quantization=quantization,
                representative_data=calibration if quantization == "int8" else None,
                chunk_samples=chunk_samples,
                hops_per_call=k,
                frame_rows=rows,
            )
        except ValueError as exc:
            notes.append(f"{name}: export failed ({first_line(exc)})")
            continue
        log(f"exported {name} in {time.perf_counter() - start:.1f} s")
        variants.append(
            dict(
                name=name,
                kind="tflite",
                mode=mode,
                quantization=quantization,
                hops_per_call=k,
                path=path,
                size=os.path.getsize(path),
            )
        )
    if "savedmodel" in names:
        path = export_saved_model(model, os.path.join(workdir, "savedmodel"), version=1)
        variants.append(
            dict(name="savedmodel", kind="savedmodel", mode="whole signal", quantization="float32", path=path,
                 size=harness.path_bytes(path))
        )  # fmt: skip
    return variants, notes


def run_variant(variant, signals_path, workdir, repeats):
    """Runs one variant in a fresh worker process; returns ``(result dict, outputs dict)``."""
    job = {
        "kind": variant["kind"],
        "path": variant["path"],
        "signals": signals_path,
        "outputs": os.path.join(workdir, f"{variant['name']}.out.npz"),
        "result": os.path.join(workdir, f"{variant['name']}.result.json"),
        "repeats": repeats,
    }
    job_path = os.path.join(workdir, f"{variant['name']}.job.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), f"--worker={job_path}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0 or not os.path.isfile(job["result"]):
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise BenchmarkError(
            f"{variant['name']}: worker failed (exit {proc.returncode}): {lines[-1] if lines else 'no message'}"
        )
    with open(job["result"]) as f:
        result = json.load(f)
    with np.load(job["outputs"]) as data:
        outputs = {k: data[k] for k in data.files}
    return result, outputs


# ----------------------------------------------------------------------------------------------------------
# Scores and the page.


def _mean(values):
    values = np.asarray([v for v in values if v is not None], np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def score(outputs, reference, dev, use_pesq):
    """Quality of one variant: closeness to ``reference`` (Keras outputs) and scores against the clean files.

    Args:
        outputs: this variant's outputs (``test`` and ``dev_<i>``).
        reference: the Keras outputs, same keys.
        dev: ``[(name, noisy, clean), ...]`` (empty without a dev set).
        use_pesq: compute PESQ-WB.

    Returns:
        dict with ``vs_keras`` (mean SI-SNR against the Keras output, dB),
        ``si_snr``, ``pesq_wb`` (means against the clean references; NaN
        without a dev set) and ``nan`` (count of metric values left out).
    """
    from keras_dccrn.metrics import pesq_wb, si_snr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN metrics are counted instead
        if not dev:
            return dict(
                vs_keras=si_snr(reference["test"], outputs["test"]), si_snr=math.nan, pesq_wb=math.nan, nan=0
            )
        keys = [f"dev_{i}" for i in range(len(dev))]
        vs = [si_snr(reference[k], outputs[k]) for k in keys]
        snr = [si_snr(clean, outputs[k]) for k, (_, _, clean) in zip(keys, dev, strict=True)]
        pq = (
            [pesq_wb(clean, outputs[k]) for k, (_, _, clean) in zip(keys, dev, strict=True)]
            if use_pesq
            else []
        )
    nan = sum(not math.isfinite(v) for v in vs + snr + pq)
    return dict(vs_keras=_mean(vs), si_snr=_mean(snr), pesq_wb=_mean(pq) if use_pesq else math.nan, nan=nan)


def _cost(row, keras_row):
    """SI-SNR cost of ``row`` against the Keras row (dB), or None when the dev set was not scored."""
    if keras_row is None or not math.isfinite(row.get("si_snr", math.nan)):
        return None
    return keras_row["si_snr"] - row["si_snr"]


def goal_rows(rows):
    """Issue 16 goals against the best streaming LiteRT rows: ``[(goal, target, best row or None, met)]``.

    A quantized row counts only when its dev-set SI-SNR cost is at most :data:`GOAL_MAX_SI_SNR_COST`
    (or when no dev set was scored, which the page says).
    """
    keras_row = next((r for r in rows if r["kind"] == "keras"), None)
    out = []
    for label, quantizations, target, max_cost in (
        ("streaming float32", ("float32",), GOAL_RTF_FLOAT32, None),
        (
            f"streaming quantized (dynamic_int8, mixed_int8, float16, int8), cost <= {GOAL_MAX_SI_SNR_COST:g} dB",
            ("dynamic_int8", "mixed_int8", "float16", "int8"),
            GOAL_RTF_QUANTIZED,
            GOAL_MAX_SI_SNR_COST,
        ),
    ):
        candidates = [
            r
            for r in rows
            if r["kind"] == "tflite"
            and r.get("mode") == "streaming"
            and r["quantization"] in quantizations
            and (max_cost is None or (_cost(r, keras_row) or 0.0) <= max_cost)
        ]
        best = min(candidates, key=lambda r: r["rtf"]) if candidates else None
        out.append((label, target, best, None if best is None else best["rtf"] <= target))
    return out


def compute_floor(model, seconds):
    """The compute floors of this CPU for ``model``.

    Returns ``dict(cpu, macs_per_second, gemm_flops, litert_macs)``: the model's MACs per second of audio
    (:func:`keras_dccrn.profiling.count_macs` on ``seconds`` of audio), the one-thread float32 GEMM FLOP/s
    of TensorFlow (:func:`harness.gemm_flops`) and the one-thread GEMM MAC/s of LiteRT per quantization
    (:func:`harness.litert_gemm_macs`), from which :func:`float32_floor` and :func:`int8_floor` derive
    the floors.
    """
    from keras_dccrn.profiling import count_macs

    return dict(
        cpu=harness.cpu_description(),
        macs_per_second=count_macs(model, int(round(seconds * SAMPLE_RATE))) / seconds,
        gemm_flops=harness.gemm_flops(),
        litert_macs=harness.litert_gemm_macs(),
    )


def float32_floor(floor):
    """``(float32 MAC/s, RTF)``: the faster of the two float32 GEMMs in ``floor`` (TensorFlow's and
    LiteRT's, :func:`compute_floor`; a shared core slows either run, so the faster one is nearer the
    hardware) and the RTF of a float32 graph that ran every multiply-add of the model at that speed and
    nothing else."""
    macs = max(floor["gemm_flops"] / 2.0, floor["litert_macs"]["float32"])
    return macs, floor["macs_per_second"] / macs


def int8_floor(floor):
    """``(int8 MAC/s, RTF)``: the faster of LiteRT's two int8 GEMMs in ``floor`` (:func:`compute_floor`)
    and the RTF of a graph that ran every multiply-add of the model at that speed and nothing else."""
    macs = max(floor["litert_macs"]["dynamic_int8"], floor["litert_macs"]["int8"])
    return macs, floor["macs_per_second"] / macs


def _floor_lines(floor, goals):
    n, ratio_goal = harness.GEMM_N, GOAL_FLOOR_RATIO
    litert = floor["litert_macs"]
    int8_macs, int8_rtf = int8_floor(floor)
    float32_macs, float32_rtf = float32_floor(floor)
    lines = [
        "",
        "## Compute floor of this CPU",
        "",
        f"CPU: {floor['cpu']} (one thread). The model does {floor['macs_per_second'] / 1e9:.3f} GMACs per "
        "second of audio (`keras_dccrn.profiling.count_macs`, the traced Keras graph). One-thread matmuls, "
        f"best of {harness.GEMM_ROUNDS}: TensorFlow's float32 ({n} x {n} by {n} x {n}; "
        f"`benchmarks.harness.gemm_flops`) {floor['gemm_flops'] / 2e9:.1f} GMAC/s; LiteRT's (one "
        f"`FULLY_CONNECTED` op, {harness.LITERT_GEMM_M} x {n} by a constant {n} x {n}, XNNPACK; "
        "`benchmarks.harness.litert_gemm_macs`) "
        + ", ".join(f"{q} {litert[q] / 1e9:.1f} GMAC/s" for q in harness.LITERT_GEMM_QUANTIZATIONS)
        + f". At the faster float32 GEMM ({float32_macs / 1e9:.1f} GMAC/s) a float32 graph cannot go below "
        f"RTF {float32_rtf:.4f} on this CPU (every multiply-add at GEMM speed, nothing else). Issue 16 sets "
        f"the float32 goal at {ratio_goal:g}x that floor (RTF <= {ratio_goal * float32_rtf:.4f} here; its "
        f"{GOAL_RTF_FLOAT32:g} was {ratio_goal:g}x the floor of the CPU it was written on). The int8 kernels "
        f"run at {int8_macs / litert['float32']:.2f}x LiteRT's float32 here, so a quantized graph cannot go "
        f"below RTF {int8_rtf:.4f} on this CPU (every multiply-add at the faster int8 GEMM speed, nothing "
        f"else): the quantized goal's RTF {GOAL_RTF_QUANTIZED:g} is "
        + ("below that floor, out of reach on this CPU" if int8_rtf > GOAL_RTF_QUANTIZED else "above it")
        + " (the issue assumed int8 at about 4x float32, as AVX512-VNNI gives). The ratios below are the "
        "gaps; docs/benchmarks/tflite_layers.md splits them by layer.",
        "",
        f"| goal | best measured RTF | variant | x float32 floor | x int8 floor | within {ratio_goal:g}x the floor |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for label, _, best, _ in goals:
        if best is None:
            lines.append(f"| {label} | n/a | n/a | n/a | n/a | not measured |")
            continue
        ratio = best["rtf"] / float32_rtf
        int8_ratio = best["rtf"] / int8_rtf
        own = ratio if best["quantization"] == "float32" else int8_ratio
        lines.append(
            f"| {label} | {best['rtf']:.4f} | {best['name']} | {ratio:.2f} | {int8_ratio:.2f} | "
            f"{'yes' if own <= ratio_goal else 'no'} |"
        )
    lines += [
        "",
        "The last column compares a float32 row with the float32 floor and a quantized row with the int8 floor.",
    ]
    return lines


def _row_goal(row):
    if row["kind"] != "tflite" or row.get("mode") != "streaming":
        return "-"
    target = GOAL_RTF_FLOAT32 if row["quantization"] == "float32" else GOAL_RTF_QUANTIZED
    return f"<= {target:g}: {'met' if row['rtf'] <= target else 'not met'}"


def render(rows, info):
    """The Markdown page from the measured ``rows`` and the run ``info``."""
    seconds = info["seconds"]
    lines = [
        f"# Deployment speed, memory and quality: {info['model']} ({info['params'] / 1e6:.2f}M parameters)",
        "",
        "```",
        info["command"],
        "```",
        "",
        f"Run on {harness.cpu_description()} ({os.cpu_count()} cores; 1-minute load average "
        f"{info['loads'][0]:.1f} before the timed variants and {info['loads'][1]:.1f} after: one variant per "
        "fresh subprocess, one at a time, so a load well above 1 means other jobs shared the cores), Python "
        f"{platform.python_version()}. Weights: {info['model']}.",
        "",
        f"Speed: best of {info['repeats']} calls after one warm-up call on a {seconds:g} s synthetic noisy "
        "speech-like signal (`keras_dccrn.signals.speech_like_signals`, seed 2), one thread: LiteRT "
        "`num_threads=1` (XNNPACK when it accepts the graph); Keras and SavedModel with TensorFlow intra-op = "
        "inter-op = 1 thread. RTF = processing time / audio duration, end to end (STFT, network, inverse STFT, "
        "overlap-add; streaming rows include the Python hop loop); CPU RTF = process CPU time of that call / "
        f"audio duration. Offline TFLite rows process chunks of {info['chunk_samples']} samples "
        f"({info['chunk_samples'] / SAMPLE_RATE:g} s) independently (the recurrent state restarts at each "
        "chunk; the last chunk is zero-padded and its padding is timed too); keras and savedmodel process the whole signal in one call (Keras: one `tf.function`, graph "
        "mode, no XLA, no `model.predict`; SavedModel: its `serving_default` signature).",
        "",
        "Memory: peak resident set size (`VmHWM`) of the variant's worker process after the timed calls: "
        "Python + NumPy/SciPy/soundfile + the runtime + the model + the buffers of one whole-signal call. The "
        "runtime is LiteRT alone for the TFLite rows (TensorFlow is not imported there: "
        f'{info["tf_check"]}), TensorFlow + Keras + keras_dccrn for the keras and savedmodel rows. "after imports" '
        "is the RSS before the model is loaded (interpreter + runtime only).",
        "",
        f"Latency: {info['latency']}",
        "",
        "## Speed and memory",
        "",
        "| variant | runtime | mode | quantization | size (MB) | RTF (1 thread) | CPU RTF | per-hop time (ms) "
        "| peak RSS (MB) | RSS after imports (MB) | XNNPACK | RTF goal (issue 16) |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    runtimes = {
        "tflite": "LiteRT",
        "keras": "Keras/TF graph",
        "savedmodel": "TF SavedModel",
    }
    for r in rows:
        xnn = "-" if r["xnnpack"] is None else ("yes" if r["xnnpack"] else "no")
        lines.append(
            f"| {r['name']} | {runtimes[r['kind']]} | {r['mode']} | {r['quantization']} | {r['size'] / 1e6:.2f} "
            f"| {r['rtf']:.4f} | {r['cpu_rtf']:.4f} | {harness.format_or_na(r['hop_ms'], '{:.3f}')} | {r['peak_rss_mb']:.1f} "
            f"| {r['import_rss_mb']:.1f} | {xnn} | {_row_goal(r)} |"
        )
    lines += [
        "",
        "## Goals (issue 16): student RTF on LiteRT, streaming, one thread, end to end",
        "",
        "| goal | target RTF | best measured RTF | variant | status |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for label, target, best, met in goal_rows(rows):
        status = "not measured" if met is None else ("met" if met else "not met")
        measured = "n/a" if best is None else f"{best['rtf']:.4f}"
        lines.append(
            f"| {label} | <= {target:g} | {measured} | {best['name'] if best else 'n/a'} | {status} |"
        )
    lines += [
        "",
        "The goal is stated for the distil_dccrn student; it is evaluated here for the model above, on the "
        "wall-clock RTF (on a shared machine a CPU RTF well below it means the process waited for the CPU).",
    ]
    if info.get("floor"):
        lines += _floor_lines(info["floor"], goal_rows(rows))
    lines += ["", "## Quality", ""]
    if info["dev"]:
        lines += [
            f"{info['dev']} Every variant enhances the same files; SI-SNR and PESQ-WB "
            '(`keras_dccrn.metrics`) are means over the files against the clean references; "vs Keras" is '
            "the SI-SNR of the variant's output with the float32 Keras output as the reference (higher = "
            "closer to the model; 'reference' for keras itself); \"delta SI-SNR\" is the variant's SI-SNR minus "
            "the Keras model's SI-SNR (the quality cost of the variant).",
            "",
            f"Noisy input: SI-SNR {harness.format_or_na(info['noisy_si_snr'], '{:.2f}')} dB, PESQ-WB "
            f"{harness.format_or_na(info['noisy_pesq'], '{:.3f}')}.",
            "",
            "| variant | SI-SNR vs Keras float32 (dB) | SI-SNR (dB) | delta SI-SNR vs Keras (dB) | PESQ-WB |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        keras_snr = next(r["si_snr"] for r in rows if r["kind"] == "keras")
        for r in rows:
            vs = "reference" if r["kind"] == "keras" else harness.format_or_na(r["vs_keras"], "{:.1f}")
            lines.append(
                f"| {r['name']} | {vs} | {harness.format_or_na(r['si_snr'], '{:.2f}')} | "
                f"{harness.format_or_na(r['si_snr'] - keras_snr, '{:+.2f}')} | {harness.format_or_na(r['pesq_wb'], '{:.3f}')} |"
            )
    else:
        lines += [
            "No development set given (`--devset`): closeness to the float32 Keras output on the synthetic "
            "test signal only (SI-SNR with the Keras output as the reference).",
            "",
            "| variant | SI-SNR vs Keras float32 (dB) |",
            "| --- | ---: |",
        ]
        for r in rows:
            vs = "reference" if r["kind"] == "keras" else harness.format_or_na(r["vs_keras"], "{:.1f}")
            lines.append(f"| {r['name']} | {vs} |")
    lines += [
        "",
        f"Full-int8 calibration (streaming_int8): {info['calibration']}. The int8 file keeps framing, DFT, mask, "
        "inverse DFT and overlap-add in float32 (`keras_dccrn.export.export_tflite`).",
    ]
    notes = list(info["notes"])
    notes += [
        f"{r['name']}: {r['nan']} metric value(s) were NaN and left out of the means"
        for r in rows
        if r["nan"]
    ]
    if notes:
        lines += ["", "Notes:", ""] + [f"* {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _latency(model):
    lookahead = getattr(model, "lookahead_samples", None)
    hop = getattr(model, "frame_step", None)
    if lookahead is None or hop is None:
        return "the model does not state its look-ahead (no `lookahead_samples` / `frame_step`)."
    ms = 1000.0 / SAMPLE_RATE
    text = (
        f"algorithmic latency = the look-ahead `model.lookahead_samples` = {lookahead} samples "
        f"({lookahead * ms:.2f} ms): output sample n is available once input sample n + {lookahead} has "
        f"arrived. Audio comes out in hops of `model.frame_step` = {hop} samples ({hop * ms:.2f} ms); a "
        "streaming deployment adds the per-hop processing time (below; it must stay under the hop for real "
        "time). Per-hop time = best streaming run / number of STFT hops. A `streaming_kK_*` row runs K hops "
        "per invoke (`export_tflite(hops_per_call=K)`: the same outputs, fewer and larger ops): it adds "
        f"K - 1 hops ((K - 1) x {hop * ms:.2f} ms) of latency, since a call waits for K hops of input. "
        "Its dynamic_int8 and mixed_int8 files compute the convolutions one frame per batch row, so that "
        "each frame's input gets its own int8 scale as with one hop per invoke (`frame_rows`); a "
        "`streaming_kK_*_per_call` row is the same file with one scale per invoke "
        "(`export_tflite(frame_rows=False)`)."
    )
    return text


def run(args, command, log=print):
    """The whole benchmark from parsed flag values ``args``; returns the page text (also written)."""
    names = list(args.variants)
    unknown = [n for n in names if n not in VARIANT_NAMES]
    if unknown:
        raise BenchmarkError(f"--variants: unknown {unknown}; available: {list(VARIANT_NAMES)}")
    if "keras" not in names:
        names.append("keras")  # the quality reference always runs
    try:
        hops = sorted({int(k) for k in args.hops_per_call})
    except ValueError:
        raise BenchmarkError(f"--hops_per_call: integers expected; received {args.hops_per_call}") from None
    if not hops or not all(1 <= k <= 64 for k in hops):
        raise BenchmarkError(f"--hops_per_call: each must be in [1, 64]; received {args.hops_per_call}")
    if args.seconds <= 0 or args.repeats <= 0:
        raise BenchmarkError(
            f"--seconds and --repeats must be positive; received {args.seconds}, {args.repeats}"
        )
    if args.devset_limit < 0 or args.calibration_files <= 0 or args.calibration_seconds <= 0:
        raise BenchmarkError("--devset_limit must be >= 0, --calibration_files and --calibration_seconds > 0")
    if args.output:  # fail before the long run, not after it
        folder = os.path.dirname(os.path.abspath(args.output))
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise BenchmarkError(f"{args.output}: folder is not writable")
    from keras_dccrn.metrics import pesq_wb, si_snr
    from keras_dccrn.signals import speech_like_signals

    dev, rest, dev_text = [], [], None
    if args.devset:
        try:
            pairs = harness.find_pairs(args.devset, 0)
        except ValueError as exc:
            raise BenchmarkError(str(exc)) from None
        scored = pairs[: args.devset_limit] if args.devset_limit else pairs
        rest = [noisy for _, noisy, _ in pairs[len(scored) :]]
        dev = harness.load_pairs(scored)
        total = sum(d[1].shape[0] for d in dev) / SAMPLE_RATE
        dev_text = (
            f"Development set `{args.devset}` (dccrn-mix layout): the first {len(dev)} noisy/clean pairs sorted "
            f"by name ({dev[0][0]} to {dev[-1][0]}), {total:.1f} s of 16 kHz audio."
        )
    model, description = load_model(args.model, args.preset)
    calibration, calibration_text = [], "not used (streaming_int8 not run)"
    if "streaming_int8" in names:
        calibration, calibration_text = calibration_signals(
            args.calibration_dir, rest, args.calibration_files, args.calibration_seconds
        )
    test = speech_like_signals(count=1, seconds=args.seconds, seed=2)[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tflite-speed-") as workdir:
        keras_path = args.model
        if not keras_path:
            keras_path = os.path.join(workdir, "model.keras")
            model.save(keras_path)
        variants, notes = export_variants(
            model,
            keras_path,
            workdir,
            names,
            calibration,
            args.chunk_samples,
            log,
            hops,
            args.per_call_scales,
        )
        signals_path = os.path.join(workdir, "signals.npz")
        np.savez(signals_path, test=test, **{f"dev_{i}": noisy for i, (_, noisy, _) in enumerate(dev)})
        results, load_before = {}, harness.load_average()
        for v in list(variants):
            try:
                results[v["name"]] = run_variant(v, signals_path, workdir, args.repeats)
            except BenchmarkError as exc:
                if v["kind"] == "keras":
                    raise
                notes.append(str(exc))  # e.g. a LiteRT file that runs out of memory: the others still count
                variants.remove(v)
                continue
            r = results[v["name"]][0]
            log(
                f"{v['name']}: RTF {r['best_s'] / args.seconds:.4f}, peak RSS {r['peak_rss_kb'] / 1024:.1f} MB"
            )
    loads = (load_before, harness.load_average())
    reference = results["keras"][1]
    tf_in_litert = [
        v["name"] for v in variants if v["kind"] == "tflite" and results[v["name"]][0]["tensorflow_imported"]
    ]
    for v in variants:
        result, outputs = results[v["name"]]
        n = test.shape[0]
        hop_ms = None
        if v["mode"] == "streaming":  # per STFT hop (a K-hop file runs K of them per invoke)
            invokes = -(-(n + result["delay_samples"]) // result["hop"])
            hop_ms = result["best_s"] / (invokes * v["hops_per_call"]) * 1e3
        rows.append(
            {
                **v,
                "rtf": result["best_s"] / args.seconds,
                "cpu_rtf": result["cpu_s"] / args.seconds,
                "hop_ms": hop_ms,
                "peak_rss_mb": result["peak_rss_kb"] / 1024,
                "import_rss_mb": result["import_rss_kb"] / 1024,
                "xnnpack": result["xnnpack"],
                **score(outputs, reference, dev, args.pesq),
            }
        )
    order = {name: i for i, name in enumerate(VARIANT_NAMES)}
    rows.sort(key=lambda r: (order[f"{r['mode']}_{r['quantization']}" if r["kind"] == "tflite" else r["name"]],
                             r.get("hops_per_call", 1)))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noisy_snr = _mean([si_snr(clean, noisy) for _, noisy, clean in dev])
        noisy_pesq = _mean([pesq_wb(clean, noisy) for _, noisy, clean in dev]) if args.pesq else math.nan
    info = {
        "model": description,
        "params": model.count_params(),
        "command": command,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "chunk_samples": args.chunk_samples,
        "loads": loads,
        "latency": _latency(model),
        "dev": dev_text,
        "noisy_si_snr": noisy_snr,
        "noisy_pesq": noisy_pesq,
        "calibration": calibration_text,
        "notes": notes + ([] if args.pesq or not dev else ["PESQ-WB skipped (--nopesq)"]),
        "tf_check": (
            "checked, `tensorflow` absent from the worker's `sys.modules`"
            if not tf_in_litert
            else f"CHECK FAILED, TensorFlow was imported by {tf_in_litert}"
        ),
    }
    info["floor"] = compute_floor(model, args.seconds)
    text = render(rows, info)
    if args.output:
        harness.write_page(args.output, text)
    return text


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "tflite_speed.py", __doc__)
    if status is not None:
        return status
    if FLAGS.worker:
        return _worker_main(FLAGS.worker)
    command = harness.command_line(__file__, argv)
    try:
        text = run(FLAGS, command)
    except (ValueError, OSError) as exc:  # BenchmarkError, AudioError
        print(f"tflite_speed.py: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
