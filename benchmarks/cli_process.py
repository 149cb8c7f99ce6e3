r"""Whole-process benchmark: ``dccrn-enhance`` as a user runs it, from process start to file written.

    python benchmarks/cli_process.py                  # 10 s and 10 min files, every variant, the peers
    python benchmarks/cli_process.py --seconds=3 --variants=savedmodel --peers= --output=/tmp/cli.md

Each measured run is one fresh process: ``python -m trainers.enhance --model=... --input=<file>
--output=<file>`` (what the ``dccrn-enhance`` console script runs) with this checkout first on
``PYTHONPATH``, started and waited for by this script. Per run: the wall time from spawning the
process to its exit (the output file is complete when it exits; it is checked afterwards), the CPU
time (user + system) and the peak resident set size of that process (``os.wait4``: the
``resource.getrusage`` children figures of that one child, ``ru_maxrss``; the process is forked by a
~10 MB launcher, see :data:`benchmarks.harness.LAUNCHER`, so that its peak does not include this script's memory). The
wall time starts at the fork, so it includes the interpreter start-up. Each run is repeated
``--repeats`` times and the fastest wall time is kept (with its CPU time and RSS).

Variants (``--variants``): ``default`` (no ``--model``: the README's main command, which runs the
shipped default model's default file, see :mod:`keras_dccrn.runtime.registry`), ``savedmodel`` (the
shipped SavedModel of ``--model_dir``), ``keras`` (a
``.keras`` file: ``--keras``, or the ``--preset`` with random weights saved by this script; speed does
not depend on the weights) and ``tflite:<file>`` for every ``.tflite`` file in ``--model_dir``.

Peers (``--peers``, the adapters of ``benchmarks/peers.py``): one process per run that imports the
peer's package (through ``peers.py``, which also imports NumPy, SciPy, soundfile and absl), reads the
16 kHz file whole, enhances it and writes the output (``benchmarks/peers.py --worker=<peer>``). Peers whose packages are not installed are listed as unavailable.

Input files: 16 kHz mono 16-bit WAVs of each ``--seconds`` length, written in pieces: real speech
from ``--speech_dir`` mixed at 5 dB SNR with noise from ``--noise_dir`` (both looped; the default
folders are ``../shared/data/{speech,noise}/valid``), or, when one of them is absent, synthetic noisy
speech (:func:`keras_dccrn.signals.speech_like_signals`). Every process runs with the libraries'
default thread counts, as a user would run it; the page states the machine's cores and load.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import harness, peers  # noqa: E402
from benchmarks.harness import BenchmarkError  # noqa: E402
from keras_dccrn.audio import SAMPLE_RATE, read_audio  # noqa: E402

DEFAULT_OUTPUT = "docs/benchmarks/cli_process.md"
DEFAULT_MODEL_DIR = os.path.join(ROOT, "saved_models", "distil_dccrn")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
PEER_NAMES = peers.PEER_NAMES
# Goals of issue 16 for the default model.
GOAL_SHORT = {"seconds": 10, "wall_s": 1.5, "rss_mb": 300}
GOAL_LONG_RTF = 0.05
PIECE_SECONDS = 30.0  # input files are generated and written in pieces of this length

FLAGS = flags.FlagValues()
flags.DEFINE_list("seconds", ["10", "600"], "Lengths of the test files in seconds.", flag_values=FLAGS)
flags.DEFINE_string(
    "model_dir", DEFAULT_MODEL_DIR, "Shipped model folder (SavedModel + .tflite).", flag_values=FLAGS
)
flags.DEFINE_string("keras", "", "A .keras file; empty: --preset with random weights.", flag_values=FLAGS)
flags.DEFINE_string(
    "preset", "distil_dccrn", "Preset saved as the .keras variant when --keras is empty.", flag_values=FLAGS
)
flags.DEFINE_list(
    "variants", [], "Variants: savedmodel, keras, tflite:<file> (default: all of them).", flag_values=FLAGS
)
flags.DEFINE_list("peers", list(PEER_NAMES), "Peer systems of benchmarks/peers.py.", flag_values=FLAGS)
flags.DEFINE_string(
    "speech_dir", os.path.join(SHARED, "speech", "valid"), "Real speech folder.", flag_values=FLAGS
)
flags.DEFINE_string(
    "noise_dir", os.path.join(SHARED, "noise", "valid"), "Real noise folder.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "repeats", 1, "Runs per (system, file); the fastest is kept (1 to 20).", flag_values=FLAGS
)
flags.DEFINE_string("output", DEFAULT_OUTPUT, "Markdown page to write ('-': print only).", flag_values=FLAGS)


# ----------------------------------------------------------------------------------------------------------
# Input files.


def _audio_files(folder):
    from keras_dccrn.data.files import audio_files, readable_audio_extensions

    return audio_files(folder, readable_audio_extensions()) if os.path.isdir(folder) else []


def _looped(paths):
    """Endless 16 kHz mono float32 pieces from ``paths``, in order."""
    while True:
        for path in paths:
            yield read_audio(path, SAMPLE_RATE)[0]


def _take(stream, n, carry):
    """``n`` samples from ``stream`` (with ``carry`` left from the previous call): ``(samples, carry)``."""
    parts, have = [carry], carry.size
    while have < n:
        piece = next(stream)
        parts.append(piece)
        have += piece.size
    joined = np.concatenate(parts)
    return joined[:n], joined[n:]


def source_description(speech_dir, noise_dir):
    """What the input files are made of, and the speech/noise file lists (empty for synthetic)."""
    speech, noise = _audio_files(speech_dir), _audio_files(noise_dir)
    if speech and noise:
        return f"real speech ({speech_dir}) + noise ({noise_dir}) at 5 dB SNR", speech, noise
    return "synthetic noisy speech (`keras_dccrn.signals.speech_like_signals`)", [], []


def write_input(path, seconds, speech, noise):
    """Writes a 16 kHz mono PCM_16 WAV of ``seconds``, piece by piece (memory independent of the length)."""
    total = int(round(seconds * SAMPLE_RATE))
    piece = int(PIECE_SECONDS * SAMPLE_RATE)
    speech_stream = _looped(speech) if speech else None
    noise_stream = _looped(noise) if noise else None
    carry_s = carry_n = np.zeros(0, np.float32)
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        for k, start in enumerate(range(0, total, piece)):
            n = min(piece, total - start)
            if speech_stream is not None:
                s, carry_s = _take(speech_stream, n, carry_s)
                v, carry_n = _take(noise_stream, n, carry_n)
                gain = np.sqrt(np.mean(s**2) / max(np.mean(v**2), 1e-12)) * 10 ** (-5 / 20)
                x = s + gain * v
            else:
                from keras_dccrn.signals import speech_like_signals

                x = speech_like_signals(count=1, seconds=n / SAMPLE_RATE, seed=k)[0]
            f.write(np.clip(x, -1, 1).astype(np.float32))


def variants(model_dir, keras_path, names):
    """``[(name, model spec)]`` of the selected keras-dccrn variants."""
    from keras_dccrn.runtime import registry

    found = [("default", "")]  # the README's main command: no --model
    saved = registry.savedmodel_dir(model_dir) if os.path.isdir(model_dir) else None
    if saved:
        found.append(("savedmodel", saved))
    found.append(("keras", keras_path))
    if os.path.isdir(model_dir):
        found += [
            (f"tflite:{f}", os.path.join(model_dir, f))
            for f in sorted(os.listdir(model_dir))
            if f.endswith(".tflite")
        ]
    if names:
        unknown = [n for n in names if n not in dict(found)]
        if unknown:
            raise BenchmarkError(f"--variants: unknown {unknown}; available: {[n for n, _ in found]}")
        found = [(n, spec) for n, spec in found if n in names]
    return found


def default_note():
    """What the ``default`` row runs: the file the shipped default model's folder serves."""
    from keras_dccrn.runtime import ModelLoadError, registry

    try:
        folder = registry.shipped_models().get(registry.DEFAULT_MODEL)
        served = registry.model_in_folder(folder) if folder else None
    except ModelLoadError as exc:
        return f"`default` row: no default model ({exc})."
    if not served:
        return f"`default` row: {registry.no_default_message()}."
    return f"`default` row (no `--model`): `{os.path.relpath(served, ROOT)}`."


