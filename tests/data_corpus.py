"""Synthetic corpora shared by the ``keras_dccrn.data`` test modules (speech-like tones, noise, RIRs)."""

import numpy as np
import soundfile as sf

SR = 16000


def speechlike(seconds, rng, sr=SR, level=0.1):
    """Harmonic signal with a syllable-rate envelope (low crest factor, never silent)."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 220)
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 5) * t)
    x = x * env + 0.05 * rng.standard_normal(len(t))
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def make_corpus(root, rng, n_speech=6, n_noise=3, speech_seconds=(0.6, 1.2), sr=SR):
    """``(speech_dir, noise_dir)`` under ``root``: speech in two speaker folders, FLAC noise."""
    speech_dir, noise_dir = root / "speech", root / "noise"
    for i in range(n_speech):
        sub = speech_dir / f"spk{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        sf.write(sub / f"s{i}.wav", speechlike(rng.uniform(*speech_seconds), rng, sr), sr)
    noise_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n_noise):
        sf.write(noise_dir / f"n{i}.flac", 0.05 * rng.standard_normal(int(rng.uniform(0.3, 1.5) * sr)), sr)
    return str(speech_dir), str(noise_dir)


def make_rir(path, sr=SR, delay=25, seconds=0.3, seed=0):
    """Writes an exponentially decaying RIR whose direct path (at ``delay``) is negative; returns it."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    h = 0.3 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.05 * sr))
    h[:delay] = 0.0
    h[delay] = -2.0  # direct path (largest, negative polarity)
    h = 0.2 * h / np.max(np.abs(h))
    sf.write(path, h, sr, subtype="FLOAT")
    return h


def make_mixed_corpus(root):
    """``(speech, noise, rir)`` folders exercising every decoding path, from a fixed seed.

    Speech: 16 kHz WAVs in two speaker folders, a 22.05 kHz FLAC (resampled), a stereo 48 kHz WAV
    (mixed down and resampled) and a 0.6 s file (padded). Noise: 16 kHz FLACs, an 8 kHz WAV shorter
    than a segment (looped). RIRs: two rooms, one nested a folder deeper.
    """
    rng = np.random.default_rng(20240611)
    speech, noise = make_corpus(root, rng, n_speech=4, n_noise=2, speech_seconds=(0.8, 1.6))
    sf.write(root / "speech" / "spk0" / "wide.flac", speechlike(1.3, rng, sr=22050), 22050)
    stereo = np.stack([speechlike(1.1, rng, sr=48000), speechlike(1.1, rng, sr=48000)], axis=1)
    sf.write(root / "speech" / "spk1" / "stereo.wav", stereo, 48000)
    sf.write(root / "speech" / "spk1" / "short.wav", speechlike(0.6, rng), SR)
    sf.write(root / "noise" / "hum8k.wav", 0.05 * rng.standard_normal(4000), 8000)
    (root / "rir" / "sim").mkdir(parents=True)
    make_rir(root / "rir" / "room.wav", seed=1)
    make_rir(root / "rir" / "sim" / "hall.wav", delay=40, seconds=0.5, seed=2)
    return speech, noise, str(root / "rir")


def take(ds, n):
    """The first ``n`` batches of a ``(noisy, clean)`` dataset, concatenated: ``(noisy, clean)`` arrays."""
    out = [(a.numpy(), b.numpy()) for a, b in ds.take(n)]
    return np.concatenate([a for a, _ in out]), np.concatenate([b for _, b in out])


def snr_db(clean, noisy):
    """SNR in dB of ``noisy`` against ``clean`` (noise = difference), along the last axis."""
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.sum(clean.astype(np.float64) ** 2, -1) / np.sum(noise**2, -1))


def rms_dbfs(x):
    """RMS level in dBFS along the last axis."""
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2, -1))


def write_bad_files(folder):
    """Writes four unusable files (garbage, empty, silent, NaN) into ``folder``; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "garbage.wav").write_bytes(b"this is not audio at all")
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), SR)
    sf.write(folder / "silent.wav", np.zeros(SR, np.float32), SR)
    nan = np.full(SR, 0.1, np.float32)
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, SR, subtype="FLOAT")
    return ["garbage.wav", "empty.wav", "silent.wav", "nan.wav"]


def digest(*arrays):
    """First 16 hex digits of the SHA-256 of the arrays' float32 bytes."""
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


# Rows of the data folder written by make_data_folder: (split, kind, path, seconds in the manifest, source,
# licence, speaker_or_class). The files hold 0.1 s of audio: the manifest's seconds are what the card counts.
DATA_FOLDER_ROWS = [
    ("train", "speech", "speech/train/spk1/a.wav", 1800.0, "ReadSpeech", "CC BY 4.0 (attribution)", "spk1"),
    ("train", "speech", "speech/train/spk2/b.flac", 900.0, "ReadSpeech", "CC BY 4.0 (attribution)", "spk2"),
    ("train", "speech", "speech/train/kid1/c.flac", 360.0, "KidSpeech",
     "README: free for commercial and non-commercial use", "kid1"),
    ("train", "noise", "noise/train/street_1.flac", 1800.0, "StreetNoise", "CC BY-NC 3.0 (NON-COMMERCIAL)", "car"),
    ("train", "noise", "noise/train/street_2.flac", 1800.0, "StreetNoise", "CC BY-NC 3.0 (NON-COMMERCIAL)", "dog"),
    ("train", "noise", "noise/train/game_rain.wav", 720.0, "GameAudio", "CC BY-SA 3.0 (share-alike)", "rain"),
    ("train", "noise", "noise/train/tune_1.wav", 3600.0, "GameMusic", "GPL-2+", "music"),
    ("valid", "speech", "speech/valid/spk3/d.flac", 36.0, "ReadSpeech", "CC BY 4.0 (attribution)", "spk3"),
    ("valid", "noise", "noise/valid/lab_1.flac", 72.0, "LabNoise", "CC BY-NC-SA 4.0", "hum"),
    ("all", "rir", "rir/r1.wav", 0.5, "SimulatedRIRs", "generated", "0.3"),
]  # fmt: skip
MANIFEST_HEADER = "split,kind,path,seconds,source,licence,origin,speaker_or_class,codec".split(",")


def make_data_folder(root):
    """A data folder ``root/data`` like ``../shared/data``: DATA_FOLDER_ROWS and their ``manifest.csv``.

    Also ``noise/train/extra.wav`` (0.25 s), a file the manifest does not list. Returns the folder.
    """
    import csv

    folder = root / "data"
    rng = np.random.default_rng(0)
    with_rows = [(row[2], 0.1) for row in DATA_FOLDER_ROWS] + [("noise/train/extra.wav", 0.25)]
    for path, seconds in with_rows:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / path, 0.05 * rng.standard_normal(int(seconds * SR)), SR)
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_HEADER)
        for split, kind, path, seconds, source, licence, speaker in DATA_FOLDER_ROWS:
            codec = "FLAC" if path.endswith(".flac") else "PCM"
            writer.writerow([split, kind, path, seconds, source, licence, "test", speaker, codec])
    return folder
