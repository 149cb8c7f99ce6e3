"""Training throughput (seconds of audio per second) per preset and precision/XLA setting.

Times ``train_on_batch`` on random noisy/clean batches after warm-up (tracing and compilation are
excluded and reported separately), on this machine's CPU. Distillation (teacher forward included)
is timed with ``--distill_teacher``. Run:

    python benchmarks/training_speed.py --presets distil_dccrn dccrn_cl uformer \\
        --settings float32 mixed_bfloat16 xla --distill_teacher uformer

and it prints a Markdown table and writes ``docs/benchmarks/training_speed.md``.
"""

import argparse
import os
import platform
import time

import numpy as np

SETTINGS = {
    "float32": dict(policy="float32", jit=False),
    "mixed_bfloat16": dict(policy="mixed_bfloat16", jit=False),
    "xla": dict(policy="float32", jit=True),
    "xla_bfloat16": dict(policy="mixed_bfloat16", jit=True),
}


def _batch(batch, seconds, rng):
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


def time_setting(name, setting, batch, seconds, steps, warmup, teacher=None, cached=False):
    import keras

    from keras_dccrn import build_model
    from keras_dccrn.distillation import Distiller
    from keras_dccrn.losses import SISNRLoss, UformerLoss
    from keras_dccrn.models import default_loss

    keras.mixed_precision.set_global_policy(setting["policy"])
    keras.utils.set_random_seed(0)
    model = build_model(name)
    rng = np.random.default_rng(0)
    noisy, clean = _batch(batch, seconds, rng)
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
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=setting["jit"])
    else:
        loss = UformerLoss() if default_loss(name) == "uformer" else SISNRLoss()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=setting["jit"])
    start = time.perf_counter()
    for _ in range(warmup):
        model.train_on_batch(noisy, clean)
    warm = time.perf_counter() - start
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(noisy, clean)
        times.append(time.perf_counter() - t)
    keras.mixed_precision.set_global_policy("float32")
    step = float(np.median(times))
    return step, warm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["distil_dccrn"])
    parser.add_argument(
        "--settings", nargs="+", default=["float32", "mixed_bfloat16", "xla"], choices=list(SETTINGS)
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--distill_teacher", default=None, help="also time distil_dccrn distilled from this preset"
    )
    parser.add_argument(
        "--distill_cached",
        action="store_true",
        help="with --distill_teacher: also time distillation from cached teacher knowledge (no teacher forward)",
    )
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: default)")
    parser.add_argument("--output", default="docs/benchmarks/training_speed.md")
    args = parser.parse_args()

    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    jobs = [(p, s, None, False) for p in args.presets for s in args.settings]
    if args.distill_teacher:
        jobs += [("distil_dccrn", s, args.distill_teacher, False) for s in args.settings]
        if args.distill_cached:
            jobs += [("distil_dccrn", s, args.distill_teacher, True) for s in args.settings]
    lines = [
        "| model | setting | step (s, median) | audio s / s | warm-up incl. tracing (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, setting, teacher, cached in jobs:
        label = name
        if teacher is not None:
            source = "cached knowledge of" if cached else "live"
            label = f"{name} distilled (AT-KL) from {source} {teacher}"
        try:
            step, warm = time_setting(
                name, SETTINGS[setting], args.batch, args.seconds, args.steps, args.warmup, teacher, cached
            )
            row = (
                f"| {label} | {setting} | {step:.2f} | {args.batch * args.seconds / step:.1f} | {warm:.1f} |"
            )
        except Exception as exc:  # a setting that does not compile is reported, not fatal
            row = f"| {label} | {setting} | failed: {str(exc).splitlines()[0][:80]} | | |"
        print(row, flush=True)
        lines.append(row)
    table = "\n".join(lines)
    print()
    print(table)
    if args.output:
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(
                "# Training throughput\n\nGenerated by `python benchmarks/training_speed.py "
                f"--presets {' '.join(args.presets)} --settings {' '.join(args.settings)}"
                + (f" --distill_teacher {args.distill_teacher}" if args.distill_teacher else "")
                + (" --distill_cached" if args.distill_cached else "")
                + (f" --threads {args.threads}" if args.threads else "")
                + f" --batch {args.batch} --seconds {args.seconds:g} --steps {args.steps} --warmup {args.warmup}"
                + (f" --output {args.output}" if args.output != "docs/benchmarks/training_speed.md" else "")
                + f"` on {platform.machine()} ({os.cpu_count()} cores); batch {args.batch} x {args.seconds:g} s, "
                f"median of {args.steps} `train_on_batch` steps after {args.warmup} warm-up steps.\n\n"
                + table
                + "\n"
            )


if __name__ == "__main__":
    main()
