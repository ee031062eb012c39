"""Resumable runs: the output is encoded chunk by chunk into a work folder with a journal.

Each chunk of :class:`~vidcolor.run.pipeline.ChunkPlan` becomes one segment file, encoded under a
staged name, flushed to disk, described by a sidecar (``chunk-00000000.mkv.json``: frame range,
frame count, SHA-256 of the segment, run signature), renamed to its own name and then recorded in
``journal.json``; sidecar and journal are written atomically (:mod:`vidcolor.io.durable`). A rerun with the same
signature keeps every chunk whose file still matches its SHA-256 and restarts at the first missing
one, warm-up included, so the frames are exactly those of an uninterrupted resumable run, even
after ``kill -9``. At the end the segments are joined packet for packet, audio/subtitles are
copied from the input, and the result is renamed into place.

**A damaged or missing journal** loses nothing that can be verified: the journal is rebuilt from
the sidecars whose segment still has the recorded size and SHA-256; only chunks that cannot be
verified are encoded again.

**Another signature** (:func:`run_signature`: vidcolor's version, the weights' SHA-256, every
setting that changes the frames, the device, the input's identity) never mixes chunks. What
changed is named, and the run either refuses (the default: a restorer asking to *resume* does not
expect hours of finished chunks to vanish; the message says how to finish with the old settings or
to start over) or, when the caller asks for it (``restart``: batch, whose journal already decided
that the film must be redone), starts over with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..io.durable import (PARTIAL_MARK, DamagedJournal, ForeignJournal, JournalFile, atomic_write_json, fsync_file, fsync_folder,
                          read_json_object, sha256_of_file)
from ..errors import InputError, OutputError
from .results import FrameResult

logger = logging.getLogger(__name__)

JOURNAL = "journal.json"
JOURNAL_VERSION = 2
#: A chunk's sidecar is its segment's name plus this.
SIDECAR = ".json"
CHUNK_PREFIX = "chunk-"
#: A segment is encoded under this prefix and takes its own name only once its sidecar exists, so
#: every ``chunk-*`` file a kill leaves behind can be verified.
STAGED_PREFIX = ".staged-"


@dataclass(frozen=True)
class RunSignature:
    """Everything that changes the output's frames, as named parts (plain JSON data) and their digest."""

    parts: dict[str, Any]
    digest: str

    def changes_from(self, previous: dict[str, Any] | None) -> list[str]:
        """The parts that differ from ``previous``, as a user names them (``weights.default.pt``,
        ``working size (--size) 216x160 -> 272x200``, ...)."""
        if not isinstance(previous, dict):
            return ["an unknown setting (the earlier run's record is unreadable)"]
        return _differences(previous, self.parts) or ["an unknown setting"]


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "", depth: int = 2) -> list[str]:
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        both_tables = isinstance(a, dict) and isinstance(b, dict)
        if prefix + key in _USER_TERMS and not both_tables:
            names.append(_in_user_terms(prefix + key, a, b))
        elif depth > 1 and both_tables:
            names += _differences(a, b, f"{prefix}{key}.", depth - 1) or [prefix + key]
        elif _short(a) and _short(b):
            names.append(f"{prefix}{key} (was {a}, now {b})")  # tells the user what to give to finish the run
        else:
            names.append(prefix + key)
    return names


def _size(value: object) -> str | None:
    return f"{value[0]}x{value[1]}" if isinstance(value, list) and len(value) == 2 else None


def _chunk_length(value: object) -> str | None:
    """``[length, warmup]``: the length, which --chunk-length sets (0: one chunk per shot)."""
    return str(value[0]) if isinstance(value, list) and len(value) == 2 else None


def _model_name(value: object) -> str | None:
    if value is None:
        return "none"
    named = value.get("model") if isinstance(value, dict) else value
    return str(named) if _short(named) else None


def _devices(value: object) -> str | None:
    return ", ".join(map(str, value)) if isinstance(value, list) and all(_short(v) for v in value) else None


