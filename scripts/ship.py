r"""Ship a training run: TF Serving SavedModel, ``.keras`` (+ TFLite), generated model card, training recipe.

    python scripts/ship.py --name=distil_dccrn --run_dir=/work/runs/student_atkl \
        --scores=results/devset --system=student_atkl [--model=<file.keras>] [--tflite] [--version=1] \
        [--output_dir=saved_models]

Writes ``<output_dir>/<name>/``:

* ``<version>/``: the TF Serving SavedModel (``keras_dccrn.export.export_saved_model``: signatures
  ``serving_default``, ``enhance_wav`` and ``metadata``); weights only, no optimizer state;
* ``<name>.keras``: the same float32 model in the Keras format, without optimizer state (to fine-tune
  it, or to pass it as ``--teacher``); the folder's default model stays the SavedModel
  (``keras_dccrn.runtime.registry.model_in_folder``);
* with ``--tflite``: ``<name>_<mode>_<quantization>.tflite`` (the ``dccrn-export`` code path,
  ``trainers.export.export_tflite_files``; streaming files only for causal models; by default float32,
  dynamic int8 and, streaming only, mixed int8: ``keras_dccrn.export.mixed_int8``), and
  ``<name>_streaming_k<K>_<quantization>.tflite`` running ``--multi_hop`` K hops per invoke (by default
  K = 16, mixed int8: less per-invoke overhead, for whole files; in int8 the K hops share each convolution
  input's scale, so the outputs differ slightly from the one-hop file's);
* ``MODEL_CARD.md``: generated from the run directory (``config.json``, checkpoints, TensorBoard
  logs), the data folders' ``manifest.csv`` (files, hours and licence per source of every data flag,
  minus the run's ``--exclude`` patterns; ``keras_dccrn.data.describe_sources``), the loaded model
  (parameters, MACs counted from the traced graph, look-ahead) and the ``dccrn-evaluate`` output given
  with ``--scores``/``--system``; no figure is typed by hand. Relative data flags are resolved from the
  current folder (run from where the trainer ran); a flag no manifest describes is listed as "unknown
  source";
* ``training_config.json``: a copy of the run's ``config.json`` (the recipe).

The shipped file is ``--model`` (default ``<run_dir>/model.keras``, written when the run finishes): a
snapshot ``<run_dir>/snapshots/step_NNNNNNN.keras`` ships a run in progress, and the card then names the
file and its step; the mean of snapshots (``scripts/average_snapshots.py``, whose ``<file>.json`` record
names the steps) ships as such, its budget counted up to the newest averaged step. It is loaded without
its optimizer; a model trained with a mixed-precision policy is rebuilt in float32 with the same weights
before export. Everything is written into a temporary folder next to the target
(``<output_dir>/.tmp-<pid>-*``) and renamed into place; versions
already shipped under the same name are carried over (an existing ``<version>`` is refused unless
``--overwrite``). SIGINT, SIGTERM and SIGHUP remove the temporary folder (the previous ``<name>/``
stays as it was) and exit with 128 + the signal number after one line; the leftovers of a SIGKILL are
removed by the next run into the same ``--output_dir``.

Exit status: 0 shipped, 1 export error, 2 usage error (one line: missing run dir, ``model.keras``,
``--model`` missing, not a ``.keras`` file or unreadable, scores, unknown system, existing version,
missing ``[tflite]`` extra), 128 + N stopped by signal N.

The run directory is read by ``keras_dccrn.training.run_dir`` (``read_run``, ``load_float32_model``).
"""

import math
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from keras_dccrn.errors import UsageError, first_line  # noqa: E402
from keras_dccrn.training import run_dir  # noqa: E402
from trainers import cli  # noqa: E402

