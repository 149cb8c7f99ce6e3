r"""The default file of a shipped-model folder: the fastest variant whose quality cost is negligible.

    python benchmarks/default_variant.py --folder=saved_models/distil_dccrn --devset=/work/runs/devset \
        --write_manifest

Every ``.tflite`` file of ``--folder`` and its float32 reference (the folder's ``.keras`` file, else
its SavedModel) enhance the same development-set files as a user's ``keras_dccrn.enhance(audio, 16000,
model=path)`` call does, one thread each. A variant's *quality cost* is the reference's mean
SI-SNR / PESQ-WB minus the variant's, over the same files (with the 95% confidence interval of the
per-file differences). A variant is *negligible* when its cost is at most ``--max_si_snr_cost`` dB
SI-SNR and ``--max_pesq_cost`` PESQ-WB (issue 16: 0.05 dB and 0.02); the default is the negligible
variant with the lowest CPU real-time factor (process CPU seconds / audio seconds over the files,
which other jobs on the machine disturb less than wall time). ``--write_manifest`` writes it as the
folder's ``manifest.json`` ``"default"`` entry, which ``dccrn-enhance`` and ``keras_dccrn.enhance``
then use for that model (:mod:`keras_dccrn.runtime.registry`); without a negligible variant the
manifest is removed, so the reference stays the default.

The page (``docs/benchmarks/default_variant.md``, ``--output``) starts with the exact command.
"""

import math
import os
import platform
import sys

from absl import flags

# TensorFlow's oneDNN kernels grow a process with every new input length (the dev-set files all differ);
# as in dccrn-enhance and dccrn-evaluate, the plain kernels keep the memory flat (set it to 1 to override).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402

DEFAULT_OUTPUT = "docs/benchmarks/default_variant.md"

FLAGS = flags.FlagValues()
flags.DEFINE_string("folder", None, "Shipped-model folder (saved_models/<name>).", flag_values=FLAGS)
flags.DEFINE_string("devset", None, "dccrn-mix development set (noisy/, clean/).", flag_values=FLAGS)
flags.DEFINE_integer("limit", 0, "Score the first N pairs (sorted by name); 0: all.", flag_values=FLAGS)
flags.DEFINE_float("max_si_snr_cost", 0.05, "Largest negligible SI-SNR cost (dB).", flag_values=FLAGS)
flags.DEFINE_float("max_pesq_cost", 0.02, "Largest negligible PESQ-WB cost.", flag_values=FLAGS)
flags.DEFINE_list(
    "variants",
    [],
    "Compare only these .tflite files of the folder (names); default: every .tflite file.",
    flag_values=FLAGS,
)
flags.DEFINE_bool("pesq", True, "Score PESQ-WB (--nopesq: SI-SNR only).", flag_values=FLAGS)
flags.DEFINE_bool(
    "write_manifest", False, "Write the chosen default into the folder's manifest.json.", flag_values=FLAGS
)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown page to write ('' to only print).", flag_values=FLAGS)


def reference_path(folder):
    """The folder's float32 reference: its ``.keras`` file, else its SavedModel (the folder itself)."""
    from keras_dccrn.runtime import registry

    kerases = sorted(f for f in os.listdir(folder) if f.endswith(".keras"))
    if kerases:
        return os.path.join(folder, kerases[0])
    if registry.savedmodel_dir(folder) is not None:
        return folder
    raise harness.BenchmarkError(f"{folder}: no .keras file or SavedModel to serve as the float32 reference")


def run_system(spec, pairs, use_pesq):
    """Enhances every pair with ``spec``; ``{si_snr: [...], pesq_wb: [...], cpu_rtf, rtf}``."""
    from keras_dccrn.runtime import enhance, load_enhancer

    enhancer = load_enhancer(spec)

    def run(noisy):
        return enhance(noisy, harness.SAMPLE_RATE, model=enhancer)

    run(pairs[0][1][: harness.SAMPLE_RATE])  # warm-up (tracing, allocation), untimed
    res = harness.score_pairs(run, pairs, use_pesq)
    rss = harness.proc_status_kb("VmRSS") / 1024
    return dict(
        si_snr=res["si_snr"],
        pesq_wb=res["pesq_wb"],
        rtf=res["wall"] / res["seconds"],
        cpu_rtf=res["cpu"] / res["seconds"],
        rss_mb=rss,
    )


def choose(rows, max_si_snr_cost, max_pesq_cost):
    """The negligible row with the lowest CPU RTF (or None); marks ``row["negligible"]``."""
    for row in rows:
        pesq_ok = not math.isfinite(row["pesq_cost"]) or row["pesq_cost"] <= max_pesq_cost
        row["negligible"] = (
            math.isfinite(row["si_snr_cost"]) and row["si_snr_cost"] <= max_si_snr_cost and pesq_ok
        )
    candidates = [r for r in rows if r["negligible"]]
    return min(candidates, key=lambda r: r["cpu_rtf"]) if candidates else None


