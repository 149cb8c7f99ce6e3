import numpy as np
import pytest
from feature_map_references import ATOL, dense, npy, randomize, sigmoid

from keras_dccrn.layers.fusion import BranchInteraction, EncoderDecoderAttention
from keras_dccrn.testing import run_layer_test


def test_branch_interaction_matches_numpy(rng):
    z = rng.standard_normal((2, 3, 4, 10)).astype("float32")
    m = rng.standard_normal((2, 3, 4, 7)).astype("float32")
    layer = BranchInteraction()
    layer.build([z.shape, m.shape])
    randomize(layer, rng)
    zo, mo = (npy(t) for t in layer([z, m]))
    gate_c = sigmoid(dense(m, layer.complex_gate))
    mag = np.sqrt(z[..., :5] ** 2 + z[..., 5:] ** 2 + 1e-8)
    gate_m = sigmoid(dense(mag, layer.real_gate))
    np.testing.assert_allclose(zo, z * np.concatenate([gate_c, gate_c], -1), atol=ATOL)
    np.testing.assert_allclose(mo, m * gate_m, atol=ATOL)
    # the magnitude branch changes magnitudes, never the phase of the complex features
    np.testing.assert_allclose(
        np.arctan2(zo[..., 5:], zo[..., :5]), np.arctan2(z[..., 5:], z[..., :5]), atol=1e-4
    )


@pytest.mark.parametrize("complex_valued", [True, False])
def test_encoder_decoder_attention_matches_numpy(rng, complex_valued):
    enc = rng.standard_normal((2, 3, 5, 8)).astype("float32")
    dec = rng.standard_normal((2, 3, 5, 8)).astype("float32")
    layer = EncoderDecoderAttention(attention_channels=3, complex_valued=complex_valued)
    layer.build([enc.shape, dec.shape])
    randomize(layer, rng)
    h = np.maximum(dense(enc, layer.encoder_proj) + dense(dec, layer.decoder_proj), 0.0)
    gate = sigmoid(dense(h, layer.gate))
    if complex_valued:
        gate = np.concatenate([gate, gate], -1)
    np.testing.assert_allclose(npy(layer([enc, dec])), enc * gate, atol=ATOL)


@pytest.mark.parametrize(
    "make", [BranchInteraction, lambda: EncoderDecoderAttention(4, complex_valued=False)]
)
def test_config_round_trip_two_inputs(rng, make):
    layer = make()
    a = rng.standard_normal((2, 3, 4, 8)).astype("float32")
    b = rng.standard_normal((2, 3, 4, 6 if isinstance(layer, BranchInteraction) else 8)).astype("float32")
    run_layer_test(layer, [a, b])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="attention_channels"):
        EncoderDecoderAttention(attention_channels=-2)
