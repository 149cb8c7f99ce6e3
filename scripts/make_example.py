"""Writes ``examples/noisy.wav`` and ``examples/clean.wav``: a freely redistributable noisy-speech example.

    python scripts/make_example.py        # needs the espeak-ng program (apt install espeak-ng)

The corpora used for training may not be copied into the repository (licences), so the example is built
from scratch: the clean speech is synthesised by espeak-ng, the noise is a mix of synthetic babble (other
espeak-ng sentences, other voices, summed) and pink noise, mixed at 5 dB SNR. The two files are committed so
that the README's main command works on a fresh machine without espeak-ng.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_dccrn.audio import read_audio, write_audio  # noqa: E402

RATE = 16000
SNR_DB = 5.0
LEVEL_DBFS = -25.0
SPEECH = (
    "Speech enhancement removes background noise from a recording. "
    "This sentence was mixed with babble and hiss, then cleaned by a small neural network."
)
BABBLE = [
    ("en-us+f3", "The meeting starts at nine and the coffee is on the second floor."),
    ("en+m7", "Please remember to bring the report and the slides for tomorrow."),
    ("en-gb+f2", "We walked along the river until the rain began to fall again."),
]


def espeak(text, voice, path, speed=150):
    try:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, text], check=True)
    except FileNotFoundError:
        raise SystemExit("make_example.py: espeak-ng is not installed (apt install espeak-ng)") from None
    audio, _ = read_audio(path, sample_rate=RATE)
    return audio


def pink_noise(n, rng):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))  # 1/f power
    return np.fft.irfft(spectrum, n)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def main():
    rng = np.random.default_rng(2024)
    with tempfile.TemporaryDirectory() as tmp:
        clean = espeak(SPEECH, "en-us", os.path.join(tmp, "speech.wav"))
        clean = np.concatenate([np.zeros(RATE // 2, np.float32), clean, np.zeros(RATE // 2, np.float32)])
        babble = np.zeros_like(clean)
        for i, (voice, text) in enumerate(BABBLE):
            talker = espeak(text, voice, os.path.join(tmp, f"babble{i}.wav"))
            talker = np.resize(talker, len(clean))  # loop the talker over the whole example
            babble += np.roll(talker, rng.integers(len(clean))) / rms(talker)
    pink = pink_noise(len(clean), rng)
    noise = 0.4 * babble / rms(babble) + pink / rms(pink)  # mostly hiss, some distant talkers
    noise *= rms(clean) / rms(noise) / 10.0 ** (SNR_DB / 20.0)
    gain = 10.0 ** (LEVEL_DBFS / 20.0) / rms(clean + noise)
    noisy, clean = (clean + noise) * gain, clean * gain
    peak = max(np.max(np.abs(noisy)), np.max(np.abs(clean)))
    if peak > 0.99:
        noisy, clean = noisy * 0.99 / peak, clean * 0.99 / peak
    os.makedirs("examples", exist_ok=True)
    write_audio("examples/clean.wav", clean.astype(np.float32), RATE, subtype="PCM_16")
    write_audio("examples/noisy.wav", noisy.astype(np.float32), RATE, subtype="PCM_16")
    print(f"wrote examples/noisy.wav and examples/clean.wav ({len(clean) / RATE:.1f} s, SNR {SNR_DB} dB)")


if __name__ == "__main__":
    main()
