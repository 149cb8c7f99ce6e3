r"""Results page: every trained system on the development set, next to the peers and the papers' figures.

    python benchmarks/results.py --scores=docs/benchmarks/peers_per_file.csv \
        --scores=/work/runs/scores/student_nokd_step18000 \
        --run=teacher=/work/runs/teacher --run=student_nokd=/work/runs/student_nokd \
        --default=distil_dccrn --peers=nsnet2,rnnoise,dtln \
        --headline=student_atkl,student_nokd --output=docs/results.md

Inputs:

* ``--scores`` (repeatable): ``dccrn-evaluate`` output folders (``per_file.csv``) or CSV files of the
  same format (``benchmarks/peers.py --per_file``), all on the same development set; a system already
  read from an earlier source is skipped in the later ones (noted on the page). The table shows, per
  system, the mean over files of each metric (the means of an evaluate folder's ``summary.md``).
* ``--run name=run_dir`` (repeatable): a training run. A system whose name is the run's name or
  ``<name>_step<k>`` (a snapshot) gets the run's parameters and GMACs per second of audio, counted on
  its ``model.keras`` (``keras_dccrn.profiling``; the preset of its ``config.json`` when the run has not
  finished). The training budget comes from the run directory (``keras_dccrn.training.run_dir``:
  checkpoint counters, TensorBoard logs, and ``progress.jsonl`` of long runs: audio seen and CPU hours
  summed over every process); the development-set learning curves against CPU hours from its
  ``devset_scores.jsonl`` (``benchmarks/campaign.py --score``).
* ``--default`` and ``--peers``: the shipped default's system name and the peers it must beat: the
  page compares them file by file (mean of the paired differences and its 95% confidence interval)
  on PESQ-WB and SI-SNR, and checks the default's DNSMOS BAK against ``--bak_goal``.
* ``--headline better,worse``: the paper's comparison (AT-KL against no-KD at the same budget), paired
  over files in the same way.
* ``--audio name=folder`` (repeatable, optional): audio folders for the spectrogram figure (``clean``
  and ``noisy`` plus any systems); without them, the spectrogram figure of the evaluate run is
  copied.

Writes ``--output`` (Markdown, starting with the command that generated it) and the figures in a
folder named after it (``docs/results.md``: ``docs/results/``); prints the main table.
"""

import math
import os
import re
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
flags.DEFINE_multi_string(
    "scores", [], "dccrn-evaluate output folder or per_file CSV (repeatable).", flag_values=FLAGS
)
flags.DEFINE_string("default", None, "System name of the shipped default (the bar check).", flag_values=FLAGS)
flags.DEFINE_list("peers", [], "Peer systems the default must beat (with --default).", flag_values=FLAGS)
flags.DEFINE_float("bak_goal", 3.6, "DNSMOS BAK the default must reach (with --default).", flag_values=FLAGS)
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
            note = (
                "no model.keras in its folder (an unfinished run, or the record of a lost run folder): "
                "architecture counted from its preset"
            )
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
    labels = labels or {}
    title = f"{labels.get(better, better)} vs {labels.get(worse, worse)}"
    missing = [s for s in (better, worse) if s not in systems]
    if missing:
        return f"{title}: not computed (not in the scores: {', '.join(missing)})."
    parts, signs = [], []
    for column, label, unit in (("pesq_wb", "PESQ-WB", ""), ("si_snr", "SI-SNR", " dB")):
        mean, half, n = paired_difference(rows, better, worse, column)
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
    if scores_dir is None:
        return None
    pngs = sorted(f for f in os.listdir(scores_dir) if f.startswith("spectrogram_") and f.endswith(".png"))
    if not pngs:
        return None
    shutil.copyfile(os.path.join(scores_dir, pngs[0]), path)
    return f"copied from the evaluate run (`{pngs[0]}`)"


