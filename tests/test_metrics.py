import glob
import math
import os

import numpy as np
import pytest
from conftest import shared_data_dir

from keras_dccrn import metrics as M
from keras_dccrn.signals import harmonic_speech as speech_like

SR = 16000


def mix_at_snr(clean, noise, snr_db):
    noise = noise[: clean.size]
    scale = np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return (clean + scale * noise).astype(np.float32)


@pytest.fixture(scope="module")
def clean():
    return speech_like()


@pytest.fixture(scope="module")
def noisy(clean):
    noise = np.random.default_rng(7).standard_normal(clean.size).astype(np.float32)
    return mix_at_snr(clean, noise, 0.0)


def test_pesq_identical_signals(clean):
    assert M.pesq_wb(clean, clean) == pytest.approx(4.644, abs=0.01)
    assert M.pesq_nb(clean, clean) == pytest.approx(4.549, abs=0.01)


def test_pesq_drops_with_noise_and_resamples_other_rates(clean, noisy):
    assert M.pesq_wb(clean, noisy) < 2.0
    assert M.pesq_nb(clean, noisy) < 2.5
    # 48 kHz input is resampled to 16 kHz (WB) and 8 kHz (NB) internally.
    c48 = speech_like(sample_rate=48000)
    assert M.pesq_wb(c48, c48, sample_rate=48000) == pytest.approx(4.644, abs=0.01)
    assert M.pesq_nb(c48, c48, sample_rate=48000) == pytest.approx(4.549, abs=0.01)


def test_stoi_estoi(clean, noisy):
    assert M.stoi(clean, clean) == pytest.approx(1.0, abs=1e-6)
    assert M.estoi(clean, clean) == pytest.approx(1.0, abs=1e-6)
    s, e = M.stoi(clean, noisy), M.estoi(clean, noisy)
    assert 0.3 < s < 0.95 and 0.0 < e < 0.8 and e < s


def test_snr_is_the_energy_ratio_of_reference_and_error(clean):
    error = np.random.default_rng(2).standard_normal(clean.size) * 1e-3
    expected = 10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(error**2))
    assert M.snr(clean, clean + error) == pytest.approx(expected, abs=1e-6)
    # a gain error counts (unlike SI-SNR): 0.9 x the reference is 20 dB away
    assert M.snr(clean, 0.9 * clean) == pytest.approx(20.0, abs=1e-4)
    assert M.snr(clean, clean) == math.inf
    with pytest.warns(M.MetricWarning, match="the reference is silent"):
        assert math.isnan(M.snr(np.zeros(10), np.ones(10)))
    with pytest.raises(ValueError, match="received 10 and 9 samples"):
        M.snr(np.ones(10), np.ones(9))


def test_si_snr_identical_is_very_high(clean):
    assert M.si_snr(clean, clean) > 60.0
    assert M.si_snr(clean, 0.25 * clean) > 60.0  # scale invariant


def test_si_snr_of_known_snr_mixtures(clean):
    rng = np.random.default_rng(3)
    c = clean - clean.mean()
    for snr in (-5.0, 0.0, 5.0, 20.0):
        # Noise made zero-mean and orthogonal to the clean signal: SI-SNR equals the mixing SNR.
        noise = rng.standard_normal(c.size)
        noise -= noise.mean()
        noise -= np.dot(noise, c) / np.dot(c, c) * c
        assert M.si_snr(c, mix_at_snr(c, noise, snr)) == pytest.approx(snr, abs=0.1)
        # Plain white noise (nearly orthogonal over 3 s) is within 0.1 dB too.
        white = rng.standard_normal(c.size)
        assert M.si_snr(c, mix_at_snr(c, white, snr)) == pytest.approx(snr, abs=0.1)


def test_si_snr_is_the_angle_between_the_zero_mean_signals(clean, noisy):
    # Away from the epsilon floor, SI-SNR = 10 log10(cos^2 / sin^2) of the angle between the signals
    # (the Keras loss is checked against this function in test_losses_si_snr.py).
    c, n = (np.asarray(x, np.float64) for x in (clean, noisy))
    c, n = c - c.mean(), n - n.mean()
    cos2 = np.dot(c, n) ** 2 / (np.dot(c, c) * np.dot(n, n))
    assert M.si_snr(clean, noisy) == pytest.approx(10 * np.log10(cos2 / (1 - cos2)), abs=1e-6)


