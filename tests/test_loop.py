"""Tests of keras_dccrn.training.loop: resume, pause, signals, phases (in-process, tiny models)."""

import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn import build_model
from keras_dccrn.data import MixtureConfig
from keras_dccrn.losses import SISNRLoss, si_snr_metric
from keras_dccrn.training import loop, run_dir
from keras_dccrn.training.config import TrainingConfig
from keras_dccrn.training.datasets import DataSources, make_datasets
from keras_dccrn.training.schedules import make_optimizer

# flags/smoke.cfg, in-process.
SMOKE = dict(epochs=2, steps_per_epoch=3, batch_size=2, segment_seconds=0.5, checkpoint_every=100, verbose=0)


def sources(corpus):
    return DataSources(
        train_speech=[str(corpus / "speech" / "train")],
        train_noise=[str(corpus / "noise" / "train")],
        valid_speech=[str(corpus / "speech" / "valid")],
        valid_noise=[str(corpus / "noise" / "valid")],
    )


def one_process(corpus, folder, config, distill=False, callbacks=()):
    """What one process of dccrn-train (or dccrn-distill) does: fresh model and data, then fit and finish."""
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.get_strategy()
    student = build_model("tiny")
    if distill:
        from keras_dccrn.distillation import Distiller

        teacher = build_model("tiny", frame_step=160, channels=[6, 12, 12, 12, 12, 12])
        model = Distiller(teacher, student, kd_mode="at_kl")
        model.compile(optimizer=make_optimizer(config))
    else:
        model = student
        model.compile(optimizer=make_optimizer(config), loss=SISNRLoss(), metrics=[si_snr_metric])
    start = tf.Variable(0, dtype=tf.int64, trainable=False)
    train, valid, examples = make_datasets(
        sources(corpus),
        MixtureConfig(segment_seconds=config.segment_seconds),
        strategy,
        batch_size=config.batch_size,
        valid_examples=2,
        audio_examples=1,
        start_example=start,
    )
    lines = []
    loop.fit(
        model,
        train,
        valid,
        str(folder),
        strategy,
        config,
        examples=examples,
        start_example=start,
        export_model=student if distill else None,
        callbacks=callbacks,
        log=lines.append,
    )
    loop.finish(model, str(folder), strategy, export_model=student if distill else None, log=lines.append)
    return lines


def run_in_slices(corpus, folder, config, distill=False):
    """Reruns :func:`one_process` until the run finishes; returns the exit codes and the last log lines."""
    codes = []
    while True:
        try:
            lines = one_process(corpus, folder, config, distill)
        except loop.Interrupted as exc:
            codes.append(exc.code)
            continue
        codes.append(0)
        return codes, lines


def assert_same_weights(a_path, b_path):
    a, b = keras.saving.load_model(a_path), keras.saving.load_model(b_path)
    assert len(a.weights) == len(b.weights) > 0
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), err_msg=x.path
        )


@pytest.mark.slow
def test_a_lost_run_continues_from_its_backed_up_weights_and_log(speech_corpus, tmp_path):
    import json

    from keras_dccrn.training.schedules import RESUME_WARMUP_STEPS, learning_rate
    from keras_dccrn.training.weights import write_weights

    keras.utils.set_random_seed(7)
    donor = build_model("tiny")
    donor(np.zeros((1, 1600), "float32"))
    archive = tmp_path / "backup.npz"
    write_weights(donor, archive)
    lost = tmp_path / "lost.progress.jsonl"
    lost.write_text(
        "".join(
            json.dumps(
                {"epoch": e, "step": 3 * e, "audio_hours": 0.0, "cpu_hours": 5.0 * e, "wall_hours": 6.0 * e}
            )
            + "\n"
            for e in (1, 2)
        )
    )
    base = {**SMOKE, "epochs": 3, "lr_schedule": "cosine", "warmup_steps": 1}
    config = TrainingConfig(
        **base, init_weights=str(archive), init_step=3, init_progress=str(lost), run_steps=2
    )
    folder = tmp_path / "run"
    with pytest.raises(loop.Interrupted):
        one_process(speech_corpus, folder, config)
    assert run_dir.checkpoint_counters(str(folder)) == (5, 1)
    # The next process resumes from the checkpoint, without the restore flags, and finishes the run.
    lines = one_process(speech_corpus, folder, TrainingConfig(**base))
    assert any(line.startswith("Resuming from") for line in lines)
    assert run_dir.checkpoint_counters(str(folder)) == (9, 3)
    entries = run_dir.read_progress(str(folder))
    assert [e["step"] for e in entries] == [3, 3, 6, 9]
    assert entries[1]["restored_from"] == str(archive) and entries[1]["cpu_hours"] == 10.0
    assert entries[-1]["cpu_hours"] > 10.0
    # The learning rate followed the run's schedule from step 3, warmed up again from the fresh optimizer
    # (whose step counter is the run's step minus 3).
    cosine = learning_rate(TrainingConfig(**base))
    for entry in entries[2:]:
        optimizer_step = entry["step"] - 3
        expected = float(cosine(entry["step"])) * min(1.0, (optimizer_step + 1) / RESUME_WARMUP_STEPS)
        assert entry["learning_rate"] == pytest.approx(expected, rel=1e-5), entry["step"]


