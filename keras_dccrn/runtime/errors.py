"""The runtime's error type."""


class ModelLoadError(ValueError):
    """``--model`` / ``model=`` could not be turned into an enhancer; one-line message."""
