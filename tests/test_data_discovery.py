"""keras_dccrn.data.discovery: find_audio over folders, globs, manifests and lists."""

import csv
import json
import os

import numpy as np
import pytest
from conftest import shared_data_dir
from data_corpus import make_corpus

from keras_dccrn import data
from keras_dccrn.data import MixtureConfig

pytestmark = pytest.mark.usefixtures("fresh_skipped")

CFG = MixtureConfig(segment_seconds=0.5)


def test_manifests_csv_and_jsonl(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng)
    found = data.find_audio(speech)
    assert len(found) == 6 and all(d > 0.5 for _, d in found)
    # CSV with relative paths, extra columns and a filter.
    with open(tmp_path / "all.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "path", "duration"])
        for p, d in found:
            w.writerow(["speech", os.path.relpath(p, tmp_path), f"{d:.4f}"])
        for p, d in data.find_audio(noise):
            w.writerow(["noise", os.path.relpath(p, tmp_path), d])
    csv_speech = data.find_audio(str(tmp_path / "all.csv") + "?kind=speech")
    assert [p for p, _ in csv_speech] == [p for p, _ in found]
    np.testing.assert_allclose([d for _, d in csv_speech], [d for _, d in found], atol=1e-4)
    # JSON lines in a sub-folder, relative to it; one listed file is missing.
    sub = tmp_path / "lists"
    sub.mkdir()
    with open(sub / "noise.jsonl", "w") as f:
        for p, d in data.find_audio(noise):
            f.write(json.dumps({"path": os.path.relpath(p, sub), "duration": d}) + "\n")
        f.write(json.dumps({"path": "../noise/missing.wav", "duration": 2.0}) + "\n")
    jsonl = data.find_audio(str(sub / "noise.jsonl"))
    assert len(jsonl) == 3 and all(os.path.isfile(p) for p, _ in jsonl)
    assert any("missing.wav" in p and "no such file" in r for p, r in data.skipped_files())
    listed = data.MixtureSynthesizer(
        str(tmp_path / "all.csv?kind=speech"), str(sub / "noise.jsonl"), config=CFG
    )
    scanned = data.MixtureSynthesizer(speech, noise, config=CFG)
    for i in range(8):
        np.testing.assert_array_equal(listed.example(i)[0], scanned.example(i)[0])
    with open(tmp_path / "bad.jsonl", "w") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match="bad.jsonl: line 1"):
        data.find_audio(str(tmp_path / "bad.jsonl"))
    # The manifest writer round-trips.
    data.write_manifest(str(sub / "copy.csv"), found)
    assert [p for p, _ in data.find_audio(str(sub / "copy.csv"))] == [p for p, _ in found]


def test_exclude_patterns_drop_files_from_folders_manifests_and_lists(tmp_path, rng):
    speech, noise = make_corpus(tmp_path, rng)
    everything = data.find_audio(speech)
    kept = data.find_audio(speech, exclude=["s1.wav", "*/spk0/s2.*"])
    assert len(kept) == len(everything) - 2
    assert not any(p.endswith(("s1.wav", "s2.wav")) for p, _ in kept)
    # A pattern is matched against the file name and against the whole path (folders need a leading */).
    assert data.find_audio(everything, exclude="spk1/*") == everything
    without_spk1 = data.find_audio(everything, exclude="*/spk1/*")
    assert without_spk1 and all("/spk1/" not in p for p, _ in without_spk1)
    synth = data.MixtureSynthesizer(speech, noise, config=CFG, exclude=("n0.flac", "n1.flac"))
    assert [os.path.basename(p) for p in synth.noise.paths] == ["n2.flac"]


@pytest.mark.skipif(shared_data_dir() is None, reason="/work/shared/data not present")
def test_shared_data_manifest_filter():
    root = shared_data_dir()
    with open(os.path.join(root, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    rir = data.find_audio(os.path.join(root, "manifest.csv?kind=rir"))
    assert len(rir) == sum(1 for r in rows if r["kind"] == "rir") > 0
    # The rir/ folder is scanned recursively (v2 keeps its simulated RIRs in rir/simulated/).
    assert len(data.find_audio(os.path.join(root, "rir"))) == len(rir)
    # Training audio is Ogg Opus in v2: the folder scan finds every manifest row of the split.
    train_speech = data.find_audio(os.path.join(root, "speech", "train"))
    assert len(train_speech) == sum(1 for r in rows if r["kind"] == "speech" and r["split"] == "train")
    # The non-commercial UrbanSound8K noise is one pattern away.
    noise = data.find_audio(os.path.join(root, "noise", "train"), exclude="urbansound_*")
    expected = [
        r for r in rows if r["kind"] == "noise" and r["split"] == "train" and r["source"] != "UrbanSound8K"
    ]
    assert len(noise) == len(expected)
    cfg = MixtureConfig(segment_seconds=1.0, reverb_prob=1.0, reverb_target="early")
    synth = data.MixtureSynthesizer(
        os.path.join(root, "speech", "valid"), os.path.join(root, "noise", "valid"), rir, cfg, cache=False
    )
    for i in range(2):
        noisy, clean, meta = synth.example(i)
        assert noisy.shape == (16000,) and np.all(np.isfinite(noisy)) and np.abs(noisy).max() <= 0.99 + 1e-6
        assert meta["rir_file"] and meta["target"] == "early"
