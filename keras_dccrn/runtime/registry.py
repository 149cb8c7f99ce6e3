"""Shipped models: the folders searched, the model names they hold, and which file of a folder is used.

A shipped model is a folder ``<name>/`` in one of :func:`shipped_model_dirs` holding a model: a TF
SavedModel (``saved_model.pb`` in the folder or in an integer version folder, TF-Serving layout), a
``.keras`` file or a ``.tflite`` file. Which of several is loaded is decided in one place,
:func:`model_in_folder`:

1. the ``"default"`` entry of the folder's :data:`MANIFEST` (``manifest.json``), a path relative to
   the folder, e.g. ``{"default": "distil_dccrn_streaming_dynamic_int8.tflite"}``;
2. otherwise the SavedModel (highest version), then the first ``.keras`` file, then the first
   ``.tflite`` file (names sorted).

To make another file the default of a shipped model, write the manifest into its folder.
"""

import json
import os

from keras_dccrn.runtime.errors import ModelLoadError

# Folder of shipped models: saved_models/<name>/ next to the package (a source checkout or an editable
# install). Also searched: $KERAS_DCCRN_MODELS and ./saved_models (a non-editable install run from a checkout).
SHIPPED_MODELS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "saved_models"
)
MODELS_ENV = "KERAS_DCCRN_MODELS"
# Name (in the shipped-model folders) of the model used when none is given: the Distil-DCCRN student
# distilled with AT-KL (saved_models/distil_dccrn/, see its MODEL_CARD.md).
DEFAULT_MODEL = "distil_dccrn"
# Per-folder file naming the model file a shipped folder serves (see model_in_folder).
MANIFEST = "manifest.json"
MODEL_SUFFIXES = (".keras", ".tflite")


def shipped_model_dirs():
    """The folders searched for shipped models, in order: ``$KERAS_DCCRN_MODELS``, the checkout, ``./saved_models``."""
    dirs = []
    for folder in (os.environ.get(MODELS_ENV), SHIPPED_MODELS_DIR, os.path.abspath("saved_models")):
        if folder and os.path.isdir(folder) and os.path.realpath(folder) not in map(os.path.realpath, dirs):
            dirs.append(folder)
    return dirs


def no_default_message():
    """One-line reason why the default model cannot be found (names the folders searched)."""
    searched = ", ".join([f"${MODELS_ENV}", SHIPPED_MODELS_DIR, os.path.abspath("saved_models")])
    return (
        f"the default model '{DEFAULT_MODEL}' is not in any shipped-model folder ({searched}); run from a "
        f"keras-dccrn checkout (pip install -e .), set {MODELS_ENV} to its saved_models folder, or pass a "
        ".keras file, a TF SavedModel directory or a .tflite file"
    )


def shipped_models():
    """``{name: folder}`` of the shipped models (folders holding a model file) in :func:`shipped_model_dirs`.

    A name found in an earlier folder wins.
    """
    found = {}
    for base in shipped_model_dirs():
        for name in sorted(os.listdir(base)):
            folder = os.path.join(base, name)
            if name not in found and os.path.isdir(folder) and _has_model(folder):
                found[name] = folder
    return found


def _has_model(folder):
    if os.path.isfile(os.path.join(folder, MANIFEST)) or savedmodel_dir(folder):
        return True
    return any(name.endswith(MODEL_SUFFIXES) for name in os.listdir(folder))


def model_in_folder(folder):
    """The model a folder serves: a SavedModel directory, a ``.keras`` or a ``.tflite`` file, or None.

    The folder's :data:`MANIFEST` ``"default"`` entry wins; otherwise SavedModel, ``.keras``, ``.tflite``.

    Raises:
        ModelLoadError: the manifest is unreadable or names a file that is missing or not a model.
    """
    manifest = os.path.join(folder, MANIFEST)
    if os.path.isfile(manifest):
        return _manifest_default(folder, manifest)
    saved = savedmodel_dir(folder)
    if saved:
        return saved
    for suffix in MODEL_SUFFIXES:
        files = sorted(f for f in os.listdir(folder) if f.endswith(suffix))
        if files:
            return os.path.join(folder, files[0])
    return None


def _manifest_default(folder, manifest):
    try:
        with open(manifest, encoding="utf-8") as f:
            entry = json.load(f).get("default")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{manifest}: not a JSON object with a 'default' entry ({exc})") from None
    if not isinstance(entry, str) or not entry or os.path.isabs(entry) or ".." in entry.split("/"):
        raise ModelLoadError(f"{manifest}: 'default' must be a file name inside {folder}; received {entry!r}")
    path = os.path.join(folder, entry)
    if os.path.isdir(path) and savedmodel_dir(path):
        return savedmodel_dir(path)
    if not (os.path.isfile(path) and path.endswith(MODEL_SUFFIXES)):
        raise ModelLoadError(
            f"{manifest}: 'default' names {entry!r}, which is not a .keras / .tflite file or SavedModel "
            "folder there"
        )
    return path


def savedmodel_dir(path):
    """``path`` itself, or its highest integer version (TF-Serving layout), if it holds saved_model.pb."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit() and os.path.isdir(os.path.join(path, d))]
    for version in sorted(versions, key=int, reverse=True):
        candidate = os.path.join(path, version)
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    return None
