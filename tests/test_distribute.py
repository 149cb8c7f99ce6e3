"""Tests of keras_dccrn.training.distribute (runtime setup and worker layout, one local process)."""

import keras
import pytest
import tensorflow as tf

from keras_dccrn.training import distribute


def test_local_process_is_the_chief_with_one_worker(tmp_path):
    strategy = distribute.setup(mixed_precision="float32", seed=3)
    assert distribute.is_chief(strategy)
    assert distribute.worker_layout(strategy) == (1, 0)
    assert distribute.worker_dir(str(tmp_path), strategy) == str(tmp_path)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_prepare_model_leaves_a_local_model_alone():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    step = model.train_step
    distribute.prepare_model(model, tf.distribute.get_strategy())
    assert model.train_step == step


@pytest.mark.parametrize(
    "kwargs,message",
    [({"strategy": "tpu"}, "`strategy` must be one of"), ({"mixed_precision": "fp8"}, "received 'fp8'")],
)
def test_unknown_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distribute.setup(**kwargs)
