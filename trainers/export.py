"""``dccrn-export``: SavedModel for TF Serving and, with ``--tflite``, LiteRT files.

Examples::

    dccrn-export --model=runs/student_atkl/model.keras --name=distil_dccrn --version=1
    dccrn-export --preset=distil_dccrn --weights=student.weights.h5 --tflite \\
        --quantizations=float32,dynamic_int8,mixed_int8,float16,int8 --calibration_dir=/data/noisy

Writes ``<output_dir>/<name>/<version>/`` (SavedModel) and, with ``--tflite``,
``<output_dir>/<name>/<name>_<mode>_<quantization>.tflite`` beside it
(streaming files only for causal models; full int8 and mixed int8 only for streaming).
``--tflite`` needs the ``[tflite]`` extra (``pip install -e '.[tflite]'``).

Every folder and file is written under a temporary name (``.tmp-<pid>-*``) and renamed when
complete. SIGINT, SIGTERM and SIGHUP remove the one being written and exit with 128 + the signal
number after one line (outputs already finished stay); the leftovers of a SIGKILL are removed by the
next export into the same folder.

Exit status: 0 exported, 1 error (one line), 2 usage error, 128 + N stopped by signal N.
"""

import os
import sys

from absl import app, flags, logging

from keras_dccrn.errors import first_line
from keras_dccrn.export.mixed_int8 import DEFAULT_ENCODER_OPS
from trainers import cli

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "Saved .keras model file.", flag_values=FLAGS)
flags.DEFINE_string("preset", None, "Model preset (with --weights), instead of --model.", flag_values=FLAGS)
flags.DEFINE_string("weights", None, "Weights file (.weights.h5) for --preset.", flag_values=FLAGS)
flags.DEFINE_string(
    "name", None, "Served model name (default: preset name or the .keras file stem).", flag_values=FLAGS
)
flags.DEFINE_integer("version", 1, "TF Serving version folder.", flag_values=FLAGS)
flags.DEFINE_string("output_dir", "saved_models", "Base folder.", flag_values=FLAGS)
flags.DEFINE_bool("overwrite", False, "Replace an existing version folder.", flag_values=FLAGS)
flags.DEFINE_bool("tflite", False, "Also write TFLite files.", flag_values=FLAGS)
flags.DEFINE_list("modes", ["offline", "streaming"], "TFLite modes.", flag_values=FLAGS)
flags.DEFINE_list(
    "quantizations", ["float32", "dynamic_int8", "float16"], "TFLite quantizations.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "chunk_samples", 64000, "Offline TFLite chunk length (samples, 1600 to 1920000).", flag_values=FLAGS
)
flags.DEFINE_integer(
    "hops_per_call",
    1,
    "STFT hops per invoke of the streaming TFLite files (1 to 64; K > 1: faster per hop, K - 1 hops of "
    "extra latency; files named <name>_streaming_kK_<quantization>.tflite).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "mixed_encoder_ops",
    DEFAULT_ENCODER_OPS,
    "mixed_int8 files: how many of the encoder's first int8 convolutions stay float32 (0 to 8), besides "
    "the analysis and inverse DFTs.",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "frame_rows",
    True,
    "dynamic_int8 and mixed_int8 files of several hops per invoke: one frame per batch row in the "
    "convolutions, so that each frame's input gets its own int8 scale as with one hop per invoke "
    "(--noframe_rows: one scale per invoke, faster, quieter frames lose precision).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "calibration_dir", None, "Audio files (searched recursively) calibrating full int8.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "calibration_files", 20, "At most this many calibration files (1 to 1000).", flag_values=FLAGS
)

LIMITS = {
    "version": (1, 2**31 - 1, ""),
    "chunk_samples": (1600, 120 * 16000, "samples (0.1 to 120 s)"),
    "calibration_files": (1, 1000, "files"),
    "hops_per_call": (1, 64, "hops"),
    "mixed_encoder_ops": (0, 8, "ops"),
}


def _fail(message):
    print(f"dccrn-export: {message}", file=sys.stderr)
    return 1


def _load_model():
    from keras_dccrn.models import build_model
    from keras_dccrn.runtime import ModelLoadError, load_keras_model

    if bool(FLAGS.model) == bool(FLAGS.preset):
        raise ValueError("give exactly one of --model or --preset")
    if FLAGS.model:
        try:
            model = load_keras_model(FLAGS.model)
        except ModelLoadError as exc:
            raise ValueError(str(exc)) from None
        name = FLAGS.name or os.path.splitext(os.path.basename(FLAGS.model))[0]
        return model, name
    model = build_model(FLAGS.preset)
    if FLAGS.weights:
        if not os.path.isfile(FLAGS.weights):
            raise ValueError(f"{FLAGS.weights}: no such weights file")
        try:
            model.load_weights(FLAGS.weights)
        except Exception as exc:
            raise ValueError(f"{FLAGS.weights}: cannot load weights ({first_line(exc)[:200]})") from None
    else:
        logging.warning("no --weights: exporting randomly initialised %s", FLAGS.preset)
    return model, FLAGS.name or FLAGS.preset


