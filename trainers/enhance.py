r"""dccrn-enhance: denoise audio files with a trained DCCRN / Distil-DCCRN model.

Usage::

    dccrn-enhance --input noisy.wav --output enhanced.wav      # the shipped student
    dccrn-enhance noisy.wav enhanced.wav                       # the same, positional
    dccrn-enhance --model student.keras --input noisy.wav --output enhanced.wav
    dccrn-enhance --model export/saved_model --input recordings/ --output enhanced/
    dccrn-enhance --model student.tflite --input 'calls/**/*.flac' --output enhanced/

``INPUT OUTPUT`` as two positional arguments stand for ``--input`` and
``--output`` (not both forms at once). ``--input`` is a file, a directory (processed recursively; the tree is mirrored
under ``--output``) or a quoted glob pattern (``**`` recurses; paths are
mirrored relative to the pattern's first wildcard-free folder). Any sample
rate and channel count: each channel is resampled to 16 kHz, enhanced
separately and resampled back; the output keeps the input's rate, channels,
format and subtype. A channel whose level is outside the models' training
range (RMS -35 to -15 dBFS) is scaled into it before the model and back after
it, so quiet recordings are enhanced as well as the training levels
(``--nonormalize_level`` turns this off). Long files are streamed in ``--chunk_seconds`` windows
(bounded memory; at most 120 s per window); a streaming ``.tflite`` model
carries its state across the chunks instead (no context, the whole-file
output). MP3/Opus/Vorbis input written
as WAV or FLAC gets PCM_16. Outputs are written to a temporary file
``.tmp-<pid>-*`` and renamed when complete; existing files (including the
input) are only replaced with ``--overwrite``, or left alone and not
counted as failures with ``--skip_existing`` (folder reruns).

Progress goes to stderr: a bar on a terminal, otherwise (a log file) one
line every ``--progress_interval`` seconds naming the file and its share
done.

SIGINT, SIGTERM and SIGHUP remove the output being written and exit with
128 + the signal number after one line; files already finished stay. After
a SIGKILL the temporary file is left, hidden, and removed by the next run
into that folder.

Exit status: 0 every file enhanced (or skipped), 1 some files failed (each
failure is a one-line message naming the file, and a summary lists them), 2
usage error (bad flags, unusable or missing model, nothing to process),
128 + N stopped by signal N.
"""

import glob
import os
import sys
import time

from absl import app, flags

# TensorFlow's oneDNN CPU kernels make a process that enhances many files grow by tens of MB per call
# (measured: +30-60 MB per call for distil_dccrn, +150 MB for dccrn_cl; dccrn-enhance with dccrn_cl ran out
# of 24 GB after ~60 dev-set files) while plain TF kernels stay flat (27% more CPU time for distil_dccrn).
# Batch jobs therefore default to the plain kernels; export TF_ENABLE_ONEDNN_OPTS=1 to override.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from keras_dccrn.errors import UsageError, one_line
from trainers import cli as cli_utils
from trainers.cli import quiet_native_stderr

PROG = "dccrn-enhance"

# Flags live in this entry point's own FlagValues so that several entry points can share a process
# (tests) without clashing flag names; absl's own flags (--verbosity, ...) stay on the global FLAGS.
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "input", None, "Audio file, directory (recursive) or quoted glob pattern.", flag_values=FLAGS
)
flags.DEFINE_string(
    "output",
    None,
    "Output file (file input) or directory (directory/glob input, or file input into a folder).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "model",
    None,
    "A .keras file, a TF SavedModel directory (or TF-Serving dir/<version>/), a .tflite file, or the name "
    "of a model in saved_models/ (default: the shipped Distil-DCCRN student, distil_dccrn).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace existing outputs (and the input itself if output == input).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "skip_existing",
    False,
    "Leave existing outputs alone and go on (folder reruns); not with --overwrite.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "chunk_seconds",
    20.0,
    "Seconds of audio per processing window (bounded memory; at most 120); 0 processes each file whole "
    "(files up to 120 s).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "context_seconds",
    2.0,
    "History fed before each window so chunk borders are seamless (at most 30); streaming .tflite "
    "models need none (their state is carried across chunks).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "normalize_level",
    True,
    "Scale each channel whose level (its RMS, digital silence left out) is outside the models' training range, "
    "-35 to -15 dBFS, into that range before enhancing and back after it (the output keeps the input's "
    "level); --nonormalize_level enhances the audio at its own level.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "threads",
    0,
    "CPU threads: TensorFlow intra-op threads for .keras/SavedModel models, LiteRT threads for .tflite "
    "(0: each library's default, for LiteRT the cores this process may use; 1 for batch jobs that run "
    "one process per core; at most 256).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "progress",
    True,
    "Show progress on stderr: a bar on a terminal, else a line every --progress_interval seconds.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "progress_interval",
    30.0,
    "Seconds between progress lines when stderr is not a terminal (1 to 3600).",
    flag_values=FLAGS,
)


