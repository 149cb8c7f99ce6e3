"""Weight archives: a model's variables as a small ``.npz`` file, to back up a run and warm-start another.

A run's checkpoints (model, optimizer, counters) live in its run directory; a weight archive holds only
the model's variables (weights and batch-norm statistics, in the model's order; random-seed states are
left out), in float32 or float16, so that the best weights of a long run can be kept in version control
and a new run can start from them (``dccrn-train --init_weights=<file>``).
"""

import os

import numpy as np

from keras_dccrn.atomic import atomic_output

SEED_STATE_SUFFIX = "seed_generator_state"


class WeightsError(ValueError):
    """A weights file that cannot be read into the model (one line naming the file and the problem)."""


def _variables(model):
    """The model's variables that an archive holds, in the model's order (seed states left out)."""
    return [v for v in model.variables if not v.path.endswith(SEED_STATE_SUFFIX)]


def _key(index, variable):
    """Archive key of the ``index``-th variable: its position, then its path (for messages only)."""
    return f"{index:05d}:{variable.path}"


def write_weights(model, path, dtype="float32"):
    """Writes the model's variables to ``path`` (``.npz``) atomically.

    Args:
        model: a built Keras model.
        path: output file; must end in ``.npz``.
        dtype: ``"float32"`` or ``"float16"`` (half the size; the values are rounded).

    Raises:
        ValueError: bad ``path`` or ``dtype``.
    """
    if not os.fspath(path).endswith(".npz"):
        raise ValueError(f"A weight archive is a .npz file; received {path!r}.")
    if dtype not in ("float32", "float16"):
        raise ValueError(f"`dtype` must be 'float32' or 'float16'; received {dtype!r}.")
    arrays = {_key(i, v): np.asarray(v.numpy()).astype(dtype) for i, v in enumerate(_variables(model))}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _archive_arrays(path):
    """``[(name, array)]`` of a ``.npz`` archive or of the variables of a ``.keras`` model file, in order."""
    if path.endswith(".keras"):
        from keras_dccrn.runtime import ModelLoadError, load_keras_model

        try:
            source = load_keras_model(path)
        except ModelLoadError as exc:
            raise WeightsError(str(exc)) from None
        return [(v.path, np.asarray(v.numpy())) for v in _variables(source)]
    if not path.endswith(".npz"):
        raise WeightsError(f"{path}: not a weight archive (.npz) or a .keras model file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return [(key.split(":", 1)[-1], data[key]) for key in sorted(data.files)]
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable weight archive ({str(exc).splitlines()[0]})") from None


def _checked_arrays(model, path):
    """The arrays of ``path`` after checking that they fit ``model``'s variables (count and shapes)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such weights file")
    arrays = _archive_arrays(path)
    own = _variables(model)
    if len(arrays) != len(own):
        raise WeightsError(
            f"{path}: holds {len(arrays)} variables, model {model.name!r} has {len(own)} (another architecture)"
        )
    for (name, array), variable in zip(arrays, own, strict=True):
        if tuple(array.shape) != tuple(variable.shape):
            raise WeightsError(
                f"{path}: {name} has shape {tuple(array.shape)}, the model's {variable.path} has "
                f"{tuple(variable.shape)} (another architecture)"
            )
    return [array for _, array in arrays]


def read_weights(model, path):
    """Assigns the variables stored in ``path`` (``.npz`` archive or ``.keras`` file) to ``model``.

    Variables are matched by position (Keras numbers layer names per process, so paths differ between
    processes that built other models first): the file must hold as many variables as ``model`` (seed
    states aside), each with the same shape, which holds for the same architecture (the same preset).
    Values are cast to each variable's dtype.

    Raises:
        WeightsError: one line naming the file and the problem (missing or unreadable file, another
            number of variables, a shape that differs).
    """
    read_average(model, [path])


def read_average(model, paths):
    """Assigns to ``model`` the mean of the variables stored in several files of its architecture.

    Averaging the weights of snapshots taken along one run (stochastic weight averaging, Izmailov et al.
    2018) lands nearer the centre of the region the run explores than any one snapshot. Batch-norm moving
    statistics are averaged like the weights. Files are read as by :func:`read_weights`; the mean is
    taken in float64 and cast to each variable's dtype.

    Args:
        model: a built Keras model.
        paths: one or more ``.npz`` archives or ``.keras`` files of the model's architecture.

    Raises:
        ValueError: ``paths`` is empty.
        WeightsError: one line naming the file and the problem, as :func:`read_weights`.
    """
    paths = list(paths)
    if not paths:
        raise ValueError(f"`paths` must name at least one weights file; received {paths!r}.")
    total = None
    for path in paths:
        arrays = _checked_arrays(model, path)
        if total is None:
            total = [array.astype("float64") for array in arrays]
        else:
            total = [t + array for t, array in zip(total, arrays, strict=True)]
    for value, variable in zip(total, _variables(model), strict=True):
        variable.assign((value / len(paths)).astype(variable.dtype))