#: Signature parts whose key means nothing to a user: what they are (with the option that sets
#: them) and how to show their value, or None when it would not help (a digest, a long list).
#: Other parts keep their key, which already reads as a setting (``vidcolor``, ``output.crf``).
_USER_TERMS: dict[str, tuple[str, Callable[[object], str | None]]] = {
    "work": ("working size (--size)", _size),
    "plan": ("chunk length (--chunk-length)", _chunk_length),
    "model.model": ("model (--model)", _model_name),
    "auto": ("automatic model (--auto-model)", _model_name),
    "auto.model": ("automatic model (--auto-model)", _model_name),
    "runtime.devices": ("device (--device)", _devices),
    "keyframes": ("references (--ref, or the preset's shots)", lambda value: None),
    "cuts": ("cuts (the preset's shots, or scene detection)", lambda value: None),
    "rules": ("vidcolor's colouring rules (another vidcolor made the earlier run)", lambda value: None),
}


def _in_user_terms(key: str, old: object, new: object) -> str:
    """``working size (--size) 216x160 -> 272x200``: the setting and, when they are short, both values."""
    label, show = _USER_TERMS[key]
    before, after = show(old), show(new)
    if before is None or after is None or before == after:  # e.g. only the warm-up of the chunk plan changed
        return label
    return f"{label} {before} -> {after}"


def _short(value: object) -> bool:
    """A value worth quoting in a refusal: a number, a flag or a short name, not a digest or a list."""
    return value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 16)


