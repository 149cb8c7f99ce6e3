import os
import sys
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from keras_dccrn import build_model, runtime
from keras_dccrn.audio import AudioError
from keras_dccrn.runtime import (
    ModelLoadError,
    backends,
    enhance,
    enhance_file,
    litert,
    load_enhancer,
    load_keras_model,
    registry,
)


@pytest.fixture(scope="module")
def causal_model():
    return build_model("tiny", time_crop="causal")


@pytest.fixture(scope="module")
def enhancer(causal_model):
    return load_enhancer(causal_model)


@pytest.fixture(scope="module")
def streaming_tflite(tiny_causal_files):
    return str(tiny_causal_files / "tiny_causal_streaming_float32.tflite")


def noise(rng, shape, level=0.1):
    return (level * rng.standard_normal(shape)).astype(np.float32)


def test_enhance_is_exported_at_package_level():
    import keras_dccrn

    assert keras_dccrn.enhance is enhance


def test_keras_models_are_wrapped_once(causal_model, enhancer):
    assert load_enhancer(causal_model) is enhancer  # repeated enhance(..., model) calls do not retrace


def test_whole_signal_matches_the_model(causal_model, enhancer, rng):
    x = noise(rng, (2, 16000))
    expected = np.asarray(causal_model(x, training=False))
    np.testing.assert_allclose(enhance(x, 16000, enhancer, chunk_seconds=None), expected, atol=1e-6)
    mono = enhance(x[0], 16000, enhancer)  # fits in one window: processed whole
    assert mono.shape == (16000,) and mono.dtype == np.float32
    np.testing.assert_allclose(mono, expected[0], atol=1e-6)


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (8000, 1)])
def test_chunked_matches_whole_signal(enhancer, rng, rate, channels):
    x = noise(rng, (channels, 9 * rate))
    whole = enhance(x, rate, enhancer, chunk_seconds=None)
    chunked = enhance(x, rate, enhancer, chunk_seconds=1.5, context_seconds=1.0)
    assert chunked.shape == whole.shape == x.shape
    # Causal model, hop-aligned windows, 1 s of history: equal up to the truncated recurrent history.
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    assert np.sqrt(np.mean(whole**2)) > 1e-4  # the comparison is not between silences


def test_chunk_borders_need_the_context(enhancer, rng):
    # Without history each window restarts the recurrent state: visible differences at the borders,
    # so the test above can fail.
    x = noise(rng, (1, 9 * 16000))
    whole = enhance(x, 16000, enhancer, chunk_seconds=None)
    no_context = enhance(x, 16000, enhancer, chunk_seconds=1.5, context_seconds=0.0, fade_seconds=0.0)
    assert np.abs(no_context - whole).max() > 1e-4


def test_non_causal_model_chunked(rng):
    model = build_model("tiny")  # DCCRN crop: 999 samples look-ahead, handled by the window margin
    assert model.lookahead_samples == 999
    x = noise(rng, (1, 5 * 16000))
    whole = enhance(x, 16000, model, chunk_seconds=None)
    chunked = enhance(x, 16000, model, chunk_seconds=1.0, context_seconds=1.0)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_enhance_rejects_bad_audio(enhancer):
    with pytest.raises(ValueError, match="NaN"):
        enhance(np.array([0.0, np.nan, 0.1], np.float32), 16000, enhancer)
    with pytest.raises(ValueError, match="empty"):
        enhance(np.zeros(0, np.float32), 16000, enhancer)
    with pytest.raises(ValueError, match="shape"):
        enhance(np.zeros((1, 1, 100), np.float32), 16000, enhancer)
    with pytest.raises(ValueError, match="sample_rate"):
        enhance(np.zeros(100, np.float32), 0, enhancer)
    with pytest.raises(ValueError, match="chunk_seconds"):
        enhance(np.zeros(100, np.float32), 16000, enhancer, chunk_seconds=-1.0)


