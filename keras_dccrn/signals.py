"""Signals for int8 calibration, tests and benchmarks: synthetic noisy speech, or the start of audio files."""

import os

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE


def file_signals(paths, seconds):
    """The first ``seconds`` of each audio file in ``paths``, as 16 kHz mono float32 arrays.

    Raises:
        keras_dccrn.audio.AudioError: a file that cannot be read (the message names it).
    """
    from keras_dccrn.audio import read_audio

    return [read_audio(path, SAMPLE_RATE)[0][: int(seconds * SAMPLE_RATE)] for path in paths]


def folder_signals(folder, count, seconds):
    """``(signals, paths)``: the first ``seconds`` of the first ``count`` audio files under ``folder``.

    The files are those of :func:`keras_dccrn.data.files.audio_files` (recursive, in a fixed order) with
    an extension this libsndfile build decodes.

    Raises:
        ValueError: ``folder`` is missing or holds no audio file (one line naming it).
    """
    from keras_dccrn.data.files import audio_files, readable_audio_extensions

    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: no such folder")
    paths = audio_files(folder, readable_audio_extensions())[:count]
    if not paths:
        raise ValueError(f"{folder}: no audio files ({', '.join(readable_audio_extensions())})")
    return file_signals(paths, seconds), paths


def speech_like_signals(count=8, seconds=2.0, seed=0, sample_rate=SAMPLE_RATE):
    """Synthetic noisy speech-like signals for int8 calibration when no real audio is at hand.

    Each signal is a sequence of 120-320 ms syllables separated by short
    pauses: voiced ones are a pulse train with a drifting 90-240 Hz pitch
    through three formant resonators (a random vowel per syllable),
    unvoiced ones are 2-6 kHz band-passed noise; each syllable has a smooth
    attack and decay. The speech is scaled to an active RMS of -30..-18 dBFS
    and white or pink noise at -35..-15 dBFS RMS is added, so calibration
    sees the level range and the onset/pause dynamics of real noisy speech,
    over many hops. Real recordings remain the better choice.

    Args:
        count: number of signals.
        seconds: length of each signal.
        seed: NumPy random seed.
        sample_rate: sampling rate in Hz.

    Returns:
        list of float32 1-D arrays in [-1, 1].
    """
    from scipy import signal as sps

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]
    out = []
    for _ in range(count):
        speech = np.zeros(n)
        pos = int(rng.integers(0, sample_rate // 10))
        while pos < n:
            length = min(int(rng.uniform(0.12, 0.32) * sample_rate), n - pos)
            t = np.arange(length) / sample_rate
            if rng.random() < 0.75:
                f0 = rng.uniform(90, 240) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
                phase = np.cumsum(f0) / sample_rate
                source = np.diff(np.floor(phase), prepend=0.0)  # one impulse per pitch period
                seg = np.zeros(length)
                for formant, bandwidth in zip(vowels[rng.integers(len(vowels))], (80, 100, 150), strict=True):
                    radius = np.exp(-np.pi * bandwidth / sample_rate)
                    theta = 2 * np.pi * formant * rng.uniform(0.9, 1.1) / sample_rate
                    seg += sps.lfilter([1 - radius], [1, -2 * radius * np.cos(theta), radius**2], source)
            else:
                sos = sps.butter(4, [2000, 6000], btype="bandpass", fs=sample_rate, output="sos")
                seg = sps.sosfilt(sos, rng.standard_normal(length))
            ramp = min(length // 3, sample_rate // 50)
            envelope = np.ones(length)
            envelope[:ramp] = np.sin(np.linspace(0, np.pi / 2, ramp)) ** 2
            envelope[length - ramp :] = envelope[:ramp][::-1]
            speech[pos : pos + length] = seg * envelope * rng.uniform(0.3, 1.0)
            pos += length + int(rng.uniform(0.03, 0.25) * sample_rate)
        active = speech[np.abs(speech) > 1e-4 * np.abs(speech).max()]
        speech *= 10 ** (rng.uniform(-30, -18) / 20) / np.sqrt(np.mean(active**2))
        noise = rng.standard_normal(n)
        if rng.random() < 0.5:  # pink: -3 dB / octave
            noise = sps.lfilter(
                [0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189], noise
            )
        noise *= 10 ** (rng.uniform(-35, -15) / 20) / np.sqrt(np.mean(noise**2))
        out.append(np.clip(speech + noise, -1, 1).astype("float32"))
    return out


def harmonic_speech(seconds=3.0, sample_rate=SAMPLE_RATE, seed=0):
    """A clean, deterministic speech-like signal: a gliding harmonic source through three formant
    resonators, gated into 3 Hz 'syllables' with pauses; peak 0.3 (for metric and scoring tests).

    Args:
        seconds: length.
        sample_rate: sampling rate in Hz.
        seed: NumPy random seed (the syllable phase).

    Returns:
        float32 1-D array.
    """
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 15 * np.sin(2 * np.pi * 2.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    source = sum(np.cos(k * phase) / k for k in range(1, 30))
    voiced = np.zeros(n)
    for fc, bw in ((700, 130), (1200, 150), (2600, 250)):
        r = np.exp(-np.pi * bw / sample_rate)
        voiced += lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sample_rate), r * r], source)
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6)), 0, None) ** 0.7
    envelope *= np.sin(2 * np.pi * 0.4 * t) > -0.6
    x = voiced * envelope
    return (0.3 * x / np.abs(x).max()).astype(np.float32)
