"""Tests of the teacher-knowledge cache (keras_dccrn.distillation.knowledge)."""

import json
import os

import keras
import numpy as np
import pytest
import soundfile as sf
from test_metrics import speech_like

from keras_dccrn import build_model
from keras_dccrn.data import MixtureConfig, MixtureSynthesizer
from keras_dccrn.distillation import Distiller, knowledge


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("kcorpus")
    rng = np.random.default_rng(0)
    for kind in ("speech", "noise"):
        os.makedirs(root / kind)
    for i in range(3):
        sf.write(root / "speech" / f"s{i}.wav", 0.3 * speech_like(1.2, seed=i), 16000)
        sf.write(root / "noise" / f"n{i}.wav", rng.normal(0, 0.05, 20000), 16000)
    return root


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(3)
    teacher = build_model("uformer_tiny")
    student = build_model("tiny")
    return teacher, student


CONFIG = MixtureConfig(segment_seconds=0.5)


def _write(tmp_path, corpus, teacher, n=6, seed=5, **kwargs):
    return knowledge.write_knowledge(
        tmp_path / "cache",
        teacher,
        str(corpus / "speech"),
        str(corpus / "noise"),
        config=CONFIG,
        num_examples=n,
        seed=seed,
        batch_size=4,
        **kwargs,
    )


@pytest.mark.slow
def test_cached_loss_equals_live_teacher_loss(tmp_path, corpus, models):
    teacher, student = models
    meta = _write(tmp_path, corpus, teacher)
    assert meta["done"] == 6 and meta["teacher_frame"] == [teacher.frame_length, teacher.frame_step]
    assert len(meta["time_lengths"]) == len(meta["channel_lengths"]) == 12
    ds = knowledge.knowledge_dataset(
        tmp_path / "cache", str(corpus / "speech"), str(corpus / "noise"), config=CONFIG, batch_size=3, seed=5
    )
    noisy, targets = next(iter(ds))
    # The pool's mixtures are the training stream's: the cached clean target is example pool_index(j).
    synth = MixtureSynthesizer(str(corpus / "speech"), str(corpus / "noise"), config=CONFIG, seed=5)
    first = knowledge.pool_index(0, 6, 5)
    np.testing.assert_array_equal(noisy[0].numpy(), synth.example(first)[0])
    live = Distiller(teacher, student)
    cached = Distiller(None, student, teacher_frame=meta["teacher_frame"])
    clean = targets["clean"]
    s_wave, s_feats = student(noisy, training=False, return_features=True)
    t_wave, t_feats = live.teacher_outputs(noisy)
    want = live.loss_terms(clean, s_wave, s_feats, t_wave, t_feats)
    got = cached.cached_loss_terms(clean, s_wave, s_feats, targets)
    for name in want:
        # float16 teacher waveforms: SI-SNR terms agree to ~1e-3 dB; the energies are exact float32.
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=1e-4, atol=2e-3)
    # A Distiller without a teacher trains from the cache and validates on plain pairs.
    cached.compile(optimizer=keras.optimizers.Adam(1e-3))
    logs = cached.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, validation_data=(noisy, clean)).history
    assert np.isfinite(logs["loss"][0]) and logs["val_si_snr_teacher"][0] == 0.0
    assert logs["val_loss"][0] == pytest.approx(-logs["val_si_snr_clean"][0], rel=1e-5)


def test_passes_permute_the_pool():
    first = [knowledge.pool_index(j, 10, 1) for j in range(10)]
    second = [knowledge.pool_index(j, 10, 1) for j in range(10, 20)]
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second


@pytest.mark.slow
def test_resume_and_mismatch(tmp_path, corpus, models):
    teacher, _ = models
    meta = _write(tmp_path, corpus, teacher, n=4)
    wave = np.load(tmp_path / "cache" / "wave.npy").copy()
    # Pretend the writer was killed after the first batch: the rerun redoes only the rest, identically.
    meta["done"] = 2
    (tmp_path / "cache" / knowledge.META_FILE).write_text(json.dumps(meta))
    calls = []
    _write(tmp_path, corpus, teacher, n=4, progress=lambda done, total: calls.append(done))
    assert calls == [4]
    np.testing.assert_allclose(np.load(tmp_path / "cache" / "wave.npy"), wave, atol=1e-3)
    with pytest.raises(knowledge.KnowledgeError, match="other data settings .*seed"):
        _write(tmp_path, corpus, teacher, n=4, seed=6)
    with pytest.raises(knowledge.KnowledgeError, match="pool of 4 examples, not 5"):
        _write(tmp_path, corpus, teacher, n=5)
    with pytest.raises(knowledge.KnowledgeError, match="other data settings .*config"):
        knowledge.knowledge_dataset(
            tmp_path / "cache",
            str(corpus / "speech"),
            str(corpus / "noise"),
            config=MixtureConfig(segment_seconds=0.25),
            seed=5,
        )
    with pytest.raises(knowledge.KnowledgeError, match="not a teacher-knowledge cache"):
        knowledge.read_meta(tmp_path)
    with pytest.raises(ValueError, match="fixed-length"):
        knowledge.write_knowledge(
            tmp_path / "x",
            teacher,
            str(corpus / "speech"),
            str(corpus / "noise"),
            config=MixtureConfig(segment_seconds=(0.25, 0.5)),
        )


def test_unfinished_cache_is_refused(tmp_path, corpus, models):
    teacher, _ = models
    meta = _write(tmp_path, corpus, teacher, n=4)
    meta["done"] = 3
    (tmp_path / "cache" / knowledge.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(knowledge.KnowledgeError, match="unfinished \\(3 of 4"):
        knowledge.knowledge_dataset(
            tmp_path / "cache", str(corpus / "speech"), str(corpus / "noise"), config=CONFIG, seed=5
        )
