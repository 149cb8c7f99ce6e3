"""The models shipped in saved_models/ load, run and enhance the bundled example (no ../shared needed).

``examples/noisy.wav`` / ``examples/clean.wav`` are synthesised speech plus hiss and babble
(``scripts/make_example.py``), so these checks run on a fresh checkout.
"""

import glob
import hashlib
import json
import os

import numpy as np
import soundfile as sf

from keras_dccrn import runtime
from keras_dccrn.losses import si_snr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "saved_models")
EXPECTED = ["distil_dccrn"]


def _example():
    noisy, rate = sf.read(os.path.join(ROOT, "examples", "noisy.wav"), dtype="float32")
    clean, _ = sf.read(os.path.join(ROOT, "examples", "clean.wav"), dtype="float32")
    assert rate == 16000
    return noisy, clean


def _snr(estimate, reference):
    import keras

    return float(keras.ops.convert_to_numpy(si_snr(reference[None], estimate[None]))[0])


def test_every_model_is_shipped_with_a_card():
    shipped = runtime.shipped_models()
    for name in EXPECTED:
        assert name in shipped, f"saved_models/{name} is missing"
        card = open(os.path.join(MODELS, name, "MODEL_CARD.md")).read()
        assert "NON-COMMERCIAL" in card.upper()  # UrbanSound8K noise (CC BY-NC) in the training data
        assert os.path.isfile(os.path.join(MODELS, name, "1", "saved_model.pb"))


def test_the_default_student_enhances_the_example():
    noisy, clean = _example()
    enhanced = runtime.enhance(noisy, 16000)  # DEFAULT_MODEL: the shipped AT-KL student
    assert enhanced.shape == noisy.shape and np.all(np.isfinite(enhanced))
    gain = _snr(enhanced, clean) - _snr(noisy, clean)
    # Measured 4.9 dB (AT-KL student) and 4.8 dB (no-KD student) on this file; a broken model, export or
    # default scores near 0 or below.
    assert gain > 2.0, f"SI-SNR improvement {gain:.2f} dB"


def repeated_weights(variables_prefix, min_size=1000):
    """``[(key, earlier key), ...]`` of a checkpoint's tensors (of ``min_size`` values or more) stored twice."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(variables_prefix)
    seen, repeats = {}, []
    for key in sorted(reader.get_variable_to_shape_map()):
        if key.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"):
            continue
        value = np.asarray(reader.get_tensor(key))
        if value.size < min_size:
            continue
        digest = hashlib.sha1(value.dtype.str.encode() + value.tobytes()).hexdigest()
        if digest in seen:
            repeats.append((key, seen[digest]))
        seen.setdefault(digest, key)
    return repeats


def test_no_shipped_savedmodel_holds_a_weight_twice():
    prefixes = sorted(glob.glob(os.path.join(MODELS, "*", "[0-9]*", "variables", "variables.index")))
    assert prefixes, "no shipped SavedModel"
    for index in prefixes:
        prefix = index[: -len(".index")]
        assert repeated_weights(prefix) == [], f"{os.path.relpath(prefix, ROOT)} stores weights twice"


def test_student_tflite_files_match_the_savedmodel():
    noisy, _ = _example()
    # the folder's SavedModel (its name alone now serves the manifest's .tflite file)
    reference = runtime.enhance(noisy, 16000, model=os.path.join(MODELS, "distil_dccrn"))
    files = sorted(glob.glob(os.path.join(MODELS, "distil_dccrn", "*.tflite")))
    assert any("streaming_float32" in f for f in files) and any("offline_float32" in f for f in files)
    for path in files:
        out = runtime.enhance(noisy, 16000, model=path)
        agreement = _snr(out, reference)
        # float32 streaming matches to numerical precision; offline restarts the LSTM every chunk and
        # dynamic-range int8 quantises the weights (docs/benchmarks/tflite.md has the dev-set numbers).
        floor = 40.0 if "streaming_float32" in path else 15.0
        assert agreement > floor, f"{os.path.basename(path)}: {agreement:.1f} dB from the SavedModel"


def test_shipped_files_state_their_window_geometry():
    # Every file of the default folder carries the model's look-ahead and hop in its metadata
    # (399 = delay 300 + hop 100 - 1); files without it get the rule of test_export.py.
    folder = os.path.join(MODELS, "distil_dccrn")
    names = sorted(f for f in os.listdir(folder) if f.endswith((".tflite", ".keras"))) + ["1"]
    assert len(names) >= 6, names
    for name in names:
        enhancer = runtime.load_enhancer(os.path.join(folder, name))
        assert (enhancer.lookahead_samples, enhancer.alignment) == (399, 100), name
    # the manifest written by benchmarks/default_variant.py --write_manifest names the default file
    with open(os.path.join(folder, runtime.registry.MANIFEST)) as f:
        default = json.load(f)["default"]
    assert default.endswith(".tflite") and runtime.model_in_folder(folder) == os.path.join(folder, default)
