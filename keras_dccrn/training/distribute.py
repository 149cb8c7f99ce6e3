"""The runtime of a training process: threads, precision, seed, ``tf.distribute`` strategy and workers.

Multi-worker training (``tf.distribute.MultiWorkerMirroredStrategy``) needs two adaptations of
Keras 3's ``fit``, both in :func:`prepare_model`, the one place that touches Keras internals:

* keras-team/keras#20585: before the first step, ``fit`` builds the model "symbolically" on a batch
  it reduces eagerly with ``strategy.reduce`` outside ``tf.function``, which this strategy cannot
  do. A model created under the strategy's scope records the strategy (``model._distribute_strategy``)
  and always takes that path; there is no public switch, so the recorded strategy is cleared (the
  model is already built, and ``fit`` then takes the strategy from the enclosing scope).
* Keras reduces each step's logs over the workers with ``strategy.reduce("MEAN", value, axis=0)``,
  which fails on scalars under this strategy; the step functions are wrapped so that every log
  value has a leading axis of 1 (the mean over workers is then the usual one).
"""

import os

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def setup(threads=0, mixed_precision="float32", seed=0, strategy="default"):
    """Configures this process for training and returns the distribution strategy.

    Args:
        threads: intra-op threads (0: TensorFlow's default).
        mixed_precision: Keras dtype policy, one of :data:`PRECISIONS`.
        seed: global random seed (model initialisation).
        strategy: one of :data:`STRATEGIES`.

    Raises:
        ValueError: an unknown policy or strategy.
    """
    import keras
    import tensorflow as tf

    if mixed_precision not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}; received {mixed_precision!r}.")
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}; received {strategy!r}.")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    keras.mixed_precision.set_global_policy(mixed_precision)
    keras.utils.set_random_seed(seed)
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this worker writes the run directory (multi-worker: the chief, else worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0)


def worker_layout(strategy):
    """``(number of workers, this worker's index)`` from the cluster resolver (``(1, 0)`` locally)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return 1, 0
    tasks = [(kind, i) for kind in ("chief", "worker") for i in range(len(spec.get(kind, [])))]
    return len(tasks), tasks.index((resolver.task_type, resolver.task_id))


def worker_dir(run_dir, strategy):
    """Where this worker writes: the run dir for the chief, ``run_dir/workers/<task>_<id>`` for the others."""
    if is_chief(strategy):
        return run_dir
    resolver = strategy.cluster_resolver
    return os.path.join(run_dir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def prepare_model(model, strategy):
    """Adapts a built, compiled model to ``fit`` under ``strategy`` (see the module doc); a no-op but for
    ``MultiWorkerMirroredStrategy``."""
    import keras
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    model._distribute_strategy = None

    def with_batch_axis(step):
        def wrapped(data):
            logs = step(data)
            return {k: keras.ops.reshape(v, (1,)) for k, v in logs.items()}

        return wrapped

    model.train_step = with_batch_axis(model.train_step)
    model.test_step = with_batch_axis(model.test_step)
