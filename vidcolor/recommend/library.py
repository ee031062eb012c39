"""A folder of colour reference images with their ranking features (:class:`FeatureLibrary`)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..color import rgb_to_gray_lightness, shrink_short_side, to_unit_rgb
from ..errors import InputError
from ..references import read_rgb
from .cache import LibraryEntry, default_cache_path, read_cache, write_cache
from .features import Backbone, ImageFeatures

logger = logging.getLogger(__name__)

#: Library images vidcolor reads (what OpenCV decodes without extra flags).
LIBRARY_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})


@dataclass
class LibraryStats:
    """What the last :meth:`FeatureLibrary.refresh` did."""

    images: int = 0
    computed: int = 0
    reused: int = 0
    removed: int = 0
    unreadable: list[str] = field(default_factory=list)
    gray: int = 0
    cache_path: Path | None = None
    cache_written: bool = False
    seconds: float = 0.0


def library_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively, skipping hidden files and folders), sorted."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in LIBRARY_EXTENSIONS]
    return found


class FeatureLibrary:
    """A folder of colour reference images with their ranking features, cached on disk.

    The cache (one ``.npz`` per library and backbone, written atomically) records each image's
    path relative to the library, size and modification time; :meth:`refresh` reuses the
    features of unchanged files, computes new or changed ones and drops deleted ones.
    """

    def __init__(self, root: str | os.PathLike[str], backbone: Backbone, *, cache_path: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise InputError(f"reference library {str(self.root)!r} does not exist: give --library the folder holding your colour reference images")
        if not self.root.is_dir():
            raise InputError(f"reference library {str(self.root)!r} is not a folder: give --library a folder of colour images (PNG, JPEG, TIFF)")
        self.backbone = backbone
        self.cache_path = Path(cache_path) if cache_path is not None else default_cache_path(self.root, backbone.name)
        self.entries: list[LibraryEntry] = []
        self.stats = LibraryStats()
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None

    def refresh(self, on_image: Callable[[int, int], None] | None = None) -> LibraryStats:
        """Bring the features up to date with the folder; ``on_image(done, total)`` reports progress.

        Raises :class:`InputError` when the folder holds no readable colour image.
        """
        began = time.perf_counter()
        files = library_images(self.root)
        if not files:
            raise InputError(
                f"reference library {str(self.root)!r} holds no images ({', '.join(sorted(LIBRARY_EXTENSIONS))}): "
                "put colour reference images in it (subfolders count)"
            )
        cached = read_cache(self.cache_path, self.backbone.describe())
        stats = LibraryStats(images=len(files), cache_path=self.cache_path)
        entries: list[LibraryEntry] = []
        for done, path in enumerate(files, 1):
            rel = path.relative_to(self.root).as_posix()
            try:
                stat = path.stat()
            except OSError:  # deleted or a broken link since the folder was listed
                stats.unreadable.append(rel)
                continue
            old = cached.pop(rel, None)
            if old is not None and old.size == stat.st_size and old.mtime_ns == stat.st_mtime_ns:
                entries.append(old)
                stats.reused += 1
            else:
                rgb = read_rgb(path)
                if rgb is None:
                    stats.unreadable.append(rel)
                    logger.warning("library image %s cannot be read as an image: skipped", path)
                    continue
                rgb = shrink_short_side(to_unit_rgb(rgb), 2 * self.backbone.short_side)
                feats = self.backbone.features(rgb_to_gray_lightness(rgb))
                entries.append(LibraryEntry(rel, stat.st_size, stat.st_mtime_ns, _is_gray(rgb), _compact(feats)))
                stats.computed += 1
            if on_image is not None:
                on_image(done, len(files))
        stats.removed = len(cached)
        stats.gray = sum(e.gray for e in entries)
        self.entries = entries
        self._matrix = None
        self.stats = stats
        if stats.computed or stats.removed or not self.cache_path.is_file():
            stats.cache_written = write_cache(self.cache_path, entries, self.backbone.describe(), self.root)
        if not any(not e.gray for e in entries):
            raise InputError(
                f"reference library {str(self.root)!r} has no usable colour image ({len(stats.unreadable)} unreadable, "
                f"{stats.gray} grayscale): references must be colour images"
            )
        stats.seconds = time.perf_counter() - began
        return stats

    def path_of(self, index: int) -> Path:
        return self.root / self.entries[index].relpath

    def global_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(global descriptors (N, G), mask of colour images (N,)): grayscale images are never suggested."""
        if self._matrix is None:
            if not self.entries:
                raise InputError("the reference library has not been read yet: call refresh() first")
            glob = np.stack([e.features.global_ for e in self.entries]).astype(np.float32)
            self._matrix = (glob, np.array([not e.gray for e in self.entries]))
        return self._matrix


def _is_gray(rgb: np.ndarray, tolerance: float = 2.0 / 255.0) -> bool:
    """:func:`vidcolor.references.is_grayscale` without numpy's slow reductions over a length-3 axis."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return bool(np.percentile(spread, 99.5) <= tolerance)


def _compact(feats: ImageFeatures) -> ImageFeatures:
    """The cache stores local features and histograms as float16; rank fresh ones identically."""
    return ImageFeatures(feats.global_.astype(np.float32), feats.local.astype(np.float16), feats.hist.astype(np.float16), feats.grid)
