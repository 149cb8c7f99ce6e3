r"""Scans audio folders/globs/manifests once into a manifest with durations.

Usage:

    python -m trainers.prepare \
        --inputs=/data/dns/clean,/data/extra/**/*.flac \
        --output=/data/manifests/clean_train.csv

Writes a CSV (``path,duration,kind``) or JSON-lines (``{"path": ..., "duration": ...,
"kind": ...}``) manifest, chosen by the extension of ``--output``; files inside the
manifest's folder are stored with relative paths (others absolute), durations in
seconds, ``kind`` from ``--kind`` (speech/noise/rir, so several manifests can be
concatenated and filtered with ``manifest.csv?kind=noise``). The manifest can then be passed to
``keras_dccrn.data.training_dataset`` in place of the folder, so training
starts without scanning hundreds of thousands of files.

Every file it cannot use is skipped and reported with the reason (unreadable,
empty, and with ``--verify`` (default) NaN/infinite or silent content, or
shorter than ``--min_seconds``). The manifest is written atomically, and not
at all when no usable file is found (exit status 1 with a one-line error).
"""

import sys
import time

from absl import app, flags

from keras_dccrn import data
from trainers import cli

FLAGS = flags.FlagValues()

flags.DEFINE_list(
    "inputs", None, "Comma-separated folders, glob patterns or manifests to scan.", flag_values=FLAGS
)
flags.DEFINE_string("output", None, "Manifest to write (.csv or .jsonl).", flag_values=FLAGS)
flags.DEFINE_boolean(
    "verify",
    True,
    "Decode every file to reject NaN/infinite and silent ones (else headers only).",
    flag_values=FLAGS,
)
flags.DEFINE_float("min_seconds", 0.0, "Skip files shorter than this (seconds).", flag_values=FLAGS)
flags.DEFINE_enum(
    "kind",
    "speech",
    ["speech", "noise", "rir"],
    "What the files are; stored in a `kind` column of the manifest.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "silence_db",
    -70.0,
    "With --verify, files whose RMS is below this (dBFS) are silent (RIRs: only all-zero ones).",
    flag_values=FLAGS,
)
flags.DEFINE_integer("num_workers", 2, "Threads used to read and check files.", flag_values=FLAGS)
flags.mark_flags_as_required(["inputs", "output"], flag_values=FLAGS)


def prepare(inputs, output, verify=True, min_seconds=0.0, silence_db=-70.0, num_workers=2, kind="speech"):
    """Scans ``inputs`` and writes the manifest ``output``.

    RIRs (``kind="rir"``) are quiet by nature (a short direct path and a
    decaying tail), so for them only all-zero files count as silent.

    Returns:
        ``(entries, skipped)``: the ``(path, duration)`` pairs written and
        the ``(path, reason)`` pairs skipped.

    Raises:
        ValueError: an input does not exist, the output extension is not
            supported, or no usable file was found.
    """
    if not output.lower().endswith((".csv", ".tsv", ".jsonl", ".ndjson", ".json")):
        raise ValueError(f"{output}: manifest must end with .csv or .jsonl")
    data.reset_skipped_files()
    if kind == "rir":
        silence_db = None
    entries, seen = [], set()
    for spec in inputs:
        for path, duration in data.find_audio(
            spec, verify=verify, silence_db=silence_db, num_workers=num_workers
        ):
            if path in seen:
                continue
            seen.add(path)
            if duration < min_seconds:
                data.record_skipped(path, f"too short ({duration:.3f} s < {min_seconds:g} s)")
                continue
            entries.append((path, duration))
    skipped = data.skipped_files()
    if not entries:
        raise ValueError(
            f"no usable audio in {', '.join(inputs)} ({len(skipped)} file(s) skipped); nothing written"
        )
    data.write_manifest(output, entries, columns={"kind": kind})
    return entries, skipped


def main(argv):
    del argv
    start = time.time()
    try:
        entries, skipped = prepare(
            FLAGS.inputs,
            FLAGS.output,
            verify=FLAGS.verify,
            min_seconds=FLAGS.min_seconds,
            silence_db=FLAGS.silence_db,
            num_workers=FLAGS.num_workers,
            kind=FLAGS.kind,
        )
    except (ValueError, OSError) as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 1
    hours = sum(d for _, d in entries) / 3600.0
    print(f"Wrote {FLAGS.output}: {len(entries)} files, {hours:.3f} h ({time.time() - start:.1f} s).")
    if skipped:
        print(f"Skipped {len(skipped)} file(s):")
        for path, reason in skipped:
            print(f"  {path}: {reason}")
    return 0


def run():
    """Console-script entry point."""
    app.run(main, flags_parser=cli.flags_parser(FLAGS, "dccrn-prepare", __doc__))


if __name__ == "__main__":
    run()
