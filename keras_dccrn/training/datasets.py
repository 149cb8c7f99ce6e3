"""The data of a training run: the training stream, the validation set and the fixed audio examples."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_dccrn import data
from keras_dccrn.training.distribute import worker_layout


@dataclasses.dataclass
class DataSources:
    """Where a run's audio comes from: folders, globs or manifests (lists; see :func:`keras_dccrn.data.find_audio`).

    Attributes:
        train_speech, train_noise, train_rir: training clean speech, noise and optional room
            impulse responses.
        valid_speech, valid_noise, valid_rir: the same for validation (held-out speakers and noises).
        exclude: ``fnmatch`` patterns of files to leave out of every source.
    """

    train_speech: list
    train_noise: list
    valid_speech: list
    valid_noise: list
    train_rir: list = None
    valid_rir: list = None
    exclude: tuple = ()


def make_datasets(
    sources,
    config,
    strategy,
    batch_size=8,
    seed=0,
    cache=True,
    valid_examples=64,
    audio_examples=0,
    start_example=0,
    knowledge_dir=None,
):
    """``(training dataset, validation dataset, fixed audio examples or None)`` of a run.

    Args:
        sources: :class:`DataSources`.
        config: the training :class:`keras_dccrn.data.MixtureConfig`; validation uses the same
            settings, with reverberation only if ``sources.valid_rir`` is given.
        strategy: the distribution strategy: each worker builds its own share of the example
            stream (Keras then distributes the global batch over the replicas without sharding again).
        batch_size: global batch size.
        seed: data seed (validation uses ``seed + 1``).
        cache: keep decoded audio in memory.
        valid_examples: number of fixed validation mixtures.
        audio_examples: number of validation examples returned as ``(noisy, clean)`` arrays for
            audio logging (0: None).
        start_example: first example of the training stream: an integer or a scalar int64
            ``tf.Variable`` read when an iterator starts (a resumed run continues the stream).
        knowledge_dir: a teacher-knowledge cache (:mod:`keras_dccrn.distillation.knowledge`); the
            training batches then carry the teacher's cached output and attention energies (single
            worker only).

    Raises:
        ValueError: no usable audio, or a cache written for other data settings.
    """
    num_workers, worker_index = worker_layout(strategy)
    context = tf.distribute.InputContext(
        num_input_pipelines=num_workers,
        input_pipeline_id=worker_index,
        num_replicas_in_sync=strategy.num_replicas_in_sync,
    )
    train_sources = (sources.train_speech, sources.train_noise, sources.train_rir)
    settings = dict(
        config=config,
        batch_size=batch_size,
        seed=seed,
        cache=cache,
        start_example=start_example,
        exclude=sources.exclude or (),
    )
    if knowledge_dir:
        from keras_dccrn.distillation.knowledge import knowledge_dataset

        train = knowledge_dataset(knowledge_dir, *train_sources, **settings)
    else:
        train = data.training_dataset(
            *train_sources, input_context=context if num_workers > 1 else None, **settings
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    train = train.with_options(options)
    valid_config = dataclasses.replace(config, reverb_prob=config.reverb_prob if sources.valid_rir else 0.0)
    valid = data.validation_dataset(
        sources.valid_speech,
        sources.valid_noise,
        sources.valid_rir,
        config=valid_config,
        num_examples=valid_examples,
        batch_size=batch_size,
        seed=seed + 1,
        exclude=sources.exclude or (),
    )
    examples = None
    if audio_examples:
        noisy, clean = [], []
        for x, y in valid.unbatch().take(audio_examples):
            noisy.append(x.numpy())
            clean.append(y.numpy())
        examples = (np.stack(noisy), np.stack(clean))
    return train, valid, examples
