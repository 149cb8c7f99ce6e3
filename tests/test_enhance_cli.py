import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import build_model
from trainers import enhance as enhance_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    # Untrained tiny model: only for exercising the CLI plumbing.
    path = str(tmp_path_factory.mktemp("model") / "m.keras")
    build_model("tiny", time_crop="causal").save(path)
    return path


def run(*args):
    return enhance_cli.cli(["dccrn-enhance", *args])


def write_noise(path, rng, seconds=1.0, rate=16000, channels=1, subtype="PCM_16"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
    data = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    sf.write(os.fsencode(path), data, rate, subtype=subtype)  # bytes: names that are not UTF-8 too
    return data


def test_enhance_one_file(model_path, tmp_path, rng, capsys):
    src = str(tmp_path / "in.wav")
    write_noise(src, rng)
    dst = str(tmp_path / "out" / "enhanced.wav")
    assert run("--model", model_path, "--input", src, "--output", dst) == 0
    info = sf.info(dst)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
    assert f"{src} -> {dst}" in capsys.readouterr().out
    # --output an existing directory: the input's name is kept.
    assert run("--model", model_path, "--input", src, "--output", str(tmp_path / "out")) == 0
    assert os.path.exists(tmp_path / "out" / "in.wav")


def test_positional_input_output(model_path, tmp_path, rng, capsys):
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "pos.wav")
    write_noise(src, rng)
    assert run("--model", model_path, src, dst) == 0
    assert sf.info(dst).frames == 16000
    assert f"{src} -> {dst}" in capsys.readouterr().out
    assert run("--model", model_path, src) == 2
    assert "expected INPUT OUTPUT, received 1 positional arguments" in capsys.readouterr().err
    assert run("--model", model_path, "--input", src, src, dst) == 2
    assert "given together with --input/--output" in capsys.readouterr().err


def test_stereo_44k_keeps_rate_channels_subtype(model_path, tmp_path, rng):
    src = str(tmp_path / "stereo.wav")
    data = write_noise(src, rng, seconds=2.0, rate=44100, channels=2, subtype="PCM_24")
    dst = str(tmp_path / "stereo_out.wav")
    assert run("--model", model_path, "--input", src, "--output", dst, "--chunk_seconds", "0.5") == 0
    info = sf.info(dst)
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, data.shape[0])
    assert (info.format, info.subtype) == ("WAV", "PCM_24")
    out = sf.read(dst)[0]
    assert np.all(np.std(out, axis=0) > 0)  # both channels carry signal
    assert not np.allclose(out[:, 0], out[:, 1])  # ...and were enhanced separately


def test_directory_with_a_bad_file(model_path, tmp_path, rng, capsys):
    src = tmp_path / "in"
    write_noise(str(src / "a.wav"), rng)
    write_noise(str(src / "sub" / "b.flac"), rng, rate=8000)
    (src / "bad.wav").write_text("this is not audio")
    (src / "README.txt").write_text("ignored: not an audio extension")
    out = tmp_path / "out"
    assert run("--model", model_path, "--input", str(src), "--output", str(out)) == 1
    assert sorted(os.listdir(out)) == ["a.wav", "sub"]
    assert os.listdir(out / "sub") == ["b.flac"] and sf.info(str(out / "sub" / "b.flac")).samplerate == 8000
    err = capsys.readouterr().err
    assert "enhanced 2 of 3 file(s); 1 failed" in err
    assert f"failed: {src / 'bad.wav'}: not a readable audio file" in err
    assert "Traceback" not in err


def test_glob_input_is_mirrored(model_path, tmp_path, rng):
    write_noise(str(tmp_path / "data" / "x" / "a.wav"), rng)
    write_noise(str(tmp_path / "data" / "y" / "b.wav"), rng)
    write_noise(str(tmp_path / "data" / "y" / "c.flac"), rng)
    out = tmp_path / "out"
    pattern = str(tmp_path / "data" / "**" / "*.wav")
    assert run("--model", model_path, "--input", pattern, "--output", str(out)) == 0
    assert sorted(os.listdir(out)) == ["x", "y"] and os.listdir(out / "y") == ["b.wav"]
    assert run("--model", model_path, "--input", str(tmp_path / "none*.wav"), "--output", str(out)) == 2


