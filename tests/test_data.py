import csv
import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from conftest import shared_data_dir

from keras_dccrn import data
from keras_dccrn.data import MixtureConfig

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
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    h = 0.3 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.05 * sr))
    h[:delay] = 0.0
    h[delay] = -2.0  # direct path (largest, negative polarity)
    h = 0.2 * h / np.max(np.abs(h))
    sf.write(path, h, sr, subtype="FLOAT")
    return h


def take(ds, n):
    out = [(a.numpy(), b.numpy()) for a, b in ds.take(n)]
    return np.concatenate([a for a, _ in out]), np.concatenate([b for _, b in out])


def snr_db(clean, noisy):
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.sum(clean.astype(np.float64) ** 2, -1) / np.sum(noise**2, -1))


def rms_dbfs(x):
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2, -1))


CFG = MixtureConfig(segment_seconds=0.5)


@pytest.fixture(autouse=True)
def _reset():
    data.reset_skipped_files()
    yield
    data.reset_skipped_files()


@pytest.fixture
def corpus(tmp_path, rng):
    return make_corpus(tmp_path, rng)


def test_config_validation():
    with pytest.raises(ValueError, match="-3"):
        MixtureConfig(segment_seconds=-3)
    with pytest.raises(ValueError, match="wet"):
        MixtureConfig(reverb_target="wet")
    with pytest.raises(ValueError, match="1.5"):
        MixtureConfig(reverb_prob=1.5)
    with pytest.raises(ValueError, match=r"\(20, -5\)"):
        MixtureConfig(snr_range=(20, -5))
    assert MixtureConfig().fixed_length == 64000
    assert MixtureConfig(segment_seconds=(4, 10)).fixed_length is None
    cfg = MixtureConfig()
    cfg.reverb_target = "late"  # changed after construction: caught when a dataset is built
    with pytest.raises(ValueError, match="late"):
        data.MixtureSynthesizer("unused", "unused", config=cfg)


def test_mix_matches_numpy_reference(rng):
    clean = speechlike(0.5, rng)
    noise = rng.standard_normal(8000).astype(np.float32)
    noisy, target, info = data.mix(clean, noise, snr_db=3.0, level_db=-25.0)
    c, n = clean.astype(np.float64), noise.astype(np.float64)
    n = n * np.sqrt(np.sum(c**2) / np.sum(n**2) / 10**0.3)
    g = 10 ** (-25 / 20) / np.sqrt(np.mean((c + n) ** 2))
    np.testing.assert_allclose(noisy, (c + n) * g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(target, c * g, rtol=1e-5, atol=1e-7)
    assert info["clip_scale"] == 1.0 and abs(info["level_dbfs"] + 25) < 1e-6
    # Loud request: both scaled by the same factor, peak exactly max_peak, SNR unchanged.
    noisy, target, info = data.mix(clean, noise, snr_db=3.0, level_db=-1.0)
    assert info["clip_scale"] < 1
    assert abs(max(np.abs(noisy).max(), np.abs(target).max()) - 0.99) < 1e-6
    assert abs(snr_db(target, noisy) - 3.0) < 1e-3
    with pytest.raises(ValueError, match="zeros"):
        data.mix(clean, np.zeros_like(clean), 0.0, -20.0)


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


def test_streaming_partial_read_matches_full_resampling(tmp_path, rng):
    sr = 44100
    x = rng.standard_normal(3 * sr).astype(np.float32) * 0.1
    path = str(tmp_path / "long.flac")
    sf.write(path, x, sr, subtype="PCM_24")
    entries = data.find_audio(path)
    full = data.AudioCorpus(entries, "clean", cache=True).load(0)
    stream = data.AudioCorpus(entries, "clean", cache=False)
    assert stream.num_samples(0) == len(full) == 48000
    for start in (0, 5, 16000, 40000):
        np.testing.assert_allclose(stream.read(0, start, 8000), full[start : start + 8000], atol=2e-5)


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


def write_bad_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "garbage.wav").write_bytes(b"this is not audio at all")
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), SR)
    sf.write(folder / "silent.wav", np.zeros(SR, np.float32), SR)
    nan = np.full(SR, 0.1, np.float32)
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, SR, subtype="FLOAT")
    return ["garbage.wav", "empty.wav", "silent.wav", "nan.wav"]


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


def test_manifests_csv_and_jsonl(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng)
    found = data.find_audio(speech)
    assert len(found) == 6 and all(d > 0.5 for _, d in found)
    # CSV with relative paths, extra columns and a filter.
    with open(tmp_path / "all.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "path", "duration"])
        for p, d in found:
            w.writerow(["speech", os.path.relpath(p, tmp_path), f"{d:.4f}"])
        for p, d in data.find_audio(noise):
            w.writerow(["noise", os.path.relpath(p, tmp_path), d])
    csv_speech = data.find_audio(str(tmp_path / "all.csv") + "?kind=speech")
    assert [p for p, _ in csv_speech] == [p for p, _ in found]
    np.testing.assert_allclose([d for _, d in csv_speech], [d for _, d in found], atol=1e-4)
    # JSON lines in a sub-folder, relative to it; one listed file is missing.
    sub = tmp_path / "lists"
    sub.mkdir()
    with open(sub / "noise.jsonl", "w") as f:
        for p, d in data.find_audio(noise):
            f.write(json.dumps({"path": os.path.relpath(p, sub), "duration": d}) + "\n")
        f.write(json.dumps({"path": "../noise/missing.wav", "duration": 2.0}) + "\n")
    jsonl = data.find_audio(str(sub / "noise.jsonl"))
    assert len(jsonl) == 3 and all(os.path.isfile(p) for p, _ in jsonl)
    assert any("missing.wav" in p and "no such file" in r for p, r in data.skipped_files())
    a = take(
        data.training_dataset(str(tmp_path / "all.csv?kind=speech"), str(sub / "noise.jsonl"), config=CFG), 1
    )
    b = take(data.training_dataset(speech, noise, config=CFG), 1)
    np.testing.assert_array_equal(a[0], b[0])
    with open(tmp_path / "bad.jsonl", "w") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match="bad.jsonl: line 1"):
        data.find_audio(str(tmp_path / "bad.jsonl"))
    # The manifest writer round-trips.
    data.write_manifest(str(sub / "copy.csv"), found)
    assert [p for p, _ in data.find_audio(str(sub / "copy.csv"))] == [p for p, _ in found]


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


