"""Tests of keras_dccrn.training.schedules (the optimizer and its learning-rate schedule)."""

import keras
import numpy as np
import pytest

from keras_dccrn.training.config import TrainingConfig
from keras_dccrn.training.schedules import ResumedSchedule, learning_rate, make_optimizer


def test_plateau_is_a_constant_learning_rate():
    assert learning_rate(TrainingConfig(learning_rate=2e-3)) == 2e-3


def test_cosine_warms_up_then_decays_to_the_floor():
    config = TrainingConfig(
        epochs=2, steps_per_epoch=50, lr_schedule="cosine", warmup_steps=10, min_lr_ratio=0.1
    )
    schedule = learning_rate(config)
    values = {step: float(schedule(step)) for step in (0, 5, 10, 55, 100)}
    assert values[0] == pytest.approx(1e-5)
    assert values[5] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert values[10] == pytest.approx(1e-3)
    assert values[55] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.5))))
    assert values[100] == pytest.approx(1e-4)


def test_optimizer_clips_the_global_norm():
    assert make_optimizer(TrainingConfig(clip_norm=5.0)).global_clipnorm == 5.0
    assert make_optimizer(TrainingConfig(clip_norm=0.0)).global_clipnorm is None


def test_a_resumed_schedule_goes_on_from_its_offset_after_a_warm_up():
    config = TrainingConfig(epochs=2, steps_per_epoch=50, lr_schedule="cosine", warmup_steps=10)
    cosine = learning_rate(config)
    resumed = ResumedSchedule(cosine, offset=40, warmup_steps=4)
    for step in (0, 1, 3, 4, 20, 59):
        expected = float(cosine(step + 40)) * min(1.0, (step + 1) / 4)
        assert float(resumed(step)) == pytest.approx(expected, rel=1e-6), step
    again = ResumedSchedule.from_config(resumed.get_config())
    assert again.offset == 40 and again.warmup_steps == 4
    assert float(again(7)) == pytest.approx(float(resumed(7)), rel=1e-6)
    optimizer = keras.optimizers.Adam(resumed)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(float(resumed(0)))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"offset": 0}, "`offset` must be positive; received 0"),
        ({"offset": 5, "warmup_steps": -1}, "received -1"),
    ],
)
def test_a_resumed_schedule_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResumedSchedule(lambda step: 1.0, **kwargs)
