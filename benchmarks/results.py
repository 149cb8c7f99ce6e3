r"""Results page: every trained system on the development set, next to the papers' published figures.

    python benchmarks/results.py --scores=results/devset \
        --run=teacher=/work/runs/uformer --run=dccrn_cl=/work/runs/dccrn_cl \
        --run=student_nokd=/work/runs/student_nokd --run=student_atkl=/work/runs/student_atkl \
        --audio=noisy=/work/runs/devset/noisy --audio=clean=/work/runs/devset/clean \
        --audio=student_atkl=enhanced/student_atkl ... --output=docs/results.md

Inputs:

* ``--scores``: a ``dccrn-evaluate`` output folder that scored every system (``per_file.csv``);
  the table shows, per system, the mean over files of each metric (the means of its ``summary.md``).
* ``--run name=run_dir`` (repeatable): the training run of the system ``name`` (same name as in
  the scores): parameters and GMACs per second of audio are counted on its ``model.keras``
  (``keras_dccrn.profiling``; the preset of its ``config.json`` when the run has not finished),
  the training budget and the validation SI-SNR curve are read from the run directory
  (``keras_dccrn.training.run_dir``: checkpoint counters, TensorBoard logs).
  The scores are read with :func:`keras_dccrn.evaluation.read_scores`.
* ``--audio name=folder`` (repeatable, optional): audio folders for the spectrogram figure (``clean``
  and ``noisy`` plus any systems); without them, the spectrogram figure of the evaluate run is
  copied.

Writes ``--output`` (Markdown, starting with the command that generated it) and the figures in
``<output dir>/results/``; prints the main table.
"""

import math
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import flags  # noqa: E402

from benchmarks import harness  # noqa: E402
from keras_dccrn.errors import UsageError  # noqa: E402
from keras_dccrn.training import run_dir as run_files  # noqa: E402
from trainers import cli  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("scores", None, "dccrn-evaluate output folder (per_file.csv).", flag_values=FLAGS)
flags.DEFINE_multi_string(
    "run", [], "name=run_dir of a system's training run (repeatable).", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "audio", [], "name=folder for the spectrogram figure (repeatable).", flag_values=FLAGS
)
flags.DEFINE_string(
    "spectrogram_file", None, "Relative path (no extension) of the file to draw.", flag_values=FLAGS
)
flags.DEFINE_string("headline", "student_atkl,student_nokd", "better,worse system names.", flag_values=FLAGS)
flags.DEFINE_float("macs_seconds", 10.0, "Audio length the MACs are counted on.", flag_values=FLAGS)
flags.DEFINE_string("output", "docs/results.md", "Markdown page to write.", flag_values=FLAGS)

# (column in per_file.csv, header); the table of the Distil-DCCRN paper reports these.
TABLE_COLUMNS = [
    ("pesq_wb", "PESQ-WB"),
    ("pesq_nb", "PESQ-NB"),
    ("stoi", "STOI"),
    ("si_snr", "SI-SNR (dB)"),
    ("dnsmos_sig", "DNSMOS SIG"),
    ("dnsmos_bak", "DNSMOS BAK"),
    ("dnsmos_ovrl", "DNSMOS OVRL"),
]

# Published figures, only as found in texts retrieved with this project's search tool (abstracts; the
# papers' result tables could not be retrieved). Each entry: system, what the source says, test set, URL.
PUBLISHED = [
    (
        "DCCRN (Hu et al., Interspeech 2020)",
        "3.7M parameters; ranked first in the real-time track of the Interspeech 2020 DNS Challenge (MOS)",
        "Interspeech 2020 DNS Challenge",
        # abstract, retrieved from this page
        "https://deep.ai/publication/dccrn-deep-complex-convolution-recurrent-network-for-phase-aware-speech-enhancement",
    ),
    (
        "Uformer (Fu et al., ICASSP 2022)",
        "DNSMOS 3.6032 (the abstract does not say which DNSMOS score)",
        "blind test set of the Interspeech 2021 DNS Challenge",
        # abstract, retrieved from this page
        "https://www.paperswithcode.com/paper/uformer-a-unet-based-dilated-complex-real",
    ),
    (
        "Distil-DCCRN (Han et al., IEEE SPL 2024)",
        "30% of the parameters of DCCRN; outperforms DCCRN in PESQ and SI-SNR and is comparable in DNSMOS",
        "DNS Challenge test set",
        # abstract, retrieved from this page (the per-metric table of the paper was not in the retrieved text)
        "https://arxiv.org/html/2408.04267v1",
    ),
]


def parse_pairs(specs, flag):
    """``[(name, folder)]`` of ``--<flag>=name=folder`` values with unique names."""
    pairs = cli.named_folders(specs, flag)
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise UsageError(f"--{flag} names must be unique; received {names}")
    return pairs


