"""Backs up the best weights of training runs as weight archives (``.npz``) to commit.

    python scripts/backup_weights.py --run=student_nokd=../runs/student_nokd --output_dir=campaign/weights

Each supervised run's ``best.weights.h5`` (model and optimizer state of the best validation epoch) is
loaded into its preset and written as ``<output_dir>/<name>.npz`` holding the model's variables only, which
``dccrn-train --init_weights=<file>`` starts a new run from (see README, "Training campaign"), next to
``<name>.json``: the step those weights were saved at (the best validation loss of the run's progress log),
so that a run whose folder was lost continues from there (``--init_step``, ``scripts/campaign.sh restore``).
When the run's latest snapshot (``snapshots/step_<step>.keras``) is later than its best weights, or the run
has no best weights yet (a restored or continued run whose validation has not beaten the best loss of its
log), the snapshot's weights are backed up instead, with its step: the backup is for continuing the run,
and a later step loses fewer steps.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("run", [], "name=run_dir of a run to back up (repeatable).")
flags.DEFINE_string("output_dir", "campaign/weights", "Folder of the archives.")
flags.DEFINE_multi_string(
    "float16", [], "Names of the runs stored in float16 (half the size; large models such as the teacher)."
)


def main(argv):
    del argv
    from keras_dccrn.errors import UsageError

    try:
        pairs = [spec.partition("=")[::2] for spec in FLAGS.run]
        if not pairs or any(not name or not folder for name, folder in pairs):
            raise UsageError("--run=name=run_dir is required (repeatable).")
        for name, folder in pairs:
            if not os.path.isfile(os.path.join(folder, "best.weights.h5")) and not os.path.isdir(
                os.path.join(folder, "snapshots")
            ):
                raise UsageError(
                    f"--run={name}={folder}: no best.weights.h5 and no snapshots (has the run finished an epoch?)"
                )
            if not os.path.isfile(os.path.join(folder, "progress.jsonl")):
                raise UsageError(f"--run={name}={folder}: no progress.jsonl (the step of the best weights)")
    except UsageError as exc:
        print(f"backup_weights: {exc}", file=sys.stderr)
        return 2
    import numpy as np

    from keras_dccrn.atomic import write_text
    from keras_dccrn.runtime import ModelLoadError
    from keras_dccrn.training import run_dir
    from keras_dccrn.training.weights import write_weights

    for name, folder in pairs:
        config = run_dir.read_config(folder)
        if config.get("student_preset"):
            print(
                f"backup_weights: --run={name}={folder}: a distillation run (its best weights are the "
                "distiller's, not a bare student's); not supported",
                file=sys.stderr,
            )
            return 2
        best = None
        if os.path.isfile(os.path.join(folder, "best.weights.h5")):
            best = run_dir.best_entry(run_dir.read_progress(folder), "val_loss", "min")
            if best is None:
                print(
                    f"backup_weights: --run={name}={folder}: progress.jsonl has no val_loss", file=sys.stderr
                )
                return 2
        snapshots = run_dir.snapshots(folder)
        if snapshots and (best is None or snapshots[-1][0] > best["step"]):
            step, snapshot = snapshots[-1]
            try:
                model, _ = run_dir.load_float32_model(snapshot)
            except ModelLoadError as exc:
                print(f"backup_weights: {exc}", file=sys.stderr)
                return 2
            record = {"step": step, "snapshot": os.path.basename(snapshot)}
        elif best is not None:
            model = run_dir.model_from_config(config)
            model(np.zeros((1, 16000), "float32"))
            model.load_weights(os.path.join(folder, "best.weights.h5"))
            record = {"step": best["step"], "val_loss": best["val_loss"]}
        else:
            print(
                f"backup_weights: --run={name}={folder}: no best.weights.h5 and no snapshot", file=sys.stderr
            )
            return 2
        path = os.path.join(FLAGS.output_dir, f"{name}.npz")
        write_weights(model, path, dtype="float16" if name in FLAGS.float16 else "float32")
        write_text(os.path.join(FLAGS.output_dir, f"{name}.json"), json.dumps(record) + "\n")
        print(f"{name}: {path} ({os.path.getsize(path) / 1e6:.1f} MB), step {record['step']}")
    return 0


if __name__ == "__main__":
    app.run(main)
