"""``dccrn-train``: supervised training of any preset (DCCRN, Uformer teacher, student without KD).

Example (the recipes in ``flags/`` hold complete settings)::

    dccrn-train --flagfile=flags/distil_dccrn_nokd.cfg --run_dir=runs/student_nokd

Rerunning the same command resumes from the last checkpoint in ``--run_dir``.
"""

import sys

from absl import app, flags

from trainers import cli, common

FLAGS = common.FLAGS

flags.DEFINE_string(
    "preset", "distil_dccrn", "Model preset (see keras_dccrn.list_presets()).", flag_values=FLAGS
)
flags.DEFINE_enum(
    "loss",
    "auto",
    ["auto", "si_snr", "si_snr_spectral", "uformer"],
    "Training loss; auto: uformer for Uformer presets, si_snr otherwise; si_snr_spectral: SI-SNR plus "
    "--spectral_weight x a compressed multi-resolution spectral distance.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "spectral_weight",
    10.0,
    "Weight of the compressed spectral term (--loss=si_snr_spectral).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "uformer_si_snr_weight", 1.0, "Uformer loss: weight of the negative SI-SNR (dB).", flag_values=FLAGS
)
flags.DEFINE_float("uformer_l1_weight", 1.0, "Uformer loss: weight of the time-domain L1.", flag_values=FLAGS)
flags.DEFINE_float(
    "uformer_complex_weight", 1.0, "Uformer loss: weight of the complex-spectrum L2.", flag_values=FLAGS
)
flags.DEFINE_float(
    "uformer_magnitude_weight", 1.0, "Uformer loss: weight of the magnitude L2.", flag_values=FLAGS
)


def validate_flags():
    from keras_dccrn import list_presets

    common.validate_common_flags()
    if FLAGS.preset not in list_presets():
        raise common.UsageError(
            f"--preset={FLAGS.preset}: unknown preset; available: {', '.join(list_presets())}."
        )


def make_loss(preset):
    from keras_dccrn import losses
    from keras_dccrn.models import default_loss

    kind = FLAGS.loss
    if kind == "auto":
        kind = default_loss(preset)
    if kind == "uformer":
        return losses.UformerLoss(
            si_snr_weight=FLAGS.uformer_si_snr_weight,
            l1_weight=FLAGS.uformer_l1_weight,
            complex_weight=FLAGS.uformer_complex_weight,
            magnitude_weight=FLAGS.uformer_magnitude_weight,
        )
    if kind == "si_snr_spectral":
        return losses.SISNRSpectralLoss(spectral_weight=FLAGS.spectral_weight)
    return losses.SISNRLoss()


def main(argv):
    if len(argv) > 1:
        print(f"dccrn-train: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        validate_flags()
    except common.UsageError as exc:
        print(f"dccrn-train: {exc}", file=sys.stderr)
        return 2
    from keras_dccrn import build_model
    from keras_dccrn.losses import si_snr_metric

    strategy = common.setup_runtime()
    with strategy.scope():
        model = build_model(FLAGS.preset)
        model.compile(
            optimizer=common.make_optimizer(),
            loss=make_loss(FLAGS.preset),
            metrics=[si_snr_metric],
            jit_compile=FLAGS.jit_compile,
        )
    return common.train_and_save("dccrn-train", model, strategy, {"model_config": model.get_config()})


def run():
    app.run(main, flags_parser=cli.flags_parser(FLAGS, "dccrn-train", __doc__))


if __name__ == "__main__":
    run()
