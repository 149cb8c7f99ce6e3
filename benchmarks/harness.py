"""What the benchmark scripts share: flag parsing, the page's command line, Markdown tables, the
development-set pairs, paired quality costs, timing, memory figures, whole-process measurements and thread limits.

Every script in ``benchmarks/`` is run from the repository root as ``python benchmarks/<name>.py``
with absl flags (``--flag=value``; lists comma-separated); its ``main(argv)`` takes the whole
``argv`` (program name first) and returns the exit status: 0, or 2 after one line on stderr for bad
flags or inputs (:class:`BenchmarkError`, :class:`keras_dccrn.errors.UsageError`, ``ValueError``).
"""

import json
import math
import os
import shlex
import subprocess
import sys
import time

import soundfile
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_RATE = 16000
_HELP_ARGS = ("-h", "-help", "--help", "--helpshort", "--helpfull")


class BenchmarkError(ValueError):
    """Bad flags or inputs, or a failed measurement; the message is one line."""


def parse_flags(argv, flag_values, prog, help_text):
    """Parses ``argv`` (program name first) into ``flag_values``.

    Returns:
        None when the run goes on; otherwise the exit status: 0 after printing ``help_text`` and the
        flags for ``--help``, 2 after one line on stderr for a flag error.
    """
    if any(arg in _HELP_ARGS for arg in argv[1:]):
        print(
            help_text.strip()
            + "\n\nFlags:\n"
            + flag_values.get_help(prefix="  ", include_special_flags=False)
        )
        return 0
    flag_values.unparse_flags()  # main() may run more than once in a process (tests)
    try:
        rest = flag_values(list(argv))
    except flags.Error as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if len(rest) > 1:
        print(f"{prog}: unexpected arguments {rest[1:]} (flags are --name=value)", file=sys.stderr)
        return 2
    return None


def command_line(script, argv):
    """The command that reproduces a run, for the page: ``python benchmarks/<script> <argv[1:]>``."""
    return " ".join(["python", f"benchmarks/{os.path.basename(script)}", *(shlex.quote(a) for a in argv[1:])])


def code_version(root=ROOT):
    """``<commit> (<path>)`` of the checkout at ``root`` (``+changes`` when its tracked files differ)."""
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"not a git checkout ({root})"
    return f"{commit}{'+changes' if dirty else ''} ({root})"


def markdown_table(header, rows, align=None):
    """Lines of a Markdown table.

    Args:
        header: column titles.
        rows: sequences of cell texts, one per column.
        align: ``"l"`` / ``"r"`` per column (default: the first left, the others right).

    Returns:
        ``["| a | b |", "|---|---:|", ...]``.
    """
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "".join("---|" if a == "l" else "---:|" for a in align)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def finite_mean(values):
    """Mean of the finite values (NaN scores left out); NaN when there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def format_or_na(value, template):
    """``template.format(value)``, or ``"n/a"`` for None and non-finite values."""
    return "n/a" if value is None or not math.isfinite(value) else template.format(value)


def write_page(path, text):
    """Writes a generated page atomically (its folder is created); a path relative to the working folder."""
    from keras_dccrn.atomic import write_text

    write_text(path, text)


def find_pairs(devset, limit=0):
    """``[(name, noisy_path, clean_path), ...]`` of a ``dccrn-mix`` folder, sorted by name, first ``limit``.

    Raises:
        ValueError: one-line message naming the folder when it has no pairs.
    """
    noisy_dir, clean_dir = os.path.join(devset, "noisy"), os.path.join(devset, "clean")
    for folder in (noisy_dir, clean_dir):
        if not os.path.isdir(folder):
            raise ValueError(f"{folder}: no such folder (expected a dccrn-mix set with noisy/ and clean/)")
    if limit < 0:
        raise ValueError(f"--limit must be >= 0; received {limit}")
    names = sorted(f for f in os.listdir(noisy_dir) if f.lower().endswith(".wav"))
    pairs = [
        (n, os.path.join(noisy_dir, n), os.path.join(clean_dir, n))
        for n in names
        if os.path.isfile(os.path.join(clean_dir, n))
    ]
    if not pairs:
        raise ValueError(f"{devset}: no noisy/NNNN.wav file with a matching clean/NNNN.wav")
    return pairs[:limit] if limit else pairs


def load_pairs(pairs):
    """Reads the pairs at 16 kHz mono: ``[(name, noisy, clean), ...]`` (cut to the shorter length)."""
    from keras_dccrn.audio import read_audio

    out = []
    for name, noisy_path, clean_path in pairs:
        noisy, _ = read_audio(noisy_path, SAMPLE_RATE)
        clean, _ = read_audio(clean_path, SAMPLE_RATE)
        n = min(noisy.shape[0], clean.shape[0])
        out.append((name, noisy[:n], clean[:n]))
    return out


def paired_cost(reference, variant):
    """``(mean cost, 95% t half width)`` of reference minus variant, per file, over the files scored by both."""
    from keras_dccrn.evaluation import confidence_interval

    diffs = [r - v for r, v in zip(reference, variant, strict=True) if math.isfinite(r) and math.isfinite(v)]
    mean, half, _ = confidence_interval(diffs)
    return mean, half


def score_pairs(run, pairs, use_pesq, keep_outputs=False):
    """Enhances each ``(name, noisy, clean)`` pair with ``run(noisy)``, timed, and scores it against clean.

    Returns:
        ``{si_snr: [...], pesq_wb: [...] (NaN without use_pesq), wall, cpu, thread_cpu, seconds, outputs}``:
        per-file scores, the summed wall, process CPU and calling-thread CPU seconds of the ``run`` calls,
        the seconds of audio, and the outputs (``None`` unless ``keep_outputs``).
    """
    from keras_dccrn.metrics import pesq_wb, si_snr

    snr, pq, outputs = [], [], []
    wall = cpu = thread_cpu = seconds = 0.0
    for _, noisy, clean in pairs:
        wall0, cpu0, thread0 = time.perf_counter(), time.process_time(), time.thread_time()
        out = run(noisy)
        wall += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        thread_cpu += time.thread_time() - thread0
        seconds += noisy.size / SAMPLE_RATE
        if keep_outputs:
            outputs.append(out)
        snr.append(float(si_snr(clean, out)))
        pq.append(float(pesq_wb(clean, out)) if use_pesq else math.nan)
    return dict(
        si_snr=snr,
        pesq_wb=pq,
        wall=wall,
        cpu=cpu,
        thread_cpu=thread_cpu,
        seconds=seconds,
        outputs=outputs if keep_outputs else None,
    )


def timed(fn, *args):
    """``(fn(*args), wall seconds, CPU seconds of this process)`` of one call."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall0, time.process_time() - cpu0


