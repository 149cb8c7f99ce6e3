"""``dccrn-teacher-cache``: precompute a teacher's AT-KL knowledge for a pool of training mixtures.

Example (the same data flags as the distillation run that reads the cache)::

    dccrn-teacher-cache --flagfile=flags/distil_dccrn_atkl_cached.cfg --teacher=runs/uformer \\
        --cache_dir=runs/uformer_knowledge --cache_examples=20000
    dccrn-distill --flagfile=flags/distil_dccrn_atkl_cached.cfg --teacher_cache=runs/uformer_knowledge \\
        --run_dir=runs/student_atkl

The frozen teacher runs once over training examples 0 .. N-1 and its output waveform and per-layer
time / channel attention energies are stored (``keras_dccrn.distillation.knowledge``); the mixtures
themselves are synthesised again from the seed when they are used. Rerunning the same command
continues an unfinished cache. Exit status: 0 done, 1 the cache folder holds something else, 2 usage.
"""

import os
import shutil
import sys
import time

from absl import app, flags

from trainers import cli, common, distill

# Importing the distillation app defines its flags (--teacher, --student_preset, --kd_mode, ...) here
# too, so that one recipe flagfile serves both apps.
FLAGS = common.FLAGS

flags.DEFINE_string("cache_dir", None, "Folder of the cache (created, or continued).", flag_values=FLAGS)
flags.DEFINE_integer("cache_examples", 10000, "Number of training mixtures in the pool.", flag_values=FLAGS)
flags.DEFINE_integer("cache_batch_size", 8, "Teacher batch size.", flag_values=FLAGS)

PROG = "dccrn-teacher-cache"
MAX_EXAMPLES = 10_000_000


def main(argv):
    if len(argv) > 1:
        print(f"{PROG}: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    if not FLAGS.teacher or not os.path.isfile(distill.teacher_path()):
        print(
            f"{PROG}: --teacher={FLAGS.teacher}: no such model file (a .keras file or run dir)",
            file=sys.stderr,
        )
        return 2
    if not FLAGS.cache_dir:
        print(f"{PROG}: --cache_dir is required", file=sys.stderr)
        return 2
    if not 0 < FLAGS.cache_examples <= MAX_EXAMPLES:
        print(
            f"{PROG}: --cache_examples must be in [1, {MAX_EXAMPLES}]; received {FLAGS.cache_examples}",
            file=sys.stderr,
        )
        return 2
    if not 0 < FLAGS.cache_batch_size <= 256:
        print(
            f"{PROG}: --cache_batch_size must be in [1, 256]; received {FLAGS.cache_batch_size}",
            file=sys.stderr,
        )
        return 2
    samples = int(round(FLAGS.segment_seconds * 16000))
    needed = FLAGS.cache_examples * samples * 2  # float16 waveforms; the energies add about 1%
    folder = os.path.abspath(FLAGS.cache_dir)
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free
    if needed > free and not os.path.exists(os.path.join(FLAGS.cache_dir, "knowledge.json")):
        print(
            f"{PROG}: --cache_examples={FLAGS.cache_examples} needs about {needed / 1e9:.1f} GB in "
            f"{FLAGS.cache_dir}; {free / 1e9:.1f} GB are free",
            file=sys.stderr,
        )
        return 2
    for name in ("train_speech", "train_noise"):
        if not FLAGS[name].value:
            print(f"{PROG}: --{name} is required (the distillation run's data flags)", file=sys.stderr)
            return 2
    if FLAGS.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    from keras_dccrn.distillation.knowledge import KnowledgeError, write_knowledge
    from keras_dccrn.runtime import ModelLoadError, load_keras_model

    try:
        teacher = load_keras_model(distill.teacher_path())
    except ModelLoadError as exc:
        print(f"{PROG}: cannot load the teacher: {exc}", file=sys.stderr)
        return 2
    start = time.time()
    last = [0.0]

    def progress(done, total):
        now = time.time()
        if now - last[0] >= 30 or done == total:
            last[0] = now
            rate = done / max(now - start, 1e-9)
            print(f"{PROG}: {done}/{total} examples ({rate:.2f}/s)", file=sys.stderr, flush=True)

    try:
        meta = write_knowledge(
            FLAGS.cache_dir,
            teacher,
            FLAGS.train_speech,
            FLAGS.train_noise,
            FLAGS.train_rir,
            config=common.mixture_config(),
            num_examples=FLAGS.cache_examples,
            seed=FLAGS.seed,
            batch_size=FLAGS.cache_batch_size,
            exclude=FLAGS.exclude or (),
            teacher_file=distill.teacher_path(),
            progress=progress,
        )
    except KnowledgeError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    hours = meta["num_examples"] * meta["samples"] / 16000 / 3600
    print(f"Cache {FLAGS.cache_dir}: {meta['num_examples']} examples ({hours:.2f} h of audio) ready")
    return 0


def run():
    app.run(main, flags_parser=cli.flags_parser(FLAGS, PROG, __doc__))


if __name__ == "__main__":
    run()
