r"""dccrn-evaluate: score enhanced speech against clean references, several systems side by side.

Usage::

    dccrn-evaluate --clean_dir test/clean --noisy_dir test/noisy \
        --system student=out/student --system teacher=out/teacher --output_dir results/
    dccrn-evaluate --clean_dir test/clean --noisy_dir test/noisy --model student.keras --output_dir results/

Files are paired by their path relative to each folder, without the extension
(``a/b.wav`` in a system folder matches ``a/b.flac`` in ``--clean_dir``);
unmatched files are reported. With ``--model`` the noisy folder is first
enhanced into ``<output_dir>/enhanced/<model_name>/`` and scored as one more
system; with ``--noisy_dir`` the noisy input itself is scored as the system
``noisy`` (and SI-SNR improvements are computed). Audio is scored as 16 kHz
mono (channels averaged). A pair whose lengths differ by at most
``--length_tolerance`` seconds is cut to the shorter file; one that differs
by more is refused (one line, no scores, excluded from the means, counted in
the summary) unless ``--trim_lengths`` allows cutting it.

Needs the ``[eval]`` extra (``pip install -e '.[eval]'``: pystoi for STOI,
speechmos + onnxruntime for DNSMOS, matplotlib for the plots); a missing
package is a one-line usage error naming the extra.

Outputs in ``--output_dir``: ``per_file.csv`` (one row per system and file),
``summary.md`` (mean and 95% confidence interval per system and metric, also
printed), ``distributions.png`` (per-metric box plots per system) and
``spectrogram_<file>.png`` (noisy / systems / clean for ``--spectrogram_file``
or the first paired file).

Outputs are written atomically (temporary ``.tmp-<pid>-*`` file, then
rename); SIGINT, SIGTERM and SIGHUP remove the one being written and exit
with 128 + the signal number after one line.

Exit status: 0 every pair scored, 1 some files could not be read or
enhanced or some pairs were refused, 2 usage error, 128 + N stopped by
signal N.
"""

import math
import os
import sys

from absl import app, flags

# TensorFlow's oneDNN CPU kernels make a process that enhances many files grow by tens of MB per call
# (measured: +30-60 MB per call for distil_dccrn, +150 MB for dccrn_cl; dccrn-enhance with dccrn_cl ran out
# of 24 GB after ~60 dev-set files) while plain TF kernels stay flat (27% more CPU time for distil_dccrn).
# Batch jobs therefore default to the plain kernels; export TF_ENABLE_ONEDNN_OPTS=1 to override.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from keras_dccrn.errors import UsageError, first_line
from trainers import cli as cli_utils
from trainers.cli import quiet_native_stderr
from trainers.enhance import parse_flags

PROG = "dccrn-evaluate"
METRIC_CHOICES = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_snr", "dnsmos"]

FLAGS = flags.FlagValues()
flags.DEFINE_string("clean_dir", None, "Folder of clean reference files (recursive).", flag_values=FLAGS)
flags.DEFINE_multi_string(
    "system",
    [],
    "A system to score, as name=folder (repeat the flag for several systems).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "noisy_dir", None, "Folder of noisy inputs: scored as system 'noisy'; enables SI-SNRi.", flag_values=FLAGS
)
flags.DEFINE_string(
    "model",
    None,
    "Optional model (.keras, SavedModel dir, .tflite or shipped name) run over --noisy_dir first.",
    flag_values=FLAGS,
)
flags.DEFINE_string("model_name", None, "System name of --model (default: its file name).", flag_values=FLAGS)
flags.DEFINE_float(
    "chunk_seconds",
    20.0,
    "Enhancement window for --model (see dccrn-enhance; at most 120, 0: whole files up to 120 s).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "length_tolerance",
    0.05,
    "Seconds a system (or noisy) file may differ in length from its clean reference and still be scored "
    "(cut to the shorter); a larger difference refuses the pair (at most 10).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "trim_lengths",
    False,
    "Score pairs of any length difference, cut to the shorter file (noted in per_file.csv).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "output_dir", None, "Folder for per_file.csv, summary.md and the plots.", flag_values=FLAGS
)
flags.DEFINE_list("metrics", METRIC_CHOICES, f"Metrics, any of {METRIC_CHOICES}.", flag_values=FLAGS)
flags.DEFINE_integer("workers", 1, "Parallel scoring processes (1 to 64).", flag_values=FLAGS)
flags.DEFINE_string(
    "spectrogram_file", None, "Relative path (as in --clean_dir) of the file to plot.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "threads",
    0,
    "CPU threads for --model: TensorFlow intra-op threads, LiteRT threads for .tflite (0: each library's "
    "default, for LiteRT the cores this process may use; at most 256).",
    flag_values=FLAGS,
)

