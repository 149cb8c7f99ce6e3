"""Model registry: named presets (tables of constructor arguments) -> ``build_model``."""

import copy

from keras_dccrn.models.dccrn import DCCRN
from keras_dccrn.models.uformer import Uformer

MODEL_CLASSES = {"DCCRN": DCCRN, "Uformer": Uformer}

# Each preset is data: (model class name, constructor arguments, one-line description).
PRESETS = {
    "dccrn_cl": (
        "DCCRN",
        dict(channels=[32, 64, 128, 256, 256, 256], rnn_type="complex", rnn_units=128, masking_mode="E"),
        "DCCRN-CL (Hu et al. 2020): complex LSTM 2 x 128 per part, mask E (~3.67M parameters)",
    ),
    "dccrn_e": (
        "DCCRN",
        dict(channels=[16, 32, 64, 128, 256, 256], rnn_type="real", rnn_units=256, masking_mode="E"),
        "DCCRN-E: real LSTM 2 x 256 + dense, mask E, channels 16-32-64-128-256-256 as the "
        "official code's default (~3.74M parameters)",
    ),
    "dccrn_c": (
        "DCCRN",
        dict(channels=[16, 32, 64, 128, 256, 256], rnn_type="real", rnn_units=256, masking_mode="C"),
        "DCCRN-C: real LSTM 2 x 256 + dense, complex mask, channels 16-32-64-128-256-256 as the "
        "official code's default (~3.74M parameters)",
    ),
    "dccrn_r": (
        "DCCRN",
        dict(channels=[16, 32, 64, 128, 256, 256], rnn_type="real", rnn_units=256, masking_mode="R"),
        "DCCRN-R: real LSTM 2 x 256 + dense, real/imaginary mask, channels 16-32-64-128-256-256 as the "
        "official code's default (~3.74M parameters)",
    ),
    "distil_dccrn": (
        "DCCRN",
        dict(
            channels=[32, 64, 128, 128, 128, 128],
            rnn_type="complex",
            rnn_units=64,
            masking_mode="E",
            time_crop="causal",
        ),
        "Distil-DCCRN student (Han et al. 2024): DCCRN-CL structure, 1.16M parameters, ~half the MACs; causal",
    ),
    "tiny": (
        "DCCRN",
        dict(channels=[4, 8, 8, 8, 8, 8], rnn_type="complex", rnn_units=8, masking_mode="E"),
        "tiny DCCRN-CL for tests",
    ),
    "uformer": (
        "Uformer",
        dict(causal=True),
        "Uformer teacher (Fu et al. 2022), paper configuration, causal (9.28M parameters, STFT 400/160/512)",
    ),
    "uformer_noncausal": (
        "Uformer",
        dict(causal=False),
        "Uformer, paper configuration, non-causal (look-ahead in encoder/decoder, attention and convolutions)",
    ),
    "uformer_tiny": (
        "Uformer",
        dict(
            complex_channels=[2, 4, 4, 4, 4, 4],
            magnitude_channels=[2, 4, 4, 4, 4, 4],
            num_blocks=1,
            num_heads=2,
            ffn_expansion=2,
            dilations=[1, 2],
            attention_context=8,
        ),
        "tiny causal Uformer for tests",
    ),
}


def list_presets():
    """Returns ``{name: description}`` of every preset."""
    return {name: spec[2] for name, spec in PRESETS.items()}


def default_loss(name):
    """The paper's training loss of a preset's model family (the class's ``default_loss``).

    ``"si_snr"`` for DCCRN, ``"uformer"`` for Uformer.
    """
    class_name, _ = preset_config(name)
    return MODEL_CLASSES[class_name].default_loss


def preset_config(name):
    """Returns ``(class_name, kwargs)`` of a preset (a copy)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown model preset {name!r}; available: {sorted(PRESETS)}.")
    class_name, kwargs, _ = PRESETS[name]
    return class_name, copy.deepcopy(kwargs)


def build_model(name, build=True, **overrides):
    """Builds a model from a named preset.

    Args:
        name: preset name, see :func:`list_presets`.
        build: run the model once on a short silent input so that its
            weights exist (needed for ``summary``/``count_params``).
        **overrides: constructor arguments replacing the preset's.

    Returns:
        A ``keras.Model``: waveform ``[batch, samples]`` -> waveform.
    """
    class_name, kwargs = preset_config(name)
    kwargs.update(overrides)
    kwargs.setdefault("name", name)
    model = MODEL_CLASSES[class_name](**kwargs)
    if build:
        import numpy as np

        model(np.zeros((1, 8 * model.frame_step), "float32"))
    return model
