"""Resumable runs: the output is encoded chunk by chunk into a work folder with a journal.

Each chunk of :class:`~vidcolor.pipeline.ChunkPlan` becomes one segment file, renamed into place
when complete and then recorded in ``journal.json`` (rewritten atomically). A rerun with the same
settings skips recorded chunks and restarts at the first missing one, warm-up included, so the
frames are exactly those of an uninterrupted resumable run, even after ``kill -9``. At the end the
segments are joined packet for packet, audio/subtitles are copied from the input, and the result is
renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

JOURNAL = "journal.json"


@dataclass
class Journal:
    """Completed chunks of one output, keyed by their first frame."""

    folder: Path
    signature: str
    chunks: dict[int, dict[str, int | str]] = field(default_factory=dict)

    @classmethod
    def open(cls, output_path: str, signature: str) -> Journal:
        """Load the journal beside ``output_path``, or start a new one if absent or from other settings."""
        folder = work_folder(output_path)
        path = folder / JOURNAL
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if data.get("signature") == signature:
                chunks = {int(k): v for k, v in data.get("chunks", {}).items()
                          if (folder / str(v.get("file", ""))).is_file()}
                for stray in folder.glob(".*vidcolor-partial*"):  # a chunk cut short by a kill
                    stray.unlink()
                if chunks:
                    logger.warning("resuming %s: %d chunk(s) already done", output_path, len(chunks))
                return cls(folder, signature, chunks)
            logger.warning("%s holds work from a run with other settings; starting over", folder)
            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        journal = cls(folder, signature)
        journal.save()
        return journal

    def save(self) -> None:
        temp = self.folder / f".{JOURNAL}.tmp"
        temp.write_text(json.dumps({"signature": self.signature, "chunks": self.chunks}, indent=1))
        os.replace(temp, self.folder / JOURNAL)

    def record(self, start: int, end: int, file: str) -> None:
        self.chunks[start] = {"start": start, "end": end, "file": file}
        self.save()

    def segment_path(self, start: int, extension: str) -> Path:
        return self.folder / f"chunk-{start:08d}{extension}"

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def work_folder(output_path: str) -> Path:
    folder, name = os.path.split(os.path.abspath(output_path))
    return Path(folder) / f".{name}.vidcolor-work"


def run_signature(**settings: object) -> str:
    """A stable digest of everything that changes the output's frames."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_signature(path: str) -> dict[str, object]:
    """Identity of an input file (or folder) without reading it all: size and modification time."""
    stat = os.stat(path)
    return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