def test_default_model_missing_is_a_one_line_error(tmp_path, monkeypatch):
    # No shipped-model folder anywhere: a clear message naming the folders searched.
    monkeypatch.setattr(registry, "SHIPPED_MODELS_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv(runtime.MODELS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert runtime.DEFAULT_MODEL == "distil_dccrn"
    with pytest.raises(ModelLoadError, match="default model 'distil_dccrn' is not in any shipped") as info:
        load_enhancer(None)
    assert "\n" not in str(info.value) and str(tmp_path / "nowhere") in str(info.value)
    with pytest.raises(ModelLoadError, match="default model"):
        enhance(np.zeros(1600, np.float32), 16000)


def test_shipped_model_folders_env_first(tmp_path, monkeypatch):
    # $KERAS_DCCRN_MODELS is searched before the checkout; ./saved_models serves non-editable installs.
    import keras

    model = build_model("tiny")
    first, second = tmp_path / "env", tmp_path / "cwd" / "saved_models"
    for base in (first, second):
        (base / "mine").mkdir(parents=True)
    keras.saving.save_model(model, str(first / "mine" / "a.keras"))
    keras.saving.save_model(model, str(second / "mine" / "b.keras"))
    (second / "other").mkdir()
    keras.saving.save_model(model, str(second / "other" / "c.keras"))
    monkeypatch.setattr(registry, "SHIPPED_MODELS_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv(runtime.MODELS_ENV, str(first))
    monkeypatch.chdir(tmp_path / "cwd")
    assert runtime.shipped_models() == {"mine": str(first / "mine"), "other": str(second / "other")}


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model") as info:
        load_enhancer(str(tmp_path / "missing.keras"))
    assert "\n" not in str(info.value)
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    with pytest.raises(ModelLoadError, match="bad.keras: not a Keras model") as info:
        load_enhancer(str(bad))
    assert "\n" not in str(info.value)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ModelLoadError, match="no saved_model.pb"):
        load_enhancer(str(tmp_path / "empty_dir"))
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="unsupported model file"):
        load_enhancer(str(tmp_path / "m.onnx"))


def test_keras_enhancer_does_not_retry_a_failing_run():
    import keras
    import tensorflow as tf

    traces = []

    class Checked(keras.Model):
        def call(self, x):
            traces.append(x.shape)
            check = tf.debugging.assert_less_equal(
                tf.reduce_max(tf.abs(x)), 1.0, message="input out of range"
            )
            with tf.control_dependencies([check]):
                return x * 0.5

    enhancer = runtime.KerasEnhancer(Checked())
    with pytest.raises(tf.errors.InvalidArgumentError, match="input out of range"):
        enhancer(np.full((1, 800), 2.0, np.float32))
    assert enhancer.per_shape is False
    for n in (800, 1234):
        np.testing.assert_allclose(enhancer(np.full((2, n), 0.5, np.float32)), 0.25)
    assert len(traces) == 1  # one trace for [None, None]; the failed run was neither retried nor retraced


def test_keras_enhancer_traces_per_shape_only_when_tracing_needs_a_length():
    import keras
    from keras import ops

    traces = []

    class Framed(keras.Model):
        def call(self, x):
            traces.append(x.shape)
            n = x.shape[1]
            frames = ops.reshape(x, (-1, n // 100, 100))  # [B, n] -> [B, n / 100, 100]; None // 100 fails
            return ops.reshape(frames * 0.5, (-1, n))  # [B, n / 100, 100] -> [B, n]

    enhancer = runtime.KerasEnhancer(Framed())
    x = np.full((1, 800), 0.5, np.float32)
    np.testing.assert_allclose(enhancer(x), 0.25)
    assert enhancer.per_shape is True
    np.testing.assert_allclose(enhancer(np.full((1, 1200), 0.5, np.float32)), 0.25)


def test_keras_file_roundtrip(causal_model, tmp_path, rng):
    path = str(tmp_path / "m.keras")
    causal_model.save(path)
    loaded = load_enhancer(path)
    assert isinstance(loaded, runtime.KerasEnhancer)
    assert loaded.lookahead_samples == 399 and loaded.alignment == 100
    x = noise(rng, (1, 8000))
    np.testing.assert_allclose(loaded(x), np.asarray(causal_model(x, training=False)), atol=1e-6)


def _save_gain_savedmodel(path, gain):
    import tensorflow as tf

    class Gain(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="noisy")])
        def serve(self, noisy):
            return {"enhanced": noisy * gain}

    module = Gain()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})


def test_savedmodel_and_tf_serving_layout(tmp_path, rng):
    _save_gain_savedmodel(str(tmp_path / "plain"), 0.5)
    x = noise(rng, (2, 4000))
    np.testing.assert_allclose(load_enhancer(str(tmp_path / "plain"))(x), 0.5 * x, atol=1e-7)
    # TF-Serving layout: the highest integer version wins (10 > 9, numerically).
    _save_gain_savedmodel(str(tmp_path / "serving" / "9"), 0.25)
    _save_gain_savedmodel(str(tmp_path / "serving" / "10"), 0.75)
    (tmp_path / "serving" / "notes").mkdir()
    served = load_enhancer(str(tmp_path / "serving"))
    assert isinstance(served, runtime.SavedModelEnhancer)
    np.testing.assert_allclose(enhance(x, 16000, served), 0.75 * x, atol=1e-6)


