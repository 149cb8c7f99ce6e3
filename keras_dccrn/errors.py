"""The command-line error type and the one-line rendering of an exception, shared by every app.

No heavy import: the LiteRT runtime (which never imports TensorFlow) uses it too.
"""


class UsageError(Exception):
    """A bad command line (flags, inputs, a missing model) reported as one line; exit status 2."""


def first_line(exc):
    """The first non-empty line of ``exc``'s message, or its type name when the message is empty."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def one_line(exc):
    """``"<ExceptionType>: <first non-empty line of its message>"`` (the type alone if there is none)."""
    return f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__
