"""TFLite (LiteRT) size, per-hop latency and real-time factor of a preset, one thread.

    python benchmarks/tflite_speed.py --preset=distil_dccrn --seconds=10

Random weights (speed does not depend on them); the test signal and the full-int8
calibration set are synthetic noisy speech (:func:`keras_dccrn.export.speech_like_signals`,
different seeds). Every variant is timed end to
end through :class:`keras_dccrn.export.TFLiteEnhancer` (STFT, network,
inverse STFT and overlap-add are all inside the .tflite graph; the streaming
loop's Python set/get of the state tensors is included). RTF = processing
time / audio duration. Writes a Markdown table to ``docs/benchmarks/tflite.md``.
"""

import os
import platform
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "distil_dccrn", "Model preset.")
flags.DEFINE_float("seconds", 10.0, "Test signal length.")
flags.DEFINE_integer("chunk_samples", 64000, "Offline chunk length.")
flags.DEFINE_integer("repeats", 3, "Timed runs per variant (best is reported).")
flags.DEFINE_string("output", "docs/benchmarks/tflite.md", "Markdown file to write.")

VARIANTS = [
    ("offline", "float32"),
    ("offline", "dynamic_int8"),
    ("offline", "float16"),
    ("streaming", "float32"),
    ("streaming", "dynamic_int8"),
    ("streaming", "float16"),
    ("streaming", "int8"),
]


def main(argv):
    del argv
    import keras

    from keras_dccrn import build_model
    from keras_dccrn.export import TFLiteEnhancer, export_tflite, speech_like_signals
    from keras_dccrn.losses import si_snr

    keras.utils.set_random_seed(0)
    model = build_model(FLAGS.preset)
    n = int(FLAGS.seconds * 16000)
    # synthetic noisy speech (keras_dccrn.export.speech_like_signals); calibration uses other signals
    audio = speech_like_signals(count=1, seconds=FLAGS.seconds, seed=2)[0]
    calibration = speech_like_signals(count=8, seconds=2.0, seed=1)
    rows, references = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, quantization in VARIANTS:
            if mode == "streaming" and model.time_crop != "causal":
                continue
            path = os.path.join(tmp, f"{mode}_{quantization}.tflite")
            export_tflite(
                model,
                path,
                mode=mode,
                quantization=quantization,
                representative_data=calibration if quantization == "int8" else None,
                chunk_samples=FLAGS.chunk_samples,
            )
            enhancer = TFLiteEnhancer(path, num_threads=1)
            enhancer(audio[:16000])  # warm-up
            best = float("inf")
            for _ in range(FLAGS.repeats):
                start = time.perf_counter()
                out = enhancer(audio)
                best = min(best, time.perf_counter() - start)
            if quantization == "float32":
                references[mode] = out
            quality = (
                float(si_snr(out[None], references[mode][None])[0]) if mode in references else float("nan")
            )
            rtf = best / FLAGS.seconds
            hop_ms = best / -(-(n + enhancer.delay_samples) // 100) * 1e3 if mode == "streaming" else None
            rows.append(
                (mode, quantization, os.path.getsize(path) / 1e6, hop_ms, rtf, quality, enhancer.uses_xnnpack)
            )
            print(rows[-1], flush=True)
    lines = [
        f"# TFLite / LiteRT speed: `{FLAGS.preset}` ({model.count_params() / 1e6:.2f}M parameters)",
        "",
        f"Measured by `python benchmarks/tflite_speed.py --preset={FLAGS.preset} --seconds={FLAGS.seconds:g}` on "
        f"{platform.machine()} ({os.cpu_count()} cores, shared), LiteRT `num_threads=1`, best of {FLAGS.repeats} "
        f"runs over a {FLAGS.seconds:g} s synthetic noisy-speech signal; offline chunks of {FLAGS.chunk_samples} samples. Random weights. "
        "RTF = processing time / audio duration, end to end (STFT, network, iSTFT, overlap-add; streaming "
        "includes the Python hop loop). Goal: RTF <= 0.05 float32, <= 0.03 quantized. "
        "SI-SNR is against the float32 file of the same mode on the same signal. Streaming int8: int8 "
        "network, float32 framing/DFT/mask/inverse DFT/overlap-add, calibrated on 8 other synthetic signals.",
        "",
        "| mode | quantization | size (MB) | per-hop latency (ms, hop = 6.25 ms) | RTF | SI-SNR vs float32 (dB) | XNNPACK |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for mode, q, size, hop_ms, rtf, quality, xnn in rows:
        hop = f"{hop_ms:.3f}" if hop_ms is not None else "n/a"
        lines.append(
            f"| {mode} | {q} | {size:.2f} | {hop} | {rtf:.3f} | {'reference' if q == 'float32' else f'{quality:.1f}'} "
            f"| {'yes' if xnn else 'no'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    app.run(main)