def save_random_keras(preset, path):
    """Saves ``preset`` with random weights to ``path`` in a subprocess (this process stays TF-free)."""
    code = (
        "import sys, keras; from keras_dccrn import build_model; "
        "keras.utils.set_random_seed(0); build_model(sys.argv[1]).save(sys.argv[2])"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, preset, path], env=harness.child_env(), capture_output=True, text=True
    )
    if run.returncode != 0:
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        raise BenchmarkError(
            f"--preset={preset}: cannot save a .keras file ({lines[-1] if lines else 'no message'})"
        )


# ----------------------------------------------------------------------------------------------------------
# The page.


def markdown(rows, lengths, unavailable, command, source, keras_note):
    head = (
        "| system | "
        + " | ".join(f"{s:g} s: wall s | CPU s | peak RSS MB | wall RTF" for s in lengths)
        + " |"
    )
    sep = "|---|" + "---:|---:|---:|---:|" * len(lengths)
    lines = [
        "# Whole-process time and memory of `dccrn-enhance` and the peers",
        "",
        "Generated by:",
        "",
        "```",
        command,
        "```",
        "",
        "One fresh process per run, from spawn to exit (output file complete and checked): wall time, CPU "
        "time (user + system) and peak RSS of that process (`os.wait4`, forked by a ~10 MB launcher). Our rows run `python -m "
        "trainers.enhance --model=<variant>` (the `dccrn-enhance` console script); peer rows a Python "
        "process that imports the peer (via `benchmarks/peers.py`), reads the file whole, enhances it and "
        "writes it. Default thread counts, as a user runs them.",
        "",
        f"Input: 16 kHz mono 16-bit WAV, {source}. {keras_note}",
        f"Machine: {harness.cpu_description()}, {os.cpu_count()} cores, load average {harness.load_average():.1f} when the "
        "run ended (one measured process at a time; a load well above 1 means other jobs shared the cores, "
        "and wall times then include waiting for the CPU; CPU times do not).",
        "",
        head,
        sep,
    ]
    for name, results in rows:
        cells = []
        for seconds in lengths:
            r = results.get(seconds)
            if r is None or "error" in r:
                cells.append(f"{(r or {}).get('error', 'not run')} | | |")
                continue
            cells.append(
                f"{r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['rss_mb']:.0f} | {r['wall_s'] / seconds:.3f}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Goals (issue 16): a {GOAL_SHORT['seconds']} s file in at most {GOAL_SHORT['wall_s']} s wall and "
        f"{GOAL_SHORT['rss_mb']} MB RSS; a 10 minute file at wall RTF <= {GOAL_LONG_RTF} with memory flat in "
        "the file's length (compare the RSS columns: our runtime streams files in windows; the peer "
        "processes hold the whole file).",
    ]
    if unavailable:
        lines += ["", "Not available here:", ""] + [f"* `{n}`: {reason}" for n, reason in unavailable]
    return "\n".join(lines) + "\n"


