"""keras_dccrn.data.pipeline: the tf.data training and validation datasets."""

import logging
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from data_corpus import (
    SR,
    digest,
    make_corpus,
    make_mixed_corpus,
    make_rir,
    rms_dbfs,
    snr_db,
    take,
    write_bad_files,
)

from keras_dccrn import data
from keras_dccrn.data import MixtureConfig

pytestmark = pytest.mark.usefixtures("fresh_skipped")

CFG = MixtureConfig(segment_seconds=0.5)


@pytest.fixture
def corpus(tmp_path, rng):
    return make_corpus(tmp_path, rng)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.5, 20.0])
def test_requested_snr_is_achieved(corpus, snr):
    cfg = MixtureConfig(segment_seconds=0.5, snr_range=(snr, snr))
    noisy, clean = take(data.training_dataset(*corpus, config=cfg, batch_size=4), 2)
    assert noisy.shape == clean.shape == (8, 8000) and noisy.dtype == np.float32
    np.testing.assert_allclose(snr_db(clean, noisy), snr, atol=0.1)


def test_snr_range_and_level_range_respected(corpus):
    cfg = MixtureConfig(segment_seconds=0.5, snr_range=(-5, 20), level_range=(-35, -15))
    noisy, clean = take(data.training_dataset(*corpus, config=cfg, batch_size=8, seed=3), 4)
    snrs, levels = snr_db(clean, noisy), rms_dbfs(noisy)
    assert snrs.min() >= -5.1 and snrs.max() <= 20.1 and snrs.max() - snrs.min() > 8
    peaks = np.maximum(np.abs(noisy).max(1), np.abs(clean).max(1))
    assert peaks.max() <= 0.99 + 1e-6
    unscaled = peaks < 0.99 - 1e-4  # clip prevention lowers the level below the drawn one
    assert unscaled.all()  # these signals have low crest factors: no clip scaling expected
    assert levels.min() >= -35.01 and levels.max() <= -14.99 and levels.max() - levels.min() > 5


def test_clipping_is_avoided(corpus):
    cfg = MixtureConfig(segment_seconds=0.5, level_range=(-3, -1), snr_range=(-5, -5))
    noisy, clean = take(data.training_dataset(*corpus, config=cfg, batch_size=4), 2)
    peaks = np.maximum(np.abs(noisy).max(1), np.abs(clean).max(1))
    np.testing.assert_allclose(peaks, 0.99, atol=1e-6)
    np.testing.assert_allclose(snr_db(clean, noisy), -5, atol=0.1)


def test_deterministic_for_a_seed_and_independent_of_parallelism(corpus):
    a = take(data.training_dataset(*corpus, config=CFG, batch_size=4, seed=7), 3)
    b = take(data.training_dataset(*corpus, config=CFG, batch_size=4, seed=7, num_parallel_calls=1), 3)
    c = take(data.training_dataset(*corpus, config=CFG, batch_size=4, seed=8), 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])


def test_cache_and_streaming_give_identical_examples(corpus):
    cfg = MixtureConfig(segment_seconds=0.5)
    a = take(data.training_dataset(*corpus, config=cfg, batch_size=4, cache=True), 2)
    b = take(data.training_dataset(*corpus, config=cfg, batch_size=4, cache=False), 2)
    c = take(data.training_dataset(*corpus, config=cfg, batch_size=4, cache=True, preload=True), 2)
    for x in (b, c):
        np.testing.assert_array_equal(a[0], x[0])
        np.testing.assert_array_equal(a[1], x[1])
    synth = data.MixtureSynthesizer(*corpus, config=cfg, cache=True)
    expected = sum(d for _, d in data.find_audio(corpus[0])) + sum(d for _, d in data.find_audio(corpus[1]))
    assert abs(synth.preload() - expected) < 1e-3
    with pytest.raises(ValueError, match="cache=True"):
        data.training_dataset(*corpus, config=cfg, cache=False, preload=True)


def test_shards_differ_and_together_equal_the_unsharded_stream(corpus):
    whole = take(data.training_dataset(*corpus, config=CFG, batch_size=4, seed=1), 2)[0]
    shards = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid, num_replicas_in_sync=2)
        per_replica = ctx.get_per_replica_batch_size(4)
        ds = data.training_dataset(*corpus, config=CFG, batch_size=per_replica, seed=1, input_context=ctx)
        shards.append(take(ds, 2)[0])
    assert shards[0].shape == (4, 8000)  # two batches of 2
    assert not np.allclose(shards[0], shards[1])
    np.testing.assert_array_equal(shards[0], whole[0::2])
    np.testing.assert_array_equal(shards[1], whole[1::2])


