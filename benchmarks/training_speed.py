"""Training throughput (seconds of audio per second) per preset and precision/XLA setting.

Times ``train_on_batch`` on random noisy/clean batches after warm-up (tracing and compilation are
excluded and reported separately), on this machine's CPU. Distillation (teacher forward included)
is timed with ``--distill_teacher``. Run:

    python benchmarks/training_speed.py --presets=distil_dccrn,dccrn_cl,uformer \\
        --settings=float32,mixed_bfloat16,xla --distill_teacher=uformer

and it prints a Markdown table and writes ``docs/benchmarks/training_speed.md``. ``--source`` times
another checkout of the library (e.g. an older commit, for a before/after comparison):

    git worktree add /tmp/before <commit>
    python benchmarks/training_speed.py --source=/tmp/before --output=docs/benchmarks/<page>.md

The page names the commit of the code it timed. ``--fastest_to=FILE`` also writes the name of the
setting with the least CPU time per step (of the first preset) into FILE, one line: how
``scripts/campaign.sh`` picks the training precision of the machine it runs on.
"""

import os
import platform
import sys
import time

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402
from keras_dccrn.errors import first_line  # noqa: E402

SETTINGS = {
    "float32": dict(policy="float32", jit=False),
    "mixed_bfloat16": dict(policy="mixed_bfloat16", jit=False),
    "xla": dict(policy="float32", jit=True),
    "xla_bfloat16": dict(policy="mixed_bfloat16", jit=True),
}
DEFAULT_OUTPUT = "docs/benchmarks/training_speed.md"
LOSSES = ("auto", "si_snr", "si_snr_spectral", "uformer")

FLAGS = flags.FlagValues()
flags.DEFINE_list("presets", ["distil_dccrn"], "Presets to time.", flag_values=FLAGS)
flags.DEFINE_list(
    "settings", ["float32", "mixed_bfloat16", "xla"], f"Settings, any of {list(SETTINGS)}.", flag_values=FLAGS
)
flags.DEFINE_integer("batch", 8, "Batch size.", flag_values=FLAGS)
flags.DEFINE_float("seconds", 4.0, "Seconds of audio per example.", flag_values=FLAGS)
flags.DEFINE_integer("steps", 5, "Timed steps (the median is reported).", flag_values=FLAGS)
flags.DEFINE_integer("warmup", 2, "Untimed warm-up steps (tracing, compilation).", flag_values=FLAGS)
flags.DEFINE_string(
    "distill_teacher", None, "Also time distil_dccrn distilled from this preset.", flag_values=FLAGS
)
flags.DEFINE_bool(
    "distill_cached",
    False,
    "With --distill_teacher: also time distillation from cached teacher knowledge (no teacher forward).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "fastest_to",
    None,
    "Write the setting with the least CPU s / step of the first preset into this file (one line).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "threads",
    0,
    "TensorFlow intra-op threads (one inter-op thread; 0: TensorFlow's default).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "source",
    None,
    "A checkout of keras-dccrn whose keras_dccrn package is timed instead of this repository's.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "loss",
    "auto",
    list(LOSSES),
    "Training loss (without a teacher); auto: the preset's default (uformer for Uformer presets, else si_snr).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "spectral_weight", 10.0, "Weight of the spectral term of --loss=si_snr_spectral.", flag_values=FLAGS
)
flags.DEFINE_float("clip_norm", 0.0, "Adam's global gradient-norm clipping (0: off).", flag_values=FLAGS)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown page to write ('' to only print).", flag_values=FLAGS)


def random_batch(batch, seconds, rng):
    """A ``(noisy, clean)`` batch of white-noise "speech" plus noise, ``[batch, seconds * 16 kHz]``."""
    n = int(seconds * 16000)
    clean = (0.1 * rng.standard_normal((batch, n))).astype("float32")
    noisy = clean + (0.05 * rng.standard_normal((batch, n))).astype("float32")
    return noisy, clean


def cached_targets(teacher_model, noisy, clean):
    """What a teacher-knowledge cache serves for one batch: clean, teacher output, attention energies."""
    from keras_dccrn.losses import ATKLLoss

    wave, maps = teacher_model(noisy, training=False, return_features=True)
    energies = [ATKLLoss().attention_energies(m) for m in maps]
    return {
        "clean": clean,
        "teacher_wave": np.asarray(wave, dtype=np.float16).astype("float32"),
        "teacher_time": tuple(np.asarray(e[0]) for e in energies),
        "teacher_channel": tuple(np.asarray(e[1]) for e in energies),
    }


def make_loss(name, loss="auto", spectral_weight=10.0):
    """The training loss ``loss`` (one of :data:`LOSSES`) of preset ``name``."""
    from keras_dccrn.losses import SISNRLoss, SISNRSpectralLoss, UformerLoss
    from keras_dccrn.models import default_loss

    if loss == "auto":
        loss = default_loss(name)
    if loss == "uformer":
        return UformerLoss()
    if loss == "si_snr_spectral":
        return SISNRSpectralLoss(spectral_weight=spectral_weight)
    return SISNRLoss()


def optimizer(clip_norm=0.0):
    """Adam at 1e-3, with global gradient-norm clipping at ``clip_norm`` (0: off)."""
    import keras

    return keras.optimizers.Adam(1e-3, global_clipnorm=clip_norm or None)