def _calibration():
    from keras_dccrn.signals import folder_signals, speech_like_signals

    if not FLAGS.calibration_dir:
        logging.warning("int8 without --calibration_dir: calibrating on synthetic noisy speech-like signals")
        return speech_like_signals(count=8, seconds=2.0, seed=0)
    return folder_signals(FLAGS.calibration_dir, FLAGS.calibration_files, seconds=4.0)[0]


def main(argv):
    del argv
    problem = cli.check_bounds(FLAGS, LIMITS)
    if problem:
        print(f"dccrn-export: usage error: {problem}", file=sys.stderr)
        return 2
    from keras_dccrn import extras
    from keras_dccrn.audio import AudioError
    from keras_dccrn.export import export_saved_model

    try:
        if FLAGS.tflite:
            extras.require(["ai_edge_litert"], "dccrn-export --tflite")
    except extras.MissingExtraError as exc:
        print(f"dccrn-export: usage error: {exc}", file=sys.stderr)
        return 2
    try:
        model, name = _load_model()
        modes = exportable_modes(model, name, FLAGS.modes) if FLAGS.tflite else []
        base = os.path.join(FLAGS.output_dir, name)
        version_dir = export_saved_model(model, base, FLAGS.version, overwrite=FLAGS.overwrite)
        print(f"SavedModel: {version_dir}")
        if not FLAGS.tflite:
            return 0
        for mode, quantization, path in export_tflite_files(
            model,
            base,
            name,
            modes,
            FLAGS.quantizations,
            FLAGS.chunk_samples,
            _calibration,
            FLAGS.hops_per_call,
            FLAGS.mixed_encoder_ops,
            frame_rows=None if FLAGS.frame_rows else False,
        ):
            print(f"TFLite ({mode}, {quantization}): {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    except (ValueError, AudioError) as exc:
        return _fail(str(exc))
    return 0


def exportable_modes(model, name, modes):
    """``modes`` without ``"streaming"`` when ``model`` cannot stream (one-line warning).

    Raises:
        ValueError: streaming is the only mode asked for and the model cannot stream.
    """
    from keras_dccrn.streaming import streaming_refusal

    refusal = streaming_refusal(model) if "streaming" in modes else None
    if refusal is None:
        return list(modes)
    if set(modes) == {"streaming"}:
        raise ValueError(f"{name}: cannot stream: {refusal}; no streaming TFLite written")
    logging.warning("%s: cannot stream: %s; no streaming TFLite", name, refusal)
    return [mode for mode in modes if mode != "streaming"]


def export_tflite_files(
    model,
    base,
    name,
    modes,
    quantizations,
    chunk_samples,
    calibration=None,
    hops_per_call=1,
    mixed_encoder_ops=DEFAULT_ENCODER_OPS,
    frame_rows=None,
):
    """Writes ``<base>/<name>_<mode>_<quantization>.tflite`` for every mode and quantization.

    With ``hops_per_call`` K > 1 the streaming files run K STFT hops per invoke and are named
    ``<name>_streaming_k<K>_<quantization>.tflite``.

    Streaming files only for models that can stream (``model.supports_streaming``: causal DCCRNs), full
    and mixed int8 only for streaming (both skipped with a one-line warning; a model that cannot stream asked for
    streaming files only is a one-line ``ValueError``). ``calibration``: a callable returning the int8
    calibration signals (called once, only if int8 is requested). Shared by ``dccrn-export`` and
    ``scripts/ship.py``. ``mixed_encoder_ops``, ``frame_rows`` (streaming files only): see
    :func:`keras_dccrn.export.export_tflite`.

    Returns:
        list of ``(mode, quantization, path)`` of the files written.
    """
    from keras_dccrn.export import STREAMING_ONLY, export_tflite

    written, data = [], None
    for mode in exportable_modes(model, name, modes):
        for quantization in quantizations:
            if quantization in STREAMING_ONLY and mode == "offline":
                logging.warning("%s is streaming-only; skipping offline %s", quantization, quantization)
                continue
            if quantization == "int8" and data is None:
                if calibration is None:
                    raise ValueError("int8 needs calibration signals")
                data = calibration()
            tag = f"streaming_k{hops_per_call}" if mode == "streaming" and hops_per_call > 1 else mode
            path = os.path.join(base, f"{name}_{tag}_{quantization}.tflite")
            export_tflite(
                model,
                path,
                mode=mode,
                quantization=quantization,
                representative_data=data if quantization == "int8" else None,
                chunk_samples=chunk_samples,
                hops_per_call=hops_per_call if mode == "streaming" else 1,
                mixed_encoder_ops=mixed_encoder_ops,
                frame_rows=frame_rows if mode == "streaming" else None,
            )
            written.append((mode, quantization, path))
    return written


def run():
    app.run(
        cli.exit_on_signals(main, "dccrn-export"),
        flags_parser=cli.flags_parser(FLAGS, "dccrn-export", __doc__),
    )


if __name__ == "__main__":
    run()