def dominant_freq(x, sr=SR):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def test_resampled_sine_keeps_its_frequency(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "n").mkdir()
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "s" / "sine.wav", 0.3 * np.sin(2 * np.pi * 1000 * t), 44100)
    sf.write(tmp_path / "n" / "hum.wav", 0.3 * np.sin(2 * np.pi * 3000 * np.arange(SR) / SR), SR)
    cfg = MixtureConfig(segment_seconds=0.5, snr_range=(10, 10))
    noisy, clean = take(
        data.training_dataset(str(tmp_path / "s"), str(tmp_path / "n"), config=cfg, batch_size=2), 1
    )
    for x in clean:
        assert abs(dominant_freq(x) - 1000) < 4
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        assert spec[: int(900 * len(x) / SR)].max() < 1e-2 * spec.max()  # no aliasing/imaging products
    assert abs(dominant_freq(noisy[0]) - 1000) < 4


def test_mono_mixdown(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "n").mkdir()
    t = np.arange(SR) / SR
    left, right = 0.4 * np.sin(2 * np.pi * 500 * t), 0.2 * np.sin(2 * np.pi * 1500 * t)
    sf.write(tmp_path / "s" / "stereo.wav", np.stack([left, right], 1), SR, subtype="FLOAT")
    sf.write(tmp_path / "n" / "noise.wav", 0.1 * np.random.default_rng(0).standard_normal(SR), SR)
    corpus = data.AudioCorpus(data.find_audio(str(tmp_path / "s")), "clean")
    np.testing.assert_allclose(corpus.load(0), (left + right) / 2, atol=1e-6)
    cfg = MixtureConfig(segment_seconds=0.5)
    _, clean = take(
        data.training_dataset(str(tmp_path / "s"), str(tmp_path / "n"), config=cfg, batch_size=1), 1
    )
    spec = np.abs(np.fft.rfft(clean[0]))
    a500, a1500 = spec[250], spec[750]  # 8000-sample segment: 2 Hz per bin
    assert abs(a500 / a1500 - 2.0) < 0.05