def run(argv):
    try:
        lengths = [float(s) for s in FLAGS.seconds]
    except ValueError:
        raise BenchmarkError(f"--seconds: numbers expected; received {FLAGS.seconds}") from None
    if not lengths or any(not 0 < s <= 3600 for s in lengths):
        raise BenchmarkError(f"--seconds: each length must be in (0, 3600]; received {FLAGS.seconds}")
    if not 1 <= FLAGS.repeats <= 20:
        raise BenchmarkError(f"--repeats={FLAGS.repeats}: must be between 1 and 20")
    unknown = [p for p in FLAGS.peers if p not in PEER_NAMES]
    if unknown:
        raise BenchmarkError(f"--peers: unknown {unknown}; available: {list(PEER_NAMES)}")
    work = tempfile.mkdtemp(prefix="cli-process-")
    try:
        keras_path = FLAGS.keras
        keras_note = f"`keras` row: `{keras_path}`." if keras_path else ""
        keras_note = f"{default_note()} {keras_note}".strip()
        selected = variants(
            FLAGS.model_dir, keras_path or os.path.join(work, f"{FLAGS.preset}.keras"), FLAGS.variants
        )
        if not keras_path and any(n == "keras" for n, _ in selected):
            save_random_keras(FLAGS.preset, os.path.join(work, f"{FLAGS.preset}.keras"))
            keras_note = f"`keras` row: preset `{FLAGS.preset}` with random weights."
        source, speech, noise = source_description(FLAGS.speech_dir, FLAGS.noise_dir)
        inputs = {}
        for seconds in lengths:
            inputs[seconds] = os.path.join(work, f"input_{seconds:g}s.wav")
            write_input(inputs[seconds], seconds, speech, noise)
        env, log = harness.child_env(), os.path.join(work, "stderr.txt")
        unavailable, systems = [], [(name, harness.enhance_command, spec) for name, spec in selected]
        for name in FLAGS.peers:
            reason = peers.peer_available(name)
            if reason:
                unavailable.append((name, reason))
            else:
                systems.append((name, peers.worker_command, name))
        rows = []
        for name, command, spec in systems:
            results = {}
            for seconds, src in inputs.items():
                dst = os.path.join(work, "out.wav")
                results[seconds] = harness.run_case(
                    command(spec, src, dst), env, src, dst, FLAGS.repeats, log
                )
                print(f"{name} {seconds:g} s: {results[seconds]}", file=sys.stderr)
            rows.append((f"`{name}`", results))
        text = markdown(rows, lengths, unavailable, harness.command_line(__file__, argv), source, keras_note)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if FLAGS.output != "-":
        path = FLAGS.output if os.path.isabs(FLAGS.output) else os.path.join(ROOT, FLAGS.output)
        harness.write_page(path, text)
    return text


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    status = harness.parse_flags(argv, FLAGS, "cli_process.py", __doc__)
    if status is not None:
        return status
    try:
        print(run(argv))
    except BenchmarkError as exc:
        print(f"cli_process.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