def test_bad_single_files_are_one_line_errors(model_path, tmp_path, rng, capsys):
    nan = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    nan[50] = np.inf
    sf.write(str(tmp_path / "inf.wav"), nan, 16000, subtype="FLOAT")
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0), 16000)
    (tmp_path / "text.flac").write_text("not audio at all")
    cases = {
        "missing.wav": "missing.wav: no such file",
        "inf.wav": "inf.wav: contains NaN or infinite samples",
        "empty.wav": "empty.wav: contains no samples",
        "text.flac": "text.flac: not a readable audio file",
    }
    for name, message in cases.items():
        dst = str(tmp_path / "out" / name)
        assert run("--model", model_path, "--input", str(tmp_path / name), "--output", dst) == 1
        err = capsys.readouterr().err
        error_lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and message in error_lines[0], err
        assert "Traceback" not in err
        assert not os.path.exists(dst)


def test_input_is_never_overwritten_without_flag(model_path, tmp_path, rng, capsys):
    src = str(tmp_path / "a.wav")
    write_noise(src, rng)
    before = open(src, "rb").read()
    assert run("--model", model_path, "--input", src, "--output", src) == 1
    assert "output is the input file; pass --overwrite" in capsys.readouterr().err
    assert open(src, "rb").read() == before
    # In-place over a directory is refused per file as well.
    assert run("--model", model_path, "--input", str(tmp_path), "--output", str(tmp_path)) == 1
    assert open(src, "rb").read() == before
    assert run("--model", model_path, "--input", src, "--output", src, "--overwrite") == 0
    assert open(src, "rb").read() != before and sf.info(src).frames == 16000


def test_existing_output_needs_overwrite(model_path, tmp_path, rng, capsys):
    src, dst = str(tmp_path / "a.wav"), str(tmp_path / "b.wav")
    write_noise(src, rng)
    write_noise(dst, rng)
    before = open(dst, "rb").read()
    assert run("--model", model_path, "--input", src, "--output", dst) == 1
    assert "b.wav: output exists; pass --overwrite" in capsys.readouterr().err
    assert open(dst, "rb").read() == before
    assert run("--model", model_path, "--input", src, "--output", dst, "--overwrite") == 0


def test_usage_errors(model_path, tmp_path, capsys):
    # No --model: the shipped default; a missing input is a per-file failure (exit 1) naming it.
    assert run("--input", str(tmp_path / "x.wav"), "--output", str(tmp_path / "y.wav")) == 1
    assert "x.wav: no such file" in capsys.readouterr().err
    assert not (tmp_path / "y.wav").exists()
    assert run("--model", str(tmp_path / "nope.keras"), "--input", "x.wav", "--output", "y.wav") == 2
    assert "nope.keras: no such model" in capsys.readouterr().err
    assert run("--model", model_path, "--output", "y.wav") == 2
    assert "--input is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run("--model", model_path, "--no_such_flag=1")
    assert exit_info.value.code == 2


def test_console_entry_point_with_the_default_model(tmp_path):
    # The README's main job in a fresh process: no --model, the shipped student, a real WAV out.
    from keras_dccrn.runtime import DEFAULT_MODEL, shipped_models

    if DEFAULT_MODEL not in shipped_models():
        pytest.fail(f"the default model {DEFAULT_MODEL} is not shipped in saved_models/")
    src, dst = tmp_path / "noisy.wav", tmp_path / "enhanced.wav"
    sf.write(str(src), 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32), 8000)
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.enhance", "--input", str(src), "--output", str(dst)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out, rate = sf.read(str(dst))
    assert rate == 8000 and out.shape == (8000,) and np.all(np.isfinite(out))


# --- issue 18: bounds, output subtypes, non-UTF-8 names, folder reruns, progress, interruption ----------


@pytest.mark.parametrize(
    "flag, limit",
    [
        ("--chunk_seconds=1e9", "between 0 and 120 seconds"),
        ("--chunk_seconds=nan", "between 0 and 120 seconds"),
        ("--chunk_seconds=-1", "between 0 and 120 seconds"),
        ("--context_seconds=100000", "between 0 and 30 seconds"),
        ("--threads=1000000", "between 0 and 256 threads"),
        ("--progress_interval=0", "between 1 and 3600 seconds"),
    ],
)
def test_absurd_sizes_are_one_line_usage_errors(model_path, flag, limit, capsys):
    assert run("--model", model_path, "--input", "x.wav", "--output", "y.wav", flag) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and limit in err and flag.split("=")[0] in err


