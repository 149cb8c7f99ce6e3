"""The progress log of a training run: one JSON line per epoch in ``run_dir/progress.jsonl``.

Each line holds what a budgeted campaign needs to account for a run that spans many processes
(resumes) and sessions: the step, the audio seen, the CPU time and wall time spent so far (summed
over every process that worked on the run), the learning rate and every training and validation
log value of the epoch. A resumed run continues the totals from the last line. The file is read
and written by :mod:`keras_dccrn.training.run_dir`.
"""

import datetime
import time

import keras

from keras_dccrn.training.run_dir import append_progress, read_progress


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
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
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
