"""SavedModel export for TF Serving.

:func:`export_saved_model` writes ``<export_dir>/<version>/`` (the layout TF Serving watches) with
three signatures:

* ``serving_default``: ``noisy`` float32 ``[batch, samples]`` (both dynamic) -> ``enhanced`` of the
  same shape;
* ``enhance_wav``: ``wav_bytes`` string ``[batch]`` (WAV files, decoded by ``tf.audio.decode_wav``,
  i.e. 16-bit PCM, any channel count, mixed to mono; the rate **must** equal the model's 16 kHz, else
  the request fails with ``enhance_wav: the WAV sample rate must be 16000 Hz``) ->
  ``enhanced_wav_bytes`` string ``[batch]`` (16-bit PCM mono WAV). The ``_bytes`` suffixes make TF
  Serving's REST API exchange them as ``{"b64": ...}``;
* ``metadata`` (:data:`keras_dccrn.runtime.backends.SAVEDMODEL_METADATA`): no inputs -> int32
  scalars ``lookahead_samples``, ``frame_step`` (of models that have them) and ``sample_rate``, read
  by :class:`keras_dccrn.runtime.backends.SavedModelEnhancer` to place its chunk windows.
"""

import os
import shutil

import numpy as np

from keras_dccrn.atomic import make_temp, publish, remove_temp
from keras_dccrn.audio import SAMPLE_RATE
from keras_dccrn.runtime.backends import SAVEDMODEL_METADATA


def _tf():
    import tensorflow as tf

    return tf


def _atomic_dir(final_dir, write, overwrite):
    """Calls ``write(tmp_dir)`` then renames ``tmp_dir`` to ``final_dir``.

    ``tmp_dir`` is a :func:`keras_dccrn.atomic.make_temp` folder next to ``final_dir``: removed on any
    exception or interruption, and by the next export into that folder after a SIGKILL.
    """
    parent = os.path.dirname(os.path.abspath(final_dir))
    if os.path.exists(final_dir):
        if not overwrite:
            raise ValueError(f"{final_dir}: already exists (pass overwrite=True to replace it)")
    tmp = make_temp(parent, suffix="-export", directory=True)
    try:
        write(tmp)
        if os.path.exists(final_dir):
            shutil.rmtree(final_dir)
        publish(tmp, final_dir)
    finally:
        remove_temp(tmp)


def _check_version(version):
    if not isinstance(version, (int, np.integer)) or isinstance(version, bool) or version <= 0:
        raise ValueError(
            f"`version` must be a positive integer (TF Serving version folder); received {version!r}."
        )


def export_archive(endpoints):
    """``keras.export.ExportArchive`` with ``[(name, fn, signature)]`` endpoints.

    No model is ``track``-ed: the endpoints' traced functions already capture (and the archive
    saves) every variable they use, and tracking the model as well stores each weight a second time
    under other checkpoint keys (keras-team/keras#23553: twice the size on disk and in TF Serving's
    memory).
    """
    import keras

    archive = keras.export.ExportArchive()
    for name, fn, signature in endpoints:
        archive.add_endpoint(name=name, fn=fn, input_signature=signature)
    return archive


def serving_endpoints(model, sample_rate=SAMPLE_RATE):
    """``[(name, fn, input_signature)]`` of the two TF Serving signatures."""
    tf = _tf()

    def enhance(noisy):
        return {"enhanced": model(noisy, training=False)}

    def enhance_one(wav):
        audio, rate = tf.audio.decode_wav(wav)  # [samples, channels], scalar int32
        check = tf.debugging.assert_equal(
            rate,
            tf.constant(sample_rate, tf.int32),
            message=f"enhance_wav: the WAV sample rate must be {sample_rate} Hz",
        )
        with tf.control_dependencies([check]):
            mono = tf.reduce_mean(audio, axis=1)[None, :]  # [samples, ch] -> [1, samples]
        enhanced = model(mono, training=False)
        # [1, samples] -> [samples, 1] as encode_wav wants
        return tf.audio.encode_wav(tf.transpose(enhanced), sample_rate)

    def enhance_wav(wav_bytes):
        out = tf.map_fn(enhance_one, wav_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {"enhanced_wav_bytes": out}

    return [
        ("serving_default", enhance, [tf.TensorSpec([None, None], tf.float32, name="noisy")]),
        ("enhance_wav", enhance_wav, [tf.TensorSpec([None], tf.string, name="wav_bytes")]),
    ]


def model_metadata(model, sample_rate=SAMPLE_RATE):
    """``{"lookahead_samples", "frame_step", "sample_rate"}`` of ``model`` as ints (keys it lacks left out)."""
    values = {key: getattr(model, key, None) for key in ("lookahead_samples", "frame_step")}
    values["sample_rate"] = sample_rate
    return {key: int(value) for key, value in values.items() if value is not None}


def metadata_endpoint(model, sample_rate=SAMPLE_RATE):
    """``(name, fn, input_signature)`` of the ``metadata`` signature: no inputs, int32 scalars out."""
    tf = _tf()
    values = model_metadata(model, sample_rate)

    def metadata():
        return {key: tf.constant(value, tf.int32) for key, value in values.items()}

    return SAVEDMODEL_METADATA, metadata, []


def export_saved_model(model, export_dir, version=1, sample_rate=SAMPLE_RATE, overwrite=False):
    """Writes a TF Serving SavedModel to ``<export_dir>/<version>/``.

    The folder is written under a temporary name and renamed when complete,
    so a crashed export never leaves a version TF Serving would load.

    Args:
        model: a built Keras model, waveform ``[batch, samples]`` -> same.
        export_dir: model base path (TF Serving ``--model_base_path``).
        version: positive integer version folder.
        sample_rate: the rate ``enhance_wav`` accepts and writes.
        overwrite: replace an existing version folder.

    Returns:
        The version folder's path.
    """
    _check_version(version)
    if not getattr(model, "built", False):
        raise ValueError("The model must be built (called once) before export.")
    final = os.path.join(os.fspath(export_dir), str(int(version)))
    archive = export_archive([*serving_endpoints(model, sample_rate), metadata_endpoint(model, sample_rate)])
    _atomic_dir(final, lambda tmp: archive.write_out(tmp, verbose=False), overwrite)
    return final
