"""Scoring enhanced speech against clean references: file pairing, per-file metrics, confidence
intervals, the ``per_file.csv`` reader and the spectrogram figure.

The library half of ``dccrn-evaluate`` (which adds the command line, enhancement of a noisy folder
and the reports); also used to score training snapshots on a development set
(:mod:`keras_dccrn.training.curves`) and by the results and shipping scripts.
"""

import math
import os
import signal
import warnings

# Pairs whose lengths differ by more than this are refused (not scored) unless trimming is asked for:
# cutting a 0.1 s file out of a 2.6 s reference scores a fragment as if it were the whole utterance.
DEFAULT_LENGTH_TOLERANCE = 0.05  # seconds
LENGTH_MISMATCH = "lengths differ"  # start of the error of a refused pair


def scan(folder, extensions=None):
    """``({key: path}, duplicates)`` of the audio files under ``folder``; key = relative path without extension.

    Files are found by :func:`keras_dccrn.data.files.audio_files` (temporary outputs skipped, linked
    folders not entered); ``a.wav`` and ``a.flac`` share a key, the second one is a duplicate.

    Args:
        folder: directory to scan.
        extensions: extensions (lower case, no dot) that count as audio; default
            :data:`keras_dccrn.data.files.AUDIO_EXTENSIONS`.
    """
    from keras_dccrn.data.files import AUDIO_EXTENSIONS, audio_files

    found, duplicates = {}, []
    for path in audio_files(
        folder, AUDIO_EXTENSIONS if extensions is None else extensions, follow_links=False
    ):
        key = os.path.splitext(os.path.relpath(path, folder))[0].replace(os.sep, "/")
        if key in found:
            duplicates.append(path)
        else:
            found[key] = path
    return found, duplicates


def read_mono(path):
    from keras_dccrn.audio import read_audio

    return read_audio(path, sample_rate=16000, mono=True)[0]


def score_file(task):
    """Scores every system's version of one file (a worker function). Returns a list of row dicts.

    A system file (or the noisy file) whose length differs from the clean reference's by more than
    the tolerance is not scored: its row gets an ``error`` starting with :data:`LENGTH_MISMATCH`
    (the noisy file's mismatch only drops SI-SNRi from the other rows). With ``trim`` such pairs are
    cut to the shorter file, like pairs within the tolerance always are, with a note.

    Args:
        task: ``(key, clean_path, noisy_path or None, [(system, path), ...], metric groups)``,
            optionally followed by ``{"length_tolerance": seconds, "trim": bool}``.
    """
    from keras_dccrn import metrics as M

    key, clean_path, noisy_path, systems, groups, *options = task
    options = options[0] if options else {}
    tolerance = round(options.get("length_tolerance", DEFAULT_LENGTH_TOLERANCE) * 16000)
    trim = options.get("trim", False)
    columns = M.metric_columns(groups)
    rows = []

    def failed(system, message):
        row = dict(system=system, file=key, **{c: math.nan for c in columns})
        row.update(notes="", error=message)
        return row

    try:
        clean = read_mono(clean_path)
        noisy = read_mono(noisy_path) if noisy_path else None
    except Exception as exc:
        return [failed(system, str(exc)) for system, _ in systems]

    def mismatch(n, what):
        if trim or abs(n - len(clean)) <= tolerance:
            return None
        return (
            f"{LENGTH_MISMATCH}: {what} {n / 16000:.3f} s vs clean {len(clean) / 16000:.3f} s (more than "
            f"{tolerance / 16000:g} s apart); not scored"
        )

    noisy_note = []
    if noisy is not None and mismatch(len(noisy), "noisy"):
        noisy, noisy_note = None, ["noisy file length differs from clean: no SI-SNRi"]
    for system, path in systems:
        try:
            est = read_mono(path)
        except Exception as exc:
            rows.append(failed(system, str(exc)))
            continue
        refused = mismatch(len(est), path)
        if refused:
            rows.append(failed(system, refused))
            continue
        n = min(len(clean), len(est), len(noisy) if noisy is not None else len(clean))
        notes = list(noisy_note)
        if len(est) != len(clean):
            notes.append(f"length {len(est)} vs clean {len(clean)}: cut to {n}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", M.MetricWarning)
            values = M.compute_metrics(
                clean[:n], est[:n], 16000, noisy=None if noisy is None else noisy[:n], metrics=groups
            )
        notes += [str(w.message) for w in caught if issubclass(w.category, M.MetricWarning)]
        rows.append(dict(system=system, file=key, **values, notes="; ".join(notes), error=""))
    return rows


