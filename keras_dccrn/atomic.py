"""Atomic file and folder writes: an output is either complete or absent, never partial.

Every output of this package is written to a temporary entry next to it and renamed onto its path
when complete (:func:`atomic_output`, :func:`write_text`, or :func:`make_temp` + :func:`publish` for a
folder built in steps). Temporary entries are named ``.tmp-<pid>-<random><suffix>``: no folder scan
of this package takes one for a result (:func:`is_temp_name`), and the pid tells a leftover of a
killed process (removed by the next :func:`make_temp` in that folder) from the work in progress of a
running one.
"""

import contextlib
import os
import re
import shutil
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp, path):
    """Renames a finished temporary file or folder onto ``path`` with the default permissions.

    ``tempfile.mkstemp`` / ``mkdtemp`` create private (0600 / 0700) entries; outputs get what a plain
    ``open()`` / ``os.makedirs`` would give (0666 / 0777 minus the umask), so that other users and
    services (e.g. a TF Serving container) can read them. Folders are made readable recursively.
    """
    mask = _umask()
    if os.path.isdir(tmp):
        for root, _dirs, files in os.walk(tmp):
            os.chmod(root, 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


TEMP_PREFIX = ".tmp-"
_TEMP_RE = re.compile(r"^\.tmp-(\d+)-")
_MADE_HERE = set()  # temporary entries created by this process (a reused pid is not a live owner)
_SCANNED = set()  # folders already cleaned of stale temporary entries by this process


def is_temp_name(name):
    """Whether ``name`` (a file or folder name) is a temporary output, never a result."""
    return name.startswith(TEMP_PREFIX)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def remove_stale_temps(folder):
    """Removes the temporary outputs in ``folder`` left by processes that no longer run (e.g. SIGKILL).

    Returns:
        The paths removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_RE.match(name)
        path = os.path.join(folder, name)
        if match is None or os.path.abspath(path) in _MADE_HERE:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _pid_alive(pid):
            continue
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def make_temp(folder, suffix="", directory=False):
    """Creates an empty temporary file (or folder) in ``folder`` for an output written in place.

    The folder is created if needed, and leftovers of killed processes in it are removed first
    (:func:`remove_stale_temps`, once per folder and process). Pair with :func:`publish` and :func:`remove_temp`, or use
    :func:`atomic_output`.

    Returns:
        The temporary path, ``<folder>/.tmp-<pid>-<random><suffix>``.
    """
    os.makedirs(folder, exist_ok=True)
    key = os.path.abspath(folder)
    if key not in _SCANNED:  # once per folder and process: many outputs into one folder stay O(n)
        _SCANNED.add(key)
        remove_stale_temps(folder)
    prefix = f"{TEMP_PREFIX}{os.getpid()}-"
    if directory:
        tmp = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder)
    else:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
        os.close(fd)
    _MADE_HERE.add(os.path.abspath(tmp))
    return tmp


def remove_temp(tmp):
    """Removes a temporary entry of :func:`make_temp` if it still exists (file or folder)."""
    _MADE_HERE.discard(os.path.abspath(tmp))
    if os.path.isdir(tmp) and not os.path.islink(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    elif os.path.lexists(tmp):
        os.remove(tmp)


@contextlib.contextmanager
def atomic_output(path, directory=False):
    """Yields a temporary path next to ``path``; publishes it onto ``path`` if the block completes.

    On any exception, including an interruption (``KeyboardInterrupt`` or a signal turned into an
    exception), the temporary entry is removed and the exception propagates, so ``path`` is either
    the complete new output or untouched. A folder output replaces an existing ``path`` only if that
    is an empty folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = make_temp(folder, suffix="" if directory else os.path.splitext(path)[1], directory=directory)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        remove_temp(tmp)


def write_text(path, text):
    """Writes a text file atomically (:func:`atomic_output`); undecodable file-name bytes are kept."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