def time_setting(
    name,
    setting,
    batch,
    seconds,
    steps,
    warmup,
    teacher=None,
    cached=False,
    loss="auto",
    clip_norm=0.0,
    spectral_weight=10.0,
):
    """Median wall and CPU seconds of a training step and the warm-up's wall seconds."""
    import keras

    from keras_dccrn import build_model
    from keras_dccrn.distillation import Distiller

    keras.mixed_precision.set_global_policy(setting["policy"])
    keras.utils.set_random_seed(0)
    model = build_model(name)
    rng = np.random.default_rng(0)
    noisy, clean = random_batch(batch, seconds, rng)
    if teacher:
        keras.mixed_precision.set_global_policy("float32")
        teacher_model = build_model(teacher)
        keras.mixed_precision.set_global_policy(setting["policy"])
        if cached:
            clean = cached_targets(teacher_model, noisy, clean)  # computed once, outside the timing
            frame = [teacher_model.frame_length, teacher_model.frame_step]
            model = Distiller(None, model, kd_mode="at_kl", teacher_frame=frame)
        else:
            model = Distiller(teacher_model, model, kd_mode="at_kl")
        model.compile(optimizer=optimizer(clip_norm), jit_compile=setting["jit"])
    else:
        model.compile(
            optimizer=optimizer(clip_norm),
            loss=make_loss(name, loss, spectral_weight),
            jit_compile=setting["jit"],
        )
    start = time.perf_counter()
    for _ in range(warmup):
        model.train_on_batch(noisy, clean)
    warm = time.perf_counter() - start
    times, cpu = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        model.train_on_batch(noisy, clean)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    keras.mixed_precision.set_global_policy("float32")
    return float(np.median(times)), float(np.median(cpu)), warm


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "training_speed.py", __doc__)
    if status is not None:
        return status
    unknown = [s for s in FLAGS.settings if s not in SETTINGS]
    if unknown:
        print(
            f"training_speed.py: --settings: unknown {unknown}; choose from {list(SETTINGS)}", file=sys.stderr
        )
        return 2
    if FLAGS.source:
        if not os.path.isfile(os.path.join(FLAGS.source, "keras_dccrn", "__init__.py")):
            print(
                f"training_speed.py: --source={FLAGS.source}: no keras_dccrn package there", file=sys.stderr
            )
            return 2
        if "keras_dccrn.models" in sys.modules:
            print("training_speed.py: --source must be given before keras_dccrn is imported", file=sys.stderr)
            return 2
        sys.path.insert(0, os.path.abspath(FLAGS.source))
        for name in [m for m in sys.modules if m == "keras_dccrn" or m.startswith("keras_dccrn.")]:
            del sys.modules[name]  # keras_dccrn.errors was imported from this repository
    import keras_dccrn

    code = harness.code_version(os.path.dirname(os.path.dirname(os.path.abspath(keras_dccrn.__file__))))
    if FLAGS.threads:
        harness.tensorflow_threads(FLAGS.threads)
    jobs = [(p, s, None, False) for p in FLAGS.presets for s in FLAGS.settings]
    if FLAGS.distill_teacher:
        jobs += [("distil_dccrn", s, FLAGS.distill_teacher, False) for s in FLAGS.settings]
        if FLAGS.distill_cached:
            jobs += [("distil_dccrn", s, FLAGS.distill_teacher, True) for s in FLAGS.settings]
    header = (
        "model",
        "setting",
        "step (s, median)",
        "audio s / s",
        "CPU s / step",
        "warm-up incl. tracing (s)",
    )
    rows, timed = [], []
    for name, setting, teacher, cached in jobs:
        label = name
        if teacher is not None:
            source = "cached knowledge of" if cached else "live"
            label = f"{name} distilled (AT-KL) from {source} {teacher}"
        try:
            step, cpu, warm = time_setting(
                name,
                SETTINGS[setting],
                FLAGS.batch,
                FLAGS.seconds,
                FLAGS.steps,
                FLAGS.warmup,
                teacher,
                cached,
                FLAGS.loss,
                FLAGS.clip_norm,
                FLAGS.spectral_weight,
            )
            audio = f"{FLAGS.batch * FLAGS.seconds / step:.1f}"
            row = (label, setting, f"{step:.2f}", audio, f"{cpu:.2f}", f"{warm:.1f}")
        except Exception as exc:  # a setting that does not compile is reported, not fatal
            row = (label, setting, f"failed: {first_line(exc)[:80]}", "", "", "")
        print(harness.markdown_table(header, [row])[-1], flush=True)
        rows.append(row)
        if teacher is None and name == FLAGS.presets[0] and row[4]:
            timed.append((float(row[4]), setting))
    if FLAGS.fastest_to:
        if not timed:
            print("training_speed.py: --fastest_to: no setting of the first preset ran", file=sys.stderr)
            return 1
        from keras_dccrn.atomic import write_text

        write_text(FLAGS.fastest_to, min(timed)[1] + "\n")
    table = "\n".join(harness.markdown_table(header, rows, align="llrrrr"))
    print()
    print(table)
    if FLAGS.output:
        harness.write_page(
            FLAGS.output,
            f"# Training throughput\n\nGenerated by `{harness.command_line(__file__, argv)}` on "
            f"{platform.machine()} ({os.cpu_count()} cores), code {code}; batch {FLAGS.batch} x {FLAGS.seconds:g} s, "
            f"median of {FLAGS.steps} `train_on_batch` steps after {FLAGS.warmup} warm-up steps "
            f"(loss {FLAGS.loss}, clip norm {FLAGS.clip_norm:g}; CPU s / step: the process's CPU time, which "
            f"other jobs on the cores inflate less than the wall time).\n\n{table}\n",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
