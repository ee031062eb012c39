"""Files that survive a crash: atomic replacement, and the one JSON journal of resume and batch.

A file written with :func:`atomic_file` (or :func:`atomic_write_bytes` / :func:`atomic_write_text`
/ :func:`atomic_write_json`) is either its old version or its complete new one, even after
``kill -9`` or a power cut: the data go to a temporary file in the same folder (a rename across
file systems is not atomic), are flushed and fsynced, the temporary file is renamed over the target
with :func:`os.replace`, and the folder is fsynced so the rename itself is on disk.

:class:`JournalFile` keeps one JSON document that way. Reading it tells a missing journal (None)
from a damaged one (:class:`DamagedJournal`), so each owner decides what a damaged one means:
the resume journal rebuilds itself from the chunks it can verify, the batch journal asks the user.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import OutputError

#: Temporary files of an atomic write carry this in their name (a crash can leave one behind).
PARTIAL_MARK = ".vidcolor-partial"


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make the entries of ``folder`` (a rename, a new file) durable; a no-op where folders
    cannot be opened (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems refuse fsync on a folder: the rename is still atomic
        pass
    finally:
        os.close(handle)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file someone else wrote (e.g. an encoder) to disk before recording it as done."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``
    durably, on an exception it is removed and ``path`` is left as it was."""
    target = Path(path)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}{PARTIAL_MARK}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_folder(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see :func:`atomic_file`)."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically and durably (see :func:`atomic_file`)."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], data: object) -> None:
    """Replace ``path`` with ``data`` as indented, key-sorted JSON, atomically and durably."""
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def write_text_or_fail(path: str | os.PathLike[str], text: str, what: str, fix: str) -> None:
    """Atomically write a document the user asked for (its folder made if needed); a failure is an
    :class:`OutputError` naming ``what`` and the path, the system's reason and ``fix``."""
    write_bytes_or_fail(path, text.encode("utf-8"), what, fix)


def write_bytes_or_fail(path: str | os.PathLike[str], data: bytes, what: str, fix: str) -> None:
    """:func:`write_text_or_fail` for bytes (an encoded image)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    except OSError as exc:
        raise OutputError(f"{what} {os.fspath(target)!r} cannot be written ({exc.strerror}): {fix}") from exc


def write_png_or_fail(path: str | os.PathLike[str], bgr: Any, what: str = "keyframe image") -> None:
    """An 8-bit BGR image as a PNG (OpenCV's encoder, as ``cv2.imwrite`` writes it), atomically."""
    import cv2  # noqa: PLC0415 - only the keyframe writers need OpenCV here

    encoded, data = cv2.imencode(".png", bgr)
    if not encoded:
        raise OutputError(f"{what} {os.fspath(path)!r} cannot be encoded as PNG: pass an 8-bit gray or BGR image")
    write_bytes_or_fail(path, data.tobytes(), what, "choose another folder")


def sha256_of_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DamagedJournal(ValueError):
    """A journal file exists but cannot be read as the JSON object it should hold."""


class ForeignJournal(DamagedJournal):
    """A readable journal in another format version (written by another vidcolor)."""


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object a record file holds (a journal, a chunk's sidecar), None when the file does
    not exist; :class:`DamagedJournal` says why anything else cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedJournal(f"unreadable: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DamagedJournal(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DamagedJournal("not a JSON object")
    return data


class JournalFile:
    """One JSON object in one file, read whole and rewritten atomically on every change.

    ``version`` is stored with the data; a file of another version reads as damaged, so a journal
    written by an incompatible vidcolor is never half-understood.
    """

    def __init__(self, path: str | os.PathLike[str], version: int) -> None:
        self.path = Path(path)
        self.version = version

    def load(self) -> dict[str, Any] | None:
        """The stored object (without its version), None when there is no journal yet.

        Raises :class:`DamagedJournal` (the reason in its message) for anything unreadable.
        """
        data = read_json_object(self.path)
        if data is None:
            return None
        if data.get("version") != self.version:
            raise ForeignJournal(f"journal version {data.get('version')!r}, this vidcolor writes {self.version}")
        return {key: value for key, value in data.items() if key != "version"}

    def save(self, data: dict[str, Any]) -> None:
        """Replace the journal with ``data`` (atomically, durably); a full disk or a read-only
        folder is an :class:`OutputError` naming the journal, never a bare ``OSError``."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, {"version": self.version, **data})
        except OSError as exc:
            raise OutputError(f"cannot write the journal {str(self.path)!r} ({exc.strerror or exc}): free space on that "
                              "disk or make the folder writable, then run the same command again") from exc


__all__ = ["DamagedJournal", "ForeignJournal", "JournalFile", "PARTIAL_MARK", "atomic_file", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text", "fsync_file", "fsync_folder", "read_json_object", "sha256_of_file", "write_bytes_or_fail",
           "write_png_or_fail", "write_text_or_fail"]
