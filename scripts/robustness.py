r"""Run the bad-input and fault audit (issue 18) as a user would, and write ``docs/robustness.md``.

    python scripts/robustness.py [--output=docs/robustness.md] [--workdir=/tmp/x]

Every case runs the console apps in subprocesses (``python -m trainers.<app>``, the environment
without ``TF_CPP_MIN_LOG_LEVEL``, as after a fresh install) on small inputs generated here: broken and
odd audio files, lossy formats, non-UTF-8 names, corrupt models, absurd flag values, pairs of
different lengths, missing optional packages (hidden from the subprocess by a ``sitecustomize``), and
real SIGINT/SIGTERM/SIGHUP/SIGKILL sent to a running enhancement, mix and evaluation. The page lists
each case, what is expected, what happened (exit status and the last stderr line) and whether it
passed. Uses an untrained tiny model except for the README's main command (the shipped student).
Takes a few minutes on a 2-core CPU.

Exit status: 0 every case passed, 1 some failed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from absl import app, flags  # noqa: E402

from keras_dccrn.errors import one_line  # noqa: E402
from trainers import cli  # noqa: E402

PROG = "robustness"
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "output", os.path.join(ROOT, "docs", "robustness.md"), "Page to write.", flag_values=FLAGS
)
flags.DEFINE_string(
    "workdir", None, "Folder for the generated inputs (default: a temporary one).", flag_values=FLAGS
)

ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_DCCRN_TF_IMPORT_LOGS")}


class Run:
    """A finished subprocess: ``code``, ``out``, ``err`` and its non-empty stderr ``lines``."""

    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err
        self.lines = [line for line in err.splitlines() if line.strip()]

    @property
    def last(self):
        return self.lines[-1] if self.lines else ""

    def one_line(self):
        return len(self.lines) == 1 and "Traceback" not in self.err


def app_args(module, *args):
    return [sys.executable, "-m", f"trainers.{module}", *map(str, args)]


def run(module, *args, env=None):
    proc = subprocess.run(
        app_args(module, *args), cwd=ROOT, env=env or ENV, capture_output=True, text=True, timeout=900
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_and_signal(module, args, ready, sig, timeout=300):
    """Starts the app, waits until ``ready()`` is true, sends ``sig``; returns ``(Run, pid)``."""
    proc = subprocess.Popen(
        app_args(module, *args), cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.1)
    if proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return Run(proc.returncode, out, err), proc.pid


def has_temp(folder, min_files=0):
    if not os.path.isdir(folder):
        return False
    temps = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    if not temps or not min_files:
        return bool(temps)
    inner = os.path.join(folder, temps[0], "noisy")
    return os.path.isdir(inner) and len(os.listdir(inner)) >= min_files


def _bytes(path):
    return os.fsencode(path)


class Audit:
    """Generated inputs and the list of ``(area, case, expected, observed, passed)`` rows."""

    def __init__(self, work):
        import numpy as np
        import soundfile as sf

        os.makedirs(work, exist_ok=True)
        self.np, self.sf, self.work, self.rows = np, sf, work, []
        self.rng = np.random.default_rng(0)
        self.model = os.path.join(work, "tiny.keras")
        from keras_dccrn import build_model

        build_model("tiny", time_crop="causal").save(self.model)

    def path(self, *parts):
        path = os.path.join(self.work, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def dir(self, *parts):
        """A folder path under the work folder (its parent is created, the folder itself is not)."""
        path = os.path.join(self.work, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def noise(self, name, seconds=1.0, rate=16000, channels=1, **kw):
        shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
        path = self.path(name)
        data = (0.1 * self.rng.standard_normal(shape)).astype("float32")
        self.sf.write(_bytes(path), data, rate, **kw)
        return path

    def record(self, area, case, expected, result, passed):
        observed = (
            result if isinstance(result, str) else f"exit {result.code}; {result.last or '(no stderr)'}"
        )
        observed = observed.replace(
            self.work, "<work>"
        )  # the generated inputs' folder, not this machine's path
        self.rows.append((area, case, expected, cli.printable(observed), bool(passed)))
        print(f"{'PASS' if passed else 'FAIL'}  {area}: {case}", file=sys.stderr)

    def enhance(self, src, dst, *extra):
        return run("enhance", "--model", self.model, "--input", src, "--output", dst, *extra)

    # ------------------------------------------------------------------------------------------ cases
    def bad_audio(self):
        cases = {
            "0-byte file": (self.path("bad", "zero.wav"), b""),
            "header-only WAV": (self.path("bad", "header.wav"), None),
            "text named .flac": (self.path("bad", "text.flac"), b"not audio at all"),
        }
        for path, content in cases.values():
            if content is None:
                self.sf.write(path, self.np.zeros(0, "float32"), 16000)
            else:
                open(path, "wb").write(content)
        nan = self.path("bad", "nan.wav")
        data = (0.1 * self.rng.standard_normal(16000)).astype("float32")
        data[10] = self.np.nan
        self.sf.write(nan, data, 16000, subtype="FLOAT")
        cases["NaN sample"] = (nan, None)
        for case, (path, _) in cases.items():
            dst = self.path("out_bad", os.path.basename(path))
            result = self.enhance(path, dst)
            self.record(
                "dccrn-enhance",
                case,
                "exit 1, one `error:` line naming the file, no output",
                result,
                result.code == 1
                and sum(line.startswith("error: ") for line in result.lines) == 1
                and not os.path.exists(dst),
            )

    def odd_audio(self):
        sf = self.sf
        one = self.path("odd", "one.wav")
        sf.write(one, self.np.full(1, 0.1, "float32"), 16000)
        result = self.enhance(one, self.path("odd_out", "one.wav"))
        self.record("dccrn-enhance", "1-sample file", "exit 0, 1 sample out", result, result.code == 0)
        for case, kw, want in [
            ("8-channel 48 kHz", dict(rate=48000, channels=8, seconds=0.5), (48000, 8)),
            ("8 kHz mono", dict(rate=8000), (8000, 1)),
        ]:
            src = self.noise(f"odd/{case.replace(' ', '_')}.wav", **kw)
            dst = self.path("odd_out", os.path.basename(src))
            result = self.enhance(src, dst)
            ok = result.code == 0 and (sf.info(dst).samplerate, sf.info(dst).channels) == want
            self.record("dccrn-enhance", case, f"exit 0, rate and channels kept {want}", result, ok)
        for case, (name, fmt, subtype, rate), out, want in [
            ("MP3 into .wav", ("in.mp3", "MP3", "MPEG_LAYER_III", 16000), "mp3.wav", ("WAV", "PCM_16")),
            ("Opus into .flac", ("in.opus", "OGG", "OPUS", 48000), "opus.flac", ("FLAC", "PCM_16")),
            ("Vorbis into .wav", ("in.ogg", "OGG", "VORBIS", 16000), "ogg.wav", ("WAV", "PCM_16")),
            ("float WAV into .flac", ("f.wav", "WAV", "FLOAT", 16000), "f.flac", ("FLAC", "PCM_24")),
        ]:
            src = self.noise(f"lossy/{name}", rate=rate, format=fmt, subtype=subtype)
            dst = self.path("lossy_out", out)
            result = self.enhance(src, dst)
            got = (sf.info(dst).format, sf.info(dst).subtype) if os.path.exists(dst) else None
            self.record(
                "dccrn-enhance",
                case,
                f"exit 0, {want[0]} {want[1]}",
                result,
                result.code == 0 and got == want,
            )
        src = self.noise("eight.wav", channels=8, seconds=0.3)
        dst = self.path("mp3_out", "eight.mp3")
        result = self.enhance(src, dst)
        self.record(
            "dccrn-enhance",
            "8 channels into .mp3 (MP3 holds 2)",
            "exit 1, the error names the user's output path, not a temporary file",
            result,
            result.code == 1 and dst in result.err and ".tmp-" not in result.err,
        )

    def names(self):
        for case, name in [
            ("unicode name", "bruit café 噪声.wav"),
            ("non-UTF-8 byte in the name", os.fsdecode(b"caf\xe9.wav")),
        ]:
            src = self.noise(os.path.join("names", name), seconds=0.3)
            dst = self.path("names_out", name)
            result = self.enhance(src, dst)
            self.record("dccrn-enhance", case, "exit 0, output under the same name", result,
                        result.code == 0 and os.path.exists(dst))  # fmt: skip
        name = os.fsdecode(b"\xe9t\xe9.wav")
        tone = 0.3 * self.np.sin(self.np.arange(16000) / 9.0)
        for folder in ("clean", "sys"):
            self.sf.write(_bytes(self.path("names_eval", folder, name)), tone, 16000)
        result = run("evaluate", "--clean_dir", self.dir("names_eval", "clean"), "--system",
                     f"S={self.dir('names_eval', 'sys')}", "--metrics", "si_snr", "--output_dir",
                     self.dir("names_eval", "r"))  # fmt: skip
        self.record(
            "dccrn-evaluate", "non-UTF-8 file names", "exit 0, the pair scored", result, result.code == 0
        )

    def folders(self):
        folder = self.dir("folder")
        for i in range(50):
            self.noise(f"folder/f{i:02d}.wav", seconds=0.2)
        open(self.path("folder", "broken.wav"), "wb").write(b"RIFF....WAVEjunk")
        out = self.dir("folder_out")
        result = self.enhance(folder, out)
        self.record("dccrn-enhance", "50-file folder with one broken file", "exit 1, 50 enhanced, summary names the broken file",
                    result, result.code == 1 and "enhanced 50 of 51 file(s)" in result.err and len(os.listdir(out)) == 50)  # fmt: skip
        result = self.enhance(folder, out, "--skip_existing")
        self.record("dccrn-enhance", "folder rerun with --skip_existing", "no 'output exists' lines, 50 skipped",
                    result, "50 skipped" in result.err and "output exists;" not in result.err)  # fmt: skip

    def progress(self):
        src = self.noise("long.wav", seconds=240)
        result = self.enhance(
            src, self.path("long_out", "long.wav"), "--chunk_seconds=2", "--progress_interval=1"
        )
        lines = [line for line in result.lines if "% of 240 s, eta" in line]
        self.record("dccrn-enhance", "240 s file, stderr not a terminal", "periodic progress lines (every --progress_interval s)",
                    f"exit {result.code}; {len(lines)} progress lines, e.g. `{lines[0] if lines else ''}`",
                    result.code == 0 and lines)  # fmt: skip

    def models(self):
        good = open(self.model, "rb").read()
        cases = {
            "truncated .keras": good[: len(good) // 2],
            "random bytes .keras": os.urandom(5000),
            "empty .keras": b"",
            "HDF5 file named .keras": b"\x89HDF\r\n\x1a\n" + bytes(64),
        }
        src = self.noise("m_in.wav", seconds=0.2)
        for case, content in cases.items():
            path = self.path("models", case.replace(" ", "_").replace(".", "") + ".keras")
            open(path, "wb").write(content)
            result = run("enhance", "--model", path, "--input", src, "--output", self.path("m_out", "o.wav"))
            self.record("dccrn-enhance", f"model: {case}", "exit 2, one line saying what is wrong (not 'File not found')",
                        result, result.code == 2 and result.one_line() and "not found" not in result.err.lower())  # fmt: skip

    def bounds(self):
        src = self.noise("b.wav", seconds=0.2)
        for flag in [
            "--chunk_seconds=1e9",
            "--chunk_seconds=nan",
            "--context_seconds=1e6",
            "--threads=1000000",
        ]:
            result = self.enhance(src, self.path("b_out", "b.wav"), flag)
            self.record("dccrn-enhance", flag, "exit 2, one line naming the limit", result,
                        result.code == 2 and result.one_line() and "must be between" in result.last)  # fmt: skip
        speech = self.noise("mixsrc/speech/s.wav", seconds=2)
        noise = self.noise("mixsrc/noise/n.wav", seconds=2)
        for flag in ["--num_examples=100000000", "--max_seconds=100000", "--min_seconds=nan"]:
            result = run("mix", f"--speech={os.path.dirname(speech)}", f"--noise={os.path.dirname(noise)}",
                         f"--output_dir={self.dir('mix_b')}", flag)  # fmt: skip
            self.record("dccrn-mix", flag, "exit 2, one line naming the limit", result,
                        result.code == 2 and result.one_line() and "must be between" in result.last)  # fmt: skip
        clean = self.noise("ev/clean/a.wav")
        self.noise("ev/sys/a.wav")
        for flag in ["--workers=100000", "--chunk_seconds=inf", "--length_tolerance=-1"]:
            result = run("evaluate", "--clean_dir", os.path.dirname(clean), "--system", f"S={self.path('ev', 'sys')}",
                         "--output_dir", self.dir("ev_b"), flag)  # fmt: skip
            self.record("dccrn-evaluate", flag, "exit 2, one line naming the limit", result,
                        result.code == 2 and result.one_line() and "must be between" in result.last)  # fmt: skip

    def lengths(self):
        import numpy as np

        t = np.arange(int(2.6 * 16000)) / 16000
        clean = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype("float32")
        self.sf.write(self.path("len", "clean", "u.wav"), clean, 16000)
        self.sf.write(self.path("len", "short", "u.wav"), clean[:1600], 16000)
        common = [
            "--clean_dir",
            self.path("len", "clean"),
            "--system",
            f"short={self.path('len', 'short')}",
            "--metrics",
            "si_snr",
        ]
        result = run("evaluate", *common, "--output_dir", self.dir("len_r"))
        self.record("dccrn-evaluate", "0.1 s 'enhanced' file against a 2.6 s reference",
                    "exit 1, the pair refused in one line, counted in the summary, not in the means",
                    result, result.code == 1 and "lengths differ" in result.err and "| short | 0 |" in result.out)  # fmt: skip
        result = run("evaluate", *common, "--output_dir", self.dir("len_t"), "--trim_lengths")
        self.record("dccrn-evaluate", "the same with --trim_lengths", "exit 0, scored cut to the shorter file",
                    result, result.code == 0 and "| short | 1 |" in result.out)  # fmt: skip

    def extras(self):
        hide = self.path("hide", "sitecustomize.py")
        for module, app_name, args, extra in [
            ("pystoi", "evaluate", ["--clean_dir", self.path("len", "clean"), "--system", f"S={self.path('len', 'short')}",
                                    "--output_dir", self.dir("ex_r"), "--metrics", "stoi"], "[eval]"),
            ("ai_edge_litert", "enhance", ["--model", self.path("fake.tflite"), "--input", self.path("m_in.wav"),
                                           "--output", self.path("ex_o", "o.wav")], "[tflite]"),
            ("grpc", "serve_client", ["--input", self.path("m_in.wav"), "--output", self.path("ex_o", "g.wav"),
                                      "--protocol=grpc"], "[serving]"),
        ]:  # fmt: skip
            open(self.path("fake.tflite"), "wb").write(b"TFL3")
            with open(hide, "w") as f:
                f.write(f"import sys\nsys.modules[{module!r}] = None\n")
            env = dict(ENV, PYTHONPATH=os.path.dirname(hide) + os.pathsep + ENV.get("PYTHONPATH", ""))
            result = run(app_name, *args, env=env)
            self.record(f"dccrn-{app_name.replace('_', '-')}", f"{module} not installed", f"exit 2, one line naming `{extra}`",
                        result, result.code == 2 and result.one_line() and extra in result.last)  # fmt: skip

    def chatter(self):
        result = run("export", f"--model={self.path('nothing.keras')}")
        self.record("dccrn-export", "TensorFlow C++ log lines on a fresh environment",
                    "only the app's own line on stderr", result, result.one_line())  # fmt: skip

    def signals(self):
        src = self.noise("sig/long.wav", seconds=600)
        for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"):
            out = self.dir(f"sig_out_{name}")
            os.makedirs(out, exist_ok=True)
            args = [
                "--model",
                self.model,
                "--input",
                src,
                "--output",
                os.path.join(out, "long.wav"),
                "--chunk_seconds=2",
            ]
            result, pid = run_and_signal(
                "enhance", args, lambda out=out: has_temp(out), getattr(signal, name)
            )
            left = os.listdir(out)
            if name == "SIGKILL":
                rerun = self.enhance(self.noise("sig/short.wav", seconds=0.2), os.path.join(out, "short.wav"))
                ok = (
                    left
                    and left[0].startswith(f".tmp-{pid}-")
                    and rerun.code == 0
                    and os.listdir(out) == ["short.wav"]
                )
                self.record("dccrn-enhance", "SIGKILL on a long file", "hidden .tmp-<pid>-* leftover, removed by the next run into the folder",
                            f"left {left}; after the next run: {os.listdir(out)}", ok)  # fmt: skip
                continue
            code = 128 + getattr(signal, name)
            self.record("dccrn-enhance", f"{name} on a long file", f"exit {code}, one line, no partial file",
                        result, result.code == code and "Traceback" not in result.err and left == [])  # fmt: skip
        speech = os.path.dirname(self.path("mixsrc", "speech", "s.wav"))
        noise = os.path.dirname(self.path("mixsrc", "noise", "n.wav"))
        out = self.dir("sig_mix")
        args = [f"--speech={speech}", f"--noise={noise}", f"--output_dir={out}", "--num_examples=5000",
                "--min_seconds=1", "--max_seconds=1"]  # fmt: skip
        result, _ = run_and_signal("mix", args, lambda: has_temp(out, min_files=5), signal.SIGTERM)
        self.record("dccrn-mix", "SIGTERM while writing a set", "exit 143, one line, no partial set",
                    result, result.code == 143 and not os.path.exists(out))  # fmt: skip
        for i in range(6):
            self.noise(f"sig_ev/clean/{i}.wav", seconds=3)
            self.noise(f"sig_ev/sys/{i}.wav", seconds=3)
        out = self.dir("sig_ev_r")
        args = ["--clean_dir", self.path("sig_ev", "clean"), "--system", f"S={self.path('sig_ev', 'sys')}",
                "--metrics", "pesq_wb,stoi,dnsmos", "--output_dir", out]  # fmt: skip
        result, _ = run_and_signal("evaluate", args, lambda: os.path.isdir(out), signal.SIGTERM)
        left = os.listdir(out) if os.path.isdir(out) else []
        self.record("dccrn-evaluate", "SIGTERM while scoring", "exit 143, one line, no partial per_file.csv",
                    result, result.code == 143 and "Traceback" not in result.err and "per_file.csv" not in left)  # fmt: skip

    def training(self):
        """dccrn-train: absurd sizes, an interruption and a time-sliced (paused and resumed) run."""
        data = []
        for split in ("train", "valid"):
            speech = os.path.dirname(self.noise(f"trainsrc/speech/{split}/s.wav", seconds=1.5))
            noise = os.path.dirname(self.noise(f"trainsrc/noise/{split}/n.wav", seconds=1.5))
            data += [f"--{split}_speech={speech}", f"--{split}_noise={noise}"]
        smoke = [os.path.join("--flagfile=flags", "smoke.cfg"), *data]
        for flag, limit in (("--segment_seconds=100000", "between 0.1 and 60 seconds"),
                            ("--batch_size=100000000", "between 1 and 1024")):  # fmt: skip
            result = run("train", *smoke, f"--run_dir={self.dir('train_bad')}", flag)
            self.record("dccrn-train", f"`{flag}`", f"exit 2, one line naming the limit ({limit})",
                        result, result.code == 2 and result.one_line() and limit in result.err)  # fmt: skip
        run_dir = self.dir("train_sig")
        args = [*smoke, f"--run_dir={run_dir}", "--steps_per_epoch=100000", "--checkpoint_every=100000"]
        result, _ = run_and_signal("train", args, lambda: os.path.isdir(os.path.join(run_dir, "logs", "train")),
                                   signal.SIGTERM)  # fmt: skip
        ok = (
            result.code == 143
            and "Traceback" not in result.err
            and not os.path.exists(os.path.join(run_dir, "model.keras"))
        )
        self.record("dccrn-train", "SIGTERM while training", "exit 143, checkpoint saved, no model.keras",
                    result, ok)  # fmt: skip
        run_dir = self.dir("train_sliced")
        codes = [run("train", *smoke, f"--run_dir={run_dir}", "--run_steps=2").code for _ in range(3)]
        progress = os.path.join(run_dir, "progress.jsonl")
        steps = [json.loads(line)["step"] for line in open(progress)] if os.path.exists(progress) else []
        ok = codes == [75, 75, 0] and steps == [3, 6] and os.path.exists(os.path.join(run_dir, "model.keras"))
        self.record("dccrn-train", "time-sliced run resumed mid-epoch (--run_steps=2, 3 x 2 steps)",
                    "exits 75, 75, 0; epochs end at steps 3 and 6 (the interrupted epoch is finished, not rerun)",
                    f"exits {codes}; epoch ends at steps {steps}", ok)  # fmt: skip

    def readme(self):
        result = run("enhance", "--input=examples/noisy.wav", f"--output={self.path('main', 'enhanced.wav')}")
        self.record(
            "README", "main command (shipped student, examples/noisy.wav)", "exit 0", result, result.code == 0
        )
        ignored = subprocess.run(["git", "check-ignore", "-q", "enhanced.wav"], cwd=ROOT).returncode == 0
        self.record("README", "`enhanced.wav` of the main command", "ignored by git",
                    "ignored" if ignored else "not ignored", ignored)  # fmt: skip
        text = open(os.path.join(ROOT, "README.md")).read()
        named = all(f'.[{extra}]"' in text for extra in ("eval", "tflite", "serving"))
        self.record("README", "extras each command needs", "README names `[eval]`, `[tflite]`, `[serving]`",
                    "named" if named else "missing", named)  # fmt: skip


def page(rows, seconds):
    passed = sum(r[4] for r in rows)
    lines = [
        "# Robustness audit",
        "",
        "Generated by `python scripts/robustness.py` (issue 18): each case runs the apps in subprocesses, as a user",
        "would after a fresh install, on small generated inputs (an untrained tiny model except for the README's",
        f"main command). {passed} of {len(rows)} cases pass; the run took {seconds / 60:.1f} minutes. The signal",
        "cases are also tests (`python -m pytest -q -m slow tests/test_enhance_cli.py tests/test_evaluate_cli.py",
        "tests/test_mix_cli.py tests/test_export_cli.py`), the training cases are in tests/test_train_cli.py,",
        "the others are in the default suite.",
        "",
        "| area | case | expected | observed | outcome |",
        "|---|---|---|---|---|",
    ]
    for area, case, expected, observed, ok in rows:
        cells = [area, case, expected, observed.replace("|", "\\|"), "pass" if ok else "**FAIL**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        print(f"{PROG}: usage error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    from keras_dccrn.atomic import write_text

    work = FLAGS.workdir or tempfile.mkdtemp(prefix="dccrn-robustness-")
    start = time.monotonic()
    try:
        audit = Audit(work)
        for step in (audit.bad_audio, audit.odd_audio, audit.names, audit.folders, audit.progress, audit.models,
                     audit.bounds, audit.lengths, audit.extras, audit.chatter, audit.signals, audit.training,
                     audit.readme):  # fmt: skip
            try:
                step()
            except Exception as exc:  # the audit itself broke: one failed row, the other steps still run
                audit.record("audit", step.__name__, "the step runs", one_line(exc), False)
    finally:
        if not FLAGS.workdir:
            shutil.rmtree(work, ignore_errors=True)
    write_text(FLAGS.output, page(audit.rows, time.monotonic() - start))
    failed = [r for r in audit.rows if not r[4]]
    print(f"{len(audit.rows) - len(failed)} of {len(audit.rows)} cases pass; wrote {FLAGS.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    app.run(cli.exit_on_signals(main, PROG), flags_parser=cli.flags_parser(FLAGS, PROG, __doc__))
