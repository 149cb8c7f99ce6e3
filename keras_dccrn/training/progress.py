"""The progress log of a training run: one JSON line per epoch in ``run_dir/progress.jsonl``.

Each line holds what a budgeted campaign needs to account for a run that spans many processes
(resumes) and sessions: the step, the audio seen, the CPU time and wall time spent so far (summed
over every process that worked on the run), the learning rate and every training and validation
log value of the epoch. A resumed run continues the totals from the last line. The file is read
and written by :mod:`keras_dccrn.training.run_dir`.
"""

import datetime
import json
import os
import time

import keras

from keras_dccrn.atomic import write_text
from keras_dccrn.training.run_dir import PROGRESS_FILE, append_progress, read_progress, read_progress_file


class ProgressLog(keras.callbacks.Callback):
    """Appends one line per epoch to ``run_dir/progress.jsonl``.

    Args:
        run_dir: the run directory.
        step_counter: callable returning the number of training steps done so far (all processes).
        audio_seconds_per_step: seconds of audio in one training batch (batch size x segment).
    """

    def __init__(self, run_dir, step_counter, audio_seconds_per_step):
        super().__init__()
        if audio_seconds_per_step <= 0:
            raise ValueError(
                f"`audio_seconds_per_step` must be positive; received {audio_seconds_per_step!r}."
            )
        self.run_dir = run_dir
        self.step_counter = step_counter
        self.audio_seconds_per_step = float(audio_seconds_per_step)
        previous = read_progress(run_dir)
        last = previous[-1] if previous else {}
        self._cpu_base = float(last.get("cpu_hours", 0.0)) * 3600.0
        self._wall_base = float(last.get("wall_hours", 0.0)) * 3600.0
        self._cpu_start = time.process_time()
        self._wall_start = time.time()

    def totals(self):
        """``(cpu_hours, wall_hours)`` spent on the run so far, this process included."""
        cpu = self._cpu_base + time.process_time() - self._cpu_start
        wall = self._wall_base + time.time() - self._wall_start
        return cpu / 3600.0, wall / 3600.0

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.step_counter())
        cpu_hours, wall_hours = self.totals()
        entry = {
            "time": _now(),
            "epoch": int(epoch) + 1,
            "step": step,
            "audio_hours": step * self.audio_seconds_per_step / 3600.0,
            "cpu_hours": cpu_hours,
            "wall_hours": wall_hours,
        }
        for key, value in (logs or {}).items():
            try:
                entry[key] = float(value)
            except (TypeError, ValueError):
                continue
        append_progress(self.run_dir, entry)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def continue_log(run_dir, source, step, weights):
    """Starts ``run_dir``'s progress log from the log of the run whose weights at ``step`` it continues.

    The lines of ``source`` up to ``step`` are kept, followed by a copy of the line at ``step`` marked
    ``restored_from`` (``weights``) that carries the CPU and wall time of ``source``'s last line, so the
    budgets go on counting the time spent on the discarded steps (``discarded_steps``). Written
    atomically, replacing any log of ``run_dir``.

    Args:
        run_dir: the run directory.
        source: a ``progress.jsonl`` file.
        step: the step the weights were saved at.
        weights: the weight file the run starts from (recorded in the log).

    Raises:
        ValueError: ``source`` has no readable line at ``step`` (one line naming the file).
    """
    entries = read_progress_file(source)
    kept = [e for e in entries if e.get("step", 0) <= step]
    if not kept or kept[-1].get("step") != step:
        raise ValueError(f"{source}: no progress line at step {step}")
    last = entries[-1]
    restored = {
        **kept[-1],
        "time": _now(),
        "cpu_hours": float(last.get("cpu_hours", 0.0)),
        "wall_hours": float(last.get("wall_hours", 0.0)),
        "restored_from": os.fspath(weights),
        "discarded_steps": int(last.get("step", step)) - step,
    }
    lines = [json.dumps(e) for e in kept + [restored]]
    write_text(os.path.join(run_dir, PROGRESS_FILE), "\n".join(lines) + "\n")