# Python modules of the [eval] extra each metric group needs (matplotlib: the plots, always written).
METRIC_MODULES = {"stoi": ["pystoi"], "estoi": ["pystoi"], "dnsmos": ["speechmos", "onnxruntime"]}


def _limits():
    from keras_dccrn.runtime import MAX_CHUNK_SECONDS

    return {
        "chunk_seconds": (0, MAX_CHUNK_SECONDS, "seconds"),
        "length_tolerance": (0, 10, "seconds"),
        "workers": (1, 64, "processes"),
        "threads": (0, 256, "threads"),
    }


def summary_markdown(rows, systems, columns):
    """Markdown table: one line per system, ``mean ± 95% CI`` per metric."""
    from keras_dccrn import evaluation

    header = "| system | files | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for system in systems:
        mine = [r for r in rows if r["system"] == system]
        scored = sum(1 for r in mine if not r["error"])
        cells = []
        for column in columns:
            mean, half, n = evaluation.confidence_interval([r[column] for r in mine])
            if n == 0:
                cells.append("n/a")
            elif math.isnan(half):
                cells.append(f"{mean:.3f}")
            else:
                cells.append(f"{mean:.3f} ± {half:.3f}" + (f" (n={n})" if n != scored else ""))
        lines.append(f"| {system} | {scored} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_distributions(rows, systems, columns, path):
    import matplotlib

    from keras_dccrn import evaluation

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(columns))
    nrows = math.ceil(len(columns) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns, strict=False):
        data = [[r[column] for r in rows if r["system"] == s and math.isfinite(r[column])] for s in systems]
        ax.boxplot([d if d else [math.nan] for d in data], showmeans=True)
        ax.set_xticks(range(1, len(systems) + 1), systems, rotation=20)
        ax.set_title(column)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    fig.tight_layout()
    evaluation.save_figure(fig, path)
    plt.close(fig)


def _enhance_noisy(noisy_files, clean_files, out_dir):
    """Runs --model over the paired noisy files into ``out_dir``; returns the failure messages."""
    from trainers.enhance import ProgressBar

    progress = ProgressBar()

    with quiet_native_stderr():
        from keras_dccrn import runtime

        if FLAGS.threads:
            runtime.configure_threads(FLAGS.threads)
        enhancer = runtime.load_enhancer(FLAGS.model)
    failures = []
    keys = [k for k in noisy_files if k in clean_files]
    for i, key in enumerate(keys):
        src = noisy_files[key]
        dst = os.path.join(out_dir, os.path.relpath(src, FLAGS.noisy_dir))
        try:
            runtime.enhance_file(
                enhancer,
                src,
                dst,
                chunk_seconds=FLAGS.chunk_seconds or None,
                overwrite=True,
                progress=progress.begin(f"[{i + 1}/{len(keys)}] {src}"),
            )
        except Exception as exc:
            failures.append(str(exc))
            print(cli_utils.printable(f"error: {exc}"), file=sys.stderr)
    return failures


def main(argv):
    """Runs the evaluation with the parsed ``FLAGS``; returns the exit status."""
    try:
        return _main(argv)
    except UsageError as exc:
        print(cli_utils.printable(f"{PROG}: usage error: {exc}"), file=sys.stderr)
        return 2


