r"""Quality against the input's level, with and without input level normalisation.

    python benchmarks/level_robustness.py --devset=/work/runs/devset --limit=40

Each development-set pair's noisy file is scaled to every ``--levels`` RMS level (dBFS; a file whose
peak would pass full scale at that level is left out of that level, as a recording would have clipped)
and enhanced with ``--model`` (default: the shipped default, as ``keras_dccrn.enhance`` runs it) twice:
as it comes (``level_range=None``) and with the runtime's level normalisation
(:mod:`keras_dccrn.runtime.level`: a level outside -35 to -15 dBFS, the mixing range of the training
data, is moved into it before the model and back after it). SI-SNR and PESQ-WB are scored against the
clean reference at the same scale (both metrics ignore the overall scale of the output), and the noisy
input's own SI-SNR is given for reference.

The page (``docs/benchmarks/level_robustness.md``, ``--output``) starts with the exact command.
"""

import math
import os
import platform
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402

DEFAULT_OUTPUT = "docs/benchmarks/level_robustness.md"

FLAGS = flags.FlagValues()
flags.DEFINE_string("devset", None, "dccrn-mix development set (noisy/, clean/).", flag_values=FLAGS)
flags.DEFINE_integer("limit", 40, "Score the first N pairs (sorted by name); 0: all.", flag_values=FLAGS)
flags.DEFINE_string(
    "model", None, "Model (anything load_enhancer takes; default: the shipped default).", flag_values=FLAGS
)
flags.DEFINE_list(
    "levels",
    ["-60", "-50", "-45", "-40", "-35", "-30", "-25", "-20"],
    "Input RMS levels in dBFS (speech files pass full scale above about -15).",
    flag_values=FLAGS,
)
flags.DEFINE_bool("pesq", True, "Score PESQ-WB (--nopesq: SI-SNR only).", flag_values=FLAGS)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown page to write ('' to only print).", flag_values=FLAGS)


def scaled_pairs(pairs, level_db):
    """The pairs with noisy and clean scaled so that the noisy RMS is ``level_db`` (clipping ones left out)."""
    import numpy as np

    out = []
    for name, noisy, clean in pairs:
        rms = float(np.sqrt(np.mean(np.square(noisy, dtype=np.float64))))
        gain = 10.0 ** (level_db / 20.0) / rms
        if np.max(np.abs(noisy)) * gain < 1.0:
            out.append((name, (noisy * gain).astype(np.float32), (clean * gain).astype(np.float32)))
    return out


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "level_robustness.py", __doc__)
    if status is not None:
        return status
    try:
        if not FLAGS.devset:
            raise harness.BenchmarkError("--devset is required (a dccrn-mix folder with noisy/ and clean/)")
        try:
            levels = [float(v) for v in FLAGS.levels]
        except ValueError:
            raise harness.BenchmarkError(f"--levels={','.join(FLAGS.levels)}: not numbers") from None
        if not levels or any(not math.isfinite(v) or v >= 0 for v in levels):
            raise harness.BenchmarkError(f"--levels={','.join(FLAGS.levels)}: dBFS levels below 0 expected")
        pairs = harness.load_pairs(harness.find_pairs(FLAGS.devset, FLAGS.limit))
    except ValueError as exc:
        print(f"level_robustness.py: {exc}", file=sys.stderr)
        return 2
    from keras_dccrn.metrics import si_snr
    from keras_dccrn.runtime import LEVEL_RANGE_DBFS, enhance, load_enhancer
    from keras_dccrn.runtime.backends import configure_threads

    configure_threads(1)
    harness.limit_blas_threads()
    enhancer = load_enhancer(FLAGS.model)
    rows = []
    for level in levels:
        scaled = scaled_pairs(pairs, level)
        if not scaled:
            print(f"{level:g} dBFS: every file would clip; left out", flush=True)
            continue
        scores = {}
        for mode, level_range in (("as is", None), ("normalised", LEVEL_RANGE_DBFS)):

            def run(noisy, level_range=level_range):
                return enhance(noisy, harness.SAMPLE_RATE, model=enhancer, level_range=level_range)

            scores[mode] = harness.score_pairs(run, scaled, FLAGS.pesq)
        noisy_snr = harness.finite_mean([float(si_snr(clean, noisy)) for _, noisy, clean in scaled])
        row = dict(level=level, files=len(scaled), noisy=noisy_snr)
        for mode, res in scores.items():
            row[mode] = (harness.finite_mean(res["si_snr"]), harness.finite_mean(res["pesq_wb"]))
        rows.append(row)
        print(
            f"{level:g} dBFS ({len(scaled)} files): SI-SNR as is {row['as is'][0]:.2f} dB, "
            f"normalised {row['normalised'][0]:.2f} dB",
            flush=True,
        )
    header = (
        "input level (dBFS)",
        "files",
        "noisy SI-SNR (dB)",
        "SI-SNR as is (dB)",
        "SI-SNR normalised (dB)",
        "PESQ-WB as is",
        "PESQ-WB normalised",
    )
    table = [
        (
            f"{r['level']:g}",
            str(r["files"]),
            f"{r['noisy']:.2f}",
            f"{r['as is'][0]:.2f}",
            f"{r['normalised'][0]:.2f}",
            harness.format_or_na(r["as is"][1], "{:.3f}"),
            harness.format_or_na(r["normalised"][1], "{:.3f}"),
        )
        for r in rows
    ]
    low, high = LEVEL_RANGE_DBFS
    text = "\n".join(
        [
            "# Quality against the input level",
            "",
            f"Generated by `{harness.command_line('benchmarks/level_robustness.py', argv)}` on "
            f"{platform.machine()} ({os.cpu_count()} cores), code {harness.code_version()}; model "
            f"{enhancer.name}, one thread. The first {len(pairs)} development-set pairs, each scaled to the "
            "input level (noisy RMS) of the row, clean reference at the same scale; files whose peak would "
            "pass full scale at a level are left out there. *As is*: `keras_dccrn.enhance(..., "
            "level_range=None)`; *normalised*: the default, which moves a level outside "
            f"{low:g} to {high:g} dBFS (the training mixtures' range) to the nearest edge of the range "
            "before the model and back after it (`keras_dccrn.runtime.level`). Means over files.",
            "",
            *harness.markdown_table(header, table, align="lrrrrrr"),
            "",
        ]
    )
    print(text)
    if FLAGS.output:
        harness.write_page(FLAGS.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
