"""``dccrn-distill``: AT-KL knowledge distillation of a student from a trained teacher.

Example::

    dccrn-distill --flagfile=flags/distil_dccrn_atkl.cfg --teacher=runs/uformer/model.keras \\
        --run_dir=runs/student_atkl

The run directory holds the Distiller checkpoints (resume by rerunning the same command) and, at
the end, ``model.keras``: the **student** alone, with the weights of the best validation SI-SNR.
"""

import os
import sys

from absl import app, flags

from trainers import cli, common

FLAGS = common.FLAGS

flags.DEFINE_string(
    "teacher",
    None,
    "Trained teacher: a .keras file, or a run directory holding model.keras.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "teacher_cache",
    None,
    "Teacher-knowledge cache written by dccrn-teacher-cache with the same data flags: the teacher's "
    "output and attention energies are read from it instead of running the teacher (no --teacher needed).",
    flag_values=FLAGS,
)
flags.DEFINE_string("student_preset", "distil_dccrn", "Student model preset.", flag_values=FLAGS)
flags.DEFINE_enum(
    "kd_mode",
    "at_kl",
    ["none", "output", "at", "kl", "at_kl"],
    "Which distillation terms to use.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "attention_dims",
    "both",
    ["time", "channel", "both"],
    "Attention along time, channels or both.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "alpha",
    0.5,
    "Balanced SI-SNR weight of the clean target (1 - alpha: the teacher output).",
    flag_values=FLAGS,
)
flags.DEFINE_float("temperature", 2.0, "Temperature of the attention distributions.", flag_values=FLAGS)
flags.DEFINE_float("at_weight", 1.0, "Weight of the attention-transfer terms.", flag_values=FLAGS)
flags.DEFINE_float("kl_weight", 1.0, "Weight of the KL-divergence terms.", flag_values=FLAGS)
flags.DEFINE_float("time_weight", 1.0, "Weight of the time-attention terms.", flag_values=FLAGS)
flags.DEFINE_float("channel_weight", 1.0, "Weight of the channel-attention terms.", flag_values=FLAGS)
flags.DEFINE_float(
    "kd_spectral_weight",
    0.0,
    "Weight of the compressed multi-resolution spectral distance of the student to the clean speech, added "
    "to the distillation loss (0: off); the counterpart of dccrn-train --loss=si_snr_spectral --spectral_weight.",
    flag_values=FLAGS,
)


def teacher_path():
    path = FLAGS.teacher
    if path and os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    return path


def validate_flags():
    from keras_dccrn import list_presets

    common.validate_common_flags()
    if FLAGS.student_preset not in list_presets():
        raise common.UsageError(
            f"--student_preset={FLAGS.student_preset}: unknown preset; available: {', '.join(list_presets())}."
        )
    if FLAGS.teacher_cache:
        if FLAGS.strategy != "default":
            raise common.UsageError("--teacher_cache works with --strategy=default only.")
        if FLAGS.segment_seconds * 16000 != int(FLAGS.segment_seconds * 16000):
            raise common.UsageError(
                f"--segment_seconds={FLAGS.segment_seconds}: not a whole number of samples."
            )
    elif FLAGS.kd_mode != "none":
        if not FLAGS.teacher:
            raise common.UsageError("--teacher (or --teacher_cache) is required unless --kd_mode=none.")
        if not os.path.isfile(teacher_path()):
            raise common.UsageError(
                f"--teacher={FLAGS.teacher}: no such model file (expected a .keras file)."
            )
    if not 0.0 <= FLAGS.alpha <= 1.0:
        raise common.UsageError(f"--alpha must be in [0, 1]; received {FLAGS.alpha}.")
    if FLAGS.kd_spectral_weight < 0:
        raise common.UsageError(f"--kd_spectral_weight must be >= 0; received {FLAGS.kd_spectral_weight}.")
    if FLAGS.temperature <= 0:
        raise common.UsageError(f"--temperature must be positive; received {FLAGS.temperature}.")


def main(argv):
    if len(argv) > 1:
        print(f"dccrn-distill: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        validate_flags()
    except common.UsageError as exc:
        print(f"dccrn-distill: {exc}", file=sys.stderr)
        return 2
    from keras_dccrn import build_model
    from keras_dccrn.distillation import Distiller
    from keras_dccrn.runtime import ModelLoadError, load_keras_model

    teacher_frame = None
    if FLAGS.teacher_cache:
        from keras_dccrn.distillation.knowledge import KnowledgeError, read_meta

        try:
            teacher_frame = read_meta(FLAGS.teacher_cache)["teacher_frame"]
        except KnowledgeError as exc:
            print(f"dccrn-distill: {exc}", file=sys.stderr)
            return 2
    strategy = common.setup_runtime()
    with strategy.scope():
        teacher = None
        if FLAGS.kd_mode != "none" and not FLAGS.teacher_cache:
            try:
                teacher = load_keras_model(teacher_path())
            except ModelLoadError as exc:
                print(f"dccrn-distill: cannot load the teacher: {exc}", file=sys.stderr)
                return 2
        student = build_model(FLAGS.student_preset)
        distiller = Distiller(
            teacher,
            student,
            kd_mode=FLAGS.kd_mode,
            attention_dims=FLAGS.attention_dims,
            alpha=FLAGS.alpha,
            temperature=FLAGS.temperature,
            at_weight=FLAGS.at_weight,
            kl_weight=FLAGS.kl_weight,
            time_weight=FLAGS.time_weight,
            channel_weight=FLAGS.channel_weight,
            teacher_frame=teacher_frame,
            spectral_weight=FLAGS.kd_spectral_weight,
        )
        distiller.compile(optimizer=common.make_optimizer(), jit_compile=FLAGS.jit_compile)
    extra = {
        "student_config": student.get_config(),
        "teacher_file": teacher_path() if teacher else None,
        "teacher_cache": os.path.abspath(FLAGS.teacher_cache) if FLAGS.teacher_cache else None,
    }
    return common.train_and_save(
        "dccrn-distill",
        distiller,
        strategy,
        extra,
        export_model=student,
        monitor="val_si_snr_clean",
        mode="max",
        knowledge_dir=FLAGS.teacher_cache,
    )


def run():
    app.run(main, flags_parser=cli.flags_parser(FLAGS, "dccrn-distill", __doc__))


if __name__ == "__main__":
    run()
