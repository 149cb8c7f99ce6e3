"""keras_dccrn.data.files: the audio extension list and the folder scan."""

import os

import soundfile as sf

from keras_dccrn.data import files


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_extensions_are_lower_case_without_dot_and_cover_the_corpora():
    assert files.AUDIO_EXTENSIONS == tuple(sorted(files.AUDIO_FORMATS))
    assert all(ext == ext.lower() and not ext.startswith(".") for ext in files.AUDIO_EXTENSIONS)
    # The formats of ../shared/data (Ogg Opus in .ogg, FLAC) and the usual ones.
    assert {"wav", "flac", "ogg", "opus", "mp3", "aiff"} <= set(files.AUDIO_EXTENSIONS)
    readable = files.readable_audio_extensions()
    assert {"wav", "flac"} <= set(readable) <= set(files.AUDIO_EXTENSIONS)
    formats = {name.upper() for name in sf.available_formats()}
    assert all(files.AUDIO_FORMATS[ext] in formats for ext in readable)


def test_is_audio_name():
    assert files.is_audio_name("a.wav") and files.is_audio_name("B.FLAC") and files.is_audio_name("x.y.ogg")
    assert not files.is_audio_name("notes.txt") and not files.is_audio_name("wav")
    assert not files.is_audio_name(".tmp-123-abc.wav")  # a temporary output being written
    assert not files.is_audio_name("a.flac", extensions={"wav"})


def test_audio_files_order_filters_and_pruning(tmp_path):
    for rel in ("b.wav", "a.FLAC", "notes.txt", "z/2.ogg", "z/1.wav", "m/deep/x.opus", ".tmp-9-x/t.wav"):
        touch(tmp_path / rel)
    touch(tmp_path / ".tmp-1-y.wav")
    found = [os.path.relpath(p, tmp_path) for p in files.audio_files(str(tmp_path))]
    # A folder's files (sorted) before its sub-folders (sorted, depth first); no temporary outputs.
    assert found == ["a.FLAC", "b.wav", "m/deep/x.opus", "z/1.wav", "z/2.ogg"]
    assert [os.path.relpath(p, tmp_path) for p in files.audio_files(str(tmp_path), extensions={"wav"})] == [
        "b.wav",
        "z/1.wav",
    ]
    pruned = files.audio_files(str(tmp_path), prune=lambda d: os.path.basename(d) == "z")
    assert [os.path.relpath(p, tmp_path) for p in pruned] == ["a.FLAC", "b.wav", "m/deep/x.opus"]


def test_audio_files_follows_linked_folders_unless_told_not_to(tmp_path):
    touch(tmp_path / "real" / "s.wav")
    (tmp_path / "top").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "top" / "link")
    assert files.audio_files(str(tmp_path / "top")) == [str(tmp_path / "top" / "link" / "s.wav")]
    assert files.audio_files(str(tmp_path / "top"), follow_links=False) == []
