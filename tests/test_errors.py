import pytest

from keras_dccrn.errors import UsageError, first_line, one_line


@pytest.mark.parametrize(
    "exc, first, line",
    [
        (ValueError("\n  bad value  \nmore detail"), "bad value", "ValueError: bad value"),
        (KeyError("k"), "'k'", "KeyError: 'k'"),
        (RuntimeError(""), "RuntimeError", "RuntimeError"),
        (UsageError("--x: must be positive"), "--x: must be positive", "UsageError: --x: must be positive"),
    ],
)
def test_first_line_and_one_line(exc, first, line):
    assert first_line(exc) == first
    assert one_line(exc) == line


def test_the_apps_share_one_usage_error():
    import importlib.util
    import os

    from trainers import enhance, evaluate

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("ship_app", os.path.join(root, "scripts", "ship.py"))
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    assert enhance.UsageError is evaluate.UsageError is ship.UsageError is UsageError