def read_all_scores(sources):
    """``(systems, rows, notes)`` merged from several score sources, first source first.

    A system already read from an earlier source is skipped in a later one (one note per source).
    """
    from keras_dccrn import evaluation

    systems, rows, notes = [], [], []
    for source in sources:
        try:
            found, found_rows = evaluation.read_scores(source)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        skipped = [s for s in found if s in systems]
        if skipped:
            notes.append(f"{', '.join(skipped)}: scored in an earlier --scores source; skipped in `{source}`")
        systems += [s for s in found if s not in skipped]
        rows += [r for r in found_rows if r["system"] not in skipped]
    return systems, rows, notes


def run_of(system, run_names):
    """The run a system comes from: the run of the same name, or ``<run>_step<k>`` (a snapshot), or None."""
    if system in run_names:
        return system
    match = re.fullmatch(r"(.+)_step\d+", system)
    return match.group(1) if match and match.group(1) in run_names else None


def paired_difference(rows, better, worse, column):
    """``(mean, 95% half width, n)`` of ``better - worse`` over the files both systems scored."""
    from keras_dccrn.evaluation import confidence_interval

    a = {r["file"]: r[column] for r in rows if r["system"] == better and column in r}
    b = {r["file"]: r[column] for r in rows if r["system"] == worse and column in r}
    common = sorted(set(a) & set(b))
    return confidence_interval([a[f] - b[f] for f in common if math.isfinite(a[f]) and math.isfinite(b[f])])


def _signed(mean, half, digits, unit=""):
    if not math.isfinite(mean):
        return "n/a"
    ci = "" if not math.isfinite(half) else f" ± {half:.{digits}f}"
    return f"{mean:+.{digits}f}{ci}{unit}"


def bar_check(rows, systems, default, peers, bak_goal):
    """Lines of the section comparing the shipped default with each peer (paired over files)."""
    from keras_dccrn.evaluation import system_scores

    missing = [s for s in (default, *peers) if s not in systems]
    if missing:
        return [f"Not computed: not in the scores: {', '.join(missing)}."]
    lines = [
        f"| peer | files | {default} − peer: PESQ-WB (95% CI) | SI-SNR dB (95% CI) | better on both |",
        "|---|---:|---:|---:|---|",
    ]
    beaten = []
    for peer in peers:
        pesq = paired_difference(rows, default, peer, "pesq_wb")
        si_snr = paired_difference(rows, default, peer, "si_snr")
        both = pesq[0] > 0 and si_snr[0] > 0
        sure = both and pesq[0] - pesq[1] > 0 and si_snr[0] - si_snr[1] > 0
        beaten.append(both)
        verdict = ("yes, both intervals above 0" if sure else "yes (means)") if both else "no"
        lines.append(
            f"| {peer} | {min(pesq[2], si_snr[2])} | {_signed(pesq[0], pesq[1], 3)} | "
            f"{_signed(si_snr[0], si_snr[1], 2)} | {verdict} |"
        )
    bak = system_scores(rows, default, ["dnsmos_bak"]).get("dnsmos_bak", (math.nan, math.nan, 0))
    bak_ok = math.isfinite(bak[0]) and bak[0] >= bak_goal
    lines += [
        "",
        f"DNSMOS BAK of {default}: {_fmt(bak[0], 3)} (95% CI ± {_fmt(bak[1], 3)}, n={bak[2]}); goal "
        f">= {bak_goal:g}: {'met' if bak_ok else 'not met'}.",
        "",
        f"**Bar** ({default} better than {', '.join(peers)} on PESQ-WB and SI-SNR, DNSMOS BAK >= "
        f"{bak_goal:g}): " + ("met." if all(beaten) and bak_ok else "not met."),
    ]
    return lines


