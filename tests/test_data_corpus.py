"""keras_dccrn.data.corpus: decoding, resampling, mono mixdown, streaming reads."""

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import data

pytestmark = pytest.mark.usefixtures("fresh_skipped")


def test_streaming_partial_read_matches_full_resampling(tmp_path, rng):
    sr = 44100
    x = rng.standard_normal(3 * sr).astype(np.float32) * 0.1
    path = str(tmp_path / "long.flac")
    sf.write(path, x, sr, subtype="PCM_24")
    entries = data.find_audio(path)
    full = data.AudioCorpus(entries, "clean", cache=True).load(0)
    stream = data.AudioCorpus(entries, "clean", cache=False)
    assert stream.num_samples(0) == len(full) == 48000
    for start in (0, 5, 16000, 40000):
        np.testing.assert_allclose(stream.read(0, start, 8000), full[start : start + 8000], atol=2e-5)
