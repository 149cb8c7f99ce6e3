"""Finding audio: folders, globs, manifests and lists, resolved to ``[(path, duration_seconds)]``.

Unusable files are left out and recorded in :mod:`keras_dccrn.data.skipped`; an input that matches
nothing at all is a ``ValueError`` naming it.
"""

import fnmatch
import glob
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_dccrn.audio import SAMPLE_RATE, AudioError, audio_info, read_audio
from keras_dccrn.data.files import audio_files
from keras_dccrn.data.manifests import MANIFEST_EXTENSIONS, is_manifest, manifest_duration, read_manifest
from keras_dccrn.data.mixing import rms_db
from keras_dccrn.data.skipped import record_skipped


def scan(pattern_or_dir):
    """The files a folder (its audio files, recursively) or a glob pattern (``**`` allowed) names."""
    if os.path.isdir(pattern_or_dir):
        return audio_files(pattern_or_dir)
    return sorted(p for p in glob.glob(pattern_or_dir, recursive=True) if os.path.isfile(p))


def split_query(spec):
    """``(manifest, where)`` of ``"manifest.csv?kind=speech&split=train"``; ``(spec, None)`` otherwise.

    Raises:
        ValueError: the part after ``?`` is not ``key=value`` pairs joined by ``&``.
    """
    base, _, query = spec.partition("?")
    if not (query and is_manifest(base) and not os.path.exists(spec)):
        return spec, None
    pairs = [item.partition("=") for item in query.split("&") if item]
    if any(not sep for _, sep, _ in pairs):
        raise ValueError(f"{spec}: filter after '?' must be key=value pairs joined by '&'")
    return base, {k: v for k, _, v in pairs}


def check_not_silent(path, audio, silence_db):
    """Raises :class:`AudioError` naming ``path`` if ``audio`` is below ``silence_db`` dBFS RMS.

    With ``silence_db=None`` (e.g. RIRs: quiet by nature) only an all-zero signal is rejected.
    """
    if silence_db is None:
        if not np.any(audio):
            raise AudioError(f"{path}: all samples are zero")
        return
    level = rms_db(audio)
    if level < silence_db:
        raise AudioError(f"{path}: silent (RMS {level:.1f} dBFS < {silence_db:g} dBFS)")


def inspect_file(path, verify=False, silence_db=-70.0, sample_rate=SAMPLE_RATE):
    """Checks one file; returns its duration in seconds or raises :class:`AudioError`.

    Args:
        path: audio file.
        verify: also decode it and reject NaN/infinite or silent content
            (otherwise only the header is read).
        silence_db: RMS threshold for ``verify`` in dBFS.
        sample_rate: rate used for decoding when ``verify`` is set.
    """
    info = audio_info(path)
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: contains no samples")
    if verify:
        audio, _ = read_audio(path, sample_rate=sample_rate)
        check_not_silent(path, audio, silence_db)
    return info.frames / info.samplerate


def excluded(path, patterns):
    """Whether ``path`` (or its file name) matches one of the ``fnmatch`` patterns."""
    name = os.path.basename(path)
    unix = path.replace(os.sep, "/")
    return any(fnmatch.fnmatch(unix, p) or fnmatch.fnmatch(name, p) for p in patterns)


def skip_reason(exc, path):
    """The message of an :class:`AudioError` about ``path`` without the leading ``"<path>: "``."""
    text = str(exc)
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


def describe(spec):
    """A short description of an input spec for messages (long lists abbreviated)."""
    if isinstance(spec, (list, tuple)) and len(spec) > 3:
        return f"[{spec[0]!r}, ... {len(spec)} items]"
    return repr(spec)


def find_audio(spec, verify=False, where=None, silence_db=-70.0, num_workers=1, exclude=()):
    """Lists audio files and their durations.

    Args:
        spec: a directory (scanned recursively for audio extensions), a glob
            pattern (``**`` allowed), a manifest file (CSV/TSV with a header,
            or JSON lines; a ``path`` column/key and ``duration`` (or
            ``seconds``) in seconds; relative paths are resolved against the
            manifest's folder; a missing duration is read from the header;
            ``"manifest.csv?kind=speech&split=train"`` keeps only rows
            whose columns have these values), a list of those, or a list of
            ``(path, duration)`` pairs.
        verify: decode every file and reject NaN/infinite or silent ones
            (slow on big corpora; the pipeline checks content on use anyway).
        where: for manifests, keep rows whose columns equal these values,
            e.g. ``{"kind": "speech", "split": "train"}``.
        silence_db: RMS threshold for ``verify`` (``None``: reject only
            all-zero files).
        num_workers: threads used to read headers / decode files.
        exclude: ``fnmatch`` patterns matched against each file's name and
            against its whole path (a folder needs a leading ``*/``, e.g.
            ``"*/spk1/*"``); matching files are left out silently.
            ``("urbansound_*",)`` drops the non-commercial UrbanSound8K files
            of ``../shared/data``.

    Returns:
        ``[(path, duration_seconds), ...]``. Files that cannot be used
        (missing, unreadable, empty, and with ``verify`` silent or NaN) are
        left out, recorded in :func:`keras_dccrn.data.skipped_files` and logged.

    Raises:
        ValueError: ``spec`` matches nothing at all (no such directory,
            pattern or manifest), or a manifest is malformed.
    """
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude or ())
    if isinstance(spec, (list, tuple)):
        if spec and all(isinstance(s, (list, tuple)) and len(s) == 2 for s in spec):
            return [(str(p), float(d)) for p, d in spec if not excluded(str(p), exclude)]
        out = []
        for s in spec:
            out.extend(
                find_audio(
                    s,
                    verify=verify,
                    where=where,
                    silence_db=silence_db,
                    num_workers=num_workers,
                    exclude=exclude,
                )
            )
        return out
    spec = os.path.expanduser(os.fspath(spec))
    spec, query = split_query(spec)
    if query:  # "manifest.csv?kind=speech&split=train": keep rows with these values.
        where = dict(where or {}, **query)
    candidates = []  # (path, duration or None)
    if is_manifest(spec):
        for row in read_manifest(spec, where):
            path, duration = row["path"], manifest_duration(row, spec)
            if not os.path.isfile(path):
                record_skipped(path, f"listed in {spec} but no such file")
            elif duration is not None and duration <= 0 and not verify:
                record_skipped(path, f"duration {duration:g} s in {spec}")
            else:
                candidates.append((path, None if verify else duration))
    else:
        paths = scan(spec)
        if not paths and not os.path.isdir(spec):
            raise ValueError(f"{spec}: no such directory, manifest or matching files")
        candidates = [(p, None) for p in paths if not p.lower().endswith(MANIFEST_EXTENSIONS)]
    candidates = [(p, d) for p, d in candidates if not excluded(p, exclude)]

    def check(item):
        path, duration = item
        if duration is not None:
            return path, duration, None
        try:
            return path, inspect_file(path, verify=verify, silence_db=silence_db), None
        except AudioError as exc:
            return path, None, skip_reason(exc, path)

    if num_workers > 1 and len(candidates) > 1:
        with ThreadPoolExecutor(int(num_workers)) as pool:
            checked = list(pool.map(check, candidates))
    else:
        checked = [check(c) for c in candidates]
    results = []
    for path, duration, reason in checked:
        if reason is not None:
            record_skipped(path, reason)
        else:
            results.append((path, duration))
    return results