@pytest.mark.parametrize(
    "distill",
    [pytest.param(False, marks=pytest.mark.slow), pytest.param(True, marks=pytest.mark.slow)],
    ids=["train", "distill"],
)
def test_paused_and_resumed_run_equals_uninterrupted_run(speech_corpus, tmp_path, distill):
    config = TrainingConfig(**SMOKE, monitor="val_si_snr_clean" if distill else "val_loss",
                            mode="max" if distill else "min")  # fmt: skip
    one_process(speech_corpus, tmp_path / "whole", config, distill)
    sliced = TrainingConfig(
        **{**SMOKE, "run_steps": 2, "snapshot_every": 1}, monitor=config.monitor, mode=config.mode
    )
    # Steps 1-2 | 3 (end of epoch 1), 4 | 5-6 (end of the run: no pause).
    codes, lines = run_in_slices(speech_corpus, tmp_path / "sliced", sliced, distill)
    assert codes == [loop.PAUSED_EXIT_CODE, loop.PAUSED_EXIT_CODE, 0]
    assert any("(epoch 1, step 4)" in line for line in lines)
    # One progress line per epoch with totals carried over resumes; one snapshot per epoch.
    progress = run_dir.read_progress(tmp_path / "sliced")
    assert [e["step"] for e in progress] == [3, 6]
    assert progress[1]["audio_hours"] == pytest.approx(6 * 2 * 0.5 / 3600)
    assert progress[1]["cpu_hours"] > progress[0]["cpu_hours"] > 0
    assert [step for step, _ in run_dir.snapshots(tmp_path / "sliced")] == [3, 6]
    # Every variable the checkpoint holds (batch-norm statistics too) and the final best weights agree.
    assert_same_weights(tmp_path / "whole" / "model.keras", tmp_path / "sliced" / "model.keras")
    whole = [e["val_loss"] for e in run_dir.read_progress(tmp_path / "whole")]
    assert whole == [e["val_loss"] for e in run_dir.read_progress(tmp_path / "sliced")]


@pytest.mark.slow
def test_a_signal_saves_a_checkpoint_and_stops_at_a_step_boundary(speech_corpus, tmp_path):
    class SendSigterm(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    config = TrainingConfig(**{**SMOKE, "steps_per_epoch": 1000})
    with pytest.raises(loop.Interrupted) as caught:
        one_process(speech_corpus, tmp_path, config, callbacks=[SendSigterm()])
    assert caught.value.code == 128 + signal.SIGTERM
    # The signal came after step 2's check: step 3 still runs, then training stops at its end.
    assert run_dir.checkpoint_counters(tmp_path) == (3, 0)
    assert not (tmp_path / "model.keras").exists()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_a_finished_run_is_not_trained_again(speech_corpus, tmp_path):
    config = TrainingConfig(**{**SMOKE, "epochs": 1, "steps_per_epoch": 1})
    one_process(speech_corpus, tmp_path, config)
    lines = one_process(speech_corpus, tmp_path, config)
    assert any("Run already finished (1 of 1 epochs)" in line for line in lines)


@pytest.mark.parametrize(
    "steps,epochs,expected",
    [
        (0, 0, [(0, 2, 3)]),
        (2, 0, [(0, 1, 1), (1, 2, 3)]),
        (3, 1, [(1, 2, 3)]),
        (3, 0, [(1, 2, 3)]),  # killed between the epoch's last step and its end
        (4, 1, [(1, 2, 2)]),
        (6, 2, []),
    ],
)
def test_phases_finish_the_interrupted_epoch_first(steps, epochs, expected):
    assert loop.phases(steps, epochs, TrainingConfig(**SMOKE)) == expected


@pytest.mark.slow
def test_a_new_run_starts_from_init_weights_and_a_resume_ignores_them(speech_corpus, tmp_path):
    from keras_dccrn.training.weights import write_weights

    keras.utils.set_random_seed(7)
    donor = build_model("tiny")
    donor(np.zeros((1, 1600), "float32"))
    archive = tmp_path / "donor.npz"
    write_weights(donor, archive)
    config = TrainingConfig(**{**SMOKE, "epochs": 1, "steps_per_epoch": 1}, init_weights=str(archive))
    lines = one_process(speech_corpus, tmp_path / "run", config)
    assert f"Starting from the weights of {archive}" in lines
    config = TrainingConfig(**{**SMOKE, "epochs": 2, "steps_per_epoch": 1}, init_weights=str(archive))
    lines = one_process(speech_corpus, tmp_path / "run", config)
    assert not any("Starting from" in line for line in lines)
    assert any(line.startswith("Resuming from") for line in lines)