def test_whole_file_processing_is_bounded(model_path, tmp_path, capsys):
    src = str(tmp_path / "long.wav")
    sf.write(src, np.zeros(121 * 8000, np.float32), 8000)
    assert (
        run("--model", model_path, "--input", src, "--output", str(tmp_path / "o.wav"), "--chunk_seconds=0")
        == 1
    )
    assert "121 s is too long to process whole (at most 120 s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "src_name, fmt, subtype, rate, dst_name, want",
    [
        ("in.mp3", "MP3", "MPEG_LAYER_III", 16000, "out.wav", ("WAV", "PCM_16")),
        ("in.opus", "OGG", "OPUS", 48000, "out.flac", ("FLAC", "PCM_16")),
        ("in.ogg", "OGG", "VORBIS", 16000, "out.wav", ("WAV", "PCM_16")),
        ("in.wav", "WAV", "FLOAT", 16000, "out.flac", ("FLAC", "PCM_24")),
        ("in.mp3", "MP3", "MPEG_LAYER_III", 16000, "out.mp3", ("MP3", "MPEG_LAYER_III")),
    ],
)
def test_output_subtype_fits_the_output_container(
    model_path, tmp_path, rng, src_name, fmt, subtype, rate, dst_name, want
):
    # Audit: MP3 input with a .wav output failed ("unsupported encoding", naming an internal temp file).
    src, dst = str(tmp_path / src_name), str(tmp_path / dst_name)
    sf.write(src, (0.1 * rng.standard_normal(rate)).astype(np.float32), rate, format=fmt, subtype=subtype)
    assert run("--model", model_path, "--input", src, "--output", dst) == 0
    info = sf.info(dst)
    assert (info.format, info.subtype) == want and info.samplerate == rate


def test_write_errors_name_the_users_path_not_a_temp_file(model_path, tmp_path, rng, capsys):
    src, dst = str(tmp_path / "eight.wav"), str(tmp_path / "out" / "eight.mp3")
    write_noise(src, rng, seconds=0.5, channels=8)  # MP3 holds at most 2 channels
    assert run("--model", model_path, "--input", src, "--output", dst) == 1
    err = capsys.readouterr().err
    assert f"error: {dst}: cannot write MP3 audio" in err and ".tmp-" not in err
    assert os.listdir(tmp_path / "out") == []


def test_non_utf8_file_names(model_path, tmp_path, rng, capsys):
    # Audit: a name with a non-UTF-8 byte failed as "utf-8 codec can't encode ...".
    folder = tmp_path / "in"
    name = os.fsdecode(b"caf\xe9 \xff.wav")
    write_noise(str(folder / name), rng, seconds=0.5)
    out = tmp_path / "out"
    assert run("--model", model_path, "--input", str(folder), "--output", str(out)) == 0
    assert os.listdir(out) == [name] and sf.info(os.fsencode(out / name)).frames == 8000
    assert run("--model", model_path, "--input", str(folder / name), "--output", str(tmp_path / name)) == 0
    printed = capsys.readouterr().out
    assert "caf\\xe9 \\xff.wav ->" in printed


