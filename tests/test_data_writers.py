"""keras_dccrn.data.writers: write_pairs writes the validation examples to disk."""

import csv
import os

import numpy as np
import pytest
import soundfile as sf
from data_corpus import SR, make_corpus, rms_dbfs, snr_db

from keras_dccrn import data
from keras_dccrn.data import MixtureConfig

pytestmark = pytest.mark.usefixtures("fresh_skipped")


def test_write_pairs_fixed_variable_length(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng)
    cfg = MixtureConfig(segment_seconds=(0.4, 1.0))
    out = tmp_path / "dev"
    rows = data.write_pairs(str(out), speech, noise, config=cfg, num_examples=6, seed=4, subtype="FLOAT")
    names = sorted(os.listdir(out / "noisy"))
    assert names == sorted(os.listdir(out / "clean")) == [f"{i:04d}.wav" for i in range(6)]
    with open(out / "mixtures.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["name"] for r in table] == names and set(data.PAIRS_CSV_FIELDS) == set(table[0])
    lengths = set()
    for row in table:
        noisy, sr = sf.read(out / "noisy" / row["name"], dtype="float32")
        clean, _ = sf.read(out / "clean" / row["name"], dtype="float32")
        assert sr == SR and len(noisy) == len(clean) and 0.4 * SR <= len(noisy) <= SR
        assert abs(len(noisy) / SR - float(row["seconds"])) < 1e-4
        lengths.add(len(noisy))
        assert abs(snr_db(clean, noisy) - float(row["snr_db"])) < 0.1
        assert abs(rms_dbfs(noisy) - float(row["level_dbfs"])) < 0.01
        assert os.path.isfile(row["noise_file"]) and row["rir_file"] == ""
    assert len(lengths) > 2
    # Same examples as validation_dataset (batch 1: no padding) and on a second run.
    val = list(data.validation_dataset(speech, noise, config=cfg, num_examples=6, batch_size=1, seed=4))
    for (n, _), row in zip(val, table, strict=True):
        np.testing.assert_array_equal(n.numpy()[0], sf.read(out / "noisy" / row["name"], dtype="float32")[0])
    again = data.write_pairs(str(tmp_path / "dev2"), speech, noise, config=cfg, num_examples=6, seed=4)
    assert [r["snr_db"] for r in again] == [r["snr_db"] for r in rows]
    assert not any(n.startswith(".tmp") for n in os.listdir(out / "noisy"))
