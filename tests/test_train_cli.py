"""End-to-end tests of ``dccrn-train`` / ``dccrn-distill`` (subprocesses, synthetic WAV data)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import keras_dccrn  # noqa: F401  (registers the custom classes for load_model)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "flags", "smoke.cfg")
SMOKE_DISTILL = os.path.join(ROOT, "flags", "smoke_distill.cfg")


@pytest.fixture
def corpus(speech_corpus):
    return speech_corpus


def data_flags(corpus):
    return [
        f"--train_speech={corpus}/speech/train",
        f"--train_noise={corpus}/noise/train",
        f"--valid_speech={corpus}/speech/valid",
        f"--valid_noise={corpus}/noise/valid",
    ]


def run_app(module, args, env=None, timeout=300):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.xdist_group("tiny_runs")  # with -n: on the worker that builds the session fixture
def test_smoke_recipe_trains_writes_run_dir_and_resumes(tiny_runs):
    run_dir = tiny_runs["runs"]["student_nokd"]
    (cpu_seconds, _, _), (_, stdout, stderr) = tiny_runs["logs"]["student_nokd"]  # --epochs=1, then 2
    assert cpu_seconds < 120
    assert (run_dir / "flags.cfg").read_text().count("--preset=tiny") == 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "tiny" and config["model_config"]["channels"] == [4, 8, 8, 8, 8, 8]
    assert (run_dir / "checkpoints" / "checkpoint").exists()
    for split in ("train", "validation"):
        assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "logs" / split).iterdir())
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.name == "tiny"

    assert "Resuming from" in stdout and "epoch 1, step 1" in stdout
    assert "Epoch 2/2" in stdout + stderr
    assert "steps so far: 2" in stdout


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--preset=nope"], "--preset=nope: unknown preset"),
        (["--train_speech=/nonexistent/speech"], "--train_speech=/nonexistent/speech: no such file"),
        (["--batch_size=0"], "--batch_size=0: must be between 1 and 1024"),
        (["--snr_min=30"], "exceeds --snr_max"),
        (["--init_step=3"], "--init_step needs --init_weights; received init_step=3"),
        (["--warmup_steps=100000"], "--warmup_steps must be below epochs x steps_per_epoch"),
        (
            [
                "--init_weights=/etc/hostname",
                "--init_step=3",
                "--lr_schedule=cosine",
                "--init_progress=/no/p.jsonl",
            ],
            "--init_progress: /no/p.jsonl: no such progress log",
        ),
    ],
)
def test_bad_flags_give_one_line_errors(corpus, tmp_path, capsys, extra, message):
    from trainers import common, train

    argv = train.cli.parse_flags(
        ["dccrn-train", f"--flagfile={SMOKE}", *data_flags(corpus), f"--run_dir={tmp_path}", *extra],
        common.FLAGS,
        "dccrn-train",
        train.__doc__,
    )
    try:
        assert train.main(argv) == 2
    finally:
        common.FLAGS.unparse_flags()
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing written before the flags are checked


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint(corpus, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        f"--flagfile={SMOKE}",
        *data_flags(corpus),
        f"--run_dir={run_dir}",
        "--steps_per_epoch=100000",
        "--checkpoint_every=100000",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainers.train", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    # TensorBoard's writer creates the train log folder when fit() starts
    while time.time() < deadline and not (run_dir / "logs" / "train").exists():
        time.sleep(0.5)
    time.sleep(15)  # let a few steps run
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert "SIGINT: checkpoint saved" in out, out[-3000:]
    assert "Traceback" not in out
    # An interrupted run is not a finished one: non-zero exit, no final model.
    assert proc.returncode == 128 + signal.SIGINT
    assert (run_dir / "checkpoints" / "checkpoint").exists()
    assert not (run_dir / "model.keras").exists()


@pytest.mark.slow
def test_paused_and_resumed_run_equals_uninterrupted_run(corpus, tmp_path):
    """--run_steps pauses mid-epoch; resuming continues that epoch and the data stream exactly.

    The same in-process, on the library: tests/test_loop.py.
    """
    common = [f"--flagfile={SMOKE}", *data_flags(corpus), "--snapshot_every=1", "--checkpoint_every=100"]
    whole = run_app("trainers.train", [*common, f"--run_dir={tmp_path / 'whole'}"])
    assert whole.returncode == 0, whole.stderr[-3000:]
    sliced = [*common, f"--run_dir={tmp_path / 'sliced'}", "--run_steps=2"]
    # Steps 1-2 | 3 (end of epoch 1), 4 | 5-6 (end of the run: no pause).
    codes = [run_app("trainers.train", sliced) for _ in range(2)]
    assert [c.returncode for c in codes] == [75, 75], codes[-1].stderr[-3000:]
    assert "Paused after --run_steps=2 steps" in codes[0].stderr
    assert not (tmp_path / "sliced" / "model.keras").exists()
    last = run_app("trainers.train", sliced)
    assert last.returncode == 0, last.stderr[-3000:]
    assert "epoch 1, step 4" in last.stdout  # resumed mid-epoch 2
    # One progress line per epoch with totals carried over resumes; one snapshot per epoch.
    lines = [json.loads(x) for x in (tmp_path / "sliced" / "progress.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines] == [3, 6]
    assert lines[1]["audio_hours"] == pytest.approx(6 * 2 * 0.5 / 3600)
    assert lines[1]["cpu_hours"] > lines[0]["cpu_hours"] > 0
    assert "val_loss" in lines[1]
    assert sorted(p.name for p in (tmp_path / "sliced" / "snapshots").iterdir()) == [
        "step_0000003.keras",
        "step_0000006.keras",
    ]
    a = keras.saving.load_model(tmp_path / "whole" / "model.keras")
    b = keras.saving.load_model(tmp_path / "sliced" / "model.keras")
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), atol=1e-6)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_end_with_identical_weights(corpus, tmp_path):
    run_dir = tmp_path / "mw"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    args = [
        f"--flagfile={SMOKE}",
        *data_flags(corpus),
        f"--run_dir={run_dir}",
        "--strategy=multi_worker",
        "--epochs=1",
    ]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=tf_config)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "trainers.train", *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out[-3000:]
    chief = keras.saving.load_model(run_dir / "model.keras")
    other = keras.saving.load_model(run_dir / "workers" / "worker_1" / "model.keras")
    # Trainable weights are all-reduced every step, hence identical on both workers. Batch-norm moving
    # statistics are not synchronised across workers (Keras' default, synchronized=False): each worker
    # keeps the statistics of its own data and the chief's are the ones saved in run_dir/model.keras.
    assert len(chief.trainable_weights) == len(other.trainable_weights) > 0
    for a, b in zip(chief.trainable_weights, other.trainable_weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.xdist_group("tiny_runs")  # with -n: on the worker that builds the session fixture
def test_distill_app_trains_student_from_teacher_file(tiny_runs):
    teacher = keras.saving.load_model(tiny_runs["root"] / "teacher.keras")
    assert teacher.frame_step == 160 and teacher.channels[0] == 6  # another geometry than the student's
    [(_, stdout, stderr)] = tiny_runs["logs"]["student_atkl"]
    config = json.loads((tiny_runs["runs"]["student_atkl"] / "config.json").read_text())
    assert config["kd_mode"] == "at_kl"
    for term in ("si_snr_clean", "at_time", "kl_channel", "val_si_snr_clean"):
        assert term in stdout + stderr
    student = keras.saving.load_model(tiny_runs["runs"]["student_atkl"] / "model.keras")
    assert student.name == "tiny" and student.frame_step == 100


@pytest.mark.slow
def test_teacher_cache_app_then_distill_from_the_cache(corpus, tmp_path):
    from keras_dccrn import build_model

    teacher_path = tmp_path / "teacher.keras"
    build_model("uformer_tiny").save(teacher_path)
    cache = tmp_path / "knowledge"
    args = [f"--flagfile={SMOKE_DISTILL}", *data_flags(corpus)]
    written = run_app(
        "trainers.teacher_cache",
        [
            *args,
            f"--teacher={teacher_path}",
            f"--cache_dir={cache}",
            "--cache_examples=6",
            "--cache_batch_size=4",
        ],
    )
    assert written.returncode == 0, written.stderr[-3000:]
    assert "6 examples" in written.stdout and (cache / "knowledge.json").exists()
    run_dir = tmp_path / "kd_cached"
    result = run_app(
        "trainers.distill", [*args, f"--teacher_cache={cache}", f"--run_dir={run_dir}", "--epochs=1"]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "at_time" in result.stdout + result.stderr
    assert json.loads((run_dir / "config.json").read_text())["teacher_cache"] == str(cache)
    assert keras.saving.load_model(run_dir / "model.keras").name == "tiny"
    # Other data settings than the cache's: a one-line error, no traceback.
    other = run_app(
        "trainers.distill",
        [*args, f"--teacher_cache={cache}", f"--run_dir={tmp_path / 'other'}", "--seed=9", "--epochs=1"],
    )
    assert other.returncode == 2 and "written for other data settings (seed" in other.stderr
    assert "Traceback" not in other.stderr
    # A pool that cannot fit on the disk is refused before anything is written.
    huge = run_app(
        "trainers.teacher_cache",
        [*args, f"--teacher={teacher_path}", f"--cache_dir={tmp_path / 'huge'}", "--cache_examples=10000000"],
    )
    assert huge.returncode == 2 and "GB are free" in huge.stderr and not (tmp_path / "huge").exists()


def test_distill_requires_teacher_unless_no_kd(corpus, tmp_path):
    result = run_app(
        "trainers.distill",
        [f"--flagfile={SMOKE_DISTILL}", *data_flags(corpus), f"--run_dir={tmp_path}"],
    )
    assert result.returncode == 2 and "--teacher (or --teacher_cache) is required" in result.stderr


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--segment_seconds=100000"], "--segment_seconds=100000: must be between 0.1 and 60 seconds"),
        (["--batch_size=100000000"], "--batch_size=100000000: must be between 1 and 1024"),
        (["--segment_seconds=nan"], "--segment_seconds=nan: must be between"),
        (["--valid_examples=10000000"], "--valid_examples=10000000: must be between 1 and 10000"),
        (["--audio_examples=1000"], "--audio_examples=1000: must be between 0 and 16"),
        (["--batch_size=1000", "--segment_seconds=60"], "s of audio per batch: must be at most 128 s"),
    ],
)
def test_absurd_sizes_are_refused_before_any_allocation(corpus, tmp_path, extra, message):
    from trainers import common, train  # noqa: F401  (defines the training flags)

    common.FLAGS.unparse_flags()
    common.FLAGS(["dccrn-train", f"--flagfile={SMOKE}", *data_flags(corpus), f"--run_dir={tmp_path}", *extra])
    try:
        with pytest.raises(common.UsageError) as caught:
            common.validate_common_flags()
        assert message in str(caught.value) and "\n" not in str(caught.value)
    finally:
        common.FLAGS.unparse_flags()
