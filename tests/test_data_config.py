"""keras_dccrn.data.config: MixtureConfig validation."""

import pytest

from keras_dccrn import data
from keras_dccrn.data import MixtureConfig


def test_config_validation():
    with pytest.raises(ValueError, match="-3"):
        MixtureConfig(segment_seconds=-3)
    with pytest.raises(ValueError, match="wet"):
        MixtureConfig(reverb_target="wet")
    with pytest.raises(ValueError, match="1.5"):
        MixtureConfig(reverb_prob=1.5)
    with pytest.raises(ValueError, match=r"\(20, -5\)"):
        MixtureConfig(snr_range=(20, -5))
    assert MixtureConfig().fixed_length == 64000
    assert MixtureConfig(segment_seconds=(4, 10)).fixed_length is None
    cfg = MixtureConfig()
    cfg.reverb_target = "late"  # changed after construction: caught when a dataset is built
    with pytest.raises(ValueError, match="late"):
        data.MixtureSynthesizer("unused", "unused", config=cfg)
