"""``tf.data`` pipelines over :class:`~keras_dccrn.data.synth.MixtureSynthesizer`: the infinite training
stream (sharded per input pipeline, resumable), fixed validation sets, and the index stream they share.

``tf.data`` keeps the order (``deterministic=True``), so a seed yields the same batches on every run,
whatever ``num_parallel_calls``. With a ``tf.distribute.InputContext`` the index stream is sharded, so
every worker synthesises different examples and all workers together produce exactly the unsharded
stream.
"""

import tensorflow as tf

from keras_dccrn.data.config import MixtureConfig
from keras_dccrn.data.synth import TRAIN_STREAM, VALID_STREAM, MixtureSynthesizer


def synthesized(synth, indices, num_parallel_calls=tf.data.AUTOTUNE):
    """Maps a dataset of int64 example indices to ``(noisy, clean)`` examples of ``synth``.

    Args:
        synth: a :class:`~keras_dccrn.data.synth.MixtureSynthesizer`.
        indices: ``tf.data.Dataset`` of scalar int64 example numbers.
        num_parallel_calls: parallelism of the synthesis ``map`` (the order is kept).

    Returns:
        ``tf.data.Dataset`` of float32 ``([samples], [samples])``.
    """
    length = synth.config.fixed_length

    def pair(index):
        noisy, target, _ = synth.example(int(index))
        return noisy, target

    def example(index):
        noisy, clean = tf.numpy_function(pair, [index], [tf.float32, tf.float32], stateful=False)
        noisy.set_shape([length])  # [samples]
        clean.set_shape([length])  # [samples]
        return noisy, clean

    return indices.map(example, num_parallel_calls=num_parallel_calls, deterministic=True)


def _batch(ds, batch_size, fixed_length, drop_remainder):
    if fixed_length is None:
        return ds.padded_batch(batch_size, padded_shapes=([None], [None]), drop_remainder=drop_remainder)
    return ds.batch(batch_size, drop_remainder=drop_remainder)


def check_batch(batch_size):
    """Raises ``ValueError`` naming ``batch_size`` unless it is a positive integer."""
    if int(batch_size) != batch_size or batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer; received {batch_size!r}.")


def training_dataset(
    speech,
    noise,
    rir=None,
    config=None,
    batch_size=8,
    seed=0,
    cache=True,
    input_context=None,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
    preload=False,
    start_example=0,
    exclude=(),
):
    """Infinite dataset of on-the-fly ``(noisy, clean)`` training batches.

    Args:
        speech: clean speech (directory, glob, manifest or list; see
            :func:`keras_dccrn.data.find_audio`).
        noise: noise, same forms.
        rir: optional room impulse responses, same forms.
        config: :class:`MixtureConfig` (default: 4 s, -5..20 dB SNR,
            -35..-15 dBFS, no reverberation).
        batch_size: size of the batches this dataset yields. With
            ``tf.distribute`` (``distribute_datasets_from_function``) that is
            the per-replica size: pass
            ``input_context.get_per_replica_batch_size(global_batch)``.
        seed: integer seed; the same seed gives the same batches.
        cache: keep decoded files in RAM (decode each file once).
        input_context: optional ``tf.distribute.InputContext``; the example
            stream is sharded so each input pipeline sees different data.
        num_parallel_calls: parallelism of the synthesis ``map``.
        prefetch: prefetch buffer (batches).
        preload: with ``cache``, decode every file now (2 threads) rather
            than on first use, for full speed from the first step.
        start_example: index of the first example of the stream (a resumed
            run passes ``steps_done * batch_size`` so that it continues the
            stream instead of seeing its first examples again): an integer,
            or a scalar int64 ``tf.Variable`` read each time an iterator over
            the dataset is created (so one dataset can serve several ``fit``
            calls that each continue where the previous one stopped).
        exclude: ``fnmatch`` patterns of files to leave out (see :func:`keras_dccrn.data.find_audio`).

    Returns:
        ``tf.data.Dataset`` of float32 ``([batch, samples], [batch, samples])``
        (variable-length configs are zero-padded to the longest in a batch).

    Raises:
        ValueError: bad arguments, or an input has no usable file.
    """
    check_batch(batch_size)
    config = config or MixtureConfig()
    indices, options = example_indices(start_example, input_context)
    synth = MixtureSynthesizer(
        speech, noise, rir, config, seed=seed, cache=cache, stream=TRAIN_STREAM, exclude=exclude
    )
    if preload:
        synth.preload()
    ds = synthesized(synth, indices, num_parallel_calls)
    ds = _batch(ds, int(batch_size), config.fixed_length, drop_remainder=True)
    ds = ds.with_options(options)
    return ds.prefetch(prefetch)


def example_indices(start_example=0, input_context=None):
    """The infinite stream of training example numbers and the ``tf.data.Options`` it needs.

    Args:
        start_example: first example number, an integer or a scalar int64 ``tf.Variable`` read when
            an iterator is created (see :func:`training_dataset`).
        input_context: optional ``tf.distribute.InputContext``; the stream is sharded by number.

    Returns:
        ``(indices, options)``: an int64 ``tf.data.Dataset`` and deterministic options.
    """
    if isinstance(start_example, tf.Variable):
        if start_example.dtype != tf.int64 or start_example.shape.rank != 0:
            raise ValueError(f"`start_example` must be a scalar int64 variable; received {start_example!r}.")
        # flat_map's function runs when an iterator reaches its single input: the variable is read then.
        indices = tf.data.Dataset.range(1).flat_map(
            lambda _: tf.data.Dataset.counter(start=start_example.read_value(), step=1, dtype=tf.int64)
        )
    elif int(start_example) != start_example or start_example < 0:
        raise ValueError(f"`start_example` must be a non-negative integer; received {start_example!r}.")
    else:
        indices = tf.data.Dataset.counter(start=int(start_example), step=1, dtype=tf.int64)
    options = tf.data.Options()
    options.deterministic = True
    if input_context is not None:
        indices = indices.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        # Already sharded by example index; stop tf.distribute from sharding again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return indices, options


def validation_dataset(
    speech,
    noise,
    rir=None,
    config=None,
    num_examples=200,
    batch_size=8,
    seed=0,
    cache=True,
    num_parallel_calls=tf.data.AUTOTUNE,
    exclude=(),
):
    """Finite, fixed ``(noisy, clean)`` dataset: same examples on every run for a seed.

    Args:
        speech, noise, rir, config, cache, num_parallel_calls, exclude: as in
            :func:`training_dataset`.
        num_examples: number of examples (the last batch may be smaller).
        batch_size: batch size.
        seed: integer seed (a random stream separate from training's).

    Returns:
        ``tf.data.Dataset`` of float32 ``([batch, samples], [batch, samples])``.
    """
    check_batch(batch_size)
    if int(num_examples) != num_examples or num_examples <= 0:
        raise ValueError(f"`num_examples` must be a positive integer; received {num_examples!r}.")
    config = config or MixtureConfig()
    synth = MixtureSynthesizer(
        speech, noise, rir, config, seed=seed, cache=cache, stream=VALID_STREAM, exclude=exclude
    )
    indices = tf.data.Dataset.range(int(num_examples))
    ds = _batch(synthesized(synth, indices, num_parallel_calls), int(batch_size), config.fixed_length, False)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
