"""Optional dependencies: which pip extra provides a module, and a one-line error when it is missing.

The main install (``pip install -e .``) runs training, ``dccrn-enhance`` with every model format
(``ai-edge-litert`` runs ``.tflite`` files, among them the shipped default), ``dccrn-mix`` and
``dccrn-export``. The extras add:

* ``[eval]``: ``pystoi`` (STOI/ESTOI), ``speechmos`` + ``onnxruntime`` (DNSMOS), ``matplotlib`` (plots),
  ``librosa``: ``dccrn-evaluate`` and the benchmarks;
* ``[tflite]``: ``ai-edge-litert`` alone, for a TensorFlow-free install (``pip install --no-deps -e .``
  plus the runtime packages) or an install that predates it in the main dependencies;
* ``[serving]``: ``tensorflow-serving-api`` + ``grpcio``: ``dccrn-serve-client --protocol=grpc``.
"""

import importlib

# import name -> (pip distribution, extra)
PROVIDERS = {
    "pystoi": ("pystoi", "eval"),
    "speechmos": ("speechmos", "eval"),
    "onnxruntime": ("onnxruntime", "eval"),
    "matplotlib": ("matplotlib", "eval"),
    "librosa": ("librosa", "eval"),
    "ai_edge_litert": ("ai-edge-litert", "tflite"),
    "tensorflow_serving": ("tensorflow-serving-api", "serving"),
    "grpc": ("grpcio", "serving"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the one-line message names the pip extra."""


def missing(modules):
    """The names in ``modules`` that cannot be imported."""
    absent = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            absent.append(name)
    return absent


def require(modules, purpose):
    """Raises :class:`MissingExtraError` unless every module in ``modules`` imports.

    Args:
        modules: import names, keys of :data:`PROVIDERS`.
        purpose: what needs them, for the message (e.g. ``"STOI (--metrics stoi)"``).
    """
    absent = missing(modules)
    if not absent:
        return
    extras = sorted({PROVIDERS[name][1] for name in absent})
    dists = ", ".join(PROVIDERS[name][0] for name in absent)
    spec = ",".join(extras)
    raise MissingExtraError(
        f"{purpose} needs {dists}, which {'is' if len(absent) == 1 else 'are'} not installed: "
        f"pip install 'keras-dccrn[{spec}]' (in a checkout: pip install -e '.[{spec}]')"
    )
