"""Command-line plumbing shared by the absl apps in ``trainers/``.

Every app defines its flags once, in its **own** ``flags.FlagValues`` (train and distill share
``trainers.common.FLAGS``), so that several apps can live in one process (tests) without clashing
flag names or each other's required-flag validators; absl's own flags (``--verbosity``, ...) stay on
the global ``flags.FLAGS``. ``--flagfile`` works as usual.

Also here: size-like flags checked against their limits (:func:`check_bounds`), SIGINT/SIGTERM/SIGHUP turned into a
clean exit (:func:`exit_on_signals`), text safe to print whatever bytes a file name holds
(:func:`printable`).
"""

import contextlib
import functools
import math
import os
import signal
import sys
import time

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


def check_bounds(flag_values, limits):
    """The first size-like flag outside its limits, as a one-line message naming the limit, or None.

    Args:
        flag_values: the app's ``flags.FlagValues`` (parsed).
        limits: ``{flag name: (lower, upper, unit)}``; NaN and infinities are out of bounds too.

    Returns:
        e.g. ``"--chunk_seconds=1e+09: must be between 0 and 120 seconds"``, or None.
    """
    for name, (lower, upper, unit) in limits.items():
        value = flag_values[name].value
        if value is None:
            continue
        if not (math.isfinite(value) and lower <= value <= upper):
            unit = f" {unit}" if unit else ""
            return f"--{name}={_number(value)}: must be between {_number(lower)} and {_number(upper)}{unit}"
    return None


def named_folders(specs, flag):
    """``[(name, folder)]`` of repeated ``--<flag>=name=folder`` values, in order.

    Raises:
        keras_dccrn.errors.UsageError: a value that is not ``name=folder``, or a folder that does not
            exist (one line naming it).
    """
    from keras_dccrn.errors import UsageError

    pairs = []
    for spec in specs or []:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise UsageError(f"--{flag} {spec!r}: expected name=folder")
        if not os.path.isdir(folder):
            raise UsageError(f"{folder}: --{flag} {name} folder does not exist")
        pairs.append((name, folder))
    return pairs


def _number(value):
    """``value`` for a message: integers in full (``1920000``), other numbers compact (``1e+09``)."""
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 1e12:
        return str(int(value))
    return f"{value:g}"


def printable(text):
    """``text`` with the undecodable bytes of file names (surrogate escapes) shown as ``\\xNN``.

    ``print`` to a UTF-8 stdout raises on such characters; every line an app prints that holds a path
    goes through this.
    """
    from keras_dccrn.audio import display_path

    return display_path(text)


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(BaseException):
    """A SIGINT/SIGTERM/SIGHUP raised as an exception in the main thread (see :func:`exit_on_signals`).

    It derives from ``BaseException`` so that the ``except Exception`` handlers that turn one bad file
    into a one-line failure do not swallow it; the ``finally`` / ``except BaseException`` blocks it
    passes through remove the partial outputs (``keras_dccrn.atomic.atomic_output``).
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self):
        return signal.Signals(self.signum).name

    @property
    def code(self):
        """Exit status: 128 + the signal number, as a shell reports a process killed by it."""
        return 128 + self.signum


# Seconds after which a stop signal is raised again if the process is still running: code in a native
# library (e.g. TensorFlow's op dispatch) may check for signals and clear the exception it got.
RERAISE_SECONDS = 3.0


@contextlib.contextmanager
def signals_raise():
    """Within the block, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` in the main thread.

    Later signals within :data:`RERAISE_SECONDS` are ignored (they would interrupt the clean-up);
    if the process still runs after that (the exception was swallowed by a library), the first
    signal is raised again, every :data:`RERAISE_SECONDS`.
    """
    import _thread
    import threading

    received, last = [], [0.0]
    stop = threading.Event()

    def reraise():
        while not stop.wait(RERAISE_SECONDS):
            _thread.interrupt_main(received[0])

    def handler(signum, frame):
        now = time.monotonic()
        if received and now - last[0] < RERAISE_SECONDS:
            return
        if not received:
            received.append(signum)
            threading.Thread(target=reraise, name="reraise-stop-signal", daemon=True).start()
        last[0] = now
        raise Interrupted(received[0])

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        stop.set()
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_on_signals(main, prog):
    """Wraps an absl ``main``: a stop signal removes the partial output and exits ``128 + signal``.

    The message is one line on stderr (``<prog>: stopped by SIGTERM; no partial output left``), no
    traceback. A ``SIGKILL`` cannot be handled; its leftovers are temporary entries (``.tmp-<pid>-*``)
    that no reader takes for results and that the next run into the same folder removes.
    """

    @functools.wraps(main)
    def wrapped(argv):
        try:
            with signals_raise():
                return main(argv)
        except Interrupted as exc:
            print(f"{prog}: stopped by {exc.name}; no partial output left", file=sys.stderr)
            return exc.code

    return wrapped
