import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One thread per TensorFlow / BLAS pool, in the test processes and the processes they start: the suite runs
# one worker per core (-n 2), and two-thread pools on a shared core cost the suite about a third more time.
for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def pytest_collection_modifyitems(items):
    """Tests in an xdist group first (``tiny_runs``: the longest unit with ``-n``): one worker starts on the
    group while the others share the rest, so that the workers end together."""
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def shared_data_dir():
    """Path of ../shared/data if present (real speech), else None."""
    path = os.path.abspath(SHARED_DATA)
    return path if os.path.isdir(path) else None


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory):
    """Speech-like harmonic signals and noise, 1-1.5 s each, as WAV files: ``<root>/{speech,noise}/{train,valid}``."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for split in ("train", "valid"):
        for kind in ("speech", "noise"):
            os.makedirs(root / kind / split)
        for i in range(4):
            t = np.arange(16000) / 16000
            f0 = rng.uniform(100, 250)
            speech = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * (
                0.5 + 0.5 * np.sin(6 * np.pi * t)
            )
            sf.write(root / "speech" / split / f"s{i}.wav", 0.1 * speech, 16000)
            sf.write(root / "noise" / split / f"n{i}.wav", 0.05 * rng.standard_normal(24000), 16000)
    return root


@pytest.fixture(scope="session")
def uformer_tiny():
    """An untrained ``uformer_tiny`` model, built once per test process (tests only read it)."""
    from keras_dccrn import build_model

    return build_model("uformer_tiny")


@pytest.fixture(scope="session")
def small_devset(tmp_path_factory):
    """A ``dccrn-mix`` development set of two 1 s pairs: speech-like clean signals, noisy = clean + noise.

    Shared by several modules (tests only read it).
    """
    import soundfile as sf

    from keras_dccrn.signals import speech_like_signals

    root = tmp_path_factory.mktemp("devset")
    (root / "noisy").mkdir()
    (root / "clean").mkdir()
    rng = np.random.default_rng(3)
    for i, clean in enumerate(speech_like_signals(count=2, seconds=1.0, seed=7)):
        sf.write(root / "clean" / f"{i:04d}.wav", clean, 16000, subtype="FLOAT")
        noisy = clean + 0.05 * rng.standard_normal(clean.shape[0]).astype(np.float32)
        sf.write(root / "noisy" / f"{i:04d}.wav", noisy, 16000, subtype="FLOAT")
    return str(root)


@pytest.fixture(scope="session")
def tiny_causal_files(tmp_path_factory):
    """A causal tiny model (random weights, seed 1) as ``tiny_causal.keras`` and its streaming float32 TFLite
    file ``tiny_causal_streaming_float32.tflite``, in one folder; exported once per test process.

    Shared by several modules: a test that changes the folder works on a copy.
    """
    import keras

    from keras_dccrn import build_model
    from keras_dccrn.export import export_tflite

    keras.utils.set_random_seed(1)
    model = build_model("tiny", time_crop="causal")
    folder = tmp_path_factory.mktemp("tiny_causal")
    model.save(str(folder / "tiny_causal.keras"))
    export_tflite(model, str(folder / "tiny_causal_streaming_float32.tflite"), mode="streaming")
    return folder


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """Two finished 2-step runs of the tiny preset, a 3-file development set and its dccrn-evaluate scores.

    ``student_nokd``: ``dccrn-train`` (flags/smoke.cfg, mixed_bfloat16) for one epoch, then resumed for the
    second; ``student_atkl``: ``dccrn-distill`` (flags/smoke_distill.cfg, AT-KL from an untrained tiny
    teacher of another frame step and width); the runs go in parallel on synthetic WAVs. Scored without
    DNSMOS (slow). ``logs``: per run, ``(cpu_seconds, stdout, stderr)`` of each session (the process's CPU
    time: the runs share the cores with each other and the other tests). Used by test_ship.py,
    test_results.py and test_train_cli.py.
    """
    import resource
    import subprocess
    import sys

    import soundfile as sf
    from test_metrics import mix_at_snr, speech_like
    from test_train_cli import ROOT, SMOKE, SMOKE_DISTILL, data_flags

    from keras_dccrn import build_model, runtime
    from trainers import evaluate

    root = tmp_path_factory.mktemp("tiny_runs")
    rng = np.random.default_rng(0)
    for split in ("train", "valid"):
        for i in range(2):
            for kind, audio in (
                ("speech", 0.5 * speech_like(1.0, seed=i)),
                ("noise", rng.normal(0, 0.05, 24000)),
            ):
                os.makedirs(root / "corpus" / kind / split, exist_ok=True)
                sf.write(root / "corpus" / kind / split / f"{kind}{i}.wav", audio, 16000)
    build_model("tiny", frame_step=160, channels=[6, 12, 12, 12, 12, 12]).save(root / "teacher.keras")
    common = [*data_flags(root / "corpus"), "--epochs=2", "--steps_per_epoch=1"]
    nokd = ["trainers.train", f"--flagfile={SMOKE}", "--mixed_precision=mixed_bfloat16", *common]
    atkl = ["trainers.distill", f"--flagfile={SMOKE_DISTILL}", f"--teacher={root / 'teacher.keras'}", *common]
    # student_nokd's second session resumes its first
    sessions = {"student_nokd": [[*nokd, "--epochs=1"], nokd], "student_atkl": [atkl]}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def start(name):
        args = sessions[name][len(logs[name])]
        proc = subprocess.Popen(
            [sys.executable, "-m", *args, f"--run_dir={root / name}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return proc

    logs = {name: [] for name in sessions}
    running = {name: start(name) for name in sessions}
    while running:
        name = next(iter(running))
        proc = running.pop(name)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, err = proc.communicate(timeout=900)  # reaps this child only: the usage difference is its own
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert proc.returncode == 0, err[-3000:]
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        logs[name].append((cpu, out, err))
        if len(logs[name]) < len(sessions[name]):
            running[name] = start(name)
    dev = root / "dev"
    for i in range(3):
        clean = speech_like(1.5, seed=10 + i)
        for folder, audio in (
            ("clean", clean),
            ("noisy", mix_at_snr(clean, rng.standard_normal(clean.size), 5.0)),
        ):
            os.makedirs(dev / folder, exist_ok=True)
            sf.write(dev / folder / f"{i:04d}.wav", audio, 16000)
    systems = []
    for name in sessions:
        enhancer = runtime.load_enhancer(str(root / name / "model.keras"))
        for i in range(3):
            runtime.enhance_file(
                enhancer, str(dev / "noisy" / f"{i:04d}.wav"), str(dev / name / f"{i:04d}.wav")
            )
        systems += ["--system", f"{name}={dev / name}"]
    scores = root / "scores"
    rc = evaluate.cli(
        ["dccrn-evaluate", "--clean_dir", str(dev / "clean"), "--noisy_dir", str(dev / "noisy"), *systems,
         "--metrics", "pesq_wb,pesq_nb,stoi,si_snr", "--output_dir", str(scores)]
    )  # fmt: skip
    assert rc == 0
    return dict(root=root, dev=dev, scores=scores, runs={name: root / name for name in sessions}, logs=logs)


@pytest.fixture
def fresh_skipped():
    """An empty skipped-file registry of ``keras_dccrn.data`` before and after the test."""
    from keras_dccrn import data

    data.reset_skipped_files()
    yield
    data.reset_skipped_files()