PROG = "ship"
SAMPLE_RATE = 16000

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "name", None, "Name of the shipped model (folder <output_dir>/<name>).", flag_values=FLAGS
)
flags.DEFINE_string(
    "run_dir", None, "Finished training run (holds model.keras, config.json).", flag_values=FLAGS
)
flags.DEFINE_string(
    "model",
    None,
    "The .keras file to ship (default: <run_dir>/model.keras); a snapshot "
    "<run_dir>/snapshots/step_NNNNNNN.keras ships a run that has not finished.",
    flag_values=FLAGS,
)
flags.DEFINE_string("scores", None, "dccrn-evaluate output folder (per_file.csv).", flag_values=FLAGS)
flags.DEFINE_string("system", None, "Name of this model's system in the --scores output.", flag_values=FLAGS)
flags.DEFINE_integer("version", 1, "TF Serving version folder.", flag_values=FLAGS)
flags.DEFINE_string("output_dir", "saved_models", "Base folder of shipped models.", flag_values=FLAGS)
flags.DEFINE_bool("overwrite", False, "Replace an existing <name>/<version>.", flag_values=FLAGS)
flags.DEFINE_bool("tflite", False, "Also ship TFLite files (dccrn-export code path).", flag_values=FLAGS)
flags.DEFINE_list("modes", ["offline", "streaming"], "TFLite modes.", flag_values=FLAGS)
flags.DEFINE_list(
    "quantizations", ["float32", "dynamic_int8", "mixed_int8"], "TFLite quantizations.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "multi_hop",
    16,
    "Also write streaming files that run this many STFT hops per invoke (<name>_streaming_k<K>_<q>.tflite; "
    "less per-invoke overhead, K - 1 hops more latency: for whole files; int8 outputs differ slightly). 1: none.",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "multi_hop_quantizations",
    ["mixed_int8"],
    "Quantizations of the --multi_hop streaming files.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("chunk_samples", 64000, "Offline TFLite chunk length (samples).", flag_values=FLAGS)
flags.DEFINE_string(
    "description", "", "One paragraph describing the model (top of the card).", flag_values=FLAGS
)
flags.DEFINE_float(
    "macs_seconds", 10.0, "Audio length (s) traced to count MACs per second of audio.", flag_values=FLAGS
)
flags.DEFINE_string(
    "training_hardware",
    "a 2-core CPU (no GPU)",
    "Hardware the run was trained on (for the card).",
    flag_values=FLAGS,
)

DATA_FLAGS = ("train_speech", "train_noise", "train_rir", "valid_speech", "valid_noise", "valid_rir")
# dccrn-evaluate columns shown (in this order) when present; labels as in the papers.
SCORE_COLUMNS = [
    ("pesq_wb", "PESQ-WB"),
    ("pesq_nb", "PESQ-NB"),
    ("stoi", "STOI"),
    ("estoi", "ESTOI"),
    ("si_snr", "SI-SNR (dB)"),
    ("si_snri", "SI-SNRi (dB)"),
    ("dnsmos_sig", "DNSMOS SIG"),
    ("dnsmos_bak", "DNSMOS BAK"),
    ("dnsmos_ovrl", "DNSMOS OVRL"),
    ("dnsmos_p808", "DNSMOS P.808"),
]


# ----------------------------------------------------------------------------------------- scores
def _cell(stats, digits=3):
    mean, half, n = stats
    if n == 0:
        return "n/a"
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


# ----------------------------------------------------------------------------------------- card
def _hours(seconds):
    return f"{seconds / 3600:.3f} h"


def _count(number, noun):
    return f"{number} {noun}" + ("" if number == 1 else "s")


def data_lines(config):
    """Markdown lines describing the data flags of a run, from the data folders' ``manifest.csv``.

    Each flag is resolved as the trainers resolve it (relative paths from the current folder), minus the
    run's ``exclude`` patterns (:func:`keras_dccrn.data.describe_sources`); RIR flags only count when
    ``reverb_prob`` > 0.

    Returns:
        dict with ``lines``; ``non_commercial`` and ``copyleft``: ``"source (licence: ...)"`` of the training
        sources with such terms; ``unknown``: the flag values with files no manifest describes;
        ``speech``: ``[(source, speakers)]`` of the training speech.
    """
    from keras_dccrn.data import describe_sources, is_copyleft, is_non_commercial

    exclude = tuple(config.get("exclude") or ())
    lines, non_commercial, copyleft, unknown, speech = [], set(), set(), [], {}
    for flag in DATA_FLAGS:
        specs = config.get(flag) or []
        if flag.endswith("_rir") and not config.get("reverb_prob"):
            if specs:
                lines.append(f"- `--{flag}`: {', '.join(specs)} (not used: reverb_prob = 0)")
            continue
        for spec in specs:
            found = describe_sources(spec, exclude)
            seconds = sum(s.seconds for s in found.sources) + found.unlisted_seconds
            left_out = (
                f"; {_count(found.excluded, 'file')} left out by --exclude={','.join(exclude)}"
                if found.excluded
                else ""
            )
            if not found.files:
                unknown.append(spec)
                lines.append(
                    f"- `--{flag}={spec}`: no audio files found from `{os.getcwd()}`{left_out}; "
                    "unknown source (check its licence yourself)"
                )
                continue
            if not found.sources:
                unknown.append(spec)
                lines.append(
                    f"- `--{flag}={spec}`: {_count(found.files, 'file')}, {_hours(seconds)}{left_out}; "
                    "unknown source (check its licence yourself)"
                )
                continue
            manifests = ", ".join(f"`{m}`" for m in found.manifests)
            lines.append(
                f"- `--{flag}={spec}`: {_count(found.files, 'file')}, {_hours(seconds)} ({manifests}){left_out}:"
            )
            for source in found.sources:
                speakers = (
                    f", {_count(source.speakers, 'speaker')}"
                    if flag.endswith("speech") and source.speakers
                    else ""
                )
                lines.append(
                    f"  - {source.name}: {_count(source.files, 'file')}{speakers}, {_hours(source.seconds)}; "
                    f"licence: {source.licence}"
                )
                if flag.startswith("train"):
                    label = f"{source.name} (licence: {source.licence})"
                    if is_non_commercial(source.licence):
                        non_commercial.add(label)
                    if is_copyleft(source.licence):
                        copyleft.add(label)
                    if flag == "train_speech":
                        speech[source.name] = speech.get(source.name, 0) + source.speakers
            if found.unlisted_files:
                unknown.append(spec)
                lines.append(
                    f"  - {_count(found.unlisted_files, 'file')} not listed in a manifest, {_hours(found.unlisted_seconds)}: "
                    "unknown source (check its licence yourself)"
                )
    return dict(
        lines=lines,
        non_commercial=sorted(non_commercial),
        copyleft=sorted(copyleft),
        unknown=unknown,
        speech=sorted(speech.items()),
    )


def _files_table(folder, exclude=()):
    lines = ["| file | size |", "|---|---:|"]
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            if rel in exclude:
                continue
            size = os.path.getsize(path)
            lines.append(f"| `{rel}` | {size / 1e6:.3f} MB |" if size >= 1e5 else f"| `{rel}` | {size:,} B |")
    return lines


def shipped_weights(run, model_path):
    """What the shipped ``.keras`` file is: ``dict(path, kind, steps, audio_hours)``.

    ``kind`` is ``"final"`` (the run's ``model.keras``), ``"snapshot"`` (``step_<step>.keras``: ``steps``
    from its name), ``"average"`` (a file with a ``<path>.json`` record of ``scripts/average_snapshots.py``:
    the mean of the snapshots at ``averaged`` steps; ``steps`` is the newest of them) or ``"file"`` (any other
    file: its step is unknown, ``steps`` None).

    Raises:
        UsageError: an unreadable average record.
    """
    final = os.path.join(run["run_dir"], run_dir.MODEL_FILE)
    if os.path.abspath(model_path) == os.path.abspath(final):
        return dict(path=model_path, kind="final", steps=run["steps"], audio_hours=run["audio_hours"])
    try:
        averaged = run_dir.average_steps(model_path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    steps = averaged[-1] if averaged else run_dir.snapshot_step(model_path)
    batch, segment = run["batch_size"], run["segment_seconds"]
    hours = steps * batch * segment / 3600 if None not in (steps, batch, segment) else None
    if averaged:
        return dict(path=model_path, kind="average", steps=steps, audio_hours=hours, averaged=averaged)
    return dict(path=model_path, kind="file" if steps is None else "snapshot", steps=steps, audio_hours=hours)


def _budget_lines(run, shipped):
    config = run["config"]
    epochs = (
        f"{run['epochs_done'] if run['epochs_done'] is not None else 'n/a'} of {config.get('epochs')} epochs "
        f"x {config.get('steps_per_epoch')} steps"
    )
    latest = f"step {run['steps'] if run['steps'] is not None else 'n/a'}, {epochs}"
    if shipped["kind"] == "final":
        return [
            f"- Shipped weights: `{shipped['path']}` (the run's final model)",
            f"- Steps done: {run['steps'] if run['steps'] is not None else 'n/a'} ({epochs})",
        ]
    if shipped["kind"] == "snapshot":
        return [
            f"- Shipped weights: `{shipped['path']}`, the snapshot taken at step {shipped['steps']} "
            "(not the run's final model.keras)",
            f"- Steps done: {shipped['steps']} at the snapshot (the run's latest checkpoint when shipped: {latest})",
        ]
    if shipped["kind"] == "average":
        return [
            f"- Shipped weights: `{shipped['path']}`, the mean of the weights of the snapshots taken at steps "
            f"{', '.join(map(str, shipped['averaged']))} (weight averaging; not the run's final model.keras)",
            f"- Steps done: {shipped['steps']} at the newest averaged snapshot (the run's latest checkpoint when "
            f"shipped: {latest})",
        ]
    return [
        f"- Shipped weights: `{shipped['path']}` (not the run's model.keras; the step it was taken at is unknown)",
        f"- Steps done: unknown for the shipped file (the run's latest checkpoint when shipped: {latest})",
    ]


def _progress_lines(run, shipped):
    """The budget of the progress log (every process of the run, restores included), up to the shipped step."""
    entries = run.get("progress") or []
    if shipped["steps"] is not None:
        entries = [e for e in entries if e.get("step", 0) <= shipped["steps"]]
    if not entries:
        return []
    last = entries[-1]
    lines = [
        f"- Compute spent up to step {last.get('step')} (progress.jsonl, summed over every process of the run): "
        f"{last.get('cpu_hours', 0.0):.2f} CPU hours, {last.get('wall_hours', 0.0):.2f} wall hours"
    ]
    for e in entries:
        if "restored_from" in e:
            lines.append(
                f"- Continued at step {e.get('step')} from the weights `{e['restored_from']}` (a weight backup "
                "after a lost run folder, or the run this one extends; "
                f"{e.get('discarded_steps', 0)} later logged steps discarded, their CPU time counted)"
            )
    return lines


def _validation_line(run, shipped):
    if not run["best_val"]:
        return "- Best validation SI-SNR: not logged"
    value, epoch = run["best_val"]
    line = (
        f"- Best validation SI-SNR: {value:.2f} dB at epoch {epoch} (of {len(run['val_epochs'])} logged; "
        f"`{run['val_tag']}` on the fixed validation mixtures)"
    )
    if shipped["kind"] == "final":
        return line + (
            "; model.keras holds the weights of the best validation epoch as the trainer monitors it "
            "(dccrn-train: lowest val_loss; dccrn-distill: highest val_si_snr_clean)"
        )
    if shipped["kind"] == "average":
        return line + (
            f"; the shipped file holds the mean of the weights of steps {', '.join(map(str, shipped['averaged']))}"
            ", not those of the best epoch"
        )
    at_step = dict(run["val_curve"]).get(shipped["steps"]) if shipped["steps"] is not None else None
    return line + (
        "; the shipped file holds the weights "
        + (f"of step {shipped['steps']}" if shipped["steps"] is not None else "it was saved with")
        + (f" (validation SI-SNR there: {at_step:.2f} dB)" if at_step is not None else "")
        + ", not necessarily those of the best epoch"
    )


def _schedule_text(config):
    """The learning-rate schedule of a run's config, in words."""
    if config.get("lr_schedule") == "cosine":
        warmup = config.get("warmup_steps") or 0
        return (
            f"learning rate {config.get('learning_rate')} after {warmup} linear warm-up steps, cosine decay to "
            f"{config.get('min_lr_ratio')} x that at the last of the run's planned steps"
        )
    return (
        f"learning rate {config.get('learning_rate')} (x{config.get('lr_factor')} after "
        f"{config.get('lr_patience')} epochs without improvement)"
    )


def model_card(
    name, version, run, shipped, profile, policy, scores, system, folder, description, hardware, tflite
):
    """The Markdown model card (every figure computed from the arguments; ``shipped``: :func:`shipped_weights`)."""
    config = run["config"]
    lookahead, hop = profile["lookahead_samples"], profile["frame_step"]
    data = data_lines(config)
    lines = [f"# {name} (version {version})", ""]
    if description:
        lines += [description, ""]
    lines += [
        "Generated by `scripts/ship.py` from the run directory "
        f"`{run['run_dir']}` and the scores in `{scores['dir']}` (system `{system}`).",
        "",
    ]
    if data["non_commercial"]:
        lines += [
            f"> **Licence of the weights: NON-COMMERCIAL use only.** The training data included "
            f"{'; '.join(data['non_commercial'])}.",
            "",
        ]
    elif data["unknown"]:
        lines += ["> **Licence of the weights: unknown** (training data from unknown sources, below).", ""]
    if data["copyleft"]:
        lines += [
            "> **Share-alike / GPL training data:** the training data included "
            f"{'; '.join(data['copyleft'])}. Whether these licences extend to weights trained on the data is "
            "unclear; this card lists them so that users can decide.",
            "",
        ]
    lines += [
        "## Model",
        "",
        f"- Architecture: `{profile['model_class']}`, preset `{run['preset']}`",
        f"- Parameters: {profile['trainable']:,} trainable ({profile['trainable'] / 1e6:.3f}M); "
        f"{profile['total']:,} including batch-norm statistics",
        f"- Compute: {profile['macs_per_second'] / 1e9:.3f} GMACs per second of 16 kHz audio "
        f"(counted from the traced graph on {profile['macs_seconds']:g} s, keras_dccrn.profiling)",
    ]
    if lookahead is not None and hop:
        lines.append(
            f"- Algorithmic latency: look-ahead {lookahead} samples = {1000 * lookahead / SAMPLE_RATE:.2f} ms "
            f"(output sample n depends on input up to n + {lookahead}); STFT window "
            f"{profile['frame_length']}, hop {hop} samples = {1000 * hop / SAMPLE_RATE:.2f} ms "
            f"({lookahead / hop:.2f} hops)"
        )
    lines += [
        f"- Input/output: mono 16 kHz float32 waveform `[batch, samples]` -> same shape; trained with "
        f"the `{policy}` dtype policy, shipped in float32",
        "",
        "## Training data",
        "",
        *data["lines"],
        f"- Mixing: SNR uniform in [{config.get('snr_min')}, {config.get('snr_max')}] dB, level uniform in "
        f"[{config.get('level_min')}, {config.get('level_max')}] dBFS, reverberation probability "
        f"{config.get('reverb_prob')} (target: {config.get('reverb_target')})",
        "",
        "## Training budget",
        "",
        f"- Objective: {run['objective']}",
    ]
    if run["teacher"]:
        lines.append(f"- Teacher: `{run['teacher']}`")
    steps, audio_hours = shipped["steps"], shipped["audio_hours"]
    lines += [
        *_budget_lines(run, shipped),
        f"- Batch {run['batch_size']} x {run['segment_seconds']} s segments"
        + (f" = {audio_hours:.2f} h of audio seen" if audio_hours is not None else ""),
        *_progress_lines(run, shipped),
        f"- Precision (the run's latest process): {config.get('mixed_precision')}; optimiser Adam, {_schedule_text(config)}, gradient "
        f"clipping {config.get('clip_norm')}",
        f"- Wall-clock training time in this run folder's TensorBoard logs: "
        f"{run_dir.format_duration(run['wall_active'])} in {len(run['sessions'])} "
        f"session(s) (first to last TensorBoard event: {run_dir.format_duration(run['wall_span'])}), "
        f"on {hardware}" + ("" if shipped["kind"] == "final" else " (the whole run so far)"),
        _validation_line(run, shipped),
    ]
    columns = [(c, label) for c, label in SCORE_COLUMNS if c in scores["stats"][system]]
    lines += [
        "",
        "## Development-set scores",
        "",
        f"`dccrn-evaluate` output `{scores['dir']}`: mean ± half width of the 95% confidence interval "
        "over files.",
        "",
        "| system | files | " + " | ".join(label for _, label in columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for shown in [s for s in ("noisy",) if s in scores["stats"] and s != system] + [system]:
        stats = scores["stats"][shown]
        n = max((stats[c][2] for c, _ in columns), default=0)
        label = f"{shown} (this model)" if shown == system else f"{shown} (unprocessed input)"
        lines.append(f"| {label} | {n} | " + " | ".join(_cell(stats[c]) for c, _ in columns) + " |")
    streaming = any(mode == "streaming" for mode, _, _ in tflite)
    lines += [
        "",
        "## Files",
        "",
        *_files_table(folder, exclude=("MODEL_CARD.md",)),
        "",
        "## How to use",
        "",
        "```bash",
        f"dccrn-enhance --model={name} --input=noisy.wav --output=enhanced.wav   "
        "# this folder in the package's saved_models/",
        f"dccrn-enhance --model=path/to/{name} --input=recordings/ --output=enhanced/",
        f"dccrn-enhance --model=saved_models/{name}/{name}.keras --input=noisy.wav --output=enhanced.wav   "
        "# the Keras model (fine-tuning, --teacher)",
        f'docker run -p 8501:8501 -v "$PWD/{name}:/models/{name}" -e MODEL_NAME={name} tensorflow/serving',
        "dccrn-serve-client --input=noisy.wav --output=enhanced.wav --protocol=rest",
    ]
    for _, _, path in tflite:
        lines.append(
            f"dccrn-enhance --model={name}/{os.path.basename(path)} --input=noisy.wav --output=out.wav"
        )
    lines += ["```", ""]
    lines.append(
        "TF Serving signatures: `serving_default` (`noisy` float32 `[batch, samples]` -> `enhanced`), "
        "`enhance_wav` (16 kHz WAV bytes -> WAV bytes) and `metadata` (look-ahead, hop and rate)."
        + (
            " TFLite: offline files take fixed chunks; streaming files take one hop (`streaming_k<K>`: K hops)"
            " with explicit state."
            if tflite
            else ""
        )
        + ("" if streaming or not tflite else " No streaming file: the model is not causal.")
    )
    speakers = ", ".join(
        f"{source} ({_count(n, 'speaker')})" if n else source for source, n in data["speech"]
    )
    lines += [
        "",
        "## Limits",
        "",
        f"- Small training budget: {steps if steps is not None else 'an unknown number of'} steps"
        + (f" ({audio_hours:.2f} h of audio)" if audio_hours is not None else "")
        + f" on {hardware}; the papers train for far longer on the DNS Challenge corpus, so quality is "
        "well below theirs.",
        f"- Training speech: {speakers or 'see Training data'}; other languages, speaking styles and "
        "recording conditions are not covered.",
        "- 16 kHz mono only: other rates are resampled to 16 kHz and back by dccrn-enhance "
        "(no content above 8 kHz is restored).",
        "- Scores above are on this project's synthetic development set (mixtures of held-out speakers "
        "and noises), not on the DNS Challenge test sets of the papers.",
        "",
        f"Shipped {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- shipping
def _check_inputs():
    from keras_dccrn import evaluation

    for flag in ("name", "run_dir", "scores", "system"):
        if not FLAGS[flag].value:
            raise UsageError(f"--{flag} is required (see --help)")
    if os.sep in FLAGS.name or FLAGS.name.startswith("."):
        raise UsageError(f"--name={FLAGS.name}: must be a plain folder name")
    problem = cli.check_bounds(
        FLAGS,
        {
            "version": (1, 2**31 - 1, ""),
            "chunk_samples": (1600, 120 * SAMPLE_RATE, "samples (0.1 to 120 s)"),
            "macs_seconds": (0.1, 600, "seconds"),
        },
    )
    if problem:
        raise UsageError(problem)
    if not os.path.isdir(FLAGS.run_dir):
        raise UsageError(f"{FLAGS.run_dir}: no such run directory")
    if FLAGS.model is None:
        model_path = os.path.join(FLAGS.run_dir, run_dir.MODEL_FILE)
        if not os.path.isfile(model_path):
            raise UsageError(
                f"{model_path}: no model.keras (is the run finished? --model=<a snapshot> ships a run in progress)"
            )
    else:
        model_path = FLAGS.model
        if not os.path.isfile(model_path):
            raise UsageError(f"--model={model_path}: no such file")
        if not model_path.endswith(".keras"):
            raise UsageError(f"--model={model_path}: not a .keras file")
    if not os.path.isdir(FLAGS.scores):
        raise UsageError(f"{FLAGS.scores}: no such scores directory")
    try:
        systems, rows = evaluation.read_scores(FLAGS.scores)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if FLAGS.system not in systems:
        raise UsageError(
            f"--system={FLAGS.system}: not in {FLAGS.scores}/per_file.csv (systems: {', '.join(systems)})"
        )
    version_dir = os.path.join(FLAGS.output_dir, FLAGS.name, str(FLAGS.version))
    if os.path.exists(version_dir) and not FLAGS.overwrite:
        raise UsageError(f"{version_dir}: already exists (pass --overwrite to replace it)")
    bad = [m for m in FLAGS.modes if m not in ("offline", "streaming")]
    if bad:
        raise UsageError(f"--modes: unknown {bad}")
    return model_path, systems, rows


def _carry_manifest(final, tmp):
    """Keeps the previous folder's manifest.json when the file it names as default is shipped again.

    The default was chosen for the previous weights (``benchmarks/default_variant.py``); a line on
    stderr says so, or that the manifest was dropped because its file is not shipped any more.
    """
    from keras_dccrn.runtime import ModelLoadError, registry

    manifest = os.path.join(final, registry.MANIFEST)
    if not os.path.isfile(manifest):
        return
    try:
        default = os.path.relpath(registry.model_in_folder(final), final)
    except ModelLoadError as exc:
        print(f"{PROG}: {exc}; manifest not carried over", file=sys.stderr)
        return
    if os.path.exists(os.path.join(tmp, default)):
        shutil.copyfile(manifest, os.path.join(tmp, registry.MANIFEST))
        print(
            f"{PROG}: kept {manifest} (default {default}); re-check it for the new weights with "
            "benchmarks/default_variant.py --write_manifest",
            file=sys.stderr,
        )
    else:
        print(f"{PROG}: {manifest} names {default}, which is not shipped any more; dropped", file=sys.stderr)


def ship():
    """Ships the run; returns the final folder."""
    model_path, systems, rows = _check_inputs()
    try:
        run = run_dir.read_run(FLAGS.run_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with cli.quiet_native_stderr():
        import keras_dccrn.models  # noqa: F401  (imports TensorFlow: its start-up chatter)
    from keras_dccrn import evaluation, extras, profiling
    from keras_dccrn.atomic import make_temp, publish, remove_temp
    from keras_dccrn.export import QUANTIZATIONS, export_saved_model
    from keras_dccrn.runtime import ModelLoadError
    from trainers.export import export_tflite_files

    for name in ("quantizations", "multi_hop_quantizations"):
        bad = [q for q in FLAGS[name].value if q not in QUANTIZATIONS]
        if bad:
            raise UsageError(f"--{name}: unknown {bad}; choose from {list(QUANTIZATIONS)}")
    if FLAGS.multi_hop < 1:
        raise UsageError(f"--multi_hop must be >= 1; received {FLAGS.multi_hop}.")
    if FLAGS.tflite:
        try:
            extras.require(["ai_edge_litert"], f"{PROG} --tflite")
        except extras.MissingExtraError as exc:
            raise UsageError(str(exc)) from None
    try:
        model, policy = run_dir.load_float32_model(model_path)
    except ModelLoadError as exc:
        raise UsageError(str(exc)) from None
    shipped = shipped_weights(run, model_path)
    profile = profiling.model_profile(model, FLAGS.macs_seconds)
    profile.update(model_class=type(model).__name__, macs_seconds=FLAGS.macs_seconds)
    shown = [s for s in ("noisy", FLAGS.system) if s in systems]
    scores = dict(
        dir=FLAGS.scores,
        stats={s: evaluation.system_scores(rows, s, [c for c, _ in SCORE_COLUMNS]) for s in shown},
    )

    final = os.path.join(FLAGS.output_dir, FLAGS.name)
    tmp = make_temp(FLAGS.output_dir, suffix=f"-ship-{FLAGS.name}", directory=True)
    old = None
    try:
        # loaded with compile=False: the .keras file holds no optimizer state
        run_dir.save_model(model, os.path.join(tmp, f"{FLAGS.name}.keras"))
        export_saved_model(model, tmp, FLAGS.version)
        tflite = []
        if FLAGS.tflite:
            from keras_dccrn.signals import speech_like_signals

            def calibration():
                return speech_like_signals(count=8, seconds=2.0, seed=0)

            tflite = export_tflite_files(
                model, tmp, FLAGS.name, FLAGS.modes, FLAGS.quantizations, FLAGS.chunk_samples, calibration
            )
            if FLAGS.multi_hop > 1 and "streaming" in FLAGS.modes and model.supports_streaming:
                tflite += export_tflite_files(
                    model,
                    tmp,
                    FLAGS.name,
                    ["streaming"],
                    FLAGS.multi_hop_quantizations,
                    FLAGS.chunk_samples,
                    calibration,
                    hops_per_call=FLAGS.multi_hop,
                )
        shutil.copyfile(
            os.path.join(FLAGS.run_dir, run_dir.CONFIG_FILE), os.path.join(tmp, "training_config.json")
        )
        if os.path.isdir(final):  # keep the other versions already shipped under this name
            for entry in sorted(os.listdir(final)):
                source = os.path.join(final, entry)
                if entry.isdigit() and entry != str(FLAGS.version) and os.path.isdir(source):
                    shutil.copytree(source, os.path.join(tmp, entry))
            _carry_manifest(final, tmp)
        card = model_card(
            FLAGS.name,
            FLAGS.version,
            run,
            shipped,
            profile,
            policy,
            scores,
            FLAGS.system,
            tmp,
            FLAGS.description,
            FLAGS.training_hardware,
            tflite,
        )
        with open(os.path.join(tmp, "MODEL_CARD.md"), "w") as f:
            f.write(card)
        if os.path.exists(final):
            # Not a .tmp- name: after a SIGKILL right here this is the only copy of the previous folder.
            old = tempfile.mkdtemp(prefix=f".old-ship-{FLAGS.name}-", dir=FLAGS.output_dir)
            os.rmdir(old)
            os.replace(final, old)
        publish(tmp, final)  # default permissions (mkdtemp makes 0700), e.g. for a TF Serving container
    finally:
        remove_temp(tmp)
        if old and os.path.exists(old):
            if os.path.exists(final):
                shutil.rmtree(old, ignore_errors=True)
            else:  # the swap failed half-way: put the previous folder back
                os.replace(old, final)
    return final


def main(argv):
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        print(f"{PROG}: usage error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        final = ship()
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. a TFLite conversion refused by keras_dccrn.export
        print(f"{PROG}: {first_line(exc)}", file=sys.stderr)
        return 1
    print(f"shipped {final}")
    for line in _files_table(final):
        print(line)
    return 0


def _parse(argv):
    return cli.parse_flags(argv, FLAGS, PROG, __doc__)


def cli_main(argv):
    """Parses ``argv`` (program name first) and runs :func:`main`; returns the exit status (tests)."""
    return main(_parse(argv))


if __name__ == "__main__":
    app.run(cli.exit_on_signals(main, PROG), flags_parser=_parse)
