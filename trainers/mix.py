"""``dccrn-mix``: write a fixed set of noisy/clean WAV pairs (a development or test set).

The pairs are synthesised exactly like the training examples (``keras_dccrn.data``) but fixed by
``--seed``: rerunning the command writes the same files. Layout::

    <output_dir>/noisy/NNNN.wav   <output_dir>/clean/NNNN.wav   <output_dir>/mixtures.csv

The CSV lists each example's SNR, level, noise file and offset, RIR and target. Example (the
development set of the shipped models)::

    dccrn-mix --flagfile=flags/devset.cfg --output_dir=data/devset

The set is written into a temporary folder ``<output_dir>/.tmp-<pid>-*`` and moved into place when
complete (``mixtures.csv`` last). SIGINT, SIGTERM and SIGHUP remove it and exit with 128 + the signal
number after one line; after a SIGKILL it is left (no scan of this project reads ``.tmp-`` folders)
and removed by the next run into the same ``--output_dir``. Sizes are bounded (``--num_examples`` at
most 100000, ``--min_seconds``/``--max_seconds`` at most 600) and the set's size is checked against the
free disk space before anything is written.
"""

import os
import shutil
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
flags.DEFINE_integer("num_examples", 200, "Number of pairs (1 to 100000).", flag_values=FLAGS)
flags.DEFINE_float("min_seconds", 4.0, "Shortest example (seconds, 0.1 to 600).", flag_values=FLAGS)
flags.DEFINE_float(
    "max_seconds",
    10.0,
    "Longest example (seconds, at most 600); equal to --min_seconds for fixed length.",
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

LIMITS = {
    "num_examples": (1, 100_000, "pairs"),
    "min_seconds": (0.1, 600, "seconds"),
    "max_seconds": (0.1, 600, "seconds"),
}
_BYTES_PER_SAMPLE = {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}


def _existing_parent(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def disk_problem(output_dir, num_examples, max_seconds, subtype, sample_rate=16000):
    """A one-line reason why the set would not fit on the disk of ``output_dir``, or None."""
    need = num_examples * 2 * (max_seconds * sample_rate * _BYTES_PER_SAMPLE[subtype] + 44)
    free = shutil.disk_usage(_existing_parent(output_dir)).free
    if need <= free:
        return None
    return (
        f"{output_dir}: {num_examples} pairs of up to {max_seconds:g} s need up to {need / 1e9:.1f} GB; "
        f"only {free / 1e9:.1f} GB free"
    )


def _move_into(stage, output_dir, csv_name="mixtures.csv"):
    """Moves the finished set from ``stage`` into ``output_dir`` (replacing same-named files), CSV last."""
    for kind in ("noisy", "clean"):
        os.makedirs(os.path.join(output_dir, kind), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(stage, kind))):
            os.replace(os.path.join(stage, kind, name), os.path.join(output_dir, kind, name))
    os.replace(os.path.join(stage, csv_name), os.path.join(output_dir, csv_name))


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
    problem = cli.check_bounds(FLAGS, LIMITS)
    if problem is None and FLAGS.min_seconds > FLAGS.max_seconds:
        problem = f"--min_seconds={FLAGS.min_seconds:g} is above --max_seconds={FLAGS.max_seconds:g}"
    if problem is None:
        problem = disk_problem(FLAGS.output_dir, FLAGS.num_examples, FLAGS.max_seconds, FLAGS.subtype)
    if problem:
        print(cli.printable(f"{PROG}: usage error: {problem}"), file=sys.stderr)
        return 2
    from keras_dccrn import data
    from keras_dccrn.atomic import make_temp, remove_temp

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
        created = not os.path.exists(FLAGS.output_dir)
        stage = make_temp(FLAGS.output_dir, directory=True)
        try:
            rows = data.write_pairs(
                stage,
                FLAGS.speech,
                FLAGS.noise,
                FLAGS.rir,
                config=config,
                num_examples=FLAGS.num_examples,
                seed=FLAGS.seed,
                subtype=FLAGS.subtype,
                exclude=FLAGS.exclude or (),
            )
            _move_into(stage, FLAGS.output_dir)
        finally:
            remove_temp(stage)
            if created and os.path.isdir(FLAGS.output_dir) and not os.listdir(FLAGS.output_dir):
                os.rmdir(FLAGS.output_dir)
    except ValueError as exc:  # bad settings or no usable audio: one line
        print(cli.printable(f"{PROG}: error: {exc}"), file=sys.stderr)
        return 2
    reverberant = sum(1 for row in rows if row.get("rir_file"))
    print(cli.printable(f"Wrote {len(rows)} pairs ({reverberant} reverberant) to {FLAGS.output_dir}"))
    skipped = data.skipped_files()
    if skipped:
        print(f"Skipped {len(skipped)} unusable file(s); see the warnings above.")
    return 0


def run():
    app.run(cli.exit_on_signals(main, PROG), flags_parser=cli.flags_parser(FLAGS, PROG, __doc__))


if __name__ == "__main__":
    run()