def learning_curves(runs, references, fig_dir, link_dir):
    """Lines of the learning-curve section; draws ``devset_curves.png`` in ``fig_dir`` (linked as
    ``link_dir/devset_curves.png``) when a run has development-set scores."""
    from keras_dccrn.training import curves

    scored = {name: run_files.read_scores(run_dir) for name, run_dir in runs}
    scored = {name: entries for name, entries in scored.items() if entries}
    if not scored:
        return []
    columns = ("pesq_wb", "si_snr", "dnsmos_bak")
    fig_path = os.path.join(fig_dir, "devset_curves.png")
    curves.plot_curves(scored, fig_path, columns=columns, references=references)
    lines = [
        "## Learning curves",
        "",
        "Development-set scores of each run's snapshots against the CPU hours spent up to them (both cores "
        "count; `benchmarks/campaign.py --score`, every snapshot on the same files); dashed lines: the "
        "peers on the same files. Best snapshot so far per run (by PESQ-WB):",
        "",
        "| run | snapshots scored | best step | audio seen (h) | CPU h | PESQ-WB | SI-SNR (dB) | DNSMOS BAK |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entries in scored.items():
        best = max(entries, key=lambda e: e.get("pesq_wb", -math.inf))
        lines.append(
            f"| {name} | {len(entries)} | {best['step']} | {_fmt(best.get('audio_hours'), 2)} | "
            f"{_fmt(best.get('cpu_hours'), 2)} | {_fmt(best.get('pesq_wb'), 3)} | {_fmt(best.get('si_snr'), 2)} | "
            f"{_fmt(best.get('dnsmos_bak'), 3)} |"
        )
    return [
        *lines,
        "",
        f"![development-set quality against CPU hours]({link_dir}/devset_curves.png)",
        "",
    ]


def budget_row(name, run):
    """One row of the budget table (progress.jsonl figures when the run has them)."""
    config = run["config"]
    last = run["progress"][-1] if run["progress"] else {}
    best = f"{run['best_val'][0]:.2f} dB (epoch {run['best_val'][1]})" if run["best_val"] else "n/a"
    audio = last.get("audio_hours", run["audio_hours"])
    planned = None
    if None not in (
        config.get("epochs"),
        config.get("steps_per_epoch"),
        run["batch_size"],
        run["segment_seconds"],
    ):
        planned = (
            config["epochs"] * config["steps_per_epoch"] * run["batch_size"] * run["segment_seconds"] / 3600
        )
    steps = run["steps"] if run["steps"] is not None else "n/a"
    epochs = run["epochs_done"] if run["epochs_done"] is not None else "n/a"
    return (
        f"| {name} | {run['preset']} | {run['objective']} | {steps} | {epochs} / {config.get('epochs')}"
        f" | {run['batch_size']} x {run['segment_seconds']} s | {_fmt(audio, 2)} h | {_fmt(planned, 1)} h"
        f" | {_fmt(last.get('cpu_hours'), 1)} | {_fmt(last.get('wall_hours'), 1)}"
        f" | {run_files.format_duration(run['wall_active'])} ({len(run['sessions'])})"
        f" | {run_files.format_duration(run['wall_span'])} | {config.get('mixed_precision')} | {best} |"
    )


def build_page(args, argv):
    from keras_dccrn import evaluation

    systems, rows, notes = read_all_scores(args.scores)
    runs = parse_pairs(args.run, "run")
    audio = parse_pairs(args.audio, "audio")
    run_names = [n for n, _ in runs]
    run_info, profiles = {}, {}
    for name, run_dir in runs:
        try:
            run_info[name] = run_files.read_run(run_dir)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        profiles[name], note = run_profile(run_dir, args.macs_seconds)
        if note:
            notes.append(f"{name}: {note}")
        if not any(run_of(s, run_names) == name for s in systems):
            notes.append(f"{name}: not in the scores")
    order = [s for s in ("noisy",) if s in systems]
    for name in run_names:
        mine = [s for s in systems if run_of(s, run_names) == name]
        order += mine or [name]
    order += [s for s in systems if s not in order]
    stats = {s: evaluation.system_scores(rows, s, [c for c, _ in TABLE_COLUMNS]) for s in systems}

    header = (
        "| system | files | parameters (M) | GMACs / s | " + " | ".join(h for _, h in TABLE_COLUMNS) + " |"
    )
    table = [header, "|---|---:|---:|---:|" + "---:|" * len(TABLE_COLUMNS)]
    for name in order:
        mine = stats.get(name, {})
        files = sum(1 for r in rows if r["system"] == name and not r.get("error"))
        prof = profiles.get(run_of(name, run_names))
        cells = [
            f"{prof['trainable'] / 1e6:.3f}" if prof else "–",
            f"{prof['macs_per_second'] / 1e9:.2f}" if prof else "–",
        ]
        cells += [_fmt(mine[c][0], 3) if c in mine and mine[c][2] else "n/a" for c, _ in TABLE_COLUMNS]
        table.append(f"| {name} | {files} | " + " | ".join(cells) + " |")

    budget = [
        "| run | preset | objective | steps | epochs | batch x segment | audio seen | planned audio | CPU h "
        "| wall h | training time (sessions) | first to last event | precision | best validation SI-SNR |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    budget += [budget_row(name, run_info[name]) for name in run_names]

    out_dir = os.path.dirname(os.path.abspath(args.output))
    figures = os.path.splitext(os.path.basename(args.output))[0]  # docs/results.md: docs/results/
    fig_dir = os.path.join(out_dir, figures)
    os.makedirs(fig_dir, exist_ok=True)
    curve_png = os.path.join(fig_dir, "validation_si_snr.png")
    plot_curves([(n, run_info[n]) for n, _ in runs], curve_png)
    spec_png = os.path.join(fig_dir, "spectrogram.png")
    folders = [source for source in args.scores if os.path.isdir(source)]
    spec_what = spectrogram_figure(audio, folders[0] if folders else None, args.spectrogram_file, spec_png)
    better, _, worse = args.headline.partition(",")
    labels = {n: system_label(n, run_info.get(run_of(n, run_names))) for n in (better, worse)}
    command = harness.command_line(__file__, argv)
    sources = ", ".join(f"`{source}`" for source in args.scores)

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
        f"Scores: {sources} (per-file scores: `dccrn-evaluate` folders and `benchmarks/peers.py "
        "--per_file` files, the same metric code); mean over files (confidence intervals in each "
        "evaluate folder's summary.md). Parameters are trainable weights; GMACs per second of 16 kHz audio "
        f"are counted from the traced graph on {args.macs_seconds:g} s (`keras_dccrn.profiling`).",
        "",
        *table,
        "",
    ]
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    if args.default:
        lines += [
            "## The shipped default against the peers",
            "",
            "Paired over the files both systems scored: mean of the per-file differences (default minus peer) "
            "and the half width of its 95% t confidence interval.",
            "",
            *bar_check(rows, systems, args.default, args.peers, args.bak_goal),
            "",
        ]
    references = {p: {c: v[0] for c, v in stats[p].items()} for p in args.peers if p in stats}
    lines += learning_curves(runs, references, fig_dir, figures)
    lines += [
        "## Training budget",
        "",
        "Steps and epochs from each run's latest checkpoint; audio seen, CPU hours (both cores count) and "
        "wall hours summed over every process of a run from its `progress.jsonl` (runs without one: steps x "
        "batch x segment, CPU and wall n/a); planned audio: the run's epochs x steps per epoch x batch x "
        "segment. Training time is the sum over training sessions of first to last TensorBoard event in "
        "`logs/train` (the span column includes pauses between sessions; a run restored from a weight backup "
        "has only the events written since); best validation SI-SNR from `logs/validation`. A run whose "
        "folder was lost is read from its committed record (`docs/campaign/<run>.config.json` and "
        "`.progress.jsonl`, passed by `scripts/campaign.sh`): steps, epochs and validation SI-SNR from its "
        "progress log, training time n/a.",
        "",
        *budget,
        "",
        f"![validation SI-SNR vs training step]({figures}/{os.path.basename(curve_png)})",
        "",
    ]
    if spec_what:
        lines += [
            f"Spectrograms ({spec_what}):",
            "",
            f"![spectrograms]({figures}/{os.path.basename(spec_png)})",
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
            raise UsageError("--scores is required (a dccrn-evaluate output folder or a per_file CSV)")
        for source in FLAGS.scores:
            if not os.path.exists(source):
                raise UsageError(f"{source}: no such scores directory or file")
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