def test_bad_files_are_skipped_counted_and_named(tmp_path, rng, caplog):
    speech, noise = make_corpus(tmp_path, rng, n_speech=4)
    bad = write_bad_files(tmp_path / "speech" / "bad")
    bad_noise = write_bad_files(tmp_path / "noise" / "bad")
    with caplog.at_level(logging.WARNING, logger="keras_dccrn.data"):
        ds = data.training_dataset(speech, noise, config=CFG, batch_size=4)
        noisy, clean = take(ds, 6)  # 3 epochs over the 6 listed clean files; noise drawn 24 times
    assert np.all(np.isfinite(noisy)) and np.all(rms_dbfs(clean) > -60)
    skipped = dict(data.skipped_files())
    names = {os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in skipped}
    assert {f"bad/{b}" for b in bad} <= names
    assert data.skipped_count() == len(skipped) >= len(bad) + 2  # + at least two bad noise files seen
    assert sum(os.path.basename(p) in bad_noise for p in skipped) >= 4
    for path, reason in skipped.items():
        assert any(path in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    assert "silent" in skipped[str(tmp_path / "speech" / "bad" / "silent.wav")]
    assert "NaN" in skipped[str(tmp_path / "speech" / "bad" / "nan.wav")]
    assert "no samples" in skipped[str(tmp_path / "speech" / "bad" / "empty.wav")]


def test_no_usable_files_is_a_clear_error(tmp_path, rng):
    _, noise = make_corpus(tmp_path, rng, n_speech=1)
    write_bad_files(tmp_path / "allbad")
    with pytest.raises(ValueError, match="No usable clean audio in .*allbad"):
        data.training_dataset(str(tmp_path / "allbad"), noise, config=CFG)
    with pytest.raises(ValueError, match="nowhere"):
        data.training_dataset(str(tmp_path / "nowhere"), noise, config=CFG)
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(ValueError, match="No usable noise audio in .*emptydir"):
        data.training_dataset(str(tmp_path / "speech"), str(tmp_path / "emptydir"), config=CFG)
    with pytest.raises(ValueError, match="rir"):
        data.training_dataset(str(tmp_path / "speech"), noise, config=MixtureConfig(reverb_prob=0.5))


def test_reverberation_and_target_selection(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng)
    (tmp_path / "rir").mkdir()
    h = make_rir(tmp_path / "rir" / "room.wav")
    rir = str(tmp_path / "rir")
    base = dict(segment_seconds=0.5, snr_range=(30, 30))
    _, dry = take(data.training_dataset(speech, noise, config=MixtureConfig(**base), seed=2, batch_size=4), 1)
    wet = {}
    for target in ("dry", "early"):
        cfg = MixtureConfig(reverb_prob=1.0, reverb_target=target, **base)
        wet[target] = take(data.training_dataset(speech, noise, rir, config=cfg, seed=2, batch_size=4), 1)
    full, early = data.prepare_rir(h, SR, 50.0)
    assert full[0] == 1.0 and len(early) == 800
    for i in range(4):
        d = dry[i].astype(np.float64)
        # Dry target: the same dry segment (up to the level gain).
        np.testing.assert_allclose(wet["dry"][1][i] / np.std(wet["dry"][1][i]), d / np.std(d), atol=1e-4)
        # Reverberant input differs from a dry mix; it is the segment convolved with the aligned RIR.
        reverberant = np.convolve(d, full)[: len(d)]
        assert np.corrcoef(wet["dry"][0][i], d)[0, 1] < 0.99
        assert np.corrcoef(wet["dry"][0][i], reverberant)[0, 1] > 0.99
        # Early target: the segment convolved with the first 50 ms after the direct path.
        expected = np.convolve(d, early)[: len(d)]
        np.testing.assert_allclose(
            wet["early"][1][i] / np.std(wet["early"][1][i]), expected / np.std(expected), atol=1e-4
        )
        assert np.corrcoef(wet["early"][1][i], d)[0, 1] < 0.999


def test_validation_is_fixed_finite_and_differs_from_training(corpus):
    v1 = take(data.validation_dataset(*corpus, config=CFG, num_examples=10, batch_size=4, seed=5), 10)
    v2 = take(
        data.validation_dataset(*corpus, config=CFG, num_examples=10, batch_size=4, seed=5, cache=False), 10
    )
    assert v1[0].shape == (10, 8000)  # 4 + 4 + 2, then the dataset ends
    np.testing.assert_array_equal(v1[0], v2[0])
    t = take(data.training_dataset(*corpus, config=CFG, batch_size=4, seed=5), 1)
    assert not np.allclose(t[0], v1[0][:4])


def test_variable_length_batches_are_padded(corpus):
    cfg = MixtureConfig(segment_seconds=(0.3, 0.6))
    noisy, clean = next(iter(data.validation_dataset(*corpus, config=cfg, num_examples=4, batch_size=4)))
    assert noisy.shape[0] == 4 and 0.3 * SR <= noisy.shape[1] <= 0.6 * SR


def test_quiet_rirs_are_used_not_skipped_as_silent(tmp_path, rng):
    # Real RIRs can sit far below the -70 dBFS silence threshold of speech and noise (the shared set
    # has RIRs at -74 to -79 dBFS RMS); only all-zero RIRs are unusable.
    speech, noise = make_corpus(tmp_path, rng)
    (tmp_path / "rir").mkdir()
    h = make_rir(tmp_path / "rir" / "quiet.wav")
    sf.write(tmp_path / "rir" / "quiet.wav", h * 1e-3, SR, subtype="FLOAT")
    assert 10 * np.log10(np.mean((h * 1e-3) ** 2)) < -70
    data.reset_skipped_files()
    cfg = MixtureConfig(segment_seconds=0.5, snr_range=(30, 30), reverb_prob=1.0)
    noisy, clean = take(
        data.training_dataset(speech, noise, str(tmp_path / "rir"), config=cfg, batch_size=4), 1
    )
    assert not any("quiet.wav" in path for path, _ in data.skipped_files())
    assert np.corrcoef(noisy[0], clean[0])[0, 1] < 0.99  # reverberation was applied


def test_start_example_continues_the_stream(corpus):
    whole = take(data.training_dataset(*corpus, config=CFG, batch_size=2, seed=4), 3)[0]
    later = take(data.training_dataset(*corpus, config=CFG, batch_size=2, seed=4, start_example=2), 2)[0]
    np.testing.assert_array_equal(later, whole[2:])
    start = tf.Variable(0, dtype=tf.int64)
    ds = data.training_dataset(*corpus, config=CFG, batch_size=2, seed=4, start_example=start)
    np.testing.assert_array_equal(take(ds, 1)[0], whole[:2])
    start.assign(4)  # read again when the next iterator is created
    np.testing.assert_array_equal(take(ds, 1)[0], whole[4:])
    with pytest.raises(ValueError, match="start_example"):
        data.training_dataset(*corpus, config=CFG, start_example=-1)


def test_batches_are_bit_identical_to_the_recorded_ones(tmp_path):
    # See test_data_synth.GOLDEN_EXAMPLES: the same flags and seed must keep giving the same batches.
    speech, noise, rir = make_mixed_corpus(tmp_path)
    cfg = MixtureConfig(
        segment_seconds=1.0, reverb_prob=0.5, reverb_target="early", noise_sampling="duration"
    )
    ds = data.training_dataset(speech, noise, rir, config=cfg, batch_size=3, seed=5, start_example=2)
    assert digest(*[a.numpy() for batch in ds.take(3) for a in batch]) == "270e699860a8d142"
    cfg = MixtureConfig(segment_seconds=(0.5, 1.2), reverb_prob=0.3, snr_range=(0, 10), level_range=(-30, -5))
    ds = data.validation_dataset(speech, noise, rir, config=cfg, num_examples=5, batch_size=2, seed=5)
    assert digest(*[a.numpy() for batch in ds for a in batch]) == "594b9016b76484f3"