def test_a_silent_output_scores_the_floor_not_0_db(clean):
    # An enhancer that outputs silence must not score like an untouched 0 dB mixture.
    assert M.si_snr(clean, np.zeros_like(clean)) == pytest.approx(-80.0, abs=1e-9)
    assert M.si_snr(clean, np.zeros_like(clean)) < M.si_snr(clean, clean + np.ones_like(clean))


def test_si_snr_improvement(clean, noisy):
    enhanced = mix_at_snr(clean, noisy - clean, 10.0)
    assert M.si_snr_improvement(clean, enhanced, noisy) == pytest.approx(
        M.si_snr(clean, enhanced) - M.si_snr(clean, noisy), abs=1e-9
    )
    assert M.si_snr_improvement(clean, enhanced, noisy) == pytest.approx(10.0, abs=0.3)
    assert M.si_snr_improvement(clean, noisy, noisy) == 0.0


def test_failures_give_nan_with_a_warning(clean):
    silence = np.zeros(SR, np.float32)
    with pytest.warns(M.MetricWarning, match="pesq_wb"):
        assert math.isnan(M.pesq_wb(silence, silence))
    short = clean[:2000]  # 0.125 s: fewer than 30 STOI frames
    with pytest.warns(M.MetricWarning, match="stoi"):
        assert math.isnan(M.stoi(short, short))
    bad = clean.copy()
    bad[100] = np.nan
    with pytest.warns(M.MetricWarning, match="si_snr"):
        assert math.isnan(M.si_snr(clean, bad))
    with pytest.warns(M.MetricWarning, match="pesq_nb"):
        assert math.isnan(M.pesq_nb(clean, bad))


def test_bad_arguments_raise(clean):
    with pytest.raises(ValueError, match="same length"):
        M.stoi(clean, clean[:-1])
    with pytest.raises(ValueError, match="1-D"):
        M.si_snr(clean[None], clean[None])
    with pytest.raises(ValueError, match="Unknown metrics"):
        M.compute_metrics(clean, clean, metrics=["mosnet"])


def test_compute_metrics_columns(clean, noisy):
    groups = ["pesq_wb", "stoi", "si_snr"]
    out = M.compute_metrics(clean, noisy, noisy=noisy, metrics=groups)
    assert list(out) == M.metric_columns(groups) == ["pesq_wb", "stoi", "si_snr", "si_snri"]
    assert out["si_snri"] == 0.0
    assert out["si_snr"] == pytest.approx(M.si_snr(clean, noisy))
    assert math.isnan(M.compute_metrics(clean, noisy, metrics=["si_snr"])["si_snri"])


def test_dnsmos_ranks_clean_above_noisy_synthetic():
    clean = speech_like(seconds=9.5, seed=1)  # one 9.01 s DNSMOS window
    noise = np.random.default_rng(2).standard_normal(clean.size).astype(np.float32)
    noisy = mix_at_snr(clean, noise, 0.0)
    a, b = M.dnsmos(clean), M.dnsmos(noisy)
    assert set(a) == {"sig", "bak", "ovrl", "p808"}
    for scores in (a, b):
        assert all(0.5 < v < 5.5 for v in scores.values())
    assert a["bak"] > b["bak"] + 1.0
    assert a["ovrl"] > b["ovrl"]
    out = M.compute_metrics(clean, clean, metrics=["dnsmos"])
    assert out["dnsmos_ovrl"] == pytest.approx(a["ovrl"])


def test_dnsmos_handles_degenerate_input():
    with pytest.warns(M.MetricWarning, match="dnsmos"):
        scores = M.dnsmos(np.zeros(SR, np.float32))
    assert all(math.isnan(v) for v in scores.values())
    with pytest.raises(ValueError, match="num_threads"):
        M.DNSMOS(num_threads=0)


def test_dnsmos_real_speech_if_available():
    root = shared_data_dir()
    if root is None:
        pytest.skip("no /work/shared data")
    from keras_dccrn.audio import read_audio

    files = sorted(glob.glob(os.path.join(root, "speech", "valid", "SF3", "*.flac")))[:4]
    clean = np.concatenate([read_audio(f)[0] for f in files])[: int(9.5 * SR)]
    noise = read_audio(os.path.join(root, "noise", "valid", "speechbrain_noise1.flac"))[0]
    noise = np.resize(noise, clean.size)
    noisy = mix_at_snr(clean, noise, 0.0)
    a, b = M.dnsmos(clean), M.dnsmos(noisy)
    assert a["ovrl"] > b["ovrl"] and a["bak"] > b["bak"]
    assert a["ovrl"] > 2.5  # studio speech
    assert M.pesq_wb(clean, noisy) < M.pesq_wb(clean, clean)
