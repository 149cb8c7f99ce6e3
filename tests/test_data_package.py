"""keras_dccrn.data (package): re-exported names, and TensorFlow confined to the pipeline module."""

import os
import subprocess
import sys

import pytest

import keras_dccrn
from keras_dccrn import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Imports the package's NumPy modules with TensorFlow (and Keras) blocked, bypassing keras_dccrn/__init__
# (which loads the models): the data modules must not need them.
NO_TF = """
import sys, types
for name in ("tensorflow", "keras"):
    sys.modules[name] = None  # any import of them fails
package = types.ModuleType("keras_dccrn")
package.__path__ = [{path!r}]
sys.modules["keras_dccrn"] = package
from keras_dccrn import data
from keras_dccrn.data import config, corpus, discovery, files, manifests, mixing, provenance, skipped, synth
from keras_dccrn.data import writers
assert "keras_dccrn.data.pipeline" not in sys.modules
try:
    data.training_dataset
except ImportError:
    print("pipeline needs tensorflow")
"""


def test_numpy_modules_import_without_tensorflow():
    code = NO_TF.format(path=os.path.dirname(os.path.abspath(keras_dccrn.__file__)))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "pipeline needs tensorflow"


def test_every_public_name_is_available_from_the_package():
    for name in data.__all__:
        assert getattr(data, name) is not None, name
    from keras_dccrn.data import training_dataset  # a lazily loaded name, by from-import
    from keras_dccrn.data.pipeline import training_dataset as direct

    assert training_dataset is direct
    assert set(data.__all__) <= set(dir(data))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = data.no_such_name
