"""dccrn-serve-client against in-test REST and gRPC servers that follow TF Serving's contract.

``tensorflow_model_server`` cannot be installed here, so the servers below load the exported
SavedModel with TensorFlow and answer ``POST /v1/models/<name>:predict`` and
``PredictionService/Predict`` like it does. Both listen on 127.0.0.1 only and are stopped by the
fixture.
"""

import base64
import json
import os
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_dccrn import build_model
from keras_dccrn.export import export_saved_model
from trainers.serve_client import ServingError, predict_grpc, predict_rest

# one worker builds the module's SavedModels and servers (module fixtures) instead of each worker that runs a test of it
pytestmark = pytest.mark.xdist_group("serving")

MODEL = "tiny"
LIMIT = 64 * 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_signature(loaded, signature, inputs):
    fn = loaded.signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


class _Rest(BaseHTTPRequestHandler):
    loaded = None

    def log_message(self, *args):
        pass

    def _reply(self, code, payload):
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        path = self.path
        if not (path.startswith(f"/v1/models/{MODEL}") and path.endswith(":predict")):
            return self._reply(404, {"error": f"Servable not found for request: {path}"})
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        signature = request.get("signature_name", "serving_default")

        def decode(value):
            if isinstance(value, dict) and "b64" in value:
                return base64.b64decode(value["b64"])
            if isinstance(value, list):
                return [decode(v) for v in value]
            return value

        try:
            inputs = {k: np.array(decode(v)) for k, v in request["inputs"].items()}
            inputs = {k: v.astype("float32") if v.dtype.kind == "f" else v for k, v in inputs.items()}
            outputs = _run_signature(self.loaded, signature, inputs)
        except Exception as exc:  # TF Serving answers 400 with the error text
            return self._reply(400, {"error": str(exc).strip().splitlines()[0]})
        (name, value), *_ = outputs.items()
        if name.endswith("_bytes"):
            return self._reply(200, {"outputs": [{"b64": base64.b64encode(v).decode()} for v in value]})
        return self._reply(200, {"outputs": value.tolist()})


class _Grpc(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, loaded):
        self.loaded = loaded

    def Predict(self, request, context):
        if request.model_spec.name != MODEL:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request.model_spec.name}"
            )
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        try:
            outputs = _run_signature(
                self.loaded, request.model_spec.signature_name or "serving_default", inputs
            )
        except Exception as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc).strip().splitlines()[0])
        response = predict_pb2.PredictResponse()
        for k, v in outputs.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return response


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model("tiny", time_crop="causal")


@pytest.fixture(scope="module")
def servers(model, tmp_path_factory):
    version_dir = export_saved_model(model, tmp_path_factory.mktemp("serving") / MODEL, version=1)
    loaded = tf.saved_model.load(version_dir)
    handler = type("Handler", (_Rest,), {"loaded": loaded})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    http.timeout = 5
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    options = [("grpc.max_send_message_length", LIMIT), ("grpc.max_receive_message_length", LIMIT)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_Grpc(loaded), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield {"rest": http.server_address[1], "grpc": grpc_port}
    finally:
        http.shutdown()
        http.server_close()
        server.stop(grace=1).wait(5)
        thread.join(5)


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    return (0.3 * np.sin(2 * np.pi * 250 * t) + 0.05 * rng.standard_normal(t.size)).astype("float32")


def _pcm16(x):
    return np.round(np.clip(x, -1, 1) * 32767) / 32767


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
@pytest.mark.parametrize("signature", ["serving_default", "enhance_wav"])
def test_predict_matches_keras(servers, model, noisy, protocol, signature):
    predict = predict_rest if protocol == "rest" else predict_grpc
    out = predict(noisy, "127.0.0.1", servers[protocol], MODEL, signature, timeout=30)
    assert out.shape == noisy.shape
    if signature == "serving_default":
        np.testing.assert_allclose(out, np.asarray(model(noisy[None]))[0], atol=1e-5)
    else:  # both ways through 16-bit PCM
        reference = np.asarray(model(_pcm16(noisy)[None].astype("float32")))[0]
        np.testing.assert_allclose(out, reference, atol=3.0 / 32768)


def test_grpc_long_audio_above_default_4mb_limit(servers, model):
    x = np.random.default_rng(1).standard_normal(1_100_000).astype("float32") * 0.05  # 4.4 MB as float32
    out = predict_grpc(x, "127.0.0.1", servers["grpc"], MODEL, "serving_default", timeout=120)
    assert out.shape == x.shape and np.all(np.isfinite(out))
    # the model is causal up to 399 samples: the first 4000 outputs only depend on the first 5000 inputs
    np.testing.assert_allclose(out[:4000], np.asarray(model(x[None, :5000]))[0][:4000], atol=1e-5)


def test_errors_are_one_line(servers, noisy):
    with pytest.raises(ServingError, match="HTTP 404"):
        predict_rest(noisy, "127.0.0.1", servers["rest"], "nope", "serving_default")
    with pytest.raises(ServingError, match="NOT_FOUND"):
        predict_grpc(noisy, "127.0.0.1", servers["grpc"], "nope", "serving_default")


def test_cli_writes_enhanced_file(servers, model, noisy, tmp_path):
    src = tmp_path / "noisy.wav"
    sf.write(src, noisy, 16000, subtype="FLOAT")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    for protocol in ("rest", "grpc"):
        dst = tmp_path / f"out_{protocol}.wav"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "trainers.serve_client",
                f"--input={src}",
                f"--output={dst}",
                "--host=127.0.0.1",
                f"--port={servers[protocol]}",
                f"--protocol={protocol}",
                f"--model_name={MODEL}",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-1500:]
        out, rate = sf.read(dst, dtype="float32")
        assert rate == 16000
        np.testing.assert_allclose(out, np.asarray(model(noisy[None]))[0], atol=1e-4)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainers.serve_client",
            f"--input={tmp_path / 'missing.wav'}",
            f"--output={tmp_path / 'x.wav'}",
            f"--port={servers['rest']}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode == 1 and "missing.wav: no such file" in bad.stderr
    assert not (tmp_path / "x.wav").exists()
