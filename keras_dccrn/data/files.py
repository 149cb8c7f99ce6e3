"""Which files are audio, and the one folder scan that finds them.

:data:`AUDIO_EXTENSIONS` are the file extensions treated as audio (lower case, no dot: the keys of
:data:`keras_dccrn.audio.AUDIO_FORMATS`, which maps each to the libsndfile format that reads and
writes it); :func:`audio_files` is the recursive, sorted scan used by the data
pipeline, the evaluation file pairing and the command-line tools. Temporary outputs of this package
(``.tmp-*`` files and folders, :data:`keras_dccrn.atomic.TEMP_PREFIX`) are never taken for audio.
"""

import os

import soundfile as sf

from keras_dccrn.atomic import TEMP_PREFIX
from keras_dccrn.audio import AUDIO_FORMATS

AUDIO_EXTENSIONS = tuple(sorted(AUDIO_FORMATS))


def readable_audio_extensions():
    """The extensions of :data:`AUDIO_EXTENSIONS` whose format this libsndfile build decodes."""
    formats = {name.upper() for name in sf.available_formats()}
    return tuple(ext for ext in AUDIO_EXTENSIONS if AUDIO_FORMATS[ext] in formats or ext in ("wav", "flac"))


def is_audio_name(name, extensions=AUDIO_EXTENSIONS):
    """Whether a file name has one of ``extensions`` (lower case, no dot) and is no temporary output."""
    if name.startswith(TEMP_PREFIX):
        return False
    return os.path.splitext(name)[1].lower().lstrip(".") in extensions


def audio_files(folder, extensions=AUDIO_EXTENSIONS, prune=None, follow_links=True):
    """Paths of the audio files under ``folder``, recursively, in a fixed order.

    Sub-folders are visited in sorted order after the files of their parent (each folder's files
    sorted by name), so the list, and every random draw indexed by it, is the same on every machine.

    Args:
        folder: directory to scan.
        extensions: extensions (lower case, no dot) that count as audio.
        prune: optional ``prune(path) -> bool``; a sub-folder for which it is true is not entered
            (e.g. an output folder inside the input tree).
        follow_links: enter symbolically linked folders.

    Returns:
        ``[path, ...]`` (``folder`` joined with the relative path of each file).
    """
    extensions = frozenset(extensions)
    found = []
    for root, dirs, names in os.walk(folder, followlinks=follow_links):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(TEMP_PREFIX) and (prune is None or not prune(os.path.join(root, d)))
        )
        found.extend(os.path.join(root, name) for name in sorted(names) if is_audio_name(name, extensions))
    return found
