"""The training library: a run's configuration, data, loop with resume, callbacks and run directory.

Modules are imported explicitly (``from keras_dccrn.training import loop``); none reads flags. The
``dccrn-train`` and ``dccrn-distill`` apps translate their flags into these calls (``trainers/common.py``).
"""
