"""The library's feature cache: one ``.npz`` per library and backbone, written atomically, keyed by
each image's path relative to the library, its size and its modification time."""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.durable import atomic_file
from .features import HIST_BINS, ImageFeatures

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LibraryEntry:
    """One library image and its features, as cached."""

    relpath: str
    size: int
    mtime_ns: int
    gray: bool
    features: ImageFeatures


def default_cache_path(root: Path, backbone_name: str) -> Path:
    """``<vidcolor home>/features/<library name>-<hash of its absolute path>-<backbone>.npz``.

    Under the user cache rather than inside the library, which may be read-only or shared.
    """
    from ..weights import vidcolor_home  # noqa: PLC0415

    resolved = str(root.resolve())
    digest = hashlib.sha1(resolved.encode("utf-8")).hexdigest()[:12]
    label = "".join(c if c.isalnum() or c in "-_" else "_" for c in root.resolve().name)[:40] or "library"
    return vidcolor_home() / "features" / f"{label}-{digest}-{backbone_name}.npz"


def read_cache(path: Path, describe: dict[str, Any]) -> dict[str, LibraryEntry]:
    """The cached entries by relative path; empty when the cache is missing, unreadable or was made
    with other settings (``describe``: the backbone's :meth:`~.features.Backbone.describe`)."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("describe") != json.loads(json.dumps(describe)):
                logger.info("feature cache %s was made with other settings: recomputing", path)
                return {}
            paths, sizes, mtimes, gray = data["paths"], data["sizes"], data["mtimes"], data["gray"]
            glob, local, hist, grids, offsets = data["global"], data["local"], data["hist"], data["grids"], data["offsets"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        logger.warning("feature cache %s is unreadable (%s): recomputing it", path, exc)
        return {}
    cached: dict[str, LibraryEntry] = {}
    for i, rel in enumerate(paths.tolist()):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        feats = ImageFeatures(glob[i], local[lo:hi], hist[lo:hi], (int(grids[i, 0]), int(grids[i, 1])))
        cached[rel] = LibraryEntry(rel, int(sizes[i]), int(mtimes[i]), bool(gray[i]), feats)
    return cached


def write_cache(path: Path, entries: list[LibraryEntry], describe: dict[str, Any], library: Path) -> bool:
    """Replace the cache atomically; False (with a warning) when it cannot be written."""
    offsets = np.cumsum([0] + [e.features.local.shape[0] for e in entries]).astype(np.int64)
    channels = entries[0].features.local.shape[1] if entries else 1
    arrays = {
        "meta": np.array(json.dumps({"describe": describe, "library": str(library.resolve())})),
        "paths": np.array([e.relpath for e in entries], dtype=str),
        "sizes": np.array([e.size for e in entries], dtype=np.int64),
        "mtimes": np.array([e.mtime_ns for e in entries], dtype=np.int64),
        "gray": np.array([e.gray for e in entries], dtype=bool),
        "global": np.stack([e.features.global_ for e in entries]).astype(np.float32) if entries else np.zeros((0, 1), np.float32),
        "local": np.concatenate([e.features.local for e in entries]).astype(np.float16) if entries else np.zeros((0, channels), np.float16),
        "hist": np.concatenate([e.features.hist for e in entries]).astype(np.float16) if entries else np.zeros((0, HIST_BINS), np.float16),
        "grids": np.array([e.features.grid for e in entries], dtype=np.int64).reshape(-1, 2),
        "offsets": offsets,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "wb") as stream:
            np.savez(stream, **arrays)  # type: ignore[arg-type]
    except OSError as exc:  # the ranking still works, only the next run is slower
        logger.warning("feature cache %s cannot be written (%s): the next query recomputes the library", path, exc.strerror)
        return False
    return True
