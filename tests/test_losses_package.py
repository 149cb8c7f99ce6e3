"""keras_dccrn.losses (package): the registered names saved models refer to, and loading compiled models."""

import os

import keras
import numpy as np
import pytest

from keras_dccrn import losses

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "compiled_losses.keras")

# The names written into the compile config of every saved model: they must never change.
REGISTERED = {
    "keras_dccrn>SISNRLoss": losses.SISNRLoss,
    "keras_dccrn>BalancedSISNRLoss": losses.BalancedSISNRLoss,
    "keras_dccrn>SISNRSpectralLoss": losses.SISNRSpectralLoss,
    "keras_dccrn>UformerLoss": losses.UformerLoss,
    "keras_dccrn>ATKLLoss": losses.ATKLLoss,
    "keras_dccrn>si_snr": losses.si_snr_metric,
}


def test_registered_names_are_unchanged():
    for name, obj in REGISTERED.items():
        assert keras.saving.get_registered_object(name) is obj
        assert keras.saving.get_registered_name(obj) == name


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # never trained: no slots
def test_a_model_compiled_with_every_loss_before_the_package_split_loads_with_compile():
    # tests/fixtures/compiled_losses.keras was saved by the single-module keras_dccrn/losses.py (its
    # compile config names the module "keras_dccrn.losses"): a tiny model with one output per loss.
    model = keras.saving.load_model(FIXTURE, compile=True)
    loss = model.loss
    assert isinstance(loss["si_snr"], losses.SISNRLoss) and loss["si_snr"].epsilon == 1e-7
    assert isinstance(loss["spectral"], losses.SISNRSpectralLoss)
    assert loss["spectral"].spectral_weight == 3.0 and loss["spectral"].resolutions == ((64, 16, 64),)
    assert isinstance(loss["uformer"], losses.UformerLoss) and loss["uformer"].l1_weight == 2.0
    assert loss["uformer"].stft.frame_length == 64
    assert isinstance(loss["balanced"], losses.BalancedSISNRLoss) and loss["balanced"].alpha == 0.3
    atkl = loss["atkl"]
    assert isinstance(atkl, losses.ATKLLoss) and atkl.attention_dims == "time" and atkl.temperature == 3.0
    assert atkl.student_frame == [320, 100] and atkl.teacher_frame == [400, 160]
    # The compiled metric is the package's SI-SNR function, and the model still evaluates.
    metric = model.get_compile_config()["metrics"]["si_snr"][0]
    assert keras.metrics.deserialize(metric) is losses.si_snr_metric
    x = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")
    y = model.predict(x, verbose=0)
    assert set(y) == {"si_snr", "spectral", "uformer", "balanced", "atkl"}


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_losses_round_trip_through_their_registered_name(name):
    obj = REGISTERED[name]
    if obj is losses.si_snr_metric:
        assert keras.saving.serialize_keras_object(obj)["config"] == name
        return
    # Small STFTs: the default resolutions only cost time here.
    small = {
        losses.SISNRSpectralLoss: dict(resolutions=((64, 16, 64),)),
        losses.UformerLoss: dict(frame_length=64, frame_step=16, fft_length=64),
    }
    instance = obj(**small.get(obj, {}))
    config = keras.saving.serialize_keras_object(instance)
    assert config["registered_name"] == name
    assert type(keras.losses.deserialize(config)) is obj
