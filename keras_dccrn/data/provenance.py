"""Where the audio of a data flag comes from: files, seconds and licence per source, from the data's manifest.

A data folder describes its audio in a ``manifest.csv`` at its top (``../shared/data`` has one): one row
per file with ``path`` (relative to the manifest's folder), ``seconds``, ``source`` and ``licence``, and
optionally ``speaker_or_class``; other columns are ignored here. :func:`describe_sources` resolves one
data flag as the trainers do (the files :func:`~keras_dccrn.data.discovery.scan` finds for a folder or a
glob, or the rows of a manifest given as the flag, minus the ``--exclude`` patterns applied by
:func:`~keras_dccrn.data.discovery.excluded`), looks each file up in the ``manifest.csv`` of the nearest
folder at or above it, and sums the rows per source. Files no manifest lists (or listed without a
source or licence) are counted apart, as of unknown origin.

The licence tests (:func:`is_non_commercial`, :func:`is_copyleft`) read the licence text as written in
the manifest; they flag terms, they draw no legal conclusion.
"""

import dataclasses
import os
import re

from keras_dccrn.audio import AudioError
from keras_dccrn.data.discovery import excluded, inspect_file, scan, split_query
from keras_dccrn.data.manifests import MANIFEST_EXTENSIONS, is_manifest, manifest_duration, read_manifest

DATA_MANIFEST = "manifest.csv"


@dataclasses.dataclass(frozen=True)
class Source:
    """The files of one source (corpus) selected by a data flag.

    Attributes:
        name: the manifest's ``source``.
        licence: the manifest's ``licence``.
        files: number of files.
        seconds: their total duration (the manifest's ``seconds``, else the file header).
        speakers: distinct ``speaker_or_class`` values (0 without that column).
    """

    name: str
    licence: str
    files: int
    seconds: float
    speakers: int


@dataclasses.dataclass(frozen=True)
class DataDescription:
    """What one data flag selects.

    Attributes:
        spec: the flag's value.
        manifests: the manifest files the sources were read from.
        sources: per-source totals, by source name.
        unlisted_files: files found that no manifest describes.
        unlisted_seconds: their total duration (file headers; unreadable files, which the trainers
            skip, are not counted).
        excluded: files left out by the exclude patterns.
    """

    spec: str
    manifests: tuple
    sources: tuple
    unlisted_files: int
    unlisted_seconds: float
    excluded: int

    @property
    def files(self):
        return sum(s.files for s in self.sources) + self.unlisted_files


def find_data_manifest(folder):
    """The ``manifest.csv`` of ``folder`` or of its nearest parent holding one, or None."""
    folder = os.path.abspath(folder)
    while True:
        candidate = os.path.join(folder, DATA_MANIFEST)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _described(row):
    return bool(str(row.get("source") or "").strip() and str(row.get("licence") or "").strip())


def describe_sources(spec, exclude=()):
    """Per-source files, seconds and licences of the audio one data flag selects.

    Args:
        spec: a data flag's value: a folder, a glob pattern, or a manifest (``"manifest.csv?kind=noise"``
            filters rows as in :func:`~keras_dccrn.data.find_audio`); relative paths are relative to
            the current folder.
        exclude: ``fnmatch`` patterns of files to leave out (the trainers' ``--exclude``).

    Returns:
        A :class:`DataDescription`.

    Raises:
        ValueError: a manifest (the flag's or a data folder's) is malformed (the message names it).
    """
    spec = os.path.expanduser(os.fspath(spec))
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude or ())
    base, where = split_query(spec)
    found = []  # (path as the trainers see it, manifest, row or None)
    if is_manifest(base):
        found = [
            (row["path"], base, row) for row in read_manifest(base, where) if os.path.isfile(row["path"])
        ]
    else:
        manifests, tables = {}, {}
        for path in scan(base):
            if path.lower().endswith(MANIFEST_EXTENSIONS):
                continue
            folder = os.path.dirname(os.path.abspath(path))
            if folder not in manifests:
                manifests[folder] = find_data_manifest(folder)
            manifest = manifests[folder]
            if manifest and manifest not in tables:
                tables[manifest] = {row["path"]: row for row in read_manifest(manifest)}
            row = tables[manifest].get(os.path.normpath(os.path.abspath(path))) if manifest else None
            found.append((path, manifest, row))
    kept = [item for item in found if not excluded(item[0], exclude)]
    totals, used, unlisted, unlisted_seconds = {}, set(), 0, 0.0
    for path, manifest, row in kept:
        seconds = manifest_duration(row, manifest) if row else None
        if seconds is None:
            try:
                seconds = inspect_file(path)
            except AudioError:
                continue
        if row is None or not _described(row):
            unlisted += 1
            unlisted_seconds += seconds
            continue
        used.add(manifest)
        key = (str(row["source"]).strip(), str(row["licence"]).strip())
        files, total, speakers = totals.get(key, (0, 0.0, set()))
        if row.get("speaker_or_class"):
            speakers.add(row["speaker_or_class"])
        totals[key] = (files + 1, total + seconds, speakers)
    sources = tuple(
        Source(name, licence, files, seconds, len(speakers))
        for (name, licence), (files, seconds, speakers) in sorted(
            totals.items(), key=lambda item: (item[0][0].casefold(), item[0][1])
        )
    )
    return DataDescription(
        spec=spec,
        manifests=tuple(sorted(used)),
        sources=sources,
        unlisted_files=unlisted,
        unlisted_seconds=unlisted_seconds,
        excluded=len(found) - len(kept),
    )


def is_non_commercial(licence):
    """Whether a licence text restricts use to non-commercial purposes ("NC", as in CC BY-NC, or "NON-COMMERCIAL").

    Both are matched in capitals, as licence names write them: "free for commercial and non-commercial
    use" is not a restriction.
    """
    return bool(re.search(r"\bNC\b", licence)) or "NON-COMMERCIAL" in licence


def is_copyleft(licence):
    """Whether a licence text is share-alike (CC BY-SA, "share-alike") or of the GPL family (GPL, LGPL, AGPL)."""
    return bool(re.search(r"\bSA\b|\b[AL]?GPL\b", licence)) or "share-alike" in licence.lower()