def test_tflite_files_go_to_the_litert_runtime(tmp_path, monkeypatch, rng):
    path = str(tmp_path / "m.tflite")
    with open(path, "wb") as f:
        f.write(b"tflite")
    # Without ai-edge-litert (a fresh clone's main install): one line naming the [tflite] extra, not
    # "not a readable TFLite model" nor an ImportError traceback.
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "ai_edge_litert", None)
        with pytest.raises(ModelLoadError, match=r"ai-edge-litert.*keras-dccrn\[tflite\]") as info:
            load_enhancer(path)
    assert str(info.value).startswith(f"{path}: running a .tflite model needs") and "\n" not in str(
        info.value
    )

    calls = []
    # An earlier test in this process may have set configure_threads (importing benchmarks.harness sets
    # one thread); unset, LiteRT gets all usable cores.
    monkeypatch.setitem(backends._threads, "count", 0)

    class FakeTFLiteEnhancer:
        frame_step = 100
        lookahead_samples = 399

        def __init__(self, p, num_threads):
            assert p == path
            assert num_threads == backends.usable_cores()

        def __call__(self, wave):
            assert wave.ndim == 1 and wave.dtype == np.float32
            calls.append(wave.size)
            return 0.5 * wave

    monkeypatch.setattr(litert, "TFLiteEnhancer", FakeTFLiteEnhancer)
    runner = load_enhancer(path)
    assert runner.lookahead_samples == 399
    x = noise(rng, (2, 3000))
    np.testing.assert_allclose(enhance(x, 16000, runner), 0.5 * x, atol=1e-7)
    assert calls == [3000, 3000]  # one call per channel


def test_enhance_file_streams_like_enhance(enhancer, tmp_path, rng):
    x = noise(rng, (6 * 22050, 2))
    src, dst = str(tmp_path / "in.flac"), str(tmp_path / "out" / "in.flac")
    sf.write(src, x, 22050, subtype="PCM_24")
    seen = []
    info = enhance_file(
        enhancer, src, dst, chunk_seconds=1.0, context_seconds=0.5, progress=lambda d, t: seen.append((d, t))
    )
    assert info.samplerate == 22050
    out_info = sf.info(dst)
    assert (out_info.samplerate, out_info.channels, out_info.frames) == (22050, 2, x.shape[0])
    assert (out_info.format, out_info.subtype) == ("FLAC", "PCM_24")
    got = sf.read(dst, dtype="float32")[0].T
    expected = enhance(sf.read(src, dtype="float32")[0].T, 22050, enhancer, chunk_seconds=None)
    np.testing.assert_allclose(got, expected, atol=2e-5)  # PCM_24 quantisation is 1.2e-7
    assert seen[-1] == (x.shape[0], x.shape[0]) and len(seen) > 3
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert os.listdir(tmp_path / "out") == ["in.flac"]  # no temporary file left


