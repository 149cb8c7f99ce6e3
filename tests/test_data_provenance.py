"""keras_dccrn.data.provenance: per-source files, seconds and licences of a data flag, from manifest.csv."""

import math

import numpy as np
import pytest
import soundfile as sf
from data_corpus import SR, make_data_folder

from keras_dccrn.data import describe_sources, find_audio, find_data_manifest, is_copyleft, is_non_commercial


@pytest.fixture
def folder(tmp_path):
    return make_data_folder(tmp_path)


def by_name(description):
    return {s.name: (s.files, s.seconds, s.licence, s.speakers) for s in description.sources}


def test_a_folder_is_described_by_the_manifest_above_it(folder):
    assert find_data_manifest(folder / "noise" / "train") == str(folder / "manifest.csv")
    assert find_data_manifest(folder) == str(folder / "manifest.csv")
    found = describe_sources(str(folder / "speech" / "train"))
    assert found.manifests == (str(folder / "manifest.csv"),)
    assert by_name(found) == {
        "KidSpeech": (1, 360.0, "README: free for commercial and non-commercial use", 1),
        "ReadSpeech": (2, 2700.0, "CC BY 4.0 (attribution)", 2),  # the manifest's seconds, not the headers'
    }
    assert (found.files, found.unlisted_files, found.excluded) == (3, 0, 0)


def test_files_the_manifest_does_not_list_are_counted_apart(folder):
    found = describe_sources(str(folder / "noise" / "train"))
    assert by_name(found) == {
        "GameAudio": (1, 720.0, "CC BY-SA 3.0 (share-alike)", 1),
        "GameMusic": (1, 3600.0, "GPL-2+", 1),
        "StreetNoise": (2, 3600.0, "CC BY-NC 3.0 (NON-COMMERCIAL)", 2),
    }
    assert found.unlisted_files == 1 and math.isclose(found.unlisted_seconds, 0.25)  # from its header
    assert found.files == 5


def test_exclude_patterns_leave_files_out_as_the_trainers_do(folder):
    spec = str(folder / "noise" / "train")
    found = describe_sources(spec, exclude=["street_*"])
    assert "StreetNoise" not in by_name(found) and found.excluded == 2
    assert sorted(p for p, _ in find_audio(spec, exclude=["street_*"])) == sorted(
        str(folder / "noise" / "train" / n) for n in ("extra.wav", "game_rain.wav", "tune_1.wav")
    )
    assert found.files == 3  # the trainers' file list (find_audio) has the same 3 files
    found = describe_sources(str(folder / "speech"), exclude=("*/spk1/*", "*/valid/*"))  # whole-path patterns
    assert by_name(found)["ReadSpeech"][:2] == (1, 900.0) and found.excluded == 2


def test_glob_and_manifest_flags(folder, tmp_path, monkeypatch):
    found = describe_sources(str(folder / "noise" / "*" / "*.flac"))
    assert by_name(found) == {
        "LabNoise": (1, 72.0, "CC BY-NC-SA 4.0", 1),
        "StreetNoise": (2, 3600.0, "CC BY-NC 3.0 (NON-COMMERCIAL)", 2),
    }
    found = describe_sources(f"{folder / 'manifest.csv'}?kind=speech&split=train")
    assert sorted(by_name(found)) == ["KidSpeech", "ReadSpeech"] and found.files == 3
    monkeypatch.chdir(tmp_path)  # relative flags are relative to the current folder
    assert by_name(describe_sources("data/rir")) == {"SimulatedRIRs": (1, 0.5, "generated", 1)}


def test_without_a_manifest_every_file_is_unlisted(tmp_path):
    (tmp_path / "corpus").mkdir()
    sf.write(tmp_path / "corpus" / "x.wav", np.zeros(SR // 2) + 0.1, SR)
    found = describe_sources(str(tmp_path / "corpus"))
    assert found.sources == () and found.manifests == ()
    assert found.unlisted_files == 1 and math.isclose(found.unlisted_seconds, 0.5)
    assert describe_sources(str(tmp_path / "missing")).files == 0


def test_a_malformed_manifest_is_named(folder):
    (folder / "manifest.csv").write_text("file,seconds\nnoise/train/tune_1.wav,1\n")
    with pytest.raises(ValueError, match="manifest.csv: manifest has no `path` column"):
        describe_sources(str(folder / "noise" / "train"))


@pytest.mark.parametrize(
    "licence, non_commercial, copyleft",
    [
        ("CC BY-NC 3.0 (NON-COMMERCIAL)", True, False),
        ("CC BY-NC-SA 4.0", True, True),
        ("CC BY-SA 3.0 (Wildfire Games; share-alike)", False, True),
        ("GPL-2+", False, True),
        ("LGPL-3.0", False, True),
        ("speechocean762 README: free for commercial and non-commercial use", False, False),
        ("NOISEX-92: freely distributed; licence unclear", False, False),
        ("CC BY 4.0 (attribution)", False, False),
        ("Apache-2.0", False, False),
        ("CC0 1.0", False, False),
    ],
)
def test_licence_terms(licence, non_commercial, copyleft):
    assert is_non_commercial(licence) is non_commercial
    assert is_copyleft(licence) is copyleft
