"""On-the-fly noisy-mixture synthesis for training and evaluation (``tf.data``).

Modules (every public name is also available from ``keras_dccrn.data``):

* :mod:`~keras_dccrn.data.files`: the audio extension list and the folder scan;
* :mod:`~keras_dccrn.data.manifests`: CSV / JSON-lines file lists, read and written;
* :mod:`~keras_dccrn.data.discovery`: :func:`find_audio` (folders, globs, manifests, lists);
* :mod:`~keras_dccrn.data.provenance`: :func:`describe_sources` (files, hours and licence per source
  of a data flag, from the data folder's ``manifest.csv``);
* :mod:`~keras_dccrn.data.skipped`: the registry of skipped files;
* :mod:`~keras_dccrn.data.config`: :class:`MixtureConfig`;
* :mod:`~keras_dccrn.data.corpus`: :class:`AudioCorpus` (lazy decoding, cache, streaming reads);
* :mod:`~keras_dccrn.data.mixing`: the NumPy mixing DSP (:func:`mix`, :func:`prepare_rir`);
* :mod:`~keras_dccrn.data.synth`: :class:`MixtureSynthesizer` (example ``i`` of a seeded stream);
* :mod:`~keras_dccrn.data.pipeline`: the ``tf.data`` datasets (the only module importing
  TensorFlow, loaded on first use of its names);
* :mod:`~keras_dccrn.data.writers`: :func:`write_pairs` (a fixed set of pairs on disk).

How an example is made

Every example is synthesised from clean speech, noise and (optionally) a room
impulse response (RIR) when it is requested, as in the DNS Challenge recipes:

1. **Clean**: a random segment of ``segment_seconds`` from a clean file. Clean
   files are visited in shuffled epochs (a fresh seeded permutation per epoch,
   so each file is used once per epoch). A file shorter than the segment is
   zero-padded at a random position (``short_clean="pad"``, the default: most
   read-speech corpora have many 2-4 s sentences) or excluded up front
   (``short_clean="skip"``). Clean files shorter than ``min_clean_seconds``
   are always excluded.
2. **Noise**: a random file (with replacement) and a random segment of it; a
   file shorter than the segment is looped from a random phase.
3. **Reverberation** (probability ``reverb_prob``): the clean segment is
   convolved with a random RIR. The RIR is first aligned so that its direct
   path (largest absolute sample) is at index 0 and scaled so that the direct
   path is +1; the reverberant speech is therefore time-aligned with the dry
   speech (no pre-delay for a causal model to undo). The target is the dry
   segment (``reverb_target="dry"``) or the speech convolved with the first
   ``early_reverb_ms`` (50 ms) of the aligned RIR (``"early"``).
4. **SNR** drawn uniformly from ``snr_range`` and applied exactly: the noise is
   scaled so that ``10 log10(sum(target^2) / sum(noise^2))`` equals it.
5. **Level** drawn uniformly from ``level_range`` (dBFS, RMS of the noisy mix);
   the same gain is applied to the target.
6. **No clipping**: if the peak of the noisy mix or of the target would exceed
   ``max_peak`` (0.99), both are scaled down by the same factor (so the level
   can then fall below the drawn one; the SNR is unchanged).

Determinism: all random draws of example ``i`` come from a NumPy generator
seeded with ``(seed, stream, i)``, and the clean permutation of epoch ``e``
from ``(seed, stream, e)``; nothing depends on global random state, thread
scheduling, ``num_parallel_calls`` or on how the index stream is sharded.
``tf.data`` keeps the order (``deterministic=True``), so a given seed yields
the same batches on every run. With a ``tf.distribute.InputContext`` the index
stream is sharded, so every worker synthesises different examples and all
workers together produce exactly the unsharded stream.

Decoding: soundfile (libsndfile) through ``tf.numpy_function``, not
``tf.audio.decode_wav``: it reads WAV, FLAC, OGG and every other format
libsndfile supports, at any rate and channel count, can seek and decode only
the needed part of a long file (streaming mode), and releases the GIL while
decoding. Resampling to 16 kHz is SciPy's anti-aliased polyphase filter
(:func:`keras_dccrn.audio.resample`); channels are averaged to mono. The
mixing math is vectorised NumPy on whole segments (float64), inside the same
``numpy_function``; ``map`` runs it in parallel with ``AUTOTUNE``.

Caching: with ``cache=True`` each file is decoded (and resampled) once, on
first use, and kept in RAM as float32 (16 kHz float32 is 230 MB per hour of
audio: fine for the small shared set). With ``cache=False`` only the needed
segment is decoded from disk for each example (plus a short margin for the
resampling filter), which is what DNS-scale corpora need.

Bad data never stops a run: unreadable, empty, NaN/infinite, silent (RMS below
``silence_db``) and too-short files are skipped with a warning naming the file
and the reason (each file once), and counted in :func:`skipped_files`. A
skipped clean file is replaced by the next usable one of the permutation, a
skipped noise or RIR file by the next usable index. Input with no usable file
is a ``ValueError`` naming the input when the dataset is built.
"""

import importlib

from keras_dccrn.data.config import MixtureConfig
from keras_dccrn.data.corpus import AudioCorpus
from keras_dccrn.data.discovery import find_audio, inspect_file
from keras_dccrn.data.files import (
    AUDIO_EXTENSIONS,
    AUDIO_FORMATS,
    audio_files,
    is_audio_name,
    readable_audio_extensions,
)
from keras_dccrn.data.manifests import MANIFEST_EXTENSIONS, read_manifest, write_manifest
from keras_dccrn.data.mixing import mix, prepare_rir
from keras_dccrn.data.provenance import (
    DataDescription,
    Source,
    describe_sources,
    find_data_manifest,
    is_copyleft,
    is_non_commercial,
)
from keras_dccrn.data.skipped import record_skipped, reset_skipped_files, skipped_count, skipped_files
from keras_dccrn.data.synth import MixtureSynthesizer
from keras_dccrn.data.writers import PAIRS_CSV_FIELDS, write_pairs

# Names of the TensorFlow module, imported when one of them is first used (the rest of the package
# is NumPy only).
_PIPELINE = ("check_batch", "example_indices", "synthesized", "training_dataset", "validation_dataset")


def __getattr__(name):
    if name in _PIPELINE:
        value = getattr(importlib.import_module("keras_dccrn.data.pipeline"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_dccrn.data' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PIPELINE))


__all__ = [
    "AUDIO_EXTENSIONS",
    "AUDIO_FORMATS",
    "MANIFEST_EXTENSIONS",
    "PAIRS_CSV_FIELDS",
    "AudioCorpus",
    "DataDescription",
    "MixtureConfig",
    "MixtureSynthesizer",
    "Source",
    "audio_files",
    "check_batch",
    "describe_sources",
    "example_indices",
    "find_audio",
    "find_data_manifest",
    "inspect_file",
    "is_audio_name",
    "is_copyleft",
    "is_non_commercial",
    "mix",
    "prepare_rir",
    "read_manifest",
    "readable_audio_extensions",
    "record_skipped",
    "reset_skipped_files",
    "skipped_count",
    "skipped_files",
    "synthesized",
    "training_dataset",
    "validation_dataset",
    "write_manifest",
    "write_pairs",
]
