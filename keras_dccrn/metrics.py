"""Speech quality and intelligibility metrics on NumPy arrays (evaluation only, no TensorFlow).

Intrusive metrics take ``(clean, enhanced)`` in that order, like ``pesq``,
``pystoi``, Keras' ``(y_true, y_pred)`` and :func:`keras_dccrn.losses.si_snr`:

* PESQ (ITU-T P.862.2 wideband at 16 kHz, P.862 narrowband on 8 kHz
  resampled audio) via the ``pesq`` package;
* STOI and extended STOI via ``pystoi``;
* SI-SNR and its improvement over the noisy input (dB);
* plain SNR of an estimate against a reference (dB; e.g. a quantized model's output against float32's).

Non-intrusive DNSMOS (P.835 SIG/BAK/OVRL and P.808 MOS) runs the ONNX models
that ship inside the ``speechmos`` wheel (``speechmos/dnsmos_models``) with
``onnxruntime``; nothing is downloaded.

A metric that cannot be computed for a given pair (PESQ "no utterance
detected", a signal too short for STOI, ...) returns NaN and emits a
:class:`MetricWarning` instead of raising, so that one bad file does not stop
an evaluation run. Bad arguments (mismatched lengths, 2-D input) still raise
``ValueError``.
"""

import math
import os
import threading
import warnings

import numpy as np

from keras_dccrn.audio import resample

EPSILON = 1e-8
PESQ_WB_RATE = 16000
PESQ_NB_RATE = 8000
DNSMOS_RATE = 16000

# Metric groups accepted by ``compute_metrics(metrics=...)`` and the columns each one produces.
METRIC_GROUPS = {
    "pesq_wb": ("pesq_wb",),
    "pesq_nb": ("pesq_nb",),
    "stoi": ("stoi",),
    "estoi": ("estoi",),
    "si_snr": ("si_snr", "si_snri"),
    "dnsmos": ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
}
DEFAULT_METRICS = tuple(METRIC_GROUPS)


class MetricWarning(UserWarning):
    """A metric could not be computed and was reported as NaN."""


def _warn_nan(name, reason):
    warnings.warn(f"{name} set to NaN: {reason}", MetricWarning, stacklevel=3)
    return math.nan


def _signal(x, name):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D signal; received shape {x.shape}.")
    return x


def _pair(clean, enhanced):
    clean = _signal(clean, "clean")
    enhanced = _signal(enhanced, "enhanced")
    if clean.shape != enhanced.shape:
        raise ValueError(
            f"`clean` and `enhanced` must have the same length; received {clean.shape[0]} and "
            f"{enhanced.shape[0]} samples."
        )
    return clean, enhanced


def _finite(*signals):
    return all(np.all(np.isfinite(s)) for s in signals)


def _pesq(clean, enhanced, sample_rate, rate, mode, name):
    from pesq import pesq

    clean, enhanced = _pair(clean, enhanced)
    if not _finite(clean, enhanced):
        return _warn_nan(name, "non-finite samples")
    if sample_rate != rate:
        clean = resample(clean, sample_rate, rate)
        enhanced = resample(enhanced, sample_rate, rate)
    try:
        return float(pesq(rate, clean.astype(np.float32), enhanced.astype(np.float32), mode))
    except Exception as exc:  # pesq raises NoUtterancesError, BufferTooShortError, ...
        return _warn_nan(name, f"{type(exc).__name__}: {str(exc).strip() or 'pesq failed'}")


def pesq_wb(clean, enhanced, sample_rate=PESQ_WB_RATE):
    """Wideband PESQ (P.862.2, MOS-LQO, about -0.5..4.64); resampled to 16 kHz if needed."""
    return _pesq(clean, enhanced, sample_rate, PESQ_WB_RATE, "wb", "pesq_wb")


def pesq_nb(clean, enhanced, sample_rate=PESQ_WB_RATE):
    """Narrowband PESQ (P.862 MOS-LQO, up to about 4.55) on audio resampled to 8 kHz."""
    return _pesq(clean, enhanced, sample_rate, PESQ_NB_RATE, "nb", "pesq_nb")


def _stoi(clean, enhanced, sample_rate, extended, name):
    from pystoi import stoi as pystoi_stoi

    clean, enhanced = _pair(clean, enhanced)
    if not _finite(clean, enhanced):
        return _warn_nan(name, "non-finite samples")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(pystoi_stoi(clean, enhanced, int(sample_rate), extended=extended))
        except Exception as exc:
            return _warn_nan(name, f"{type(exc).__name__}: {exc}")
    for w in caught:
        if "Not enough STFT frames" in str(w.message):  # pystoi then returns a dummy 1e-5
            return _warn_nan(name, "fewer than 30 non-silent frames (signal too short or silent)")
    if not math.isfinite(value):
        return _warn_nan(name, "pystoi returned a non-finite value")
    return value