def parse_flags(argv, flag_values=FLAGS, prog=PROG, doc=__doc__):
    """absl ``flags_parser`` of this app (see :func:`trainers.cli.parse_flags`)."""
    return cli_utils.parse_flags(argv, flag_values, prog, doc)


# Size-like flags: (lower, upper, unit). The window limits are the library's (keras_dccrn.runtime).
def _limits():
    from keras_dccrn.runtime import MAX_CHUNK_SECONDS, MAX_CONTEXT_SECONDS

    return {
        "chunk_seconds": (0, MAX_CHUNK_SECONDS, "seconds"),
        "context_seconds": (0, MAX_CONTEXT_SECONDS, "seconds"),
        "threads": (0, 256, "threads"),
        "progress_interval": (1, 3600, "seconds"),
    }


class ProgressBar:
    """Progress of the file being enhanced, on stderr; one object serves a whole run (:meth:`begin` per file).

    On a terminal: a bar redrawn at most 10 times a second. Otherwise (a log, a pipe): one line
    ``<label>: 42.0% of 1800 s, eta 95 s`` every ``interval`` seconds of the run, whatever file it is
    in, so a long file or a long folder run shows that it progresses without filling the log.
    """

    def __init__(self, label="", enabled=True, stream=None, interval=30.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = float(interval)
        self.last_line = time.monotonic()  # time of the last non-terminal line (or of the start)
        self.begin(label)

    def begin(self, label, seconds=None):
        """Starts a new file; ``seconds`` (its duration) is shown in the non-terminal lines."""
        label = cli_utils.printable(label)
        self.label = label if len(label) <= 40 or not self.tty else "..." + label[-37:]
        self.seconds = seconds
        self.last = 0.0
        self.start = time.monotonic()
        return self

    def __call__(self, done, total):
        if not self.enabled:
            return
        now = time.monotonic()
        frac = done / total if total else 1.0
        rate = done / max(now - self.start, 1e-6)
        eta = (total - done) / rate if rate > 0 else 0.0
        if not self.tty:
            if done >= total or now - self.last_line < self.interval:
                return
            self.last_line = now
            length = f" of {self.seconds:.0f} s" if self.seconds else ""
            self.stream.write(f"{self.label}: {100 * frac:.1f}%{length}, eta {eta:.0f} s\n")
            self.stream.flush()
            return
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% eta {eta:5.0f}s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _has_magic(path):
    return any(c in path for c in "*?[")


def _glob_base(pattern):
    """The wildcard-free leading folder of a glob pattern."""
    parts = []
    for part in pattern.split(os.sep):
        if _has_magic(part):
            break
        parts.append(part)
    base = os.sep.join(parts)
    return base if pattern.startswith(os.sep) or base else "."


def plan_jobs(input_spec, output):
    """``[(input_path, output_path)]`` for ``--input``/``--output``; raises :class:`UsageError`."""
    from keras_dccrn.atomic import is_temp_name
    from keras_dccrn.data.files import audio_files, readable_audio_extensions

    if _has_magic(input_spec):
        base = _glob_base(input_spec)
        matches = sorted(
            p
            for p in glob.glob(input_spec, recursive=True)
            if not os.path.isdir(p) and not any(is_temp_name(part) for part in p.split(os.sep))
        )
        if not matches:
            raise UsageError(f"{input_spec}: no files match the pattern")
        if os.path.isfile(output):
            raise UsageError(f"{output}: --output must be a directory for a glob --input")
        return [(p, os.path.join(output, os.path.relpath(p, base))) for p in matches]
    if os.path.isdir(input_spec):
        if os.path.isfile(output):
            raise UsageError(f"{output}: --output must be a directory for a directory --input")
        out_real = os.path.realpath(output)
        same_tree = out_real == os.path.realpath(input_spec)
        extensions = readable_audio_extensions()
        # Never descend into the output tree when it lies inside the input tree.
        paths = audio_files(
            input_spec,
            extensions,
            prune=None if same_tree else lambda d: os.path.realpath(d) == out_real,
            follow_links=False,
        )
        jobs = [(p, os.path.join(output, os.path.relpath(p, input_spec))) for p in paths]
        if not jobs:
            raise UsageError(
                f"{input_spec}: no audio files (extensions: {', '.join(sorted(extensions))}) in this directory"
            )
        return jobs
    # A single file (a missing one is reported as that file's failure).
    if os.path.isdir(output) or output.endswith(os.sep):
        output = os.path.join(output, os.path.basename(input_spec))
    return [(input_spec, output)]


def take_positional_paths(args):
    """Sets ``--input``/``--output`` from ``INPUT OUTPUT`` positionals; returns a problem or ``None``."""
    if not args:
        return None
    if len(args) != 2:
        return f"expected INPUT OUTPUT, received {len(args)} positional arguments {args}"
    if FLAGS["input"].value or FLAGS["output"].value:
        return f"positional INPUT OUTPUT {args} given together with --input/--output"
    FLAGS.input, FLAGS.output = args
    return None


def main(argv):
    """Runs the enhancer with the parsed ``FLAGS``; returns the exit status."""
    problem = take_positional_paths(argv[1:])
    if problem:
        print(cli_utils.printable(f"{PROG}: usage error: {problem} (see --help)"), file=sys.stderr)
        return 2
    for name in ("input", "output"):
        if not FLAGS[name].value:
            print(f"{PROG}: usage error: --{name} is required (see --help)", file=sys.stderr)
            return 2
    if FLAGS.overwrite and FLAGS.skip_existing:
        print(f"{PROG}: usage error: --overwrite and --skip_existing exclude each other", file=sys.stderr)
        return 2
    with quiet_native_stderr():
        from keras_dccrn import runtime
        from keras_dccrn.audio import AudioError
    problem = cli_utils.check_bounds(FLAGS, _limits())
    if problem:
        print(f"{PROG}: usage error: {problem}", file=sys.stderr)
        return 2
    if FLAGS.threads and not runtime.configure_threads(FLAGS.threads):
        print(f"{PROG}: warning: --threads ignored (TensorFlow already initialised)", file=sys.stderr)
    with quiet_native_stderr():
        try:
            jobs = plan_jobs(FLAGS.input, FLAGS.output)
            enhancer = runtime.load_enhancer(FLAGS.model)
        except (UsageError, runtime.ModelLoadError) as exc:
            usage_error = exc
        else:
            usage_error = None
    if usage_error is not None:
        print(cli_utils.printable(f"{PROG}: usage error: {usage_error}"), file=sys.stderr)
        return 2
    return enhance_jobs(enhancer, jobs, AudioError)


def enhance_jobs(enhancer, jobs, audio_error):
    """Enhances each ``(input, output)``; prints one line per failure and a summary; returns the status."""
    from keras_dccrn import runtime
    from keras_dccrn.atomic import remove_stale_temps

    say = cli_utils.printable
    for folder in sorted({os.path.dirname(os.path.abspath(dst)) for _, dst in jobs}):
        remove_stale_temps(folder)  # leftovers of a killed earlier run (also when every file is skipped)
    chunk = FLAGS.chunk_seconds or None
    progress = ProgressBar(enabled=FLAGS.progress, interval=FLAGS.progress_interval)
    failures, skipped = [], 0
    for i, (src, dst) in enumerate(jobs):
        if FLAGS.skip_existing and os.path.exists(dst):
            skipped += 1
            continue
        label = f"[{i + 1}/{len(jobs)}] {src}" if len(jobs) > 1 else src
        try:
            info = runtime.audio_info(src)
            progress.begin(label, info.frames / info.samplerate if info.samplerate else None)
            runtime.enhance_file(
                enhancer,
                src,
                dst,
                chunk_seconds=chunk,
                context_seconds=FLAGS.context_seconds,
                overwrite=FLAGS.overwrite,
                progress=progress,
                level_range=runtime.LEVEL_RANGE_DBFS if FLAGS.normalize_level else None,
            )
        except audio_error as exc:
            message = str(exc)
        except Exception as exc:  # anything else still gets one line naming the file
            message = f"{src}: {one_line(exc)}"
        else:
            print(say(f"{src} -> {dst}"))
            continue
        failures.append(message)
        print(say(f"error: {message}"), file=sys.stderr)
    if len(jobs) > 1 or failures:
        ok = len(jobs) - len(failures) - skipped
        skip = f"; {skipped} skipped (output exists)" if FLAGS.skip_existing else ""
        print(f"enhanced {ok} of {len(jobs)} file(s){skip}; {len(failures)} failed", file=sys.stderr)
        for message in failures:
            print(say(f"  failed: {message}"), file=sys.stderr)
    return 1 if failures else 0


def cli(argv):
    """Parses ``argv`` (program name first) and runs :func:`main`; returns the exit status (tests)."""
    return main(parse_flags(argv))


def run():
    """Console-script entry point ``dccrn-enhance``."""
    app.run(cli_utils.exit_on_signals(main, PROG), flags_parser=parse_flags)


if __name__ == "__main__":
    run()
