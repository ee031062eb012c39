"""The atomic-write helper and the JSON journal shared by resume and batch, on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vidcolor.io.durable import DamagedJournal, JournalFile, atomic_file, atomic_write_bytes, atomic_write_json


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    atomic_write_bytes(target, b"first")
    with pytest.raises(RuntimeError), atomic_file(target, "w") as handle:
        handle.write("half of the second vers")
        raise RuntimeError("disk full")  # a failure mid-write
    assert target.read_bytes() == b"first" and sorted(os.listdir(tmp_path)) == ["notes.txt"]
    with atomic_file(target, "w") as handle:
        handle.write("second")
        assert target.read_bytes() == b"first"  # nothing visible under the name until the rename
    assert target.read_text() == "second" and sorted(os.listdir(tmp_path)) == ["notes.txt"]
    atomic_write_json(target, {"b": 1, "a": [2]})
    assert json.loads(target.read_text()) == {"a": [2], "b": 1}


def test_journal_tells_missing_from_damaged(tmp_path: Path) -> None:
    book = JournalFile(tmp_path / "journal.json", version=3)
    assert book.load() is None
    book.save({"chunks": {"0": 1}})
    assert book.load() == {"chunks": {"0": 1}}
    (tmp_path / "journal.json").write_text('{"version": 3, "chunks": {"0"')
    with pytest.raises(DamagedJournal, match="not JSON"):
        book.load()
    (tmp_path / "journal.json").write_text('{"version": 2, "chunks": {}}')
    with pytest.raises(DamagedJournal, match="journal version 2, this vidcolor writes 3"):
        book.load()
    (tmp_path / "journal.json").write_bytes(b"\xff\xfe[]")
    with pytest.raises(DamagedJournal, match="unreadable"):
        book.load()


def test_journal_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    from vidcolor.errors import OutputError

    (tmp_path / "out").write_text("a file where the folder should be")
    book = JournalFile(tmp_path / "out" / "journal.json", version=1)
    with pytest.raises(OutputError, match=r"cannot write the journal .*out/journal.json.*run the same command again"):
        book.save({"files": {}})


def test_record_files_are_read_by_one_rule(tmp_path: Path) -> None:
    """A chunk's sidecar (no version) is read as the journal is: missing is None, damage is named."""
    from vidcolor.io.durable import read_json_object

    sidecar = tmp_path / "chunk-00000000.mkv.json"
    assert read_json_object(sidecar) is None
    atomic_write_json(sidecar, {"start": 0, "end": 8})
    assert read_json_object(sidecar) == {"start": 0, "end": 8}
    for text, reason in (('[0, 8]', "not a JSON object"), ('{"start": 0,', "not JSON"), (b"\xff\x00", "unreadable")):
        sidecar.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(DamagedJournal, match=reason):
            read_json_object(sidecar)


def test_resume_journal_write_failure_is_one_message(tmp_path: Path) -> None:
    """The resume journal reports a failed write through JournalFile's message, not wrapped twice."""
    from vidcolor.errors import OutputError
    from vidcolor.run.resume import Journal, run_signature

    journal = Journal(tmp_path / "work", run_signature(model="classic"))
    (tmp_path / "work").write_text("a file where the work folder should be")
    with pytest.raises(OutputError) as caught:
        journal.save()
    message = str(caught.value)
    assert message.count("cannot write") == 1 and "journal.json" in message and "run the same command again" in message