def stoi(clean, enhanced, sample_rate=16000):
    """Short-time objective intelligibility (Taal et al. 2011), 0..1."""
    return _stoi(clean, enhanced, sample_rate, False, "stoi")


def estoi(clean, enhanced, sample_rate=16000):
    """Extended STOI (Jensen and Taal 2016), about 0..1."""
    return _stoi(clean, enhanced, sample_rate, True, "estoi")


def si_snr(clean, enhanced, epsilon=EPSILON):
    """Scale-invariant SNR of ``enhanced`` against ``clean`` in dB, the float64 NumPy reference.

    The formula of the training loss :func:`keras_dccrn.losses.si_snr` (same argument order:
    reference first), on zero-mean signals::

        target = <enhanced, clean> / (<clean, clean> + epsilon) * clean
        noise = enhanced - target
        SI-SNR = 10 log10(|target|^2 / (|noise|^2 + epsilon) + epsilon)

    ``epsilon`` keeps the value finite: identical signals give about ``10 log10(energy / epsilon)``,
    an all-zero ``enhanced`` ``10 log10(epsilon)`` = -80 dB. A silent ``clean`` reference or
    non-finite samples give NaN with a :class:`MetricWarning` (nothing to score against).
    """
    clean, enhanced = _pair(clean, enhanced)
    if not _finite(clean, enhanced):
        return _warn_nan("si_snr", "non-finite samples")
    clean = clean - clean.mean()
    enhanced = enhanced - enhanced.mean()
    energy = np.dot(clean, clean)
    if energy <= epsilon:
        return _warn_nan("si_snr", "the clean reference is silent")
    target = np.dot(enhanced, clean) / (energy + epsilon) * clean
    noise = enhanced - target
    return float(10.0 * np.log10(np.dot(target, target) / (np.dot(noise, noise) + epsilon) + epsilon))


def snr(reference, estimate):
    """SNR of ``estimate`` against ``reference`` in dB: ``10 log10(|reference|^2 / |estimate - reference|^2)``.

    Not scale invariant (a gain error counts as noise): the distance of two renderings of one signal,
    e.g. a quantized model's output against the float32 model's. Identical signals give ``inf``; a
    silent ``reference`` or non-finite samples give NaN with a :class:`MetricWarning`.
    """
    reference, estimate = _signal(reference, "reference"), _signal(estimate, "estimate")
    if reference.shape != estimate.shape:
        raise ValueError(
            f"`reference` and `estimate` must have the same length; received {reference.shape[0]} and "
            f"{estimate.shape[0]} samples."
        )
    if not _finite(reference, estimate):
        return _warn_nan("snr", "non-finite samples")
    energy = np.dot(reference, reference)
    if energy == 0:
        return _warn_nan("snr", "the reference is silent")
    error = estimate - reference
    noise = np.dot(error, error)
    return math.inf if noise == 0 else float(10.0 * np.log10(energy / noise))


def si_snr_improvement(clean, enhanced, noisy, epsilon=EPSILON):
    """SI-SNRi: ``si_snr(clean, enhanced) - si_snr(clean, noisy)`` in dB."""
    noisy = _signal(noisy, "noisy")
    return si_snr(clean, enhanced, epsilon) - si_snr(clean, noisy, epsilon)