def test_skip_existing_for_folder_reruns(model_path, tmp_path, rng, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    for name in ("a.wav", "b.wav", "c.wav"):
        write_noise(str(src / name), rng, seconds=0.3)
    assert run("--model", model_path, "--input", str(src), "--output", str(out)) == 0
    os.remove(out / "b.wav")
    before = (out / "a.wav").read_bytes()
    capsys.readouterr()
    assert run("--model", model_path, "--input", str(src), "--output", str(out), "--skip_existing") == 0
    captured = capsys.readouterr()
    assert "output exists" not in captured.err.replace("skipped (output exists)", "")
    assert "enhanced 1 of 3 file(s); 2 skipped (output exists); 0 failed" in captured.err
    assert sorted(os.listdir(out)) == ["a.wav", "b.wav", "c.wav"] and (out / "a.wav").read_bytes() == before
    assert run("--model", model_path, "--input", str(src), "--output", str(out), "--skip_existing",
               "--overwrite") == 2  # fmt: skip
    assert "exclude each other" in capsys.readouterr().err


def test_progress_lines_when_stderr_is_not_a_terminal():
    import io

    stream = io.StringIO()
    progress = enhance_cli.ProgressBar(stream=stream, interval=0.0)
    progress.begin("[2/5] long.wav", seconds=1800.0)
    for done in (100, 200, 400):
        progress(done, 400)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[2/5] long.wav: 25.0% of 1800 s, eta ") and len(lines) == 2
    assert "\r" not in stream.getvalue()
    quiet = io.StringIO()
    progress = enhance_cli.ProgressBar("x", stream=quiet, interval=3600.0)
    progress(1, 2)
    assert quiet.getvalue() == ""  # at most one line per interval


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(model_path, tmp_path, rng):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".tmp-{dead_pid}-abcdefgh.wav"
    live = out / f".tmp-{os.getppid()}-abcdefgh.wav"  # a running process's work in progress: kept
    stale.write_bytes(b"RIFF partial")
    live.write_bytes(b"RIFF partial")
    src = str(tmp_path / "a.wav")
    write_noise(src, rng, seconds=0.3)
    assert run("--model", model_path, "--input", src, "--output", str(out / "a.wav"), "--skip_existing") == 0
    assert sorted(os.listdir(out)) == sorted(["a.wav", live.name])


def _wait_for_temp(folder, proc, timeout=180):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.communicate()}")
        if os.path.isdir(folder) and any(n.startswith(".tmp-") for n in os.listdir(folder)):
            return
        time.sleep(0.2)
    raise AssertionError("no temporary output appeared")


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_signals_remove_the_partial_output(model_path, tmp_path, signame):
    # Audit: SIGTERM/SIGHUP/SIGKILL left a hidden playable partial .tmp-*.wav; SIGINT printed a traceback.
    import signal

    src = str(tmp_path / "long.wav")
    sf.write(src, 0.1 * np.random.default_rng(0).standard_normal(600 * 16000).astype(np.float32), 16000)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "trainers.enhance", "--model", model_path, "--input", src,
            "--output", str(out / "long.wav"), "--chunk_seconds=2"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_temp(out, proc)
    sig = getattr(signal, signame)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if signame == "SIGKILL":
        assert proc.returncode == -sig
        leftovers = os.listdir(out)
        assert len(leftovers) == 1 and leftovers[0].startswith(f".tmp-{proc.pid}-")
        # The next run into that folder removes them.
        short = str(tmp_path / "short.wav")
        sf.write(short, np.zeros(1600, np.float32), 16000)
        assert run("--model", model_path, "--input", short, "--output", str(out / "short.wav")) == 0
        assert os.listdir(out) == ["short.wav"]
        return
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == f"dccrn-enhance: stopped by {signame}; no partial output left"
    assert "Traceback" not in err and os.listdir(out) == []


def test_a_swallowed_stop_signal_is_raised_again(monkeypatch):
    # Native code (e.g. TensorFlow's op dispatch) may check for signals and clear the exception it got:
    # the signal is then raised again, so that the run still stops.
    import signal
    import threading
    import time

    from trainers import cli

    monkeypatch.setattr(cli, "RERAISE_SECONDS", 0.3)
    swallowed = 0
    with pytest.raises(cli.Interrupted) as info:
        with cli.signals_raise():
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    time.sleep(0.01)
                except cli.Interrupted:
                    if swallowed:
                        raise
                    swallowed += 1
    assert swallowed == 1 and info.value.code == 128 + signal.SIGTERM


def test_quiet_input_is_normalised_unless_turned_off(model_path, tmp_path, rng):
    from keras_dccrn import runtime

    src = str(tmp_path / "quiet.wav")
    quiet = (0.001 * rng.standard_normal(16000)).astype(np.float32)  # -60 dBFS
    sf.write(src, quiet, 16000, subtype="FLOAT")
    for flag, level_range in (([], runtime.LEVEL_RANGE_DBFS), (["--nonormalize_level"], None)):
        dst = str(tmp_path / f"out{len(flag)}.wav")
        assert run("--model", model_path, "--input", src, "--output", dst, *flag) == 0
        expected = runtime.enhance(quiet, 16000, model=model_path, level_range=level_range)
        np.testing.assert_allclose(sf.read(dst, dtype="float32")[0], expected, rtol=1e-4, atol=1e-7)
    a, b = (sf.read(str(tmp_path / f"out{n}.wav"), dtype="float32")[0] for n in (0, 1))
    assert not np.allclose(a, b, rtol=1e-3, atol=1e-7)
