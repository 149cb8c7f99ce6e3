"""Teacher-knowledge cache: AT-KL distillation at the price of supervised training.

AT-KL needs three things of the teacher per training mixture: its output waveform (the balanced
SI-SNR target) and, for every feature pair, the time and channel attention energies of its feature
map (:meth:`keras_dccrn.losses.ATKLLoss.attention_energies`). The maps themselves are large; the
energies are a few hundred numbers. :func:`write_knowledge` runs the frozen teacher once over a pool
of training mixtures and stores exactly that; :func:`knowledge_dataset` serves the pool to
:class:`keras_dccrn.distillation.Distiller` (which then needs no teacher model), so a distillation
step costs a student step plus reading a few kilobytes.

The mixtures are not stored: example ``i`` of the pool is example ``i`` of the seeded training
stream of :class:`keras_dccrn.data.MixtureSynthesizer` (a pure function of the data, the mixture
config, the seed and ``i``), synthesised again when it is used. The cache therefore records a
fingerprint of those settings, and reading it with other settings is an error.

Layout of a cache folder::

    knowledge.json          fingerprint, shapes, teacher file and how many examples are done
    wave.npy                [N, samples] float16 teacher output waveforms
    time_<k>.npy            [N, frames_k] float32 time energies of feature map k
    channel_<k>.npy         [N, channels_k] float32 channel energies of feature map k

Writing is resumable: ``knowledge.json`` is replaced (atomically) after each batch is flushed, and
rerunning :func:`write_knowledge` with the same settings continues after the last finished batch.

The pool is visited in passes; each pass is a fresh seeded permutation of the pool, so a student
trained for several passes sees the examples in a different order (and in different batches) each
time.
"""

import dataclasses
import functools
import json
import os

import numpy as np
import tensorflow as tf

from keras_dccrn.atomic import write_text
from keras_dccrn.data import MixtureConfig, MixtureSynthesizer, check_batch, example_indices
from keras_dccrn.losses import ATKLLoss

META_FILE = "knowledge.json"
FORMAT_VERSION = 1
_POOL_STREAM = 0  # the training stream of MixtureSynthesizer
_PASS_SEED = 7


class KnowledgeError(ValueError):
    """A cache that cannot serve the request (missing, incomplete, or written for other settings)."""


def _spec_list(spec):
    if spec is None:
        return []
    if isinstance(spec, (str, os.PathLike)):
        return [os.path.abspath(os.fspath(spec))]
    return [os.path.abspath(os.fspath(s)) for s in spec]


def fingerprint(speech, noise, rir, config, seed, exclude=()):
    """The settings that determine the pool's mixtures, as a JSON-able dict."""
    return {
        "speech": _spec_list(speech),
        "noise": _spec_list(noise),
        "rir": _spec_list(rir),
        "config": dataclasses.asdict(config),
        "seed": int(seed),
        "exclude": sorted(exclude or ()),
    }


def _normalise(value):
    return json.loads(json.dumps(value))