class DNSMOS:
    """Non-intrusive DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS.

    Runs the ONNX models shipped in the ``speechmos`` package through its
    ``speechmos.dnsmos.DNSMOS`` scorer (9.01 s windows with a 1 s hop, shorter
    clips repeated, P.835 polynomial calibration), with ``onnxruntime``
    sessions restricted to ``num_threads`` threads so that several evaluation
    workers can share a machine.

    Args:
        personalized: use the personalized P.835 model (``pdnsmos_models``).
        num_threads: onnxruntime intra-op threads per session.

    Call arguments:
        audio: 1-D signal; values outside [-1, 1] are clipped.
        sample_rate: its rate (resampled to 16 kHz if needed).

    Returns:
        ``{"sig": float, "bak": float, "ovrl": float, "p808": float}``.

    References:
        Reddy et al., "DNSMOS P.835: A non-intrusive perceptual objective
        speech quality metric to evaluate noise suppressors", ICASSP 2022.
    """

    def __init__(self, personalized=False, num_threads=1):
        if not isinstance(num_threads, int) or num_threads <= 0:
            raise ValueError(f"`num_threads` must be a positive integer; received {num_threads!r}.")
        import onnxruntime as ort
        from speechmos import dnsmos as speechmos_dnsmos

        root = os.path.dirname(os.path.abspath(speechmos_dnsmos.__file__))
        primary = os.path.join(
            root, "pdnsmos_models" if personalized else "dnsmos_models", "sig_bak_ovr.onnx"
        )
        p808 = os.path.join(root, "dnsmos_models", "model_v8.onnx")
        for path in (primary, p808):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: DNSMOS model missing from the speechmos package")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        # speechmos' scorer builds sessions with default (all-core) threading; build it without running
        # its constructor and give it thread-limited sessions of the same files.
        scorer = speechmos_dnsmos.DNSMOS.__new__(speechmos_dnsmos.DNSMOS)
        scorer.primary_model_path = primary
        scorer.onnx_sess = ort.InferenceSession(primary, options, providers=providers)
        scorer.p808_onnx_sess = ort.InferenceSession(p808, options, providers=providers)
        self._scorer = scorer
        self.personalized = bool(personalized)
        self._lock = threading.Lock()

    def __call__(self, audio, sample_rate=DNSMOS_RATE):
        audio = _signal(audio, "audio")
        if not np.all(np.isfinite(audio)):
            nan = _warn_nan("dnsmos", "non-finite samples")
            return dict(sig=nan, bak=nan, ovrl=nan, p808=nan)
        if sample_rate != DNSMOS_RATE:
            audio = resample(audio, sample_rate, DNSMOS_RATE)
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        if audio.size < 2 * 160 or not np.any(audio):
            nan = _warn_nan("dnsmos", "signal shorter than 20 ms or all zeros")
            return dict(sig=nan, bak=nan, ovrl=nan, p808=nan)
        try:
            with self._lock:
                out = self._scorer(audio, DNSMOS_RATE, self.personalized)
        except Exception as exc:
            nan = _warn_nan("dnsmos", f"{type(exc).__name__}: {exc}")
            return dict(sig=nan, bak=nan, ovrl=nan, p808=nan)
        return dict(
            sig=float(out["sig_mos"]),
            bak=float(out["bak_mos"]),
            ovrl=float(out["ovrl_mos"]),
            p808=float(out["p808_mos"]),
        )


_DNSMOS_CACHE = {}


def dnsmos(audio, sample_rate=DNSMOS_RATE, personalized=False):
    """DNSMOS scores of one signal with a cached single-thread :class:`DNSMOS` scorer."""
    if personalized not in _DNSMOS_CACHE:
        _DNSMOS_CACHE[personalized] = DNSMOS(personalized=personalized)
    return _DNSMOS_CACHE[personalized](audio, sample_rate)


def compute_metrics(clean, enhanced, sample_rate=16000, noisy=None, metrics=DEFAULT_METRICS):
    """Computes a set of metrics for one ``(clean, enhanced)`` pair.

    Args:
        clean: 1-D reference signal.
        enhanced: 1-D signal to score, same length as ``clean``.
        sample_rate: rate of both (and of ``noisy``).
        noisy: optional 1-D noisy input, same length; enables ``si_snri``.
        metrics: groups from :data:`METRIC_GROUPS` (``"pesq_wb"``,
            ``"pesq_nb"``, ``"stoi"``, ``"estoi"``, ``"si_snr"``,
            ``"dnsmos"``).

    Returns:
        ``{column: float}`` with the columns of the requested groups (NaN
        where a metric failed; ``si_snri`` is NaN without ``noisy``).
    """
    unknown = [m for m in metrics if m not in METRIC_GROUPS]
    if unknown:
        raise ValueError(f"Unknown metrics {unknown}; available: {list(METRIC_GROUPS)}.")
    clean, enhanced = _pair(clean, enhanced)
    if noisy is not None:
        noisy = _signal(noisy, "noisy")
        if noisy.shape != clean.shape:
            raise ValueError(
                f"`noisy` must have the length of `clean`; received {noisy.shape[0]} and {clean.shape[0]}."
            )
    out = {}
    for group in metrics:
        if group == "pesq_wb":
            out["pesq_wb"] = pesq_wb(clean, enhanced, sample_rate)
        elif group == "pesq_nb":
            out["pesq_nb"] = pesq_nb(clean, enhanced, sample_rate)
        elif group == "stoi":
            out["stoi"] = stoi(clean, enhanced, sample_rate)
        elif group == "estoi":
            out["estoi"] = estoi(clean, enhanced, sample_rate)
        elif group == "si_snr":
            out["si_snr"] = si_snr(clean, enhanced)
            out["si_snri"] = out["si_snr"] - si_snr(clean, noisy) if noisy is not None else math.nan
        elif group == "dnsmos":
            scores = dnsmos(enhanced, sample_rate)
            out.update({f"dnsmos_{k}": v for k, v in scores.items()})
    return out


def metric_columns(metrics=DEFAULT_METRICS):
    """The result columns produced by ``compute_metrics(metrics=...)``, in order."""
    return [column for group in metrics for column in METRIC_GROUPS[group]]
