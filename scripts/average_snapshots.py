"""Averages the weights of a run's last snapshots into one ``.keras`` model (stochastic weight averaging).

    python scripts/average_snapshots.py --run_dir=../runs/student_long --last=3 [--until=36000] \
        [--output=<file.keras>]

The ``--last`` snapshots (``<run_dir>/snapshots/step_<step>.keras``) up to step ``--until`` (default:
the latest) are averaged variable by variable (weights and batch-norm statistics,
``keras_dccrn.training.weights.read_average``) into the architecture of the newest of them, rebuilt in
float32 (a mixed-precision snapshot too), and saved without optimizer to ``--output`` (default
``<run_dir>/averages/step_<until>_mean<last>.keras``), next to ``<output>.json`` naming the steps. The
file is a model like any other: ``dccrn-evaluate --model=<file>`` scores it, ``scripts/ship.py
--model=<file>`` ships it. Exit status 0, or 2 with one line naming the problem.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "Run directory with snapshots/.")
flags.DEFINE_integer("last", 3, "Number of snapshots to average (the last ones up to --until).")
flags.DEFINE_integer("until", 0, "Step of the newest snapshot averaged; 0: the run's latest snapshot.")
flags.DEFINE_string(
    "output", None, "The .keras file (default <run_dir>/averages/step_<until>_mean<last>.keras)."
)


def chosen_snapshots(snapshots, last, until):
    """The ``last`` entries of ``snapshots`` (``[(step, path)]`` by step) up to step ``until`` (0: all).

    Raises:
        ValueError: one line: ``last`` below 1, no snapshot at ``until``, fewer than ``last`` snapshots.
    """
    if last < 1:
        raise ValueError(f"--last must be at least 1; received {last}")
    if until:
        if until not in [step for step, _ in snapshots]:
            raise ValueError(f"--until={until}: no snapshot at that step")
        snapshots = [(step, path) for step, path in snapshots if step <= until]
    if len(snapshots) < last:
        raise ValueError(f"--last={last}: only {len(snapshots)} snapshot(s) up to that step")
    return snapshots[-last:]


def main(argv):
    del argv
    from keras_dccrn.training import run_dir

    try:
        if not FLAGS.run_dir or not os.path.isdir(FLAGS.run_dir):
            raise ValueError(f"--run_dir={FLAGS.run_dir}: no such folder")
        chosen = chosen_snapshots(run_dir.snapshots(FLAGS.run_dir), FLAGS.last, FLAGS.until)
        output = FLAGS.output or run_dir.average_path(FLAGS.run_dir, chosen[-1][0], len(chosen))
        if not output.endswith(".keras"):
            raise ValueError(f"--output={output}: must end in .keras")
    except ValueError as exc:
        print(f"average_snapshots: {exc}", file=sys.stderr)
        return 2
    from keras_dccrn.runtime import ModelLoadError
    from keras_dccrn.training.weights import WeightsError, read_average

    try:
        model, _ = run_dir.load_float32_model(chosen[-1][1])
        read_average(model, [path for _, path in chosen])
    except (ModelLoadError, WeightsError) as exc:
        print(f"average_snapshots: {exc}", file=sys.stderr)
        return 2
    run_dir.save_model(model, output)
    steps = [step for step, _ in chosen]
    run_dir.write_average_record(output, steps, FLAGS.run_dir)
    print(f"{output}: the mean of the snapshots at steps {', '.join(map(str, steps))}")
    return 0


if __name__ == "__main__":
    app.run(main)
