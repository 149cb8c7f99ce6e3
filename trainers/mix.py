"""``dccrn-mix``: write a fixed set of noisy/clean WAV pairs (a development or test set).

The pairs are synthesised exactly like the training examples (``keras_dccrn.data``) but fixed by
``--seed``: rerunning the command writes the same files. Layout::

    <output_dir>/noisy/NNNN.wav   <output_dir>/clean/NNNN.wav   <output_dir>/mixtures.csv

The CSV lists each example's SNR, level, noise file and offset, RIR and target. Example (the
development set of the shipped models)::

    dccrn-mix --flagfile=flags/devset.cfg --output_dir=data/devset
"""

import sys

from absl import app, flags

from trainers import cli

PROG = "dccrn-mix"
FLAGS = flags.FlagValues()
flags.DEFINE_multi_string(
    "speech", None, "Clean speech: folder, glob or manifest (repeatable).", flag_values=FLAGS
)
flags.DEFINE_multi_string("noise", None, "Noise: folder, glob or manifest (repeatable).", flag_values=FLAGS)
flags.DEFINE_multi_string("rir", None, "Room impulse responses (optional, repeatable).", flag_values=FLAGS)
flags.DEFINE_string(
    "output_dir", None, "Folder to write noisy/, clean/ and mixtures.csv into.", flag_values=FLAGS
)
flags.DEFINE_integer("num_examples", 200, "Number of pairs.", flag_values=FLAGS)
flags.DEFINE_float("min_seconds", 4.0, "Shortest example (seconds).", flag_values=FLAGS)
flags.DEFINE_float(
    "max_seconds",
    10.0,
    "Longest example (seconds); equal to --min_seconds for fixed length.",
    flag_values=FLAGS,
)
flags.DEFINE_float("snr_min", -5.0, "Lowest SNR (dB).", flag_values=FLAGS)
flags.DEFINE_float("snr_max", 20.0, "Highest SNR (dB).", flag_values=FLAGS)
flags.DEFINE_float("level_min", -35.0, "Lowest mixture level (dBFS).", flag_values=FLAGS)
flags.DEFINE_float("level_max", -15.0, "Highest mixture level (dBFS).", flag_values=FLAGS)
flags.DEFINE_float("reverb_prob", 0.0, "Probability of reverberation (needs --rir).", flag_values=FLAGS)
flags.DEFINE_enum(
    "reverb_target", "dry", ["dry", "early"], "Target of reverberant examples.", flag_values=FLAGS
)
flags.DEFINE_enum(
    "noise_sampling",
    "file",
    ["file", "duration"],
    "Noise file choice: every file equally likely, or every second of noise equally likely.",
    flag_values=FLAGS,
)
flags.DEFINE_multi_string(
    "exclude", None, "fnmatch pattern of audio files to leave out (repeatable).", flag_values=FLAGS
)
flags.DEFINE_integer("seed", 1234, "Seed: the same seed writes the same set.", flag_values=FLAGS)
flags.DEFINE_enum("subtype", "PCM_16", ["PCM_16", "PCM_24", "FLOAT"], "WAV subtype.", flag_values=FLAGS)


def main(argv):
    if len(argv) > 1:
        print(f"{PROG}: usage error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    for name in ("speech", "noise", "output_dir"):
        if not FLAGS[name].value:
            print(f"{PROG}: usage error: --{name} is required", file=sys.stderr)
            return 2
    if FLAGS.reverb_prob > 0 and not FLAGS.rir:
        print(f"{PROG}: usage error: --reverb_prob > 0 needs --rir", file=sys.stderr)
        return 2
    from keras_dccrn import data

    seconds = (
        FLAGS.min_seconds
        if FLAGS.min_seconds == FLAGS.max_seconds
        else (FLAGS.min_seconds, FLAGS.max_seconds)
    )
    try:
        config = data.MixtureConfig(
            segment_seconds=seconds,
            snr_range=(FLAGS.snr_min, FLAGS.snr_max),
            level_range=(FLAGS.level_min, FLAGS.level_max),
            reverb_prob=FLAGS.reverb_prob,
            reverb_target=FLAGS.reverb_target,
            noise_sampling=FLAGS.noise_sampling,
        )
        rows = data.write_pairs(
            FLAGS.output_dir,
            FLAGS.speech,
            FLAGS.noise,
            FLAGS.rir,
            config=config,
            num_examples=FLAGS.num_examples,
            seed=FLAGS.seed,
            subtype=FLAGS.subtype,
            exclude=FLAGS.exclude or (),
        )
    except ValueError as exc:  # bad settings or no usable audio: one line
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    reverberant = sum(1 for row in rows if row.get("rir_file"))
    print(f"Wrote {len(rows)} pairs ({reverberant} reverberant) to {FLAGS.output_dir}")
    skipped = data.skipped_files()
    if skipped:
        print(f"Skipped {len(skipped)} unusable file(s); see the warnings above.")
    return 0


def run():
    app.run(main, flags_parser=cli.flags_parser(FLAGS, PROG, __doc__))


if __name__ == "__main__":
    run()
