"""Tests of keras_dccrn.training.config (TrainingConfig) and its agreement with the training flags."""

import dataclasses

import pytest

from keras_dccrn.training.config import TrainingConfig


def test_defaults_are_the_flag_defaults():
    from trainers import common, train  # noqa: F401  (defines the training flags)

    for field in dataclasses.fields(TrainingConfig):
        if field.name not in ("monitor", "mode"):
            assert common.FLAGS[field.name].default == field.default, field.name


def test_derived_values():
    config = TrainingConfig(epochs=2, steps_per_epoch=3, batch_size=2, segment_seconds=0.5)
    assert config.total_steps == 6 and config.audio_seconds_per_step == 1.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "`epochs` must be positive; received 0"),
        ({"run_steps": -1}, "`run_steps` must be >= 0"),
        ({"learning_rate": 0.0}, "`learning_rate` must be positive"),
        ({"lr_schedule": "step"}, "received 'step'"),
        ({"warmup_steps": 50_000}, "below epochs x steps_per_epoch = 50000"),
        ({"min_lr_ratio": 2.0}, "`min_lr_ratio` must be in [0, 1]"),
        ({"mode": "auto"}, "`mode` must be 'min' or 'max'"),
        ({"init_step": 500, "lr_schedule": "cosine"}, "`init_step` needs `init_weights`"),
        ({"init_step": 250, "init_weights": "w.npz", "lr_schedule": "cosine"}, "multiple of steps_per_epoch"),
        ({"init_step": 50_000, "init_weights": "w.npz", "lr_schedule": "cosine"}, "below 50000"),
        ({"init_step": 500, "init_weights": "w.npz"}, "`init_step` needs lr_schedule='cosine'"),
        ({"init_progress": "p.jsonl"}, "`init_progress` needs `init_step`"),
    ],
)
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ValueError) as caught:
        TrainingConfig(**kwargs)
    assert message in str(caught.value)