def test_write_pairs_fixed_variable_length(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng)
    cfg = MixtureConfig(segment_seconds=(0.4, 1.0))
    out = tmp_path / "dev"
    rows = data.write_pairs(str(out), speech, noise, config=cfg, num_examples=6, seed=4, subtype="FLOAT")
    names = sorted(os.listdir(out / "noisy"))
    assert names == sorted(os.listdir(out / "clean")) == [f"{i:04d}.wav" for i in range(6)]
    with open(out / "mixtures.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["name"] for r in table] == names and set(data.PAIRS_CSV_FIELDS) == set(table[0])
    lengths = set()
    for row in table:
        noisy, sr = sf.read(out / "noisy" / row["name"], dtype="float32")
        clean, _ = sf.read(out / "clean" / row["name"], dtype="float32")
        assert sr == SR and len(noisy) == len(clean) and 0.4 * SR <= len(noisy) <= SR
        assert abs(len(noisy) / SR - float(row["seconds"])) < 1e-4
        lengths.add(len(noisy))
        assert abs(snr_db(clean, noisy) - float(row["snr_db"])) < 0.1
        assert abs(rms_dbfs(noisy) - float(row["level_dbfs"])) < 0.01
        assert os.path.isfile(row["noise_file"]) and row["rir_file"] == ""
    assert len(lengths) > 2
    # Same examples as validation_dataset (batch 1: no padding) and on a second run.
    val = list(data.validation_dataset(speech, noise, config=cfg, num_examples=6, batch_size=1, seed=4))
    for (n, _), row in zip(val, table, strict=True):
        np.testing.assert_array_equal(n.numpy()[0], sf.read(out / "noisy" / row["name"], dtype="float32")[0])
    again = data.write_pairs(str(tmp_path / "dev2"), speech, noise, config=cfg, num_examples=6, seed=4)
    assert [r["snr_db"] for r in again] == [r["snr_db"] for r in rows]
    assert not any(n.startswith(".tmp") for n in os.listdir(out / "noisy"))


def test_variable_length_batches_are_padded(corpus):
    cfg = MixtureConfig(segment_seconds=(0.3, 0.6))
    noisy, clean = next(iter(data.validation_dataset(*corpus, config=cfg, num_examples=4, batch_size=4)))
    assert noisy.shape[0] == 4 and 0.3 * SR <= noisy.shape[1] <= 0.6 * SR


@pytest.mark.skipif(shared_data_dir() is None, reason="/work/shared/data not present")
def test_shared_data_manifest_filter():
    root = shared_data_dir()
    with open(os.path.join(root, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    rir = data.find_audio(os.path.join(root, "manifest.csv?kind=rir"))
    assert len(rir) == sum(1 for r in rows if r["kind"] == "rir") > 0
    # The rir/ folder is scanned recursively (v2 keeps its simulated RIRs in rir/simulated/).
    assert len(data.find_audio(os.path.join(root, "rir"))) == len(rir)
    # Training audio is Ogg Opus in v2: the folder scan finds every manifest row of the split.
    train_speech = data.find_audio(os.path.join(root, "speech", "train"))
    assert len(train_speech) == sum(1 for r in rows if r["kind"] == "speech" and r["split"] == "train")
    # The non-commercial UrbanSound8K noise is one pattern away.
    noise = data.find_audio(os.path.join(root, "noise", "train"), exclude="urbansound_*")
    expected = [
        r for r in rows if r["kind"] == "noise" and r["split"] == "train" and r["source"] != "UrbanSound8K"
    ]
    assert len(noise) == len(expected)
    cfg = MixtureConfig(segment_seconds=1.0, reverb_prob=1.0, reverb_target="early")
    ds = data.training_dataset(
        os.path.join(root, "speech", "valid"),
        os.path.join(root, "noise", "valid"),
        rir=rir,
        config=cfg,
        batch_size=2,
        cache=False,
    )
    noisy, clean = take(ds, 1)
    assert noisy.shape == (2, SR) and np.all(np.isfinite(noisy)) and np.abs(noisy).max() <= 0.99 + 1e-6


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


def test_exclude_patterns_drop_files_from_folders_manifests_and_lists(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng)
    everything = data.find_audio(speech)
    kept = data.find_audio(speech, exclude=["s1.wav", "*/spk0/s2.*"])
    assert len(kept) == len(everything) - 2
    assert not any(p.endswith(("s1.wav", "s2.wav")) for p, _ in kept)
    # A pattern is matched against the file name and against the whole path (folders need a leading */).
    assert data.find_audio(everything, exclude="spk1/*") == everything
    without_spk1 = data.find_audio(everything, exclude="*/spk1/*")
    assert without_spk1 and all("/spk1/" not in p for p, _ in without_spk1)
    synth = data.MixtureSynthesizer(speech, noise, config=CFG, exclude=("n0.flac", "n1.flac"))
    assert [os.path.basename(p) for p in synth.noise.paths] == ["n2.flac"]


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
