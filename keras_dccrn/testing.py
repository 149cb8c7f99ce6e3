"""Shared test routines for the package's Keras layers (the keras-hub ``TestCase.run_layer_test`` idea).

:func:`run_layer_test` checks what every layer of this package promises: it builds and runs, its
``get_config`` survives a trip through JSON text (what a ``.keras`` file stores) and rebuilds an
equal layer, ``keras.saving.serialize_keras_object`` / ``deserialize_keras_object`` revive the
registered class, and the rebuilt layers given the original's weights compute the same outputs.
"""

import json

import keras
import numpy as np


def _json(value):
    """``value`` after a trip through JSON text (tuples become lists, as in a saved file)."""
    return json.loads(json.dumps(value))


def _numpy_outputs(outputs):
    return [np.asarray(keras.ops.convert_to_numpy(x)) for x in keras.tree.flatten(outputs)]


def run_layer_test(layer, inputs, atol=1e-6, rtol=1e-6, expected_output_shape=None, **call_kwargs):
    """Builds and calls ``layer``, round-trips its config through JSON and checks the rebuilt layers.

    Args:
        layer: an unbuilt layer instance.
        inputs: its input array, or a list of arrays for a layer of several inputs.
        atol: absolute tolerance of the output comparison.
        rtol: relative tolerance of the output comparison.
        expected_output_shape: the output's shape (a tuple, or a list of tuples), if to be checked.
        **call_kwargs: passed to every call (e.g. ``training=False``).

    Returns:
        The layer's outputs as a list of NumPy arrays (the flattened output structure).

    Raises:
        AssertionError: a config that JSON changes or that rebuilds a different layer, a revived
            layer of another class, other weights, or different outputs.
    """
    outputs = _numpy_outputs(layer(inputs, **call_kwargs))
    if expected_output_shape is not None:
        shapes = expected_output_shape if isinstance(expected_output_shape, list) else [expected_output_shape]
        assert [tuple(o.shape) for o in outputs] == [tuple(s) for s in shapes], (
            f"output shapes {[o.shape for o in outputs]}, expected {shapes}"
        )
    config = layer.get_config()
    assert _json(config) == _json(_json(config)), "get_config() is not plain JSON data"
    from_config = type(layer).from_config(_json(config))
    assert _json(from_config.get_config()) == _json(config), "from_config(get_config()) differs"
    revived = keras.saving.deserialize_keras_object(_json(keras.saving.serialize_keras_object(layer)))
    assert type(revived) is type(layer), f"revived as {type(revived).__name__}, not {type(layer).__name__}"
    assert _json(revived.get_config()) == _json(config), "deserialize(serialize(layer)) differs"
    for clone in (from_config, revived):
        clone(inputs, **call_kwargs)  # builds the weights
        assert len(clone.weights) == len(layer.weights), "the rebuilt layer has other weights"
        clone.set_weights(layer.get_weights())
        for got, want in zip(_numpy_outputs(clone(inputs, **call_kwargs)), outputs, strict=True):
            np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)
    return outputs
