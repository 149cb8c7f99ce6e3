import os
import subprocess
import sys

import pytest

from keras_dccrn import atomic


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "page.md"
    atomic.write_text(str(path), "first\n")
    atomic.write_text(str(path), "second\n")
    assert path.read_text() == "second\n"
    assert os.listdir(path.parent) == ["page.md"]
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # default permissions, not mkstemp's


def test_atomic_output_keeps_the_old_file_when_the_block_fails(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic.atomic_output(str(path)) as tmp:
            assert tmp.endswith(".keras") and atomic.is_temp_name(os.path.basename(tmp))
            with open(tmp, "w") as f:
                f.write("partial")
            raise RuntimeError("half way")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_folder_output_is_published_readable(tmp_path):
    final = tmp_path / "export"
    with atomic.atomic_output(str(final), directory=True) as tmp:
        with open(os.path.join(tmp, "a.txt"), "w") as f:
            f.write("a")
    assert (final / "a.txt").read_text() == "a"
    mask = os.umask(0)
    os.umask(mask)
    assert final.stat().st_mode & 0o777 == 0o777 & ~mask


def test_leftovers_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f"{atomic.TEMP_PREFIX}{int(dead.stdout)}-abc.wav"
    stale.write_text("left by a SIGKILL")
    live = tmp_path / f"{atomic.TEMP_PREFIX}{os.getppid()}-abc.wav"
    live.write_text("work in progress of a running process")
    removed = atomic.remove_stale_temps(str(tmp_path))
    assert removed == [str(stale)] and live.exists()


def test_make_temp_and_remove_temp(tmp_path):
    tmp = atomic.make_temp(str(tmp_path / "new"), suffix=".wav")
    assert os.path.isfile(tmp) and os.path.basename(tmp).startswith(f".tmp-{os.getpid()}-")
    assert atomic.remove_stale_temps(str(tmp_path / "new")) == []  # made by this process: not stale
    atomic.remove_temp(tmp)
    assert not os.path.exists(tmp)