def run_profile(run_dir, seconds):
    """Profile of the run's model.keras (or of its preset when unfinished) and a note."""
    from keras_dccrn.runtime import ModelLoadError

    path = os.path.join(run_dir, run_files.MODEL_FILE)
    try:
        if os.path.isfile(path):
            model, _ = run_files.load_float32_model(path)
            note = ""
        else:
            model = run_files.model_from_config(run_files.read_run(run_dir)["config"])
            note = "no model.keras yet (unfinished run): architecture counted from its preset"
    except (ModelLoadError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    from keras_dccrn.profiling import model_profile

    return model_profile(model, seconds), note


def _fmt(value, digits):
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


KD_LABELS = {"at_kl": "AT-KL", "at": "AT", "kl": "KL", "output": "output KD", "none": "no-KD"}


def system_label(name, run):
    """``"AT-KL (student_atkl)"`` from the run's training objective; the bare name without a run."""
    if run is None:
        return name
    if run["kind"] == "distill":
        return f"{KD_LABELS.get(run['config'].get('kd_mode'), run['config'].get('kd_mode'))} ({name})"
    return f"no-KD ({name})" if run["preset"] and "uformer" not in run["preset"] else name


def headline(rows, systems, better, worse, labels=None):
    """One sentence comparing two systems by PESQ-WB and SI-SNR (paired over the files both scored)."""
    from keras_dccrn.evaluation import confidence_interval

    labels = labels or {}
    title = f"{labels.get(better, better)} vs {labels.get(worse, worse)}"
    missing = [s for s in (better, worse) if s not in systems]
    if missing:
        return f"{title}: not computed (not in the scores: {', '.join(missing)})."
    parts, signs = [], []
    for column, label, unit in (("pesq_wb", "PESQ-WB", ""), ("si_snr", "SI-SNR", " dB")):
        a = {r["file"]: r[column] for r in rows if r["system"] == better and column in r}
        b = {r["file"]: r[column] for r in rows if r["system"] == worse and column in r}
        diffs = [a[f] - b[f] for f in sorted(set(a) & set(b)) if math.isfinite(a[f]) and math.isfinite(b[f])]
        mean, half, n = confidence_interval(diffs)
        if n == 0:
            parts.append(f"{label} n/a")
            continue
        ci = "" if math.isnan(half) else f" (95% CI of the paired per-file difference ±{half:.3f}, n={n})"
        parts.append(f"{label} {mean:+.3f}{unit}{ci}")
        signs.append(mean > 0)
    verdict = ""
    if len(signs) == 2:
        verdict = (
            f" {better} is better on both."
            if all(signs)
            else f" {better} is not better on either."
            if not any(signs)
            else " Mixed result."
        )
    return f"{title}: " + ", ".join(parts) + "." + verdict


def plot_curves(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for name, run in runs:
        curve = run["val_curve"]
        if curve:
            ax.plot([s for s, _ in curve], [v for _, v in curve], marker="o", label=name)
            drawn += 1
    ax.set_xlabel("training step")
    ax.set_ylabel("validation SI-SNR (dB)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no validation logged yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    from keras_dccrn.evaluation import save_figure

    save_figure(fig, path)
    plt.close(fig)
    return drawn


def spectrogram_figure(audio, scores_dir, key, path):
    """Draws noisy / systems / clean of one file; returns a description of what was drawn."""
    from keras_dccrn.data.files import readable_audio_extensions
    from keras_dccrn.evaluation import plot_spectrograms, scan

    if key is not None:
        key = os.path.splitext(key)[0].replace(os.sep, "/")
    if audio:
        folders = dict(audio)
        if "clean" not in folders:
            raise UsageError("--audio needs clean=<folder> (the references) for the spectrogram figure")
        found = {name: scan(folder, readable_audio_extensions())[0] for name, folder in audio}
        common = sorted(set.intersection(*(set(files) for files in found.values())))
        if key is None:
            if not common:
                raise UsageError("--audio folders share no file (files pair by relative path)")
            key = common[0]
        if key not in common:
            raise UsageError(f"--spectrogram_file {key}: not in every --audio folder")
        order = [n for n in ("noisy",) if n in folders] + [n for n in folders if n not in ("noisy", "clean")]
        named = [(n, found[n][key]) for n in order + ["clean"]]
        plot_spectrograms(named, path, title=key)
        return f"file `{key}`: " + ", ".join(n for n, _ in named)
    pngs = sorted(f for f in os.listdir(scores_dir) if f.startswith("spectrogram_") and f.endswith(".png"))
    if not pngs:
        return None
    shutil.copyfile(os.path.join(scores_dir, pngs[0]), path)
    return f"copied from the evaluate run (`{pngs[0]}`)"


def build_page(args, argv):
    from keras_dccrn import evaluation

    try:
        systems, rows = evaluation.read_scores(args.scores)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    runs = parse_pairs(args.run, "run")
    audio = parse_pairs(args.audio, "audio")
    run_info, profiles, notes = {}, {}, []
    for name, run_dir in runs:
        try:
            run_info[name] = run_files.read_run(run_dir)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        profiles[name], note = run_profile(run_dir, args.macs_seconds)
        if note:
            notes.append(f"{name}: {note}")
        if name not in systems:
            notes.append(f"{name}: not in the scores ({args.scores}/per_file.csv)")
    order = [s for s in ("noisy",) if s in systems] + [n for n, _ in runs]
    order += [s for s in systems if s not in order]
    stats = {s: evaluation.system_scores(rows, s, [c for c, _ in TABLE_COLUMNS]) for s in systems}

    header = (
        "| system | files | parameters (M) | GMACs / s | " + " | ".join(h for _, h in TABLE_COLUMNS) + " |"
    )
    table = [header, "|---|---:|---:|---:|" + "---:|" * len(TABLE_COLUMNS)]
    for name in order:
        mine = stats.get(name, {})
        files = sum(1 for r in rows if r["system"] == name and not r.get("error"))
        prof = profiles.get(name)
        cells = [
            f"{prof['trainable'] / 1e6:.3f}" if prof else "–",
            f"{prof['macs_per_second'] / 1e9:.2f}" if prof else "–",
        ]
        cells += [_fmt(mine[c][0], 3) if c in mine and mine[c][2] else "n/a" for c, _ in TABLE_COLUMNS]
        table.append(f"| {name} | {files} | " + " | ".join(cells) + " |")

    budget = [
        "| run | preset | objective | steps | epochs | batch x segment | audio seen | training time "
        "(sessions) | first to last event | precision | best validation SI-SNR |",
        "|---|---|---|---:|---:|---|---:|---|---|---|---|",
    ]
    for name, _ in runs:
        run = run_info[name]
        config = run["config"]
        best = f"{run['best_val'][0]:.2f} dB (epoch {run['best_val'][1]})" if run["best_val"] else "n/a"
        hours = f"{run['audio_hours']:.2f} h" if run["audio_hours"] is not None else "n/a"
        budget.append(
            f"| {name} | {run['preset']} | {run['objective']} | {run['steps'] if run['steps'] is not None else 'n/a'}"
            f" | {run['epochs_done'] if run['epochs_done'] is not None else 'n/a'} / {config.get('epochs')}"
            f" | {run['batch_size']} x {run['segment_seconds']} s | {hours}"
            f" | {run_files.format_duration(run['wall_active'])} ({len(run['sessions'])})"
            f" | {run_files.format_duration(run['wall_span'])} | {config.get('mixed_precision')} | {best} |"
        )

    out_dir = os.path.dirname(os.path.abspath(args.output))
    fig_dir = os.path.join(out_dir, "results")
    os.makedirs(fig_dir, exist_ok=True)
    curve_png = os.path.join(fig_dir, "validation_si_snr.png")
    plot_curves([(n, run_info[n]) for n, _ in runs], curve_png)
    spec_png = os.path.join(fig_dir, "spectrogram.png")
    spec_what = spectrogram_figure(audio, args.scores, args.spectrogram_file, spec_png)
    better, _, worse = args.headline.partition(",")
    labels = {n: system_label(n, run_info.get(n)) for n in (better, worse)}
    command = harness.command_line(__file__, argv)

    lines = [
        "# Results",
        "",
        "Generated by:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"**Headline** (development set, means over files): {headline(rows, systems, better, worse, labels)}",
        "",
        "## Development set",
        "",
        f"Scores: `dccrn-evaluate` output `{args.scores}`; mean over files (the means of its summary.md; "
        "confidence intervals there). Parameters are trainable weights; GMACs per second of 16 kHz audio "
        f"are counted from the traced graph on {args.macs_seconds:g} s (`keras_dccrn.profiling`).",
        "",
        *table,
        "",
    ]
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    lines += [
        "## Training budget",
        "",
        "Steps and epochs from each run's latest checkpoint; training time is the sum over training "
        "sessions of first to last TensorBoard event in `logs/train` (the span column includes pauses "
        "between sessions); best validation SI-SNR from `logs/validation`.",
        "",
        *budget,
        "",
        f"![validation SI-SNR vs training step](results/{os.path.basename(curve_png)})",
        "",
    ]
    if spec_what:
        lines += [
            f"Spectrograms ({spec_what}):",
            "",
            f"![spectrograms](results/{os.path.basename(spec_png)})",
            "",
        ]
    lines += [
        "## Published figures (different test sets: not comparable with the tables above)",
        "",
        "The papers evaluate on the DNS Challenge test sets after training on the DNS Challenge corpus; "
        "the rows below are quoted from the texts retrieved for this page. The Distil-DCCRN paper's "
        "per-metric table (PESQ, STOI, SI-SNR, DNSMOS of each system): paper figures not retrievable here.",
        "",
        "| system (paper) | published figure | test set | source |",
        "|---|---|---|---|",
        *[f"| {s} | {fig} | {test} | <{url}> |" for s, fig, test, url in PUBLISHED],
        "",
    ]
    return "\n".join(table), "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "results.py", __doc__)
    if status is not None:
        return status
    try:
        if not FLAGS.scores:
            raise UsageError("--scores is required (a dccrn-evaluate output folder)")
        if not os.path.isdir(FLAGS.scores):
            raise UsageError(f"{FLAGS.scores}: no such scores directory")
        table, page = build_page(FLAGS, argv)
    except UsageError as exc:
        print(f"results.py: {exc}", file=sys.stderr)
        return 2
    harness.write_page(FLAGS.output, page)
    print(table)
    print(f"wrote {FLAGS.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