def read_meta(cache_dir):
    """The cache's ``knowledge.json`` as a dict; :class:`KnowledgeError` if there is none."""
    path = os.path.join(cache_dir, META_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise KnowledgeError(f"{cache_dir}: not a teacher-knowledge cache (no {META_FILE})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise KnowledgeError(f"{path}: unreadable ({exc})") from None
    if meta.get("format") != FORMAT_VERSION:
        raise KnowledgeError(f"{path}: format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    return meta


def _check_fingerprint(cache_dir, meta, expected):
    stored = meta["fingerprint"]
    expected = _normalise(expected)
    for key in expected:
        if stored.get(key) != expected[key]:
            raise KnowledgeError(
                f"{cache_dir}: written for other data settings ({key}: cache {stored.get(key)!r}, "
                f"now {expected[key]!r})"
            )


def _open_arrays(cache_dir, meta, mode):
    n = meta["num_examples"]

    def open_one(name, shape, dtype):
        path = os.path.join(cache_dir, f"{name}.npy")
        if mode == "w+" and not os.path.exists(path):
            return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n, *shape))
        return np.load(path, mmap_mode="r+" if mode == "w+" else "r")

    wave = open_one("wave", [meta["samples"]], np.float16)
    times = [open_one(f"time_{k}", [t], np.float32) for k, t in enumerate(meta["time_lengths"])]
    channels = [open_one(f"channel_{k}", [c], np.float32) for k, c in enumerate(meta["channel_lengths"])]
    return wave, times, channels


def write_knowledge(
    cache_dir,
    teacher,
    speech,
    noise,
    rir=None,
    config=None,
    num_examples=1000,
    seed=0,
    batch_size=8,
    exclude=(),
    complex_channels=True,
    teacher_file=None,
    progress=None,
):
    """Runs ``teacher`` over examples ``0 .. num_examples - 1`` of the training stream and caches them.

    Args:
        cache_dir: output folder (created; an existing cache with the same settings is continued).
        teacher: a model with ``model(wave, training=False, return_features=True) -> (wave, maps)``
            and ``frame_length`` / ``frame_step`` attributes.
        speech, noise, rir, config, seed, exclude: the training data settings, as for
            :func:`keras_dccrn.data.training_dataset`; the distillation run must use the same ones.
        num_examples: pool size.
        batch_size: teacher batch size.
        complex_channels: channel energies per complex channel (the package's convention).
        teacher_file: where the teacher came from (recorded in the metadata).
        progress: optional callable ``progress(done, total)`` called after each batch.

    Returns:
        The metadata dict (as written to ``knowledge.json``).

    Raises:
        KnowledgeError: ``cache_dir`` holds a cache for other settings or another pool size.
        ValueError: bad arguments (e.g. variable-length segments), or unusable data.
    """
    config = config or MixtureConfig()
    if config.fixed_length is None:
        raise ValueError(
            f"A knowledge cache needs fixed-length segments; received segment_seconds={config.segment_seconds!r}."
        )
    if int(num_examples) != num_examples or num_examples <= 0:
        raise ValueError(f"`num_examples` must be a positive integer; received {num_examples!r}.")
    check_batch(batch_size)
    frame = [getattr(teacher, "frame_length", None), getattr(teacher, "frame_step", None)]
    if not all(isinstance(v, int) for v in frame):
        raise ValueError("The teacher must have integer `frame_length` and `frame_step` attributes.")
    expected = fingerprint(speech, noise, rir, config, seed, exclude)
    synth = MixtureSynthesizer(speech, noise, rir, config, seed=seed, stream=_POOL_STREAM, exclude=exclude)
    attention = ATKLLoss(complex_channels=complex_channels)

    @tf.function(reduce_retracing=True)
    def run_teacher(noisy):
        wave, maps = teacher(noisy, training=False, return_features=True)
        energies = [attention.attention_energies(m) for m in maps]
        return wave, [e[0] for e in energies], [e[1] for e in energies]

    os.makedirs(cache_dir, exist_ok=True)
    meta_path = os.path.join(cache_dir, META_FILE)
    if os.path.exists(meta_path):
        meta = read_meta(cache_dir)
        _check_fingerprint(cache_dir, meta, expected)
        if meta["num_examples"] != num_examples:
            raise KnowledgeError(
                f"{cache_dir}: holds a pool of {meta['num_examples']} examples, not {num_examples}; "
                "use another folder"
            )
    else:
        probe = np.stack([synth.example(0)[0]])
        wave, times, channels = run_teacher(tf.constant(probe))
        meta = {
            "format": FORMAT_VERSION,
            "fingerprint": _normalise(expected),
            "num_examples": int(num_examples),
            "done": 0,
            "samples": int(config.fixed_length),
            "time_lengths": [int(t.shape[1]) for t in times],
            "channel_lengths": [int(c.shape[1]) for c in channels],
            "teacher_frame": [int(v) for v in frame],
            "complex_channels": bool(complex_channels),
            "teacher_file": None if teacher_file is None else os.path.abspath(teacher_file),
            "teacher_name": getattr(teacher, "name", None),
        }
    wave_mm, time_mm, channel_mm = _open_arrays(cache_dir, meta, "w+")
    write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    done = meta["done"]
    while done < num_examples:
        stop = min(done + int(batch_size), num_examples)
        noisy = np.stack([synth.example(i)[0] for i in range(done, stop)])
        wave, times, channels = run_teacher(tf.constant(noisy))
        wave_mm[done:stop] = np.asarray(wave, dtype=np.float32).astype(np.float16)
        for mm, values in zip(time_mm, times, strict=True):
            mm[done:stop] = np.asarray(values)
        for mm, values in zip(channel_mm, channels, strict=True):
            mm[done:stop] = np.asarray(values)
        for mm in (wave_mm, *time_mm, *channel_mm):
            mm.flush()
        done = stop
        meta["done"] = done
        write_text(meta_path, json.dumps(meta, indent=2) + "\n")
        if progress is not None:
            progress(done, num_examples)
    return meta


@functools.lru_cache(maxsize=4)
def _pass_order(seed, pass_number, num_examples):
    return np.random.default_rng([seed, _PASS_SEED, pass_number]).permutation(num_examples)


def pool_index(example, num_examples, seed):
    """Pool entry used by training example ``example``: pass ``example // N`` is a seeded permutation."""
    pass_number, position = divmod(int(example), int(num_examples))
    return int(_pass_order(int(seed), pass_number, int(num_examples))[position])


def knowledge_dataset(
    cache_dir,
    speech,
    noise,
    rir=None,
    config=None,
    batch_size=8,
    seed=0,
    cache=True,
    start_example=0,
    exclude=(),
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
):
    """Infinite dataset of ``(noisy, targets)`` batches for a Distiller without a teacher model.

    ``targets`` is a dict: ``clean`` ``[B, samples]``, ``teacher_wave`` ``[B, samples]`` (float32),
    ``teacher_time`` and ``teacher_channel`` (tuples of ``[B, frames_k]`` / ``[B, channels_k]``).

    Args:
        cache_dir: a finished cache of :func:`write_knowledge`.
        speech, noise, rir, config, seed, exclude: must equal the settings the cache was written with.
        batch_size: batch size.
        cache: keep decoded audio in RAM.
        start_example: first training example (int or int64 variable, see
            :func:`keras_dccrn.data.training_dataset`).
        num_parallel_calls, prefetch: ``tf.data`` settings.

    Raises:
        KnowledgeError: the cache is missing, unfinished or was written for other settings.
    """
    check_batch(batch_size)
    config = config or MixtureConfig()
    meta = read_meta(cache_dir)
    _check_fingerprint(cache_dir, meta, fingerprint(speech, noise, rir, config, seed, exclude))
    n = meta["num_examples"]
    if meta["done"] < n:
        raise KnowledgeError(
            f"{cache_dir}: unfinished ({meta['done']} of {n} examples); rerun the command that writes it"
        )
    wave_mm, time_mm, channel_mm = _open_arrays(cache_dir, meta, "r")
    synth = MixtureSynthesizer(
        speech, noise, rir, config, seed=seed, cache=cache, stream=_POOL_STREAM, exclude=exclude
    )
    length = meta["samples"]
    layers = len(time_mm)

    def load(example):
        i = pool_index(example, n, seed)
        noisy, clean, _ = synth.example(i)
        teacher = np.asarray(wave_mm[i], dtype=np.float32)
        return (
            noisy,
            clean,
            teacher,
            *[np.asarray(m[i]) for m in time_mm],
            *[np.asarray(m[i]) for m in channel_mm],
        )

    def synth_fn(example):
        out = tf.numpy_function(load, [example], [tf.float32] * (3 + 2 * layers), stateful=False)
        noisy, clean, teacher = out[:3]
        for t in (noisy, clean, teacher):
            t.set_shape([length])  # [samples]
        times = out[3 : 3 + layers]
        channels = out[3 + layers :]
        for t, size in zip(times, meta["time_lengths"], strict=True):
            t.set_shape([size])  # [frames_k]
        for t, size in zip(channels, meta["channel_lengths"], strict=True):
            t.set_shape([size])  # [channels_k]
        targets = {
            "clean": clean,
            "teacher_wave": teacher,
            "teacher_time": tuple(times),
            "teacher_channel": tuple(channels),
        }
        return noisy, targets

    indices, options = example_indices(start_example)
    ds = indices.map(synth_fn, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.batch(int(batch_size), drop_remainder=True).with_options(options)
    return ds.prefetch(prefetch)
