"""The runtime's error type and the one-line rendering of an exception."""


class ModelLoadError(ValueError):
    """``--model`` / ``model=`` could not be turned into an enhancer; one-line message."""


def one_line(exc):
    """``"<ExceptionType>: <first non-empty line of its message>"`` (the type alone if there is none)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