def write_manifest(folder, chosen):
    """``manifest.json`` naming ``chosen`` (a file name in ``folder``), or no manifest when None."""
    import json

    from keras_dccrn.atomic import write_text
    from keras_dccrn.runtime import registry

    path = os.path.join(folder, registry.MANIFEST)
    if chosen is None:
        if os.path.exists(path):
            os.remove(path)
        return None
    write_text(path, json.dumps({"default": chosen}, indent=2) + "\n")
    return path


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "default_variant.py", __doc__)
    if status is not None:
        return status
    try:
        if not FLAGS.folder or not os.path.isdir(FLAGS.folder):
            raise harness.BenchmarkError(f"--folder={FLAGS.folder}: no such folder")
        if not FLAGS.devset:
            raise harness.BenchmarkError("--devset is required (a dccrn-mix folder with noisy/ and clean/)")
        folder = FLAGS.folder.rstrip("/")
        files = sorted(f for f in os.listdir(folder) if f.endswith(".tflite"))
        unknown = [v for v in FLAGS.variants if v not in files]
        if unknown:
            raise harness.BenchmarkError(f"--variants: {', '.join(unknown)}: not a .tflite file of {folder}")
        variants = sorted(set(FLAGS.variants)) if FLAGS.variants else files
        others = [f for f in files if f not in variants]
        pairs = harness.load_pairs(harness.find_pairs(FLAGS.devset, FLAGS.limit))
        if not variants:
            raise harness.BenchmarkError(f"{folder}: no .tflite file to compare with the reference")
        reference = reference_path(folder)
    except ValueError as exc:
        print(f"default_variant.py: {exc}", file=sys.stderr)
        return 2
    from keras_dccrn.runtime.backends import configure_threads

    configure_threads(1)
    harness.limit_blas_threads()
    ref = run_system(reference, pairs, FLAGS.pesq)
    rows = []
    for name in variants:
        res = run_system(os.path.join(folder, name), pairs, FLAGS.pesq)
        snr_cost, snr_ci = harness.paired_cost(ref["si_snr"], res["si_snr"])
        pesq_cost, pesq_ci = harness.paired_cost(ref["pesq_wb"], res["pesq_wb"])
        rows.append(
            dict(
                name=name, si_snr_cost=snr_cost, si_snr_ci=snr_ci, pesq_cost=pesq_cost, pesq_ci=pesq_ci, **res
            )
        )
        print(
            f"{name}: SI-SNR cost {snr_cost:+.3f} dB, PESQ-WB cost {pesq_cost:+.4f}, "
            f"CPU RTF {res['cpu_rtf']:.4f}, process RSS {res['rss_mb']:.0f} MB",
            flush=True,
        )
    chosen = choose(rows, FLAGS.max_si_snr_cost, FLAGS.max_pesq_cost)
    manifest = write_manifest(folder, chosen and chosen["name"]) if FLAGS.write_manifest else None
    seconds = sum(noisy.size for _, noisy, _ in pairs) / harness.SAMPLE_RATE
    header = (
        "file",
        "SI-SNR (dB)",
        "SI-SNR cost (dB)",
        "PESQ-WB",
        "PESQ-WB cost",
        "RTF (wall)",
        "RTF (CPU)",
        "negligible",
    )
    table = [
        (
            f"{os.path.basename(reference)} (reference)",
            f"{harness.finite_mean(ref['si_snr']):.3f}",
            "-",
            harness.format_or_na(harness.finite_mean(ref["pesq_wb"]), "{:.4f}"),
            "-",
            f"{ref['rtf']:.4f}",
            f"{ref['cpu_rtf']:.4f}",
            "-",
        )
    ]
    for r in rows:
        table.append(
            (
                r["name"],
                f"{harness.finite_mean(r['si_snr']):.3f}",
                f"{r['si_snr_cost']:+.3f} ± {r['si_snr_ci']:.3f}",
                harness.format_or_na(harness.finite_mean(r["pesq_wb"]), "{:.4f}"),
                "n/a" if not math.isfinite(r["pesq_cost"]) else f"{r['pesq_cost']:+.4f} ± {r['pesq_ci']:.4f}",
                f"{r['rtf']:.4f}",
                f"{r['cpu_rtf']:.4f}",
                "yes" if r["negligible"] else "no",
            )
        )
    verdict = (
        f"**Default: `{chosen['name']}`** (the negligible variant with the lowest CPU RTF)."
        if chosen
        else "No variant is negligible: the reference stays the default."
    )
    if FLAGS.write_manifest:
        verdict += f" Written to `{manifest}`." if manifest else " The folder's manifest was removed."
    text = "\n".join(
        [
            f"# Default variant of `{folder}`",
            "",
            f"Generated by `{harness.command_line(__file__, argv)}` on {platform.machine()} "
            f"({os.cpu_count()} cores), code {harness.code_version()}.",
            "",
            f"Development set `{FLAGS.devset}`: {len(pairs)} noisy/clean pairs, {seconds:.1f} s of 16 kHz "
            "audio, each file enhanced whole by every system on one thread. Cost = the reference's mean minus "
            "the variant's over the same files, ± the 95% t half width of the per-file differences. "
            f"Negligible: SI-SNR cost <= {FLAGS.max_si_snr_cost:g} dB and PESQ-WB cost <= "
            f"{FLAGS.max_pesq_cost:g}. RTF = seconds of processing / seconds of audio over all files "
            "(wall; CPU = the process's CPU seconds)."
            + (
                f" Candidates: the {len(variants)} files given by `--variants`; the folder's other "
                f"`.tflite` files ({', '.join(others)}) were not compared."
                if others
                else ""
            ),
            "",
            *harness.markdown_table(header, table, align="lrrrrrrl"),
            "",
            verdict,
            "",
        ]
    )
    print(text)
    if FLAGS.output:
        harness.write_page(FLAGS.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