def run_signature(**parts: object) -> RunSignature:
    """The signature of a run from its named parts (normalised through JSON, so a tuple and a
    list, or a reloaded journal and a live run, compare equal)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return RunSignature(json.loads(text), hashlib.sha256(text.encode()).hexdigest())


def input_identity(path: str, frame_files: Sequence[str] = ()) -> dict[str, object]:
    """Identity of an input without reading it: size and modification time (ns) of the file, or of
    every frame of an image sequence (digested: a frame edited in place changes it, the folder's
    own mtime does not matter)."""
    if not frame_files:
        stat = os.stat(path)
        return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    digest = hashlib.sha256()
    total = 0
    for name in frame_files:
        stat = os.stat(name)
        total += stat.st_size
        digest.update(f"{os.path.basename(name)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"path": os.path.abspath(path), "frames": len(frame_files), "size": total, "files": digest.hexdigest()}


@dataclass(frozen=True)
class ChunkRecord:
    """One finished segment: frames ``start`` to ``end`` (exclusive), ``last`` when the input's
    stream ended with it (the decoded end of the film, whatever its header claimed)."""

    start: int
    end: int
    frames: int
    file: str
    size: int
    sha256: str
    last: bool = False

    @classmethod
    def from_json(cls, data: object) -> ChunkRecord | None:
        if not isinstance(data, dict):
            return None
        try:
            record = cls(int(data["start"]), int(data["end"]), int(data["frames"]), str(data["file"]), int(data["size"]),
                         str(data["sha256"]), bool(data.get("last", False)))
        except (KeyError, TypeError, ValueError):
            return None
        safe = os.path.basename(record.file) == record.file and record.file.startswith(CHUNK_PREFIX)
        return record if safe and 0 <= record.start < record.end else None


def segment_name(start: int, extension: str) -> str:
    """The segment file of the chunk starting at frame ``start``."""
    return f"{CHUNK_PREFIX}{start:08d}{extension}"


def staged_name(start: int, extension: str) -> str:
    """The name the chunk starting at ``start`` is encoded under, until :meth:`Journal.record`."""
    return STAGED_PREFIX + segment_name(start, extension)


@dataclass
class Journal:
    """Finished chunks of one output, keyed by their first frame (see the module docstring)."""

    folder: Path
    signature: RunSignature
    chunks: dict[int, ChunkRecord] = field(default_factory=dict)

    @classmethod
    def open(cls, output_path: str, signature: RunSignature, *, restart: bool = False) -> Journal:
        """The journal beside ``output_path``: its verified chunks, or a new one. Work from other
        settings raises :class:`OutputError` naming what changed, or is deleted when ``restart``."""
        try:
            return cls._open(output_path, signature, restart)
        except (InputError, OutputError):  # already the message and the fix (OutputError is an OSError too)
            raise
        except OSError as exc:
            raise OutputError(f"cannot use the resume work folder {str(work_folder(output_path))!r} "
                              f"({exc.strerror or exc}): make it readable and writable, or delete it to start over") from exc

    @classmethod
    def _open(cls, output_path: str, signature: RunSignature, restart: bool) -> Journal:
        folder = work_folder(output_path)
        if not folder.is_dir():
            return cls._new(folder, signature)
        for pattern in (f".*{PARTIAL_MARK}*", f"{STAGED_PREFIX}*"):  # writes cut short by a kill
            for stray in folder.glob(pattern):
                stray.unlink(missing_ok=True)
        book = JournalFile(folder / JOURNAL, JOURNAL_VERSION)
        try:
            data, damage = book.load(), None
        except ForeignJournal as exc:
            _refuse_or_clear(folder, output_path, f"vidcolor ({exc})", restart)
            return cls._new(folder, signature)
        except DamagedJournal as exc:
            data, damage = None, str(exc)
        candidates: list[tuple[ChunkRecord, str, dict[str, Any] | None]] = []
        if data is not None:
            parts = data.get("parts") if isinstance(data.get("parts"), dict) else None
            if data.get("signature") != signature.digest:
                _refuse_or_clear(folder, output_path, signature.changes_from(parts), restart)
                return cls._new(folder, signature)
            for value in (data.get("chunks") or {}).values():
                record = ChunkRecord.from_json(value)
                if record is not None:
                    candidates.append((record, signature.digest, parts))
        for sidecar in sorted(folder.glob(f"{CHUNK_PREFIX}*{SIDECAR}")):
            try:
                value = read_json_object(sidecar)
            except DamagedJournal:
                continue  # unreadable: its chunk cannot be verified
            record = ChunkRecord.from_json(value)
            if record is not None and value is not None:
                parts = value.get("parts") if isinstance(value.get("parts"), dict) else None
                candidates.append((record, str(value.get("signature")), parts))
        foreign = [(record, parts) for record, digest, parts in candidates if digest != signature.digest]
        if foreign:
            _refuse_or_clear(folder, output_path, signature.changes_from(foreign[0][1]), restart)
            return cls._new(folder, signature)
        journal = cls(folder, signature, _verified(folder, [record for record, _, _ in candidates]))
        journal._remove_unrecorded()
        if damage is not None or (data is None and journal.chunks):
            logger.warning("resume journal %s is %s: rebuilt from the chunks' sidecars, %d finished chunk(s) verified "
                           "by SHA-256 and kept", folder / JOURNAL, damage or "missing", len(journal.chunks))
        journal.save()
        if journal.chunks:
            logger.warning("resuming %s: %d chunk(s) already done", output_path, len(journal.chunks))
        return journal

    @classmethod
    def _new(cls, folder: Path, signature: RunSignature) -> Journal:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the resume work folder {str(folder)!r} ({exc.strerror}): "
                              "write the output into a folder you can write to") from exc
        journal = cls(folder, signature)
        journal.save()
        return journal

    def _remove_unrecorded(self) -> None:
        """Delete segment files and sidecars no verified chunk owns (they would be overwritten anyway)."""
        owned = {name for record in self.chunks.values() for name in (record.file, record.file + SIDECAR)}
        for path in self.folder.glob(f"{CHUNK_PREFIX}*"):
            if path.name not in owned:
                path.unlink(missing_ok=True)

    def save(self) -> None:
        """Rewrite ``journal.json`` (a failure is :meth:`JournalFile.save`'s :class:`OutputError`)."""
        JournalFile(self.folder / JOURNAL, JOURNAL_VERSION).save(
            {"signature": self.signature.digest, "parts": self.signature.parts,
             "chunks": {str(start): asdict(record) for start, record in sorted(self.chunks.items())}})

    def record(self, start: int, end: int, file: str, last: bool = False, results: Sequence[FrameResult] = ()) -> None:
        """Note a finished segment (``file``, staged by :meth:`segment_path`): flushed to disk, hashed,
        described by its sidecar (with its frames' ``results``, so that a resumed run's statistics
        still cover them), renamed to its own name, then journalled."""
        staged, name = self.folder / file, file.removeprefix(STAGED_PREFIX)
        with self._writing(staged):
            fsync_file(staged)
            record = ChunkRecord(start, end, end - start, name, staged.stat().st_size, sha256_of_file(staged), last)
            atomic_write_json(self.folder / (name + SIDECAR),
                              {**asdict(record), "signature": self.signature.digest, "parts": self.signature.parts,
                               "results": [item.to_json() for item in results]})
            if staged.name != name:
                os.replace(staged, self.folder / name)
                fsync_folder(self.folder)
        self.chunks[start] = record
        self.save()

    @contextlib.contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        """A full disk or a lost mount, said with the file and the fix (not as an internal error)."""
        try:
            yield
        except OSError as exc:
            raise OutputError(f"cannot write {str(path)!r} ({exc.strerror or exc}): free space on that disk or fix its "
                              "mount, then run the same command again; the chunks recorded so far are kept") from exc

    def finished_results(self) -> list[FrameResult]:
        """The per-frame results kept beside the finished chunks, in frame order (a chunk whose
        sidecar holds none, or not all of its frames, adds what it has)."""
        results: list[FrameResult] = []
        for record in self.chunks.values():
            try:
                data = read_json_object(self.folder / (record.file + SIDECAR)) or {}
            except DamagedJournal:
                continue
            rows = data.get("results") if data.get("signature") == self.signature.digest else None
            for row in rows if isinstance(rows, list) else []:
                item = FrameResult.from_json(row)
                if item is not None and record.start <= item.index < record.end:
                    results.append(item)
        return sorted(results, key=lambda item: item.index)

    def segment_path(self, start: int, extension: str) -> Path:
        """Where the chunk starting at ``start`` is encoded (staged: see :meth:`record`)."""
        return self.folder / staged_name(start, extension)

    @property
    def frame_count(self) -> int | None:
        """Frames of the input as decoded, once a pass has reached the end of its stream."""
        return next((record.end for record in self.chunks.values() if record.last), None)

    def missing(self) -> list[tuple[int, int | None]]:
        """What is left to encode, as (first frame, stop) runs of consecutive chunks; ``stop`` is
        the first frame of the next finished chunk, None for "to the end of the stream"."""
        runs: list[tuple[int, int | None]] = []
        position = 0
        starts = sorted(self.chunks)
        while True:
            record = self.chunks.get(position)
            if record is not None:
                if record.last:
                    return runs
                position = record.end
                continue
            later = [start for start in starts if start > position]
            runs.append((position, later[0] if later else None))
            if not later:
                return runs
            position = later[0]

    def segments(self, output_path: str) -> list[Path]:
        """The segment files from frame 0 to the end of the stream, in order."""
        if self.missing():
            raise OutputError(f"the chunks in {str(self.folder)!r} do not cover {output_path!r} from frame 0 to the end "
                              f"of the input (missing from frame {self.missing()[0][0]}): run the same command again "
                              "to encode what is missing")
        paths, position = [], 0
        while True:
            record = self.chunks[position]
            paths.append(self.folder / record.file)
            if record.last:
                return paths
            position = record.end

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _refuse_or_clear(folder: Path, output_path: str, changes: Sequence[str] | str, restart: bool) -> None:
    """Work from other settings: an :class:`OutputError` naming what changed, or deleted when ``restart``."""
    changed = changes if isinstance(changes, str) else ", ".join(changes)
    if not restart:
        raise OutputError(
            f"{str(folder)!r} holds finished chunks of {output_path!r} made with other settings ({changed} changed); "
            f"chunks of two runs are never mixed: run again with the earlier settings to finish that run, or delete "
            f"{str(folder)!r} to start over with these")
    logger.warning("%s holds chunks made with other settings (%s changed): starting %s over", folder, changed,
                   output_path)
    shutil.rmtree(folder, ignore_errors=True)


def _verified(folder: Path, records: Sequence[ChunkRecord]) -> dict[int, ChunkRecord]:
    """The records whose segment file still has its recorded size and SHA-256."""
    kept: dict[int, ChunkRecord] = {}
    checked: dict[ChunkRecord, bool] = {}
    for record in records:
        if record.start in kept or record in checked:
            continue
        path = folder / record.file
        try:
            checked[record] = path.stat().st_size == record.size and sha256_of_file(path) == record.sha256
        except OSError:
            checked[record] = False
        if checked[record]:
            kept[record.start] = record
        elif path.exists():
            logger.warning("chunk %s does not match its record (size or SHA-256 differs): frames %d-%d are "
                           "encoded again", path, record.start, record.end - 1)
    return kept


def work_folder(output_path: str) -> Path:
    folder, name = os.path.split(os.path.abspath(output_path))
    return Path(folder) / f".{name}.vidcolor-work"
