"""Manifests: CSV/TSV or JSON-lines lists of audio files with their durations (read and written).

A manifest has a ``path`` column (or key) and a ``duration`` (or ``seconds``) in seconds; relative
paths are relative to the manifest's folder; any other columns (``kind``, ``split``, ...) can be
used to filter rows. ``dccrn-prepare`` writes them once for a big corpus so that training does not
read every file header again.
"""

import csv
import io
import json
import os

from keras_dccrn.atomic import write_text

MANIFEST_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")


def is_manifest(path):
    """Whether ``path`` is an existing file with a manifest extension."""
    return os.path.isfile(path) and path.lower().endswith(MANIFEST_EXTENSIONS)


def read_manifest(path, where=None):
    """Rows of a CSV/TSV or JSON-lines manifest as dicts, ``path`` made absolute.

    Args:
        path: the manifest file.
        where: optional ``{column: value}``; only rows whose columns equal these values are kept.

    Raises:
        ValueError: unreadable file, no ``path`` column, or a line that is not a JSON object with a
            ``path`` key (the message names the file and line).
    """
    folder = os.path.dirname(os.path.abspath(path))
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            if path.lower().endswith((".csv", ".tsv")):
                delimiter = "\t" if path.lower().endswith(".tsv") else ","
                reader = csv.DictReader(f, delimiter=delimiter)
                if reader.fieldnames is None or "path" not in reader.fieldnames:
                    raise ValueError(f"{path}: manifest has no `path` column (columns: {reader.fieldnames})")
                rows = list(reader)
            else:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
                    if not isinstance(row, dict) or "path" not in row:
                        raise ValueError(f"{path}: line {number} has no `path` key")
                    rows.append(row)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read manifest ({exc})") from None
    if where:
        rows = [r for r in rows if all(str(r.get(k)) == str(v) for k, v in where.items())]
    for row in rows:
        p = os.path.expanduser(str(row["path"]))
        row["path"] = os.path.normpath(p if os.path.isabs(p) else os.path.join(folder, p))
    return rows


def manifest_duration(row, manifest):
    """The ``duration`` (or ``seconds``) of a manifest row in seconds, or ``None`` if it has none."""
    for key in ("duration", "seconds"):
        value = row.get(key)
        if value not in (None, ""):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{manifest}: bad {key} {value!r} for {row['path']} (expected seconds)"
                ) from None
    return None


def _format(value):
    if isinstance(value, float):
        return f"{value:.6f}"
    return value


def write_csv(path, rows, fields, delimiter=","):
    """Writes dict rows as a CSV table with a header, atomically (floats with 6 decimals).

    Args:
        path: destination (its folder is created).
        rows: dicts; keys outside ``fields`` are ignored, missing ones written empty.
        fields: column names, in order.
        delimiter: ``","`` or ``"\\t"``.
    """
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore", delimiter=delimiter)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(row.get(k, "")) for k in fields})
    write_text(path, buffer.getvalue())


def write_manifest(path, entries, columns=None):
    """Writes ``[(path, duration), ...]`` as a CSV or JSON-lines manifest (by extension), atomically.

    Files inside the manifest's folder are stored with relative paths (the
    folder stays portable), others with absolute paths.

    Args:
        path: ``.csv``/``.tsv`` or ``.jsonl``/``.ndjson``/``.json`` file.
        entries: ``(path, duration_seconds)`` pairs.
        columns: optional dict of constant extra columns (e.g. ``{"kind": "rir"}``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    columns = dict(columns or {})
    rows = []
    for p, d in entries:
        p = os.path.abspath(p)
        rel = os.path.relpath(p, folder)
        rows.append(
            {"path": p if rel.startswith(os.pardir) else rel, "duration": round(float(d), 6), **columns}
        )
    fields = ("path", "duration", *columns)
    lower = path.lower()
    if lower.endswith((".csv", ".tsv")):
        write_csv(path, rows, fields, delimiter="\t" if lower.endswith(".tsv") else ",")
        return
    if not lower.endswith((".jsonl", ".ndjson", ".json")):
        raise ValueError(f"{path}: manifest must end with .csv, .tsv or .jsonl")
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
