"""keras_dccrn.data.skipped: the skipped-file registry."""

import logging

import pytest

from keras_dccrn import data

pytestmark = pytest.mark.usefixtures("fresh_skipped")


def test_each_file_is_recorded_once_counted_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="keras_dccrn.data"):
        data.record_skipped("/a.wav", "silent")
        data.record_skipped("/b.wav", "empty")
        data.record_skipped("/a.wav", "another reason")
    assert data.skipped_files() == [("/a.wav", "silent"), ("/b.wav", "empty")]
    assert data.skipped_count() == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "keras_dccrn.data"]
    assert messages == [
        "Skipping /a.wav: silent (1 file(s) skipped so far)",
        "Skipping /b.wav: empty (2 file(s) skipped so far)",
    ]
    data.reset_skipped_files()
    assert data.skipped_files() == [] and data.skipped_count() == 0
