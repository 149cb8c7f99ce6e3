"""Writing a fixed set of synthesised pairs to disk (``dccrn-mix``): WAV files and a metadata CSV."""

import os

from keras_dccrn.audio import write_audio
from keras_dccrn.data.config import MixtureConfig
from keras_dccrn.data.manifests import write_csv
from keras_dccrn.data.synth import VALID_STREAM, MixtureSynthesizer

PAIRS_CSV_FIELDS = (
    "name",
    "seconds",
    "snr_db",
    "level_db",
    "level_dbfs",
    "clip_scale",
    "target",
    "clean_file",
    "clean_offset",
    "clean_pad",
    "noise_file",
    "noise_offset",
    "rir_file",
)


def write_pairs(
    output_dir,
    speech,
    noise,
    rir=None,
    config=None,
    num_examples=200,
    seed=0,
    cache=True,
    subtype="PCM_16",
    csv_name="mixtures.csv",
    exclude=(),
):
    """Writes a fixed set of examples to disk (the same as :func:`keras_dccrn.data.validation_dataset`).

    Layout: ``output_dir/noisy/NNNN.wav`` and ``output_dir/clean/NNNN.wav``
    (identical names) and ``output_dir/<csv_name>`` with one row per example
    (``PAIRS_CSV_FIELDS``: SNR, drawn and final level, noise file, RIR, ...).
    Every file is written atomically (temporary file, then rename), the CSV
    last. Variable-length configs write each example at its own length.

    Args:
        output_dir: destination folder (created).
        speech, noise, rir, config, seed, cache: as in :func:`keras_dccrn.data.validation_dataset`.
        num_examples: number of pairs.
        subtype: WAV subtype (``"PCM_16"``, or ``"FLOAT"`` for bit-exact).
        exclude: ``fnmatch`` patterns of files to leave out (see :func:`keras_dccrn.data.find_audio`).
        csv_name: name of the metadata CSV.

    Returns:
        The list of metadata dicts (one per example).
    """
    if int(num_examples) != num_examples or num_examples <= 0:
        raise ValueError(f"`num_examples` must be a positive integer; received {num_examples!r}.")
    config = config or MixtureConfig()
    synth = MixtureSynthesizer(
        speech, noise, rir, config, seed=seed, cache=cache, stream=VALID_STREAM, exclude=exclude
    )
    width = max(4, len(str(int(num_examples) - 1)))
    rows = []
    for i in range(int(num_examples)):
        noisy, clean, meta = synth.example(i)
        name = f"{i:0{width}d}.wav"
        write_audio(os.path.join(output_dir, "noisy", name), noisy, config.sample_rate, subtype=subtype)
        write_audio(os.path.join(output_dir, "clean", name), clean, config.sample_rate, subtype=subtype)
        meta = dict(meta, name=name)
        rows.append(meta)
    write_csv(os.path.join(output_dir, csv_name), rows, PAIRS_CSV_FIELDS)
    return rows
