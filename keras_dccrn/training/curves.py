"""Learning curves of long runs: development-set scores of training snapshots against CPU hours.

A run trained with ``--snapshot_every`` keeps ``snapshots/step_<step>.keras``; its progress log
(:mod:`keras_dccrn.training.progress`) gives the audio seen and the CPU hours at each step.
:func:`score_snapshots` enhances a development set (``clean/`` and ``noisy/`` folders of paired
files, as ``dccrn-mix`` writes them) with every snapshot not scored yet and appends one line per
snapshot to ``run_dir/devset_scores.jsonl``: the step, audio hours, CPU hours and the mean of every
metric. Scoring is separate from training so that it can run when the CPU is free.
"""

import math
import os

import numpy as np

from keras_dccrn.training.run_dir import append_score, read_progress, read_scores, snapshots

CURVE_METRICS = ("pesq_wb", "stoi", "si_snr", "dnsmos")


def devset_pairs(devset_dir, limit=None):
    """``[(key, clean_path, noisy_path), ...]`` of a development set (sorted; the first ``limit``)."""
    from keras_dccrn.data.files import readable_audio_extensions
    from keras_dccrn.evaluation import scan

    extensions = set(readable_audio_extensions())
    clean, _ = scan(os.path.join(devset_dir, "clean"), extensions)
    noisy, _ = scan(os.path.join(devset_dir, "noisy"), extensions)
    keys = sorted(k for k in clean if k in noisy)
    if not keys:
        raise ValueError(f"{devset_dir}: no paired files in clean/ and noisy/")
    keys = keys[:limit] if limit else keys
    return [(k, clean[k], noisy[k]) for k in keys]


def score_files(model, pairs, metrics=CURVE_METRICS):
    """Per-file scores of one model (anything ``load_enhancer`` accepts) over ``pairs``.

    Returns:
        ``[{"file": key, column: value, ...}, ...]`` in the order of ``pairs``.
    """
    from keras_dccrn import runtime
    from keras_dccrn.evaluation import read_mono
    from keras_dccrn.metrics import compute_metrics

    enhancer = runtime.load_enhancer(model)
    rows = []
    for key, clean_path, noisy_path in pairs:
        clean, noisy = read_mono(clean_path), read_mono(noisy_path)
        n = min(len(clean), len(noisy))
        enhanced = runtime.enhance(noisy[:n], 16000, model=enhancer)
        scores = compute_metrics(clean[:n], enhanced, 16000, noisy=noisy[:n], metrics=metrics)
        rows.append({"file": key, **scores})
    return rows


def mean_scores(rows):
    """``{column: mean}`` of per-file rows (NaN values left out) plus ``files``."""
    columns = [k for k in rows[0] if k != "file"] if rows else []
    means = {}
    for column in columns:
        values = [r[column] for r in rows if math.isfinite(r[column])]
        means[column] = float(np.mean(values)) if values else math.nan
    means["files"] = len(rows)
    return means


def score_model(model, pairs, metrics=CURVE_METRICS):
    """:func:`mean_scores` of :func:`score_files`."""
    return mean_scores(score_files(model, pairs, metrics))


def _progress_at(run_dir, step):
    for entry in read_progress(run_dir):
        if entry["step"] == step:
            return entry
    return {}


def score_snapshots(run_dir, devset_dir, limit=None, metrics=CURVE_METRICS, log=print):
    """Scores every snapshot of ``run_dir`` not yet in its scores file; returns the new lines.

    Args:
        run_dir: a run directory with ``snapshots/``.
        devset_dir: development set with ``clean/`` and ``noisy/``.
        limit: score only the first ``limit`` pairs (sorted by name).
        metrics: metric groups of :func:`keras_dccrn.metrics.compute_metrics`.
        log: callable for one progress line per snapshot.
    """
    pairs = devset_pairs(devset_dir, limit)
    done = {(e["step"], e.get("files")) for e in read_scores(run_dir)}
    new = []
    for step, path in snapshots(run_dir):
        if (step, len(pairs)) in done:
            continue
        means = score_model(path, pairs, metrics)
        progress = _progress_at(run_dir, step)
        entry = {
            "step": step,
            "audio_hours": progress.get("audio_hours"),
            "cpu_hours": progress.get("cpu_hours"),
            **means,
        }
        append_score(run_dir, entry)
        log(
            f"{run_dir}: step {step}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in means.items() if k in ("pesq_wb", "si_snr", "dnsmos_bak"))
        )
        new.append(entry)
    return new


CURVE_LABELS = {"pesq_wb": "PESQ-WB", "si_snr": "SI-SNR (dB)", "stoi": "STOI", "dnsmos_bak": "DNSMOS BAK"}


def plot_curves(curves, path, columns=("pesq_wb", "si_snr"), references=None):
    """Development-set scores against CPU hours: one panel per column, one line per run.

    Args:
        curves: ``{run name: [scores-file entries]}`` (:func:`keras_dccrn.training.run_dir.read_scores`);
            entries without ``cpu_hours`` are left out.
        path: the PNG to write.
        columns: score columns, one panel each.
        references: optional ``{system name: {column: value}}`` drawn as dashed horizontal lines (systems
            that were not trained here, such as the peers).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_dccrn.evaluation import save_figure

    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.6), squeeze=False)
    axes = axes[0]
    for name, entries in curves.items():
        points = [e for e in entries if e.get("cpu_hours") is not None]
        if not points:
            continue
        for ax, column in zip(axes, columns, strict=True):
            ax.plot([e["cpu_hours"] for e in points], [e.get(column) for e in points], marker="o", label=name)
    for i, (name, values) in enumerate((references or {}).items()):
        for ax, column in zip(axes, columns, strict=True):
            if values.get(column) is not None and math.isfinite(values[column]):
                ax.axhline(values[column], linestyle="--", linewidth=1, color=f"C{(i + len(curves)) % 10}")
                ax.annotate(name, (0, values[column]), xycoords=("axes fraction", "data"), fontsize=7)
    for ax, column in zip(axes, columns, strict=True):
        ax.set_xlabel("CPU hours")
        ax.set_ylabel(CURVE_LABELS.get(column, column))
        ax.grid(alpha=0.3)
    if any(ax.get_lines() for ax in axes):
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
