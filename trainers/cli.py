"""Command-line plumbing shared by the absl apps in ``trainers/``.

Every app defines its flags once, in its **own** ``flags.FlagValues`` (train and distill share
``trainers.common.FLAGS``), so that several apps can live in one process (tests) without clashing
flag names or each other's required-flag validators; absl's own flags (``--verbosity``, ...) stay on
the global ``flags.FLAGS``. ``--flagfile`` works as usual.
"""

import contextlib
import os
import sys

from absl import flags

_HELP_ARGS = ("--help", "-h", "--helpfull", "-?")


def parse_flags(argv, flag_values, prog, doc):
    """Parses ``argv`` into ``flag_values``; exits 0 on ``--help`` and 2 (one line) on a flag error.

    Returns:
        The remaining positional arguments (program name first), as absl's ``flags_parser`` does.
    """
    if any(arg in _HELP_ARGS for arg in argv[1:]):
        print((doc or prog).strip() + "\n\nFlags:\n" + flag_values.get_help(include_special_flags=False))
        sys.exit(0)
    flag_values.unparse_flags()
    try:
        rest = flags.FLAGS(list(argv), known_only=True)  # absl's own flags (--verbosity, ...)
        return flag_values(rest)
    except flags.Error as exc:
        print(f"{prog}: usage error: {exc} (see --help)", file=sys.stderr)
        sys.exit(2)


def flags_parser(flag_values, prog, doc):
    """An absl ``app.run(..., flags_parser=...)`` callable for one app."""
    return lambda argv: parse_flags(argv, flag_values, prog, doc)


@contextlib.contextmanager
def quiet_native_stderr():
    """Hides the C++ start-up chatter TensorFlow writes straight to file descriptor 2."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
