import numpy as np
import pytest

from keras_dccrn.runtime.hops import HopStream, run_hops


def _delay_step(audio, states):  # a pure delay of one hop: out = previous hop
    return states["previous"], {"previous": audio}


def _recursive_step(audio, state):
    """A first-order recursion per sample, state the last output: depends on every earlier sample."""
    out = np.empty_like(audio)
    y = state
    for i in range(audio.shape[1]):
        y = 0.9 * y + audio[0, i]
        out[0, i] = y
    return out, y


def test_run_hops_pads_realigns_and_observes():
    seen = []
    x = np.arange(250, dtype="float32")
    y = run_hops(
        _delay_step, {"previous": np.zeros((1, 100))}, x, 100, 100, observe=lambda a, s: seen.append(a)
    )
    np.testing.assert_array_equal(y, x)
    assert len(seen) == 4 and seen[0].shape == (1, 100)  # ceil((250 + 100) / 100) hops


def _reference(x, delay):
    """NumPy reference of the recursion run on ``x`` then ``delay`` zeros, its first ``delay`` samples dropped."""
    padded = np.concatenate([x, np.zeros(delay + 40, "float32")]).astype("float64")
    y, out = 0.0, np.empty(padded.size)
    for i, v in enumerate(padded):
        y = 0.9 * y + v
        out[i] = y
    return out[delay : delay + x.size]


@pytest.mark.parametrize("pieces", [[1234], [1, 2, 3, 1228], [40] * 30 + [34], [0, 617, 0, 617]])
def test_pieces_give_the_whole_signal_output(pieces):
    x = np.random.default_rng(0).standard_normal(sum(pieces)).astype("float32")
    whole = run_hops(_recursive_step, np.float32(0), x, 40, 30)
    np.testing.assert_allclose(whole, _reference(x, 30), rtol=1e-5, atol=1e-5)
    stream, outs, start = HopStream(_recursive_step, np.float32(0), 40, 30), [], 0
    for k, n in enumerate(pieces):
        outs.append(stream.push(x[start : start + n], final=k == len(pieces) - 1))
        start += n
    got = np.concatenate(outs)
    assert got.shape == x.shape
    np.testing.assert_array_equal(got, whole)  # the same hops in the same order: bit for bit
    # before the end, output comes as soon as its hop has run: whole hops pushed, less the delay
    assert sum(o.size for o in outs[:-1]) == max(0, sum(pieces[:-1]) // 40 * 40 - 30)


def test_stream_ends_once_and_checks_its_arguments():
    stream = HopStream(_delay_step, {"previous": np.zeros((1, 10))}, 10, 0)
    assert stream.push(np.ones(25)).size == 20
    assert stream.push(np.ones(0), final=True).size == 5
    with pytest.raises(ValueError, match="has ended"):
        stream.push(np.ones(3))
    with pytest.raises(ValueError, match="received 0"):
        HopStream(_delay_step, {}, 0, 0)
