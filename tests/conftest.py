import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


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
def tiny_runs(tmp_path_factory):
    """Two finished 2-step runs of the tiny preset, a 3-file development set and its dccrn-evaluate scores.

    ``student_nokd``: ``dccrn-train`` (flags/smoke.cfg, mixed_bfloat16); ``student_atkl``: ``dccrn-distill``
    (flags/smoke_distill.cfg, AT-KL from an untrained tiny teacher); both run in parallel on synthetic
    WAVs. Scored without DNSMOS (slow). Used by test_ship.py and test_results.py.
    """
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
    build_model("tiny").save(root / "teacher.keras")
    common = [*data_flags(root / "corpus"), "--epochs=2", "--steps_per_epoch=1"]
    jobs = {
        "student_nokd": ("trainers.train", [f"--flagfile={SMOKE}", "--mixed_precision=mixed_bfloat16"]),
        "student_atkl": (
            "trainers.distill",
            [f"--flagfile={SMOKE_DISTILL}", f"--teacher={root / 'teacher.keras'}"],
        ),
    }
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", module, *args, *common, f"--run_dir={root / name}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, (module, args) in jobs.items()
    }
    for proc in procs.values():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
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
    for name in jobs:
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
    return dict(root=root, dev=dev, scores=scores, runs={name: root / name for name in jobs})


@pytest.fixture
def fresh_skipped():
    """An empty skipped-file registry of ``keras_dccrn.data`` before and after the test."""
    from keras_dccrn import data

    data.reset_skipped_files()
    yield
    data.reset_skipped_files()
