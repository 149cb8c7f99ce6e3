"""Where a training step's time goes: shares per op type, per layer and of the largest ops.

Builds each job's model and loss (a job is ``preset:loss:batch``), warms ``train_on_batch`` up,
times a few steps, then traces ``--profiled`` steps with the TensorFlow profiler
(:mod:`keras_dccrn.op_profile`) and writes the shares of the op kernels' time. The defaults are
the campaign's recipes (flags/campaign/student_nokd.cfg and teacher.cfg: 2 s segments,
mixed_bfloat16, Adam with global clipping at 5, one thread). Run:

    python benchmarks/training_profile.py

and it writes ``docs/benchmarks/training_profile.md``. Shares of the op time are what the page is
for: other jobs on the cores slow every op alike and change them little, so the page may be made
on a busy machine (it records the load average); the step times it prints are not benchmarks.
"""

import os
import platform
import sys
import time

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402
from benchmarks.training_speed import LOSSES, make_loss, optimizer, random_batch  # noqa: E402

DEFAULT_OUTPUT = "docs/benchmarks/training_profile.md"

FLAGS = flags.FlagValues()
flags.DEFINE_list(
    "jobs",
    ["distil_dccrn:si_snr_spectral:4", "uformer_noncausal:uformer:8"],
    "preset:loss:batch per profiled model.",
    flag_values=FLAGS,
)
flags.DEFINE_float("seconds", 2.0, "Seconds of audio per example.", flag_values=FLAGS)
flags.DEFINE_string("policy", "mixed_bfloat16", "Keras dtype policy.", flag_values=FLAGS)
flags.DEFINE_float(
    "spectral_weight", 10.0, "Weight of the spectral term of si_snr_spectral.", flag_values=FLAGS
)
flags.DEFINE_float("clip_norm", 5.0, "Adam's global gradient-norm clipping (0: off).", flag_values=FLAGS)
flags.DEFINE_integer(
    "threads", 1, "TensorFlow intra-op threads (0: TensorFlow's default).", flag_values=FLAGS
)
flags.DEFINE_integer("warmup", 2, "Untimed warm-up steps.", flag_values=FLAGS)
flags.DEFINE_integer("timed", 3, "Timed steps before profiling (median printed).", flag_values=FLAGS)
flags.DEFINE_integer("profiled", 2, "Steps traced by the profiler.", flag_values=FLAGS)
flags.DEFINE_integer("top", 15, "Rows of the op-type, layer and single-op tables.", flag_values=FLAGS)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown page to write ('' to only print).", flag_values=FLAGS)


def parse_job(text):
    """``(preset, loss, batch)`` of ``preset:loss:batch``; ValueError naming ``text`` otherwise."""
    parts = text.split(":")
    if len(parts) != 3 or parts[1] not in LOSSES or not parts[2].isdigit() or int(parts[2]) < 1:
        raise ValueError(f"--jobs: {text!r} is not preset:loss:batch with a loss of {list(LOSSES)}")
    return parts[0], parts[1], int(parts[2])


def profile_job(preset, loss, batch):
    """``(median step s, median CPU s, op runs, profiled steps)`` of one job."""
    import keras

    from keras_dccrn import build_model

    keras.mixed_precision.set_global_policy(FLAGS.policy)
    keras.utils.set_random_seed(0)
    model = build_model(preset)
    model.compile(optimizer=optimizer(FLAGS.clip_norm), loss=make_loss(preset, loss, FLAGS.spectral_weight))
    noisy, clean = random_batch(batch, FLAGS.seconds, np.random.default_rng(0))
    for _ in range(FLAGS.warmup):
        model.train_on_batch(noisy, clean)
    wall, cpu = [], []
    for _ in range(FLAGS.timed):
        t, c = time.perf_counter(), time.process_time()
        model.train_on_batch(noisy, clean)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    from keras_dccrn.op_profile import trace_ops

    runs = trace_ops(lambda: model.train_on_batch(noisy, clean), FLAGS.profiled)
    keras.mixed_precision.set_global_policy("float32")
    return float(np.median(wall)), float(np.median(cpu)), runs, model.name


def _table(title, rows, top):
    header = (title, "ms / step", "share", "runs / step")
    body = [(str(g), f"{s * 1e3:.1f}", f"{100 * share:.1f}%", f"{n:g}") for g, s, share, n in rows[:top]]
    rest = rows[top:]
    if rest:
        body.append(
            (
                f"({len(rest)} more)",
                f"{sum(r[1] for r in rest) * 1e3:.1f}",
                f"{100 * sum(r[2] for r in rest):.1f}%",
                f"{sum(r[3] for r in rest):g}",
            )
        )
    return "\n".join(harness.markdown_table(header, body, align="lrrr"))


def job_section(preset, loss, batch):
    from keras_dccrn import op_profile as op

    wall, cpu, runs, model = profile_job(preset, loss, batch)
    steps = FLAGS.profiled
    total = sum(r.seconds for r in runs) / steps
    phases = op.op_shares(runs, op.phase, steps)
    by_type = op.op_shares(runs, op.op_type, steps)
    by_layer = op.op_shares(runs, lambda r: f"{op.phase(r)} {op.layer(r, model)}", steps)
    by_op = op.op_shares(runs, lambda r: f"{r.name} ({op.op_type(r)})", steps)
    phase_line = ", ".join(f"{p} {100 * share:.1f}%" for p, _, share, _ in phases)
    audio = batch * FLAGS.seconds
    return (
        f"## {preset}, loss {loss}, batch {batch} x {FLAGS.seconds:g} s\n\n"
        f"Step (median of {FLAGS.timed}): {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"({audio / wall:.1f} audio s / s wall). Op kernels of the {steps} profiled steps: {total:.2f} s per "
        f"step ({len(runs) / steps:.0f} kernel runs); {phase_line}.\n\n"
        f"{_table('op type', by_type, FLAGS.top)}\n\n"
        f"{_table('phase and layer', by_layer, FLAGS.top)}\n\n"
        f"{_table('op', by_op, FLAGS.top)}\n"
    )


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "training_profile.py", __doc__)
    if status is not None:
        return status
    try:
        jobs = [parse_job(j) for j in FLAGS.jobs]
    except ValueError as exc:
        print(f"training_profile.py: {exc}", file=sys.stderr)
        return 2
    if FLAGS.threads:
        harness.tensorflow_threads(FLAGS.threads)
    load = os.getloadavg()[0]
    sections = []
    for preset, loss, batch in jobs:
        section = job_section(preset, loss, batch)
        print(section, flush=True)
        sections.append(section)
    if FLAGS.output:
        harness.write_page(
            FLAGS.output,
            f"# Training step profile\n\nGenerated by `{harness.command_line(__file__, argv)}` on "
            f"{platform.machine()} ({os.cpu_count()} cores), code {harness.code_version()}; policy "
            f"{FLAGS.policy}, {FLAGS.threads or 'default'} thread(s), Adam with global clip norm "
            f"{FLAGS.clip_norm:g}. 1-minute load average {load:.1f} before and {os.getloadavg()[0]:.1f} after: "
            "with other jobs on the cores the times are not benchmarks (see training_speed*.md), the "
            "shares of the op kernels' time are the result. Phase: forward, backward (`gradient_tape/` "
            "ops and gradient sums), optimizer; layers are the model's (Keras' per-call `_<n>` "
            "scope suffix dropped), `loss` is the training loss.\n\n" + "\n".join(sections),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
