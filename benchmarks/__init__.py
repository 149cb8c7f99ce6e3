"""Benchmark scripts (``python benchmarks/<name>.py``) and their shared :mod:`benchmarks.harness`."""
