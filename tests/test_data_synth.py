"""keras_dccrn.data.synth: MixtureSynthesizer examples (epochs, padding, noise sampling, bad files)."""

import os

import numpy as np
import pytest
import soundfile as sf
from data_corpus import SR, digest, make_corpus, make_mixed_corpus, speechlike

from keras_dccrn import data
from keras_dccrn.data import MixtureConfig

pytestmark = pytest.mark.usefixtures("fresh_skipped")

CFG = MixtureConfig(segment_seconds=0.5)


@pytest.fixture
def corpus(tmp_path, rng):
    return make_corpus(tmp_path, rng)


def test_each_clean_file_once_per_epoch(corpus):
    synth = data.MixtureSynthesizer(*corpus, config=CFG, seed=0)
    epoch0 = [synth.example(i)[2]["clean_file"] for i in range(6)]
    epoch1 = [synth.example(i)[2]["clean_file"] for i in range(6, 12)]
    assert sorted(epoch0) == sorted(epoch1) == sorted(synth.clean.paths)
    assert epoch0 != epoch1


def test_short_clean_pad_or_skip(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng, n_speech=4, speech_seconds=(0.6, 0.9))
    sf.write(tmp_path / "speech" / "long.wav", speechlike(1.5, rng), SR)
    cfg = MixtureConfig(segment_seconds=1.0, short_clean="pad")
    synth = data.MixtureSynthesizer(speech, noise, config=cfg)
    metas = [synth.example(i) for i in range(5)]
    padded = [m for _, c, m in metas if not m["clean_file"].endswith("long.wav")]
    assert len(padded) == 4
    for _, c, m in metas:
        if not m["clean_file"].endswith("long.wav"):
            start = int(round(m["clean_pad"] * SR))
            assert np.all(c[:start] == 0) and c[start] != 0
    skip = data.MixtureSynthesizer(
        speech, noise, config=MixtureConfig(segment_seconds=1.0, short_clean="skip")
    )
    assert [os.path.basename(p) for p in skip.clean.paths] == ["long.wav"]
    assert {m["clean_file"] for _, _, m in (skip.example(i) for i in range(3))} == {skip.clean.paths[0]}


def test_duration_noise_sampling_weights_files_by_length(tmp_path, rng):
    speech, _ = make_corpus(tmp_path, rng)
    noise = tmp_path / "weighted"
    noise.mkdir()
    sf.write(noise / "long.wav", 0.05 * rng.standard_normal(9 * SR), SR)
    sf.write(noise / "short.wav", 0.05 * rng.standard_normal(SR), SR)
    picks = {}
    for sampling in ("file", "duration"):
        cfg = MixtureConfig(segment_seconds=0.25, noise_sampling=sampling)
        synth = data.MixtureSynthesizer(speech, str(noise), config=cfg, seed=3)
        names = [os.path.basename(synth.example(i)[2]["noise_file"]) for i in range(400)]
        picks[sampling] = names.count("long.wav") / len(names)
    assert 0.4 < picks["file"] < 0.6  # every file equally likely
    assert 0.84 < picks["duration"] < 0.96  # 9 s of 10 s
    with pytest.raises(ValueError, match="noise_sampling"):
        MixtureConfig(noise_sampling="loudest")


# SHA-256 prefixes of examples 0..11 of seed 11 of the mixed corpus (tests/data_corpus.py), recorded
# with the code that the running trainings use: a change here means the same flags and seed no longer
# give the same training data. (Float results of NumPy/SciPy on this platform; another CPU family may
# round an FFT differently.)
GOLDEN_EXAMPLES = {"early_duration": "17eb6a2a7da5f564", "variable_dry": "e8e034f890c69356"}
GOLDEN_CONFIGS = {
    "early_duration": dict(
        segment_seconds=1.0, reverb_prob=0.5, reverb_target="early", noise_sampling="duration"
    ),
    "variable_dry": dict(
        segment_seconds=(0.5, 1.2), reverb_prob=0.3, snr_range=(0, 10), level_range=(-30, -5)
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CONFIGS))
@pytest.mark.parametrize("cache", [True, False])
def test_examples_are_bit_identical_to_the_recorded_ones(tmp_path, name, cache):
    speech, noise, rir = make_mixed_corpus(tmp_path)
    synth = data.MixtureSynthesizer(
        speech, noise, rir, MixtureConfig(**GOLDEN_CONFIGS[name]), seed=11, cache=cache
    )
    examples = [synth.example(i) for i in range(12)]
    assert digest(*[a for noisy, target, _ in examples for a in (noisy, target)]) == GOLDEN_EXAMPLES[name]
    metas = [m for _, _, m in examples]
    assert any(m["rir_file"] for m in metas) and any(not m["rir_file"] for m in metas)
    assert {os.path.basename(m["clean_file"]) for m in metas} >= {"wide.flac", "stereo.wav", "short.wav"}
