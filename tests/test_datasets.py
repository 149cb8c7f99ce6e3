"""Tests of keras_dccrn.training.datasets (the data of a training run)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn.data import MixtureConfig
from keras_dccrn.training.datasets import DataSources, make_datasets


def _sources(corpus, **kwargs):
    return DataSources(
        train_speech=[str(corpus / "speech" / "train")],
        train_noise=[str(corpus / "noise" / "train")],
        valid_speech=[str(corpus / "speech" / "valid")],
        valid_noise=[str(corpus / "noise" / "valid")],
        **kwargs,
    )


def test_training_stream_continues_at_the_start_example_and_examples_are_fixed(speech_corpus):
    start = tf.Variable(0, dtype=tf.int64)
    strategy = tf.distribute.get_strategy()
    train, valid, examples = make_datasets(
        _sources(speech_corpus), MixtureConfig(segment_seconds=0.5), strategy,
        batch_size=2, valid_examples=3, audio_examples=2, start_example=start,
    )  # fmt: skip
    batches = [x.numpy() for x, _ in train.take(2)]
    assert batches[0].shape == (2, 8000)
    start.assign(2)  # a resumed run: the next unseen example is the first of the second batch
    np.testing.assert_array_equal(next(iter(train))[0].numpy(), batches[1])
    assert sum(int(x.shape[0]) for x, _ in valid) == 3
    noisy, clean = examples
    assert noisy.shape == clean.shape == (2, 8000)
    np.testing.assert_array_equal(noisy, next(iter(valid.unbatch().batch(2)))[0].numpy())


def test_no_usable_audio_is_a_value_error(speech_corpus, tmp_path):
    sources = _sources(speech_corpus, exclude=("*.wav",))
    with pytest.raises(ValueError):
        make_datasets(sources, MixtureConfig(segment_seconds=0.5), tf.distribute.get_strategy(), batch_size=2)