def _main(argv):
    from keras_dccrn import evaluation

    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}")
    for name in ("clean_dir", "output_dir"):
        if not FLAGS[name].value:
            raise UsageError(f"--{name} is required (see --help)")
    if not os.path.isdir(FLAGS.clean_dir):
        raise UsageError(f"{FLAGS.clean_dir}: --clean_dir does not exist")
    bad = [m for m in FLAGS.metrics if m not in METRIC_CHOICES]
    if bad or not FLAGS.metrics:
        raise UsageError(f"--metrics {FLAGS.metrics}: choose from {METRIC_CHOICES}")
    problem = cli_utils.check_bounds(FLAGS, _limits())
    if problem:
        raise UsageError(problem)
    from keras_dccrn import extras

    needed = ["matplotlib"] + sorted({m for group in FLAGS.metrics for m in METRIC_MODULES.get(group, [])})
    try:
        extras.require(needed, f"{PROG} --metrics={','.join(FLAGS.metrics)} (with its plots)")
    except extras.MissingExtraError as exc:
        raise UsageError(str(exc)) from None
    if FLAGS.noisy_dir and not os.path.isdir(FLAGS.noisy_dir):
        raise UsageError(f"{FLAGS.noisy_dir}: --noisy_dir does not exist")
    if FLAGS.model and not FLAGS.noisy_dir:
        raise UsageError("--model needs --noisy_dir (the inputs to enhance)")
    if FLAGS.noisy_dir and os.path.realpath(FLAGS.output_dir) == os.path.realpath(FLAGS.noisy_dir):
        raise UsageError("--output_dir must differ from --noisy_dir")
    systems = cli_utils.named_folders(FLAGS.system, "system")
    if FLAGS.noisy_dir:
        systems.insert(0, ("noisy", FLAGS.noisy_dir))
    model_name = None
    if FLAGS.model:
        model_name = FLAGS.model_name or os.path.splitext(os.path.basename(os.path.normpath(FLAGS.model)))[0]
        systems.append((model_name, os.path.join(FLAGS.output_dir, "enhanced", model_name)))
    names = [name for name, _ in systems]
    if not systems:
        raise UsageError("nothing to score: give --system name=folder, --noisy_dir or --model")
    if len(set(names)) != len(names):
        raise UsageError(f"system names must be unique; received {names}")

    with quiet_native_stderr():
        from keras_dccrn import metrics as M
        from keras_dccrn import runtime
    from keras_dccrn.atomic import write_text
    from keras_dccrn.data.files import readable_audio_extensions

    extensions = readable_audio_extensions()
    groups = [m for m in METRIC_CHOICES if m in FLAGS.metrics]
    columns = M.metric_columns(groups)
    os.makedirs(FLAGS.output_dir, exist_ok=True)

    report = []  # lines about unmatched / duplicate files
    clean_files, dup = evaluation.scan(FLAGS.clean_dir, extensions)
    if not clean_files:
        raise UsageError(f"{FLAGS.clean_dir}: no audio files")
    report += [f"duplicate name ignored: {p}" for p in dup]
    noisy_files = {}
    if FLAGS.noisy_dir:
        noisy_files, _ = evaluation.scan(FLAGS.noisy_dir, extensions)
    failures = []
    if FLAGS.model:
        try:
            failures += _enhance_noisy(noisy_files, clean_files, systems[-1][1])
        except runtime.ModelLoadError as exc:
            raise UsageError(str(exc)) from None

    per_system = {}
    for name, folder in systems:
        files, dup = evaluation.scan(folder, extensions) if os.path.isdir(folder) else ({}, [])
        per_system[name] = files
        report += [f"{name}: duplicate name ignored: {p}" for p in dup]
        extra = sorted(set(files) - set(clean_files))
        missing = sorted(set(clean_files) - set(files))
        if extra:
            report.append(f"{name}: {len(extra)} file(s) without a clean reference: " + _few(extra))
        if missing:
            report.append(f"{name}: {len(missing)} clean file(s) without a {name} file: " + _few(missing))
    for line in report:
        print(cli_utils.printable(f"warning: {line}"), file=sys.stderr)

    options = dict(length_tolerance=FLAGS.length_tolerance, trim=FLAGS.trim_lengths)
    tasks = []
    for key in sorted(clean_files):
        mine = [(name, per_system[name][key]) for name, _ in systems if key in per_system[name]]
        if mine:
            tasks.append((key, clean_files[key], noisy_files.get(key), mine, groups, options))
    if not tasks:
        raise UsageError("no system file matches a clean reference (files pair by relative path)")
    spectrogram_key = _spectrogram_key(FLAGS.spectrogram_file, tasks)
    rows = [row for result in evaluation.run_tasks(tasks, FLAGS.workers) for row in result]
    order = {name: i for i, name in enumerate(names)}
    rows.sort(key=lambda r: (order[r["system"]], r["file"]))
    refused = [r for r in rows if r["error"].startswith(evaluation.LENGTH_MISMATCH)]
    for row in rows:
        if row["error"]:
            failures.append(f"{row['system']}: {row['error']}")
            print(cli_utils.printable(f"error: {row['system']}: {row['error']}"), file=sys.stderr)
    if refused:
        print(
            f"{len(refused)} pair(s) refused: lengths differ by more than --length_tolerance="
            f"{FLAGS.length_tolerance:g} s (pass --trim_lengths to score them cut to the shorter file)",
            file=sys.stderr,
        )

    csv_path = os.path.join(FLAGS.output_dir, "per_file.csv")
    evaluation.write_scores(csv_path, rows, columns)
    table = summary_markdown(rows, names, columns)
    notes = sum(1 for r in rows if r["notes"])
    text = "\n".join(
        [
            "# Evaluation summary",
            "",
            f"Clean references: `{FLAGS.clean_dir}` ({len(clean_files)} files). Values: mean ± half width of "
            "the 95% t confidence interval over files (NaN scores excluded; n given when it differs).",
            "",
            table,
            "",
        ]
        + (
            [f"Rows with notes (metric failures, length cuts): {notes}; see per_file.csv.", ""]
            if notes
            else []
        )
        + (
            [
                f"Refused pairs (lengths differ by more than {FLAGS.length_tolerance:g} s; not scored, not "
                f"in the means): {len(refused)}; see the failures below.",
                "",
            ]
            if refused
            else []
        )
        + (["## Unmatched files", ""] + [f"- {line}" for line in report] + [""] if report else [])
        + (["## Failures", ""] + [f"- {line}" for line in failures] + [""] if failures else [])
    )
    write_text(os.path.join(FLAGS.output_dir, "summary.md"), text)
    print(cli_utils.printable(table))

    plot_distributions(rows, names, columns, os.path.join(FLAGS.output_dir, "distributions.png"))
    key = spectrogram_key
    task = next(t for t in tasks if t[0] == key)
    named = ([("noisy", task[2])] if task[2] and "noisy" not in dict(task[3]) else []) + list(task[3])
    named.append(("clean", task[1]))
    try:
        evaluation.plot_spectrograms(
            named,
            os.path.join(FLAGS.output_dir, f"spectrogram_{key.replace('/', '_')}.png"),
            title=cli_utils.printable(key),
        )
    except Exception as exc:
        first = first_line(exc)
        failures.append(f"spectrogram of {key}: {first}")
        print(cli_utils.printable(f"error: spectrogram of {key}: {first}"), file=sys.stderr)
    print(
        cli_utils.printable(f"wrote {csv_path}, summary.md and plots to {FLAGS.output_dir}"), file=sys.stderr
    )
    return 1 if failures else 0


def _few(keys, limit=10):
    return ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _spectrogram_key(requested, tasks):
    if not requested:
        return tasks[0][0]
    key = os.path.splitext(requested)[0].replace(os.sep, "/")
    if not any(t[0] == key for t in tasks):
        raise UsageError(f"--spectrogram_file {requested}: not among the paired files")
    return key


def _parse(argv):
    return parse_flags(argv, flag_values=FLAGS, prog=PROG, doc=__doc__)


def cli(argv):
    """Parses ``argv`` (program name first) and runs :func:`main`; returns the exit status (tests)."""
    return main(_parse(argv))


def run():
    """Console-script entry point ``dccrn-evaluate``."""
    app.run(cli_utils.exit_on_signals(main, PROG), flags_parser=_parse)


if __name__ == "__main__":
    run()
