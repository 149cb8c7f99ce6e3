"""The process-wide registry of skipped input files (thread safe).

Every part of the data pipeline that leaves a file out (unreadable, empty, silent, too short, listed
in a manifest but missing) records it here once, with the reason, and logs a counted warning naming
it; apps report the registry at the end of a run.
"""

import logging
import threading

logger = logging.getLogger("keras_dccrn.data")

_lock = threading.Lock()
_skipped = {}


def record_skipped(path, reason):
    """Records a skipped file once (later calls for it are ignored) and logs a counted warning naming it."""
    with _lock:
        if path in _skipped:
            return
        _skipped[path] = reason
        count = len(_skipped)
    logger.warning("Skipping %s: %s (%d file(s) skipped so far)", path, reason, count)


def skipped_files():
    """Returns ``[(path, reason), ...]`` for every file skipped so far, in order."""
    with _lock:
        return list(_skipped.items())


def skipped_count():
    """Returns how many distinct files were skipped so far."""
    with _lock:
        return len(_skipped)


def reset_skipped_files():
    """Clears the skipped-file registry (e.g. between experiments or tests)."""
    with _lock:
        _skipped.clear()
