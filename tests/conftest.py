import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def shared_data_dir():
    """Path of ../shared/data if present (real speech), else None."""
    path = os.path.abspath(SHARED_DATA)
    return path if os.path.isdir(path) else None
