"""``dccrn-serve-client``: enhances a file with a running TF Serving model.

Examples::

    dccrn-serve-client --input=noisy.wav --output=enhanced.wav --model_name=distil_dccrn \\
        --protocol=rest --port=8501
    dccrn-serve-client --input=noisy.flac --output=out.wav --protocol=grpc --port=8500 \\
        --signature=enhance_wav

The input (any format libsndfile reads, any rate) is read as 16 kHz mono.
``--signature=serving_default`` sends float samples (``noisy`` ``[1, samples]``)
and receives ``enhanced``; ``--signature=enhance_wav`` sends a 16-bit PCM WAV
(``wav_bytes``, base64 over REST) and receives ``enhanced_wav_bytes``. The
result is written atomically with ``keras_dccrn.audio.write_audio``.
"""

import base64
import io
import json
import sys
import urllib.error
import urllib.request

import numpy as np
import soundfile as sf
from absl import app, flags

from keras_dccrn.audio import SAMPLE_RATE, AudioError, read_audio, write_audio
from trainers import cli

FLAGS = flags.FlagValues()
flags.DEFINE_string("input", None, "Noisy audio file.", flag_values=FLAGS)
flags.DEFINE_string("output", None, "Enhanced audio file to write.", flag_values=FLAGS)
flags.DEFINE_string("host", "localhost", "TF Serving host.", flag_values=FLAGS)
flags.DEFINE_integer("port", 8501, "REST (8501) or gRPC (8500) port.", flag_values=FLAGS)
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "Transport.", flag_values=FLAGS)
flags.DEFINE_string("model_name", "distil_dccrn", "Served model name.", flag_values=FLAGS)
flags.DEFINE_integer("model_version", None, "Model version (default: the latest served).", flag_values=FLAGS)
flags.DEFINE_enum(
    "signature", "serving_default", ["serving_default", "enhance_wav"], "Signature.", flag_values=FLAGS
)
flags.DEFINE_float("timeout", 60.0, "Request timeout in seconds.", flag_values=FLAGS)
flags.DEFINE_integer(
    "max_message_mb", 256, "gRPC send/receive message limit (default gRPC: 4 MB).", flag_values=FLAGS
)


class ServingError(RuntimeError):
    """The server refused or could not be reached; one-line message."""


def _wav_bytes(audio):
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _decode_wav(data):
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    if rate != SAMPLE_RATE:
        raise ServingError(f"server returned {rate} Hz audio, expected {SAMPLE_RATE}")
    return audio if audio.ndim == 1 else audio.mean(axis=1)


def predict_rest(audio, host, port, model_name, signature, version=None, timeout=60.0):
    """``POST /v1/models/<name>[/versions/<v>]:predict``; returns the enhanced 1-D signal."""
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version else "") + ":predict"
    if signature == "enhance_wav":
        inputs = {"wav_bytes": [{"b64": base64.b64encode(_wav_bytes(audio)).decode("ascii")}]}
    else:
        inputs = {"noisy": [audio.astype(float).tolist()]}
    body = json.dumps({"signature_name": signature, "inputs": inputs}).encode()
    request = urllib.request.Request(
        f"http://{host}:{port}{path}", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise ServingError(
            f"http://{host}:{port}{path}: HTTP {exc.code}: {str(detail).strip()[:300]}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServingError(f"http://{host}:{port}{path}: {getattr(exc, 'reason', exc)}") from None
    outputs = reply.get("outputs")
    if isinstance(outputs, dict):  # several outputs: keyed by name
        outputs = outputs.get("enhanced_wav_bytes" if signature == "enhance_wav" else "enhanced")
    if outputs is None:
        raise ServingError(f"http://{host}:{port}{path}: reply has no outputs: {str(reply)[:200]}")
    if signature == "enhance_wav":
        return _decode_wav(base64.b64decode(outputs[0]["b64"]))
    return np.asarray(outputs, dtype="float32")[0]


def predict_grpc(audio, host, port, model_name, signature, version=None, timeout=60.0, max_message_mb=256):
    """``PredictionService/Predict`` over gRPC; returns the enhanced 1-D signal.

    Raises:
        keras_dccrn.extras.MissingExtraError: the ``[serving]`` extra is not installed.
    """
    from keras_dccrn import extras

    extras.require(["grpc", "tensorflow_serving"], "--protocol=grpc")
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    limit = int(max_message_mb) * 1024 * 1024
    options = [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version:
        request.model_spec.version.value = int(version)
    if signature == "enhance_wav":
        request.inputs["wav_bytes"].CopyFrom(tf.make_tensor_proto([_wav_bytes(audio)], dtype=tf.string))
        key = "enhanced_wav_bytes"
    else:
        request.inputs["noisy"].CopyFrom(tf.make_tensor_proto(audio[None, :].astype("float32")))
        key = "enhanced"
    with grpc.insecure_channel(f"{host}:{port}", options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise ServingError(f"grpc://{host}:{port}: {exc.code().name}: {exc.details()}") from None
    if key not in response.outputs:
        raise ServingError(f"grpc://{host}:{port}: reply has no {key!r} output")
    value = tf.make_ndarray(response.outputs[key])
    if signature == "enhance_wav":
        return _decode_wav(value.reshape(-1)[0])
    return value.astype("float32")[0]


def main(argv):
    del argv
    if not FLAGS.input or not FLAGS.output:
        print("dccrn-serve-client: --input and --output are required", file=sys.stderr)
        return 1
    from keras_dccrn import extras

    try:
        if FLAGS.protocol == "grpc":
            extras.require(["grpc", "tensorflow_serving"], "dccrn-serve-client --protocol=grpc")
    except extras.MissingExtraError as exc:
        print(f"dccrn-serve-client: {exc}", file=sys.stderr)
        return 2
    try:
        audio, _ = read_audio(FLAGS.input, sample_rate=SAMPLE_RATE)
        common = dict(
            host=FLAGS.host,
            port=FLAGS.port,
            model_name=FLAGS.model_name,
            signature=FLAGS.signature,
            version=FLAGS.model_version,
            timeout=FLAGS.timeout,
        )
        if FLAGS.protocol == "rest":
            enhanced = predict_rest(audio, **common)
        else:
            enhanced = predict_grpc(audio, max_message_mb=FLAGS.max_message_mb, **common)
        write_audio(FLAGS.output, enhanced, SAMPLE_RATE)
    except (AudioError, ServingError) as exc:
        print(f"dccrn-serve-client: {exc}", file=sys.stderr)
        return 1
    print(f"{FLAGS.output}: {enhanced.size / SAMPLE_RATE:.2f} s enhanced via {FLAGS.protocol}")
    return 0


def run():
    app.run(main, flags_parser=cli.flags_parser(FLAGS, "dccrn-serve-client", __doc__))


if __name__ == "__main__":
    run()