def run_tasks(tasks, workers):
    if workers <= 1 or len(tasks) <= 1:
        return [score_file(t) for t in tasks]
    import multiprocessing as mp

    # fork: workers inherit the imported modules (no TensorFlow start-up per worker); they only run NumPy,
    # pesq, pystoi and onnxruntime code.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(min(workers, len(tasks)), initializer=_worker_signals) as pool:
        return pool.map(score_file, tasks, chunksize=1)


def _worker_signals():
    """Scoring workers leave stop signals to the parent: Ctrl-C (sent to the whole process group) is
    ignored, SIGTERM/SIGHUP (the pool's terminate()) end them without a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def confidence_interval(values):
    """``(mean, half width of the 95% t interval, n)`` of the finite values."""
    import numpy as np
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    if v.size == 1:
        return float(v[0]), math.nan, 1
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half), int(v.size)


def read_scores(scores_dir):
    """``(systems in file order, rows)`` of a ``dccrn-evaluate`` folder's ``per_file.csv``.

    Metric values are floats (NaN where empty or not a number); ``system``, ``file``, ``notes`` and
    ``error`` stay text.

    Args:
        scores_dir: the folder, or a CSV file of the same format (:func:`write_scores`).

    Raises:
        ValueError: no ``per_file.csv`` or no rows (one line naming the file).
    """
    import csv

    if os.path.isfile(scores_dir) and scores_dir.lower().endswith(".csv"):
        path = scores_dir
    else:
        path = os.path.join(scores_dir, "per_file.csv")
    if not os.path.isfile(path):
        raise ValueError(f"{scores_dir}: no per_file.csv (not a dccrn-evaluate output folder)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    systems = []
    for row in rows:
        if row["system"] not in systems:
            systems.append(row["system"])
        for key, value in row.items():
            if key not in ("system", "file", "notes", "error"):
                try:
                    row[key] = float(value) if value not in ("", None) else math.nan
                except ValueError:
                    row[key] = math.nan
    return systems, rows


def write_scores(path, rows, columns):
    """Writes ``rows`` as a ``per_file.csv`` (the format :func:`read_scores` reads), atomically.

    Args:
        path: the CSV file to write.
        rows: dicts with ``system``, ``file``, the metric ``columns`` (floats, NaN or missing when not
            scored) and optionally ``notes`` and ``error``.
        columns: the metric columns, in order.
    """
    import csv
    import io

    from keras_dccrn.atomic import write_text

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=["system", "file", *columns, "notes", "error"])
    writer.writeheader()
    for row in rows:
        cells = {"notes": "", "error": "", **{k: v for k, v in row.items() if k in writer.fieldnames}}
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in cells.items()})
    write_text(path, buffer.getvalue())


def system_scores(rows, system, columns):
    """``{column: (mean, 95% half width, n)}`` of one system's rows (:func:`confidence_interval`).

    Args:
        rows: rows of :func:`read_scores`.
        system: the system's name.
        columns: metric columns to summarise; those absent from the rows are left out.
    """
    mine = [r for r in rows if r["system"] == system]
    return {
        column: confidence_interval([r[column] for r in mine])
        for column in columns
        if mine and column in mine[0]
    }


def plot_spectrograms(named_paths, path, title):
    """Writes one log-magnitude spectrogram row per ``(name, audio path)``, shared colour scale (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.signal import stft

    specs = []
    for name, audio_path in named_paths:
        _, _, z = stft(read_mono(audio_path), fs=16000, nperseg=512, noverlap=384)
        specs.append((name, 20 * np.log10(np.abs(z) + 1e-10)))
    top = max(s.max() for _, s in specs)
    fig, axes = plt.subplots(len(specs), 1, figsize=(9, 2.2 * len(specs)), squeeze=False)
    for ax, (name, spec) in zip(axes[:, 0], specs, strict=True):
        seconds = spec.shape[1] * 128 / 16000
        image = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            vmin=top - 80,
            vmax=top,
            extent=[0, seconds, 0, 8],
            cmap="magma",
        )
        ax.set_ylabel(f"{name}\nkHz")
    axes[-1, 0].set_xlabel("seconds")
    axes[0, 0].set_title(title)
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="dB")
    save_figure(fig, path)
    plt.close(fig)


def save_figure(fig, path, dpi=100):
    """``fig.savefig`` into a temporary file next to ``path``, renamed when complete."""
    from keras_dccrn.atomic import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=os.path.splitext(path)[1].lstrip(".") or "png")
