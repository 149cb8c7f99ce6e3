import numpy as np
import pytest
import tensorflow as tf

from keras_dccrn import build_model
from keras_dccrn.layers.slicing import index, take
from keras_dccrn.losses import SISNRLoss


@pytest.mark.parametrize(("axis", "start", "stop"), [(1, 2, 5), (2, 0, 3), (-1, 1, None), (0, 1, 2)])
def test_take_is_numpy_slicing(rng, axis, start, stop):
    x = rng.standard_normal((3, 6, 4, 5)).astype("float32")
    ref = np.take(x, np.arange(x.shape[axis])[start:stop], axis=axis)
    np.testing.assert_array_equal(np.asarray(take(x, axis, start, stop)), ref)


def test_take_with_tensor_bounds_and_its_gradient_match_indexing(rng):
    x = tf.constant(rng.standard_normal((2, 7, 3)).astype("float32"))
    weights = tf.constant(rng.standard_normal((2, 3, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        stop = tf.shape(x)[1] - 2
        ours = take(x, 1, 2, stop)
        ref = x[:, 2:5]
        loss_ours = tf.reduce_sum(ours * weights)
        loss_ref = tf.reduce_sum(ref * weights)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    np.testing.assert_array_equal(tape.gradient(loss_ours, x).numpy(), tape.gradient(loss_ref, x).numpy())


def test_index_drops_the_axis(rng):
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(index(x, 1, 3)), x[:, 3])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(axis=3, start=0), "axis=3"),
        (dict(axis=0, start=-1), "start=-1"),
        (dict(axis=0, start=2, stop=1), "start=2, stop=1"),
    ],
)
def test_take_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        take(np.zeros((2, 3, 4), "float32"), **kwargs)


@pytest.mark.parametrize("preset", ["tiny", pytest.param("uformer_tiny", marks=pytest.mark.slow)])
def test_training_gradient_has_no_strided_slice_gradient(rng, preset):
    # StridedSliceGrad is ~20x slower on CPU than the gradient of a slice or split
    model = build_model(preset)
    x = tf.constant(rng.standard_normal((2, 4000)).astype("float32"))

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            loss = SISNRLoss()(x, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    ops = gradient.get_concrete_function(x).graph.get_operations()
    assert any(op.type == "Conv2DBackpropFilter" or "Conv2D" in op.type for op in ops)
    assert [op.name for op in ops if op.type == "StridedSliceGrad"] == []


def test_take_keeps_static_dimensions_with_dynamic_bounds():
    @tf.function(input_signature=[tf.TensorSpec([None, None, 5, 6])])
    def shapes(x):
        frames = tf.shape(x)[1]
        return (take(x, 1, 1, frames - 1), take(x, 1, frames - 2), take(x, 2, 1, 4), take(x, 3, 2))

    outs = shapes.get_concrete_function().structured_outputs
    assert [tuple(o.shape) for o in outs] == [
        (None, None, 5, 6),
        (None, None, 5, 6),
        (None, None, 3, 6),
        (None, None, 5, 4),
    ]
