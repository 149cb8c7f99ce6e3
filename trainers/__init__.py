"""The command-line apps of keras-dccrn (absl apps behind the ``dccrn-*`` console scripts).

Importing this package (every app does, before anything imports TensorFlow) keeps TensorFlow's native
log output off the apps' stderr:

* ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3, which hides the C++ log lines TensorFlow writes while it runs
  (e.g. ``cuda_platform.cc ... failed call to cuInit``); export another value to see them;
* the lines written while ``tensorflow`` is imported (``port.cc ... oneDNN custom operations``,
  ``cudart_stub.cc ... Could not find cuda drivers``, ``cpu_feature_guard.cc ...``) come before
  TensorFlow's logging is initialised and ignore that variable, so the import runs with file
  descriptor 2 pointed at ``/dev/null`` (:func:`trainers.cli.quiet_native_stderr`); an exception
  raised by the import is still reported. Set ``KERAS_DCCRN_TF_IMPORT_LOGS=1`` to see those lines.
"""

import importlib.abc
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _QuietLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` with the native stderr silenced (see the module doc)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        from trainers.cli import quiet_native_stderr

        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with quiet_native_stderr():
            self.loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self.loader, name)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Meta-path finder that wraps the loader of the top-level ``tensorflow`` package once."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        spec = None
        for finder in sys.meta_path:  # the finders after this one decide, as they would without it
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


if (
    "tensorflow" not in sys.modules
    and os.environ.get("KERAS_DCCRN_TF_IMPORT_LOGS") != "1"
    and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path)
):
    sys.meta_path.insert(0, _QuietTensorFlowImport())