def path_bytes(path):
    """Size in bytes of a file, or of every file under a folder (recursively); 0 when it is neither."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(path) for f in names)


def proc_status_kb(field):
    """``VmRSS`` (resident now) / ``VmHWM`` (peak) of this process in kB (Linux ``/proc/self/status``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def limit_blas_threads():
    """One thread for the BLAS/OpenMP pools (threadpoolctl, when installed); the controller or None.

    Call ``restore_original_limits()`` on the controller to undo.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1)


def tensorflow_threads(threads):
    """Imports TensorFlow limited to ``threads`` intra-op threads and one inter-op thread.

    The limits are :func:`keras_dccrn.runtime.configure_threads`'s, applied before TensorFlow runs
    anything and checked.

    Returns:
        The ``tensorflow`` module.

    Raises:
        RuntimeError: TensorFlow had already run and kept other thread counts.
    """
    import tensorflow as tf

    from keras_dccrn.runtime import configure_threads

    configure_threads(threads)
    got = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    if got != (threads, 1):
        raise RuntimeError(f"TensorFlow thread pools are {got}, not ({threads}, 1)")
    return tf


# A small process between this script and the measured one: a child's peak RSS counts the memory of
# the process it was forked from (Linux copies it at fork and keeps the peak across exec), so the
# measured process is forked by this launcher (about 10 MB) rather than by the benchmark script (NumPy,
# SciPy, the peers' packages). It writes the figures of its one child as JSON to argv[1].
LAUNCHER = r"""
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    json.dump({"status": os.waitstatus_to_exitcode(status), "wall_s": wall,
               "cpu_s": usage.ru_utime + usage.ru_stime, "rss_kb": usage.ru_maxrss}, f)
"""


def measure(cmd, env, stderr_path):
    """Runs ``cmd`` once; ``(exit status, wall s, cpu s, peak RSS MB)`` of that process alone."""
    report = stderr_path + ".json"
    with open(stderr_path, "wb") as err:
        launcher = subprocess.run(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, report, *cmd],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    if launcher.returncode != 0 or not os.path.isfile(report):
        return launcher.returncode or 1, 0.0, 0.0, 0.0
    with open(report) as f:
        r = json.load(f)
    os.remove(report)
    return r["status"], r["wall_s"], r["cpu_s"], r["rss_kb"] / 1024.0


def last_line(path):
    """The last non-empty line of a text file (at most 200 characters), or ``"no message"``."""
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1][:200] if lines else "no message"


def run_case(cmd, env, src, dst, repeats, log_path):
    """Best of ``repeats`` runs: dict with wall/cpu/rss, or ``{"error": ...}``; checks the output file."""
    best = None
    for _ in range(repeats):
        if os.path.exists(dst):
            os.remove(dst)
        code, wall, cpu, rss = measure(cmd, env, log_path)
        if code != 0:
            return {"error": f"exit {code}: {last_line(log_path)}"}
        try:
            frames = soundfile.info(dst).frames
        except Exception as exc:
            return {"error": f"no readable output ({type(exc).__name__})"}
        if frames != soundfile.info(src).frames:
            return {"error": f"output has {frames} frames, input {soundfile.info(src).frames}"}
        if best is None or wall < best["wall_s"]:
            best = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss}
    return best


def child_env():
    """This environment with the checkout first on ``PYTHONPATH`` (subprocesses import this code)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def enhance_command(model, src, dst):
    """``dccrn-enhance`` on ``src``; without ``--model`` when ``model`` is empty (the shipped default)."""
    flags_ = [f"--model={model}"] if model else []
    return [sys.executable, "-m", "trainers.enhance", *flags_, f"--input={src}", f"--output={dst}"]


# One-thread float32 GEMM throughput of TensorFlow in a fresh process: ``n x n`` by ``n x n``, best of
# ``rounds`` after one warm-up, as FLOP/s (2 per multiply-add); defaults GEMM_N and GEMM_ROUNDS.
GEMM_N = 1024
GEMM_ROUNDS = 10
_GEMM_PROBE = r"""
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, sys.argv[3])
from benchmarks.harness import tensorflow_threads
tf = tensorflow_threads(1)
n, rounds = int(sys.argv[1]), int(sys.argv[2])
a = tf.random.stateless_normal([n, n], seed=[1, 2])
b = tf.random.stateless_normal([n, n], seed=[3, 4])
matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
matmul(a, b).numpy()
best = float("inf")
for _ in range(rounds):
    start = time.perf_counter()
    matmul(a, b).numpy()
    best = min(best, time.perf_counter() - start)
print(2.0 * n**3 / best)
"""


def gemm_flops(n=GEMM_N, rounds=GEMM_ROUNDS):
    """One-thread float32 matmul FLOP/s of TensorFlow on this CPU (a fresh subprocess, best of ``rounds``).

    Raises:
        BenchmarkError: the probe process failed.
    """
    return float(_run_probe("GEMM", _GEMM_PROBE, n, rounds, ROOT).split()[-1])


def _run_probe(what, script, *args):
    """Runs the probe ``script`` (``python -c``) with ``args`` in a fresh process; its stdout.

    Raises:
        BenchmarkError: the process failed (named ``what``, with the last line of its stderr).
    """
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchmarkError(f"{what} probe failed: {tail}")
    return proc.stdout


# One-thread GEMM throughput of LiteRT (XNNPACK) in a fresh process, per quantization: a graph of one
# matmul, ``[LITERT_GEMM_M, n]`` by a constant ``[n, n]``, converted by TensorFlow's converter as float32,
# dynamic-range int8 (int8 weights, activations quantized per call) and full int8 (int8 in and out,
# calibrated on normal noise); best of ``rounds`` invokes after one warm-up, as multiply-adds per second.
LITERT_GEMM_M = 256
LITERT_GEMM_QUANTIZATIONS = ("float32", "dynamic_int8", "int8")
_LITERT_GEMM_PROBE = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, sys.argv[4])
import numpy as np
from benchmarks.harness import tensorflow_threads
tf = tensorflow_threads(1)
from ai_edge_litert.interpreter import Interpreter
m, n, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
weights = (rng.standard_normal((n, n)) / np.sqrt(n)).astype("float32")
fn = tf.function(lambda x: tf.matmul(x, weights), input_signature=[tf.TensorSpec([m, n], tf.float32)])
out = {}
for quantization in sys.argv[5].split(","):
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "int8":
        converter.representative_dataset = lambda: ([rng.standard_normal((m, n)).astype("float32")] for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    interpreter = Interpreter(model_content=converter.convert(), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], rng.integers(-100, 100, (m, n)).astype(detail["dtype"]))
    interpreter.invoke()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        interpreter.invoke()
        best = min(best, time.perf_counter() - start)
    out[quantization] = m * n * n / best
print(json.dumps(out))
"""


def litert_gemm_macs(n=GEMM_N, rounds=GEMM_ROUNDS, quantizations=LITERT_GEMM_QUANTIZATIONS):
    """One-thread LiteRT matmul throughput on this CPU per quantization: ``{quantization: MAC/s}``.

    A fresh subprocess (TensorFlow converts, LiteRT runs); see :data:`LITERT_GEMM_QUANTIZATIONS`.

    Raises:
        BenchmarkError: the probe process failed.
    """
    import json

    out = _run_probe(
        "LiteRT GEMM", _LITERT_GEMM_PROBE, LITERT_GEMM_M, n, rounds, ROOT, ",".join(quantizations)
    )
    return json.loads(out.strip().splitlines()[-1])


def load_average():
    """The 1-minute load average (NaN where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def cpu_description():
    """``"<model name>, <SIMD extensions that bound the kernels>"`` from ``/proc/cpuinfo`` (Linux), else the
    platform's processor string."""
    import platform

    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:  # the first processor's block
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    cpu_flags = set(fields.get("flags", "").split())
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
            if f in cpu_flags]  # fmt: skip
    return f"{name}, {' '.join(simd) or 'no AVX2, AVX-512, VNNI or AMX'}"
