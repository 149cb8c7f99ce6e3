"""Project scripts (``python scripts/<name>.py``): shipping a run, the robustness audit, examples."""
