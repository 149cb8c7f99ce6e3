"""keras_dccrn.data.manifests: reading and writing CSV/TSV/JSON-lines file lists."""

import os

import pytest

from keras_dccrn.data import manifests


def test_write_then_read_round_trips_every_format(tmp_path):
    inside = str(tmp_path / "audio" / "a.wav")
    outside = "/elsewhere/b.flac"
    entries = [(inside, 1.25), (outside, 2.0000004)]
    for name in ("list.csv", "list.tsv", "list.jsonl"):
        path = str(tmp_path / name)
        manifests.write_manifest(path, entries, columns={"kind": "speech"})
        rows = manifests.read_manifest(path)
        assert [r["path"] for r in rows] == [inside, outside]
        assert [manifests.manifest_duration(r, path) for r in rows] == [1.25, 2.0]
        assert all(r["kind"] == "speech" for r in rows)
        assert manifests.read_manifest(path, where={"kind": "noise"}) == []
        assert not any(n.startswith(".tmp-") for n in os.listdir(tmp_path))
    # Paths inside the manifest's folder are stored relative to it, others absolute.
    text = (tmp_path / "list.csv").read_text()
    assert text.splitlines()[:2] == ["path,duration,kind", "audio/a.wav,1.250000,speech"]
    with pytest.raises(ValueError, match="list.txt: manifest must end with"):
        manifests.write_manifest(str(tmp_path / "list.txt"), entries)


def test_malformed_manifests_name_the_file_and_line(tmp_path):
    (tmp_path / "nopath.csv").write_text("file,duration\na.wav,1\n")
    with pytest.raises(ValueError, match="nopath.csv: manifest has no `path` column"):
        manifests.read_manifest(str(tmp_path / "nopath.csv"))
    (tmp_path / "bad.jsonl").write_text('{"path": "a.wav"}\n\n[1, 2]\n')
    with pytest.raises(ValueError, match="bad.jsonl: line 3 has no `path` key"):
        manifests.read_manifest(str(tmp_path / "bad.jsonl"))
    with pytest.raises(ValueError, match="bad duration 'long' for"):
        manifests.manifest_duration({"path": "a.wav", "duration": "long"}, "m.csv")
    assert manifests.manifest_duration({"path": "a.wav", "seconds": "3"}, "m.csv") == 3.0
    assert manifests.manifest_duration({"path": "a.wav", "duration": ""}, "m.csv") is None
    assert manifests.is_manifest(str(tmp_path / "bad.jsonl")) and not manifests.is_manifest(str(tmp_path))


def test_write_csv_formats_floats_and_ignores_extra_keys(tmp_path):
    path = tmp_path / "sub" / "t.csv"
    manifests.write_csv(str(path), [{"a": 0.1, "b": "x", "c": 9}, {"a": 2}], ("a", "b"))
    assert path.read_text().splitlines() == ["a,b", "0.100000,x", "2,"]