@pytest.mark.parametrize(
    "backend", ["enhancer", pytest.param("streaming_tflite", marks=pytest.mark.slow)]
)  # windows; one continuous stream
def test_enhance_file_bounded_memory(backend, request, tmp_path, rng):
    model = load_enhancer(request.getfixturevalue(backend))
    seconds = 90
    src, dst = str(tmp_path / "long.wav"), str(tmp_path / "long_out.wav")
    with sf.SoundFile(src, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(seconds):
            f.write(noise(rng, 16000))
    tracemalloc.start()
    try:
        enhance_file(model, src, dst, chunk_seconds=2.0, context_seconds=1.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_signal_bytes = seconds * 16000 * 4
    assert peak < whole_signal_bytes / 4, (peak, whole_signal_bytes)
    assert sf.info(dst).frames == seconds * 16000


@pytest.mark.parametrize("rate", [16000, 22050])
def test_streaming_tflite_streams_files_continuously(streaming_tflite, tmp_path, rng, rate):
    """Chunk by chunk with the state carried: the one-shot output of the same runner, any chunk size."""
    runner = load_enhancer(streaming_tflite)
    assert runner.streams
    x = noise(rng, (int(3.3 * rate), 2), level=0.1)  # 3.3 s in chunks of 0.25 s (0.3 s at 22050 Hz)
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    sf.write(src, x, rate, subtype="FLOAT")
    seen = []
    # No context: windows would restart the state at every chunk (3e-3 off here); a stream needs none.
    enhance_file(
        runner, src, dst, chunk_seconds=0.25, context_seconds=0, progress=lambda d, t: seen.append(d)
    )
    got, out_rate = sf.read(dst, dtype="float32", always_2d=True)
    assert out_rate == rate and got.shape == x.shape
    assert len(seen) >= 11 and seen[-1] == x.shape[0]
    one_shot = litert.TFLiteEnhancer(streaming_tflite)  # a fresh runner: no state shared with `runner`
    x16 = runtime.chunking.resample(x.T, rate, 16000)
    expected = np.stack([one_shot(channel) for channel in x16])
    expected = np.clip(runtime.chunking.resample(expected, 16000, rate)[:, : x.shape[0]], -1, 1)
    np.testing.assert_allclose(got.T, expected, atol=1e-6)
    # enhance() takes the same path; with chunk_seconds=None it is the one-shot call
    np.testing.assert_allclose(
        enhance(x.T, rate, runner, chunk_seconds=0.25, context_seconds=0), expected, atol=1e-6
    )
    np.testing.assert_allclose(enhance(x.T, rate, runner, chunk_seconds=None), expected, atol=1e-6)


def test_enhance_file_errors_leave_no_output(enhancer, tmp_path, rng):
    # NaN after 3 s of a float WAV: detected mid-stream, the partial output is removed.
    x = noise(rng, 5 * 16000)
    x[3 * 16000 + 5] = np.nan
    src = str(tmp_path / "nan.wav")
    sf.write(src, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: contains NaN"):
        enhance_file(enhancer, src, str(tmp_path / "out" / "nan.wav"), chunk_seconds=1.0, context_seconds=0.5)
    assert os.listdir(tmp_path / "out") == []
    with pytest.raises(AudioError, match="missing.wav: no such file"):
        enhance_file(enhancer, str(tmp_path / "missing.wav"), str(tmp_path / "o.wav"))
    empty = str(tmp_path / "empty.wav")
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: contains no samples"):
        enhance_file(enhancer, empty, str(tmp_path / "o.wav"))
    text = tmp_path / "text.wav"
    text.write_text("hello")
    with pytest.raises(AudioError, match="text.wav: not a readable audio file"):
        enhance_file(enhancer, str(text), str(tmp_path / "o.wav"))
    assert not os.path.exists(tmp_path / "o.wav")


def test_enhance_file_overwrite_rules(enhancer, tmp_path, rng):
    src = str(tmp_path / "a.wav")
    sf.write(src, noise(rng, 8000), 16000, subtype="PCM_16")
    before = open(src, "rb").read()
    with pytest.raises(AudioError, match="output is the input file"):
        enhance_file(enhancer, src, src)
    assert open(src, "rb").read() == before
    other = str(tmp_path / "b.wav")
    sf.write(other, np.zeros(10), 16000)
    with pytest.raises(AudioError, match="b.wav: output exists"):
        enhance_file(enhancer, src, other)
    enhance_file(enhancer, src, src, overwrite=True)
    assert open(src, "rb").read() != before and sf.info(src).frames == 8000


def test_output_extension_sets_format(enhancer, tmp_path, rng):
    src = str(tmp_path / "a.flac")
    sf.write(src, noise(rng, 8000), 16000, subtype="PCM_16")
    enhance_file(enhancer, src, str(tmp_path / "a.wav"))
    assert (sf.info(str(tmp_path / "a.wav")).format, sf.info(str(tmp_path / "a.wav")).subtype) == (
        "WAV",
        "PCM_16",
    )
    with pytest.raises(AudioError, match="unsupported output extension"):
        enhance_file(enhancer, src, str(tmp_path / "a.xyz"))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("truncated", "truncated or corrupt .keras archive"),
        ("random", "not a Keras model: a .keras file is a zip archive"),
        ("empty", "empty file (0 bytes)"),
        ("hdf5", "an HDF5 file"),
        ("zip", "a zip archive without config.json"),
        ("wav", "not a Keras model"),
    ],
)
def test_broken_keras_files_say_what_is_wrong_not_file_not_found(causal_model, tmp_path, kind, message):
    # Audit: a truncated or random .keras file was reported as "File not found" although it exists.
    import zipfile

    good = tmp_path / "good.keras"
    causal_model.save(str(good))
    path = tmp_path / f"{kind}.keras"
    data = good.read_bytes()
    contents = {
        "truncated": data[: len(data) // 2],
        "random": np.random.default_rng(0).bytes(5000),
        "empty": b"",
        "hdf5": b"\x89HDF\r\n\x1a\n" + bytes(100),
        "wav": b"RIFF" + bytes(100),
    }
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "x")
    else:
        path.write_bytes(contents[kind])
    with pytest.raises(ModelLoadError) as info:
        load_enhancer(str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
    assert "not found" not in text.lower()


def test_the_file_a_shipped_folder_serves(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("b.keras", "a.tflite", "c.tflite"):
        (folder / name).write_bytes(b"x")
    assert registry.model_in_folder(str(folder)) == str(folder / "b.keras")  # .keras before .tflite
    (folder / "2").mkdir()
    (folder / "2" / "saved_model.pb").write_bytes(b"x")
    assert registry.model_in_folder(str(folder)) == str(folder / "2")  # a SavedModel first
    manifest = folder / registry.MANIFEST
    manifest.write_text('{"default": "c.tflite"}')
    assert registry.model_in_folder(str(folder)) == str(folder / "c.tflite")  # the manifest decides
    for text, message in [
        ("{not json", "not a JSON object"),
        ('["c.tflite"]', "not a JSON object"),
        ('{"default": "missing.tflite"}', "not a .keras / .tflite file"),
        ('{"default": "../m/c.tflite"}', "must be a file name inside"),
        ('{"default": "MODEL_CARD.md"}', "not a .keras / .tflite file"),
    ]:
        manifest.write_text(text)
        with pytest.raises(ModelLoadError, match=message) as info:
            registry.model_in_folder(str(folder))
        assert "\n" not in str(info.value) and str(manifest) in str(info.value)


def _python(code, *args, check=True):
    """Runs ``python -c code args`` in a fresh process; asserts success unless ``check`` is False."""
    import subprocess

    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert run.returncode == 0, run.stderr[-2000:]
    return run


def test_litert_threads_default_to_the_usable_cores(monkeypatch):
    monkeypatch.setattr(backends, "_threads", {"count": 0, "tf_pending": False})
    # leave this process's TensorFlow thread pools alone
    monkeypatch.setattr(backends, "_apply_tf_threads", lambda tf: True)
    monkeypatch.setattr(backends.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert backends.usable_cores() == 3 and backends.litert_threads() == 3
    assert runtime.configure_threads(1) and backends.litert_threads() == 1
    assert runtime.configure_threads(0) and backends.litert_threads() == 3
    monkeypatch.delattr(backends.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(backends.os, "cpu_count", lambda: None)
    assert backends.usable_cores() == 1


def test_threads_are_applied_when_tensorflow_is_first_needed(causal_model, tmp_path):
    path = str(tmp_path / "m.keras")
    causal_model.save(path)
    code = (
        "import sys\n"
        "from keras_dccrn import runtime\n"
        "assert runtime.configure_threads(1) and 'tensorflow' not in sys.modules\n"
        "runtime.load_enhancer(sys.argv[1])\n"
        "import tensorflow as tf\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads())\n"
    )
    assert _python(code, path).stdout.split() == ["1", "1"]


@pytest.mark.slow
def test_plain_keras_loading_after_import(causal_model, tmp_path):
    path = str(tmp_path / "m.keras")
    causal_model.save(path)
    # keras first, then keras_dccrn: the classes are registered on import (Keras 3 would not find
    # keras_dccrn>DCCRN otherwise); register_keras_objects() covers the other order.
    code = (
        "import sys\n"
        "import keras\n"
        "import keras_dccrn\n"
        "print(type(keras.saving.load_model(sys.argv[1])).__name__)\n"
    )
    assert _python(code, path).stdout.split() == ["DCCRN"]
    # the other order: refused (each time), until register_keras_objects(); one process for the three loads
    other_order = (
        "import sys\n"
        "import keras_dccrn\n"
        "import keras\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        keras.saving.load_model(sys.argv[1])\n"
        "    except Exception as exc:\n"
        "        print('refused:', ' '.join(str(exc).split()))\n"
        "keras_dccrn.register_keras_objects()\n"
        "print(type(keras.saving.load_model(sys.argv[1])).__name__)\n"
    )
    lines = _python(other_order, path).stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == "DCCRN", lines
    assert all(line.startswith("refused:") and "Could not locate class" in line for line in lines[:2]), lines


@pytest.mark.slow
def test_a_mixed_precision_keras_file_loads_as_float32_and_streams(tmp_path, rng):
    import keras

    from keras_dccrn.streaming import stream

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(3)
        trained = build_model("tiny", time_crop="causal")
        trained(np.zeros((1, 1600), "float32"))
        path = str(tmp_path / "bf16.keras")
        trained.save(path)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert load_keras_model(path, float32=False).dtype_policy.name == "mixed_bfloat16"
    model = load_keras_model(path)
    assert model.dtype_policy.name == "float32"
    for a, b in zip(model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = (0.1 * rng.standard_normal(1600)).astype("float32")
    offline = np.asarray(model(x[None]))[0]
    np.testing.assert_allclose(stream(model, x), offline, atol=1e-5)  # the step runs outside autocasting
