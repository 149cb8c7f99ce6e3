r"""Recipe search: equal-budget short runs scored on the development set, paired against a baseline.

    python benchmarks/recipe_search.py --devset=/work/runs/devset --limit=100 \
        --run=a_base=/work/runs/search/a_base --run=b_spectral=/work/runs/search/b_spectral ... \
        --baseline=a_base --output=docs/recipe_search.md

Each run directory is a finished ``dccrn-train`` run (``model.keras``, ``flags.cfg``). Its per-file
development-set scores are computed once and kept in ``<run_dir>/recipe_scores_<limit>.json``; the
page gives per run the budget (steps, audio, the process's training wall time and, where the run
wrote a progress log, CPU hours), the flags that differ from the baseline, the means and the paired
difference to the baseline with its 95% confidence interval.
"""

import dataclasses
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app, flags  # noqa: E402

from keras_dccrn.errors import UsageError  # noqa: E402
from trainers import cli  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("devset", None, "Development set (clean/, noisy/).", flag_values=FLAGS)
flags.DEFINE_integer("limit", 100, "Score the first N pairs (sorted by name).", flag_values=FLAGS)
flags.DEFINE_multi_string("run", [], "name=run_dir (repeatable).", flag_values=FLAGS)
flags.DEFINE_string("baseline", None, "Name of the baseline run.", flag_values=FLAGS)
flags.DEFINE_string("output", "docs/recipe_search.md", "Markdown page to write.", flag_values=FLAGS)
flags.DEFINE_integer("threads", 1, "TensorFlow threads for enhancement.", flag_values=FLAGS)

COLUMNS = ("pesq_wb", "stoi", "si_snr", "dnsmos_bak", "dnsmos_ovrl")


def _flags_of(run_dir):
    """``{name: value}`` of the run's resolved flags (``flags.cfg``), without ``--run_dir``."""
    from keras_dccrn.training.run_dir import read_flags

    try:
        flags_ = read_flags(run_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    flags_.pop("run_dir", None)
    return flags_


def _differences(flags_, base):
    """``--name=value`` of the flags that differ from ``base``; a training setting the baseline's code did
    not have yet counts only when it is not at its ``TrainingConfig`` default (any other new flag counts)."""
    from keras_dccrn.training.config import TrainingConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainingConfig)}
    out = []
    for name, value in sorted(flags_.items()):
        if name in base:
            if base[name] != value:
                out.append(f"--{name}={value}")
        elif name not in defaults or str(defaults[name]).lower() != value.lower():
            out.append(f"--{name}={value}")
    return out


def _budget(run_dir):
    from keras_dccrn.training.run_dir import read_config, read_progress

    try:
        config = read_config(run_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    steps = config["epochs"] * config["steps_per_epoch"]
    audio_hours = steps * config["batch_size"] * config["segment_seconds"] / 3600
    progress = read_progress(run_dir)
    cpu = progress[-1]["cpu_hours"] if progress else None
    wall = None
    log = run_dir.rstrip("/") + ".log"
    if os.path.exists(log):
        times = re.findall(r"Training time this run: ([0-9.]+) s", open(log, encoding="utf-8").read())
        wall = sum(float(t) for t in times) / 3600 if times else None
    return steps, audio_hours, wall, cpu


def _scores(run_dir, pairs):
    from keras_dccrn.training import curves

    path = os.path.join(run_dir, f"recipe_scores_{len(pairs)}.json")
    if os.path.exists(path):
        return json.load(open(path, encoding="utf-8"))
    rows = curves.score_files(os.path.join(run_dir, "model.keras"), pairs)
    from keras_dccrn.atomic import write_text

    write_text(path, json.dumps(rows) + "\n")
    return rows


def main(argv):
    del argv
    try:
        return _search()
    except UsageError as exc:
        print(f"recipe_search: {exc}", file=sys.stderr)
        return 2


def _search():
    if not FLAGS.devset or not FLAGS.run or not FLAGS.baseline:
        print("recipe_search: --devset, --run and --baseline are required", file=sys.stderr)
        return 2
    runs = dict(spec.split("=", 1) for spec in FLAGS.run)
    if FLAGS.baseline not in runs:
        print(f"recipe_search: --baseline={FLAGS.baseline} is not one of the --run names", file=sys.stderr)
        return 2
    from keras_dccrn import runtime
    from keras_dccrn.evaluation import confidence_interval
    from keras_dccrn.training import curves

    runtime.configure_threads(FLAGS.threads)
    pairs = curves.devset_pairs(FLAGS.devset, FLAGS.limit)
    scores = {}
    for name, run_dir in runs.items():
        print(f"scoring {name} ({run_dir}) on {len(pairs)} files", file=sys.stderr, flush=True)
        scores[name] = _scores(run_dir, pairs)
    base_flags = _flags_of(runs[FLAGS.baseline])
    base = scores[FLAGS.baseline]
    lines = [
        "# Recipe search: what learns fastest per CPU hour",
        "",
        f"Generated by `python benchmarks/recipe_search.py --devset={FLAGS.devset} --limit={FLAGS.limit} "
        + " ".join(f"--run={s}" for s in FLAGS.run)
        + f" --baseline={FLAGS.baseline}`.",
        "",
        "Short runs of the student without distillation (`flags/recipe_search/`), each with the same amount of "
        "training audio and one thread, scored on the first "
        f"{len(pairs)} files of the development set (means; Δ = paired difference to `{FLAGS.baseline}` with "
        "its 95% confidence interval). Short runs measure how fast a recipe learns, not where it ends: a "
        "setting that wins here is kept for the long runs only when it costs nothing per step.",
        "",
        "| run | differs from the baseline | steps | audio h | train wall h | CPU h | "
        + " | ".join(COLUMNS)
        + " | Δ PESQ-WB | Δ SI-SNR dB | Δ DNSMOS BAK |",
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(COLUMNS) + "---:|---:|---:|",
    ]
    for name, run_dir in runs.items():
        steps, audio, wall, cpu = _budget(run_dir)
        means = curves.mean_scores(scores[name])
        diff = _differences(_flags_of(run_dir), base_flags) or ["(baseline)"]
        deltas = []
        for column in ("pesq_wb", "si_snr", "dnsmos_bak"):
            values = [r[column] - b[column] for r, b in zip(scores[name], base, strict=True)]
            mean, half, _ = confidence_interval(values)
            deltas.append("" if name == FLAGS.baseline else f"{mean:+.3f} ± {half:.3f}")
        lines.append(
            f"| {name} | {' '.join(f'`{d}`' for d in diff)} | {steps} | {audio:.2f} | "
            + (f"{wall:.2f}" if wall is not None else "n/a")
            + " | "
            + (f"{cpu:.2f}" if cpu is not None else "n/a")
            + " | "
            + " | ".join(f"{means[c]:.3f}" for c in COLUMNS)
            + " | "
            + " | ".join(deltas)
            + " |"
        )
    from keras_dccrn.atomic import write_text

    write_text(FLAGS.output, "\n".join(lines) + "\n")
    print(f"Wrote {FLAGS.output}")
    return 0


def run():
    app.run(main, flags_parser=cli.flags_parser(FLAGS, "recipe_search", __doc__))


if __name__ == "__main__":
    run()
