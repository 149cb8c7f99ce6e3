"""Throughput of the on-the-fly mixture pipeline (keras_dccrn.data) on the shared data.

Usage:

    python benchmarks/data_pipeline.py [--data=/work/shared/data] [--batches=25]

Measures examples/s (and seconds of audio per second) that ``training_dataset``
produces with batch 8 x 4 s, 16 kHz, on the train split of the shared data,
streaming from disk (``cache=False``) and from the in-RAM cache (``cache=True``,
files decoded up front with ``preload=True``; the decode time is reported
separately), without and with reverberation (p=1, early-reverb target).
Prints a Markdown table and writes it to docs/benchmarks/data_pipeline.md.
Skips with a message if the data folder is absent.
"""

import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data", "/work/shared/data", "Folder with speech/train, noise/train and rir/.")
flags.DEFINE_integer("batches", 25, "Timed batches per configuration (after 3 warm-up batches).")
flags.DEFINE_integer("batch_size", 8, "Batch size.")
flags.DEFINE_float("seconds", 4.0, "Segment length in seconds.")
flags.DEFINE_string(
    "output",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks", "data_pipeline.md"
    ),
    "Markdown file to write.",
)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(ds, batches):
    it = iter(ds)
    for _ in range(3):  # warm-up: tf.data start-up and AUTOTUNE
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        noisy, _ = next(it)
    return time.perf_counter() - start, noisy.shape


def main(argv):
    del argv
    import tensorflow as tf

    from keras_dccrn import data

    root = FLAGS.data
    speech, noise, rir = (os.path.join(root, p) for p in ("speech/train", "noise/train", "rir"))
    if not all(os.path.isdir(p) for p in (speech, noise, rir)):
        print(
            f"Skipping the data-pipeline benchmark: {root} (speech/train, noise/train, rir/) is not present."
        )
        return 0
    load_before = os.getloadavg()[0]
    rows = []
    for reverb in (0.0, 1.0):
        config = data.MixtureConfig(segment_seconds=FLAGS.seconds, reverb_prob=reverb, reverb_target="early")
        for cache in (False, True):
            t0 = time.perf_counter()
            ds = data.training_dataset(
                speech,
                noise,
                rir,
                config=config,
                batch_size=FLAGS.batch_size,
                seed=0,
                cache=cache,
                preload=cache,
            )
            setup = time.perf_counter() - t0
            elapsed, shape = measure(ds, FLAGS.batches)
            examples = FLAGS.batches * FLAGS.batch_size / elapsed
            rows.append((cache, reverb, setup, examples, examples * FLAGS.seconds, tuple(shape)))
            print(
                f"cache={cache} reverb_prob={reverb}: setup {setup:.1f} s, {examples:.1f} examples/s, "
                f"{examples * FLAGS.seconds:.0f} s of audio/s",
                flush=True,
            )
    lines = [
        "# Data pipeline throughput",
        "",
        f"`keras_dccrn.data.training_dataset` on `{root}` (speech/train: 1728 files, noise/train: 610, rir: 7), "
        f"batch {FLAGS.batch_size} x {FLAGS.seconds:g} s at 16 kHz, SNR -5..20 dB, level -35..-15 dBFS; "
        f"{FLAGS.batches} timed batches after 3 warm-up batches.",
        f"Machine: {os.cpu_count()} CPU cores ({cpu_name()}), shared with other jobs; Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}.",
        f"1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run "
        "(other jobs were running: expect noise of tens of percent).",
        "Setup = building the dataset (scanning the folders' headers, and with `cache=True` decoding and "
        "resampling every file into RAM with `preload=True`).",
        "",
        "| cache | reverb_prob | setup (s) | examples/s | audio s/s | batch shape |",
        "|---|---|---|---|---|---|",
    ]
    for cache, reverb, setup, ex, audio_s, shape in rows:
        lines.append(f"| {cache} | {reverb:g} | {setup:.1f} | {ex:.1f} | {audio_s:.0f} | {shape} |")
    lines += ["", f"Command: `python benchmarks/data_pipeline.py --batches={FLAGS.batches}`", ""]
    text = "\n".join(lines)
    print()
    print(text)
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    app.run(main)
