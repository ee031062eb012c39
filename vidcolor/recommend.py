"""Reference recommendation: which library image should colour this shot (He et al. 2018, §4).

Deep Exemplar-based Colorization ranks candidate references in two passes, both on lightness
only (the query is black-and-white, so library images are compared as they would look filmed in
black and white, :func:`vidcolor.color.rgb_to_gray_lightness`):

1. **Global ranking.** Cosine similarity between one descriptor per image keeps the top ``N``
   (200 in the paper). The paper uses VGG's fc6 after a class filter; the weights vidcolor can
   load are convolution-only, so the descriptor here is the mean- and max-pooled last conv layer
   (a common fc-free retrieval descriptor), and there is no class filter.
2. **Local re-ranking.** For every position ``p`` of the query's last-layer feature map, its
   nearest neighbour ``q`` in the candidate's map (cosine); the score is the mean over ``p`` of
   ``cos(F_T(p), F_R(q)) + β · corr(H_T(p), H_R(q))``, where ``H`` is the lightness histogram of
   the 16x16-pixel cell under a position and ``corr`` the correlation coefficient, β = 0.25.
   (The paper sums over ``p``; the mean ranks identically and stays readable.)

Features come from the best backbone installed: the ImageNet VGG-19 of the Deep Exemplar weights
(``vidcolor models import deepex ...``; relu5_4, as the paper) or else the shipped default model's
own lightness encoder (:mod:`vidcolor.models.vcnet`), whose matching keys were trained to find
correspondences between gray frames and references.

(With VCNet's 1/8-scale maps the 16x16 cells overlap by half.) A video is queried shot by shot
(shots from a preset or from scene detection) with a few frames spread over each shot, scores
averaged, so the winner fits the whole shot; the paper queries single images.

Library features are cached per library and backbone (see :class:`FeatureLibrary`), keyed by each
file's relative path, size and modification time, so only new or changed images are computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .color import luma_to_lightness, rgb_to_gray_lightness, shrink_short_side, to_unit_rgb
from .errors import InputError, OutputError, ReferenceImageError
from .io.durable import write_text_or_fail
from .references import read_rgb

if TYPE_CHECKING:
    from .io.reader import VideoInfo

logger = logging.getLogger(__name__)

#: Weight of the luminance-histogram term against the semantic term (the paper's β).
BETA = 0.25
#: Candidates kept by the global ranking for the local re-ranking (the paper's N).
DEFAULT_PRESELECT = 200
#: Side of the square lightness cell under each feature position, in working pixels (the paper's 16).
CELL = 16
#: Histogram bins over lightness 0..100 (the paper does not say; 16 keeps 256-pixel cells well filled).
HIST_BINS = 16
#: Frames per shot a video is queried with (spread evenly; the scores are averaged over them).
DEFAULT_FRAMES_PER_SHOT = 3
#: Library images vidcolor reads (what OpenCV decodes without extra flags).
LIBRARY_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
#: Bump when the cached arrays change meaning; older caches are then recomputed.
CACHE_VERSION = 2  # 2: library JPEGs are read upright (EXIF orientation)
#: Images whose aspect ratio exceeds this are centre-cropped to it (panoramas would swamp the grid).
MAX_ASPECT = 2.5


# --------------------------------------------------------------------------------------------
# Features of one image
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFeatures:
    """What ranking needs of one image (all rows unit length, so dot products are cosines).

    ``local`` holds one row per feature-map position and ``hist`` the centred, unit-length
    lightness histogram of the cell under it, so a dot product of two rows is their correlation
    coefficient.
    """

    global_: np.ndarray  # (G,) float32
    local: np.ndarray  # (P, C) float16/32
    hist: np.ndarray  # (P, HIST_BINS) float16/32
    grid: tuple[int, int]


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1, eps=1e-6)


def cell_histograms(lightness: np.ndarray, stride: int, cell: int = CELL, bins: int = HIST_BINS) -> np.ndarray:
    """Lightness histogram of the ``cell``x``cell`` window centred on every ``stride``-th pixel.

    Returns ``(H/stride * W/stride, bins)`` rows, each centred and unit-length (so the dot product
    of two rows is Pearson's correlation of the histograms, as OpenCV's ``HISTCMP_CORREL``).
    Values are split between the two nearest bins (linear binning), which keeps small cells from
    flipping bins on a one-level change.
    """
    height, width = lightness.shape
    position = np.clip(lightness.astype(np.float32), 0.0, 100.0) / 100.0 * (bins - 1)
    low = np.floor(position).astype(np.int64)
    frac = torch.from_numpy((position - low).astype(np.float32))
    low_t = torch.from_numpy(np.minimum(low, bins - 1))
    high_t = torch.from_numpy(np.minimum(low + 1, bins - 1))
    onehot = torch.zeros(bins, height, width)
    onehot.scatter_add_(0, low_t[None], (1.0 - frac)[None])
    onehot.scatter_add_(0, high_t[None], frac[None])
    pad = max(0, (cell - stride) // 2)
    counts = F.avg_pool2d(onehot[None], kernel_size=cell, stride=stride, padding=pad, count_include_pad=False)[0]
    counts = counts[:, : height // stride, : width // stride]
    rows = counts.flatten(1).t()
    rows = rows - rows.mean(dim=1, keepdim=True)
    return _unit_rows(rows).numpy()


def working_lightness(lightness: np.ndarray, short_side: int, multiple: int) -> np.ndarray:
    """Lightness resized so its short side is ``short_side`` and both sides are multiples of
    ``multiple`` (centre-cropping panoramas to :data:`MAX_ASPECT`)."""
    height, width = lightness.shape
    if max(height, width) > MAX_ASPECT * min(height, width):
        if width > height:
            keep = int(height * MAX_ASPECT)
            lightness = lightness[:, (width - keep) // 2 : (width - keep) // 2 + keep]
        else:
            keep = int(width * MAX_ASPECT)
            lightness = lightness[(height - keep) // 2 : (height - keep) // 2 + keep]
        height, width = lightness.shape
    scale = short_side / min(height, width)
    new_w = max(multiple, int(round(width * scale / multiple)) * multiple)
    new_h = max(multiple, int(round(height * scale / multiple)) * multiple)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(lightness, dtype=np.float32), (new_w, new_h), interpolation=interp)


class Backbone(ABC):
    """A lightness → (global descriptor, local feature map) network for ranking.

    ``calls`` counts images featurized, so callers (and tests) can see what the cache saved.
    """

    #: Short name; part of the cache file name.
    name: str = ""
    #: Working short side in pixels (the paper scales to 256).
    short_side: int = 256
    #: Pixels per local-feature position.
    stride: int = 16

    def __init__(self) -> None:
        self.calls = 0

    @abstractmethod
    def _maps(self, lightness: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Working-size lightness → (global (G,), local (C, h, w)) where h, w = H/stride, W/stride."""

    def describe(self) -> dict[str, object]:
        """Everything the features depend on; a cache made with other settings is not reused."""
        return {"backbone": self.name, "short_side": self.short_side, "stride": self.stride, "cell": CELL,
                "bins": HIST_BINS, "version": CACHE_VERSION}

    @torch.inference_mode()
    def features(self, lightness: np.ndarray) -> ImageFeatures:
        """Features of one image given as gray lightness (Lab L of its luma, 0..100)."""
        self.calls += 1
        small = working_lightness(lightness, self.short_side, self.stride)
        global_, local = self._maps(small)
        h, w = local.shape[1:]
        rows = _unit_rows(local.flatten(1).t().float())
        hist = cell_histograms(small, self.stride)
        if hist.shape[0] != rows.shape[0]:  # a map shorter than H/stride (e.g. reflection padding)
            raise RuntimeError(f"{self.name}: {rows.shape[0]} feature positions but {hist.shape[0]} cells")
        return ImageFeatures(_unit_rows(global_.float()).numpy(), rows.numpy(), hist, (int(h), int(w)))


class VCNetBackbone(Backbone):
    """The shipped default model's lightness encoder (no download, always available).

    Local features are its matching keys (1/8 scale, centred per image and unit length: what the
    model's attention compares). The global descriptor concatenates the mean- and max-pooled
    1/8-scale encoder features, each L2-normalised.
    """

    name = "vcnet"
    short_side = 160
    stride = 8

    def __init__(self, device: str = "cpu", weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        from .colorizers.default import default_weights_path, load_vcnet  # noqa: PLC0415 - heavy, on demand

        self.weights = Path(weights) if weights is not None else default_weights_path()
        self.model, _ = load_vcnet(self.weights, device)
        self.device = torch.device(device)

    def describe(self) -> dict[str, object]:
        stat = self.weights.stat()
        return {**super().describe(), "weights": [self.weights.name, stat.st_size]}

    def _maps(self, lightness: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        l_norm = torch.from_numpy(lightness).to(self.device)[None, None] / 50.0 - 1.0
        feats = self.model.encode(l_norm)
        f8 = feats.f8[0].flatten(1)
        global_ = torch.cat([_unit_rows(f8.mean(dim=1)), _unit_rows(f8.amax(dim=1))])
        h, w = feats.f8.shape[2:]
        return global_.cpu(), feats.key[0].reshape(-1, h, w).cpu()


class VGGBackbone(Backbone):
    """The ImageNet VGG-19 of the Deep Exemplar weights (``vgg19_conv.pth``), relu5_4 as the paper.

    The frame goes in as DeepEx feeds gray frames (lightness / 100 on all three channels). The
    512 channels of relu5_4 are cut to :attr:`local_channels` by a fixed, seeded random orthogonal
    projection: it keeps cosines nearly unchanged (Johnson-Lindenstrauss) like the paper's PCA,
    but needs no training set and does not depend on the library, so caches stay valid.
    """

    name = "vgg19"
    short_side = 224
    stride = 16
    local_channels = 128

    def __init__(self, device: str = "cpu", state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        from .models.deepex import VGG19Features, strip_module_prefix  # noqa: PLC0415

        if state_dict is None:
            from . import weights  # noqa: PLC0415

            state_dict = weights.load_state_dict("deepex", "vggnet")
            self.source = str(weights.find_weights("deepex", "vgg19_conv.pth"))
        else:
            self.source = "given state dict"
        self.net = VGG19Features()
        self.net.load_state_dict(strip_module_prefix(state_dict), strict=True)
        self.device = torch.device(device)
        self.net.eval().to(self.device).requires_grad_(False)
        generator = torch.Generator().manual_seed(20180801)
        q, _ = torch.linalg.qr(torch.randn(512, self.local_channels, generator=generator))
        self.projection = q.to(self.device)
        self._fingerprint = float(sum(p.double().sum() for p in self.net.parameters()))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "local_channels": self.local_channels, "weights_sum": round(self._fingerprint, 6)}

    def _relu5_4(self, rgb: torch.Tensor) -> torch.Tensor:
        from .models.deepex import VGG_MEAN_BGR  # noqa: PLC0415

        mean = torch.tensor(VGG_MEAN_BGR, device=rgb.device).view(1, 3, 1, 1)
        x = (rgb.flip(1) - mean) * 255.0
        block = "1"
        for name, conv in self.net.named_children():  # conv1_1 ... conv5_4, in order
            if name[4] != block:
                x = F.max_pool2d(x, kernel_size=2, stride=2)
                block = name[4]
            x = F.relu(conv(x))
        return x

    def _maps(self, lightness: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        gray = torch.from_numpy(lightness).to(self.device)[None, None] / 100.0
        fmap = self._relu5_4(gray.expand(-1, 3, -1, -1))[0]  # (512, H/16, W/16)
        flat = fmap.flatten(1)
        global_ = torch.cat([_unit_rows(flat.mean(dim=1)), _unit_rows(flat.amax(dim=1))])
        local = (self.projection.t() @ flat).reshape(self.local_channels, *fmap.shape[1:])
        return global_.cpu(), local.cpu()


def deepex_vgg_installed() -> bool:
    """True when the Deep Exemplar VGG-19 (``vgg19_conv.pth``) has been imported."""
    from . import weights  # noqa: PLC0415

    return bool(weights.installed_files("deepex").get("vgg19_conv.pth"))


def best_backbone(device: str = "cpu", name: str | None = None) -> Backbone:
    """The backbone to rank with: ``"vgg19"`` when its weights are imported, else ``"vcnet"``.

    ``name`` forces one; asking for ``vgg19`` without its weights raises the error naming the
    import command.
    """
    if name is None:
        name = "vgg19" if deepex_vgg_installed() else "vcnet"
    if name == "vgg19":
        return VGGBackbone(device)
    if name == "vcnet":
        return VCNetBackbone(device)
    raise InputError(f"unknown feature backbone {name!r}: use vgg19 (needs `vidcolor models import deepex PATH`) or vcnet")


# --------------------------------------------------------------------------------------------
# The library and its cache
# --------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _Entry:
    relpath: str
    size: int
    mtime_ns: int
    gray: bool
    features: ImageFeatures


def library_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively, skipping hidden files and folders), sorted."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in LIBRARY_EXTENSIONS]
    return found


def default_cache_path(root: Path, backbone_name: str) -> Path:
    """``<vidcolor home>/features/<library name>-<hash of its absolute path>-<backbone>.npz``.

    Under the user cache rather than inside the library, which may be read-only or shared.
    """
    from .weights import vidcolor_home  # noqa: PLC0415

    resolved = str(root.resolve())
    digest = hashlib.sha1(resolved.encode("utf-8")).hexdigest()[:12]
    label = "".join(c if c.isalnum() or c in "-_" else "_" for c in root.resolve().name)[:40] or "library"
    return vidcolor_home() / "features" / f"{label}-{digest}-{backbone_name}.npz"


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
        self.entries: list[_Entry] = []
        self.stats = LibraryStats()
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None

    # -- cache ------------------------------------------------------------------------------

    def _load_cache(self) -> dict[str, _Entry]:
        path = self.cache_path
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("describe") != json.loads(json.dumps(self.backbone.describe())):
                    logger.info("feature cache %s was made with other settings: recomputing", path)
                    return {}
                paths, sizes, mtimes, gray = data["paths"], data["sizes"], data["mtimes"], data["gray"]
                glob, local, hist, grids, offsets = data["global"], data["local"], data["hist"], data["grids"], data["offsets"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("feature cache %s is unreadable (%s): recomputing it", path, exc)
            return {}
        cached: dict[str, _Entry] = {}
        for i, rel in enumerate(paths.tolist()):
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            feats = ImageFeatures(glob[i], local[lo:hi], hist[lo:hi], (int(grids[i, 0]), int(grids[i, 1])))
            cached[rel] = _Entry(rel, int(sizes[i]), int(mtimes[i]), bool(gray[i]), feats)
        return cached

    def _write_cache(self) -> None:
        entries = self.entries
        offsets = np.cumsum([0] + [e.features.local.shape[0] for e in entries]).astype(np.int64)
        channels = entries[0].features.local.shape[1] if entries else 1
        arrays = {
            "meta": np.array(json.dumps({"describe": self.backbone.describe(), "library": str(self.root.resolve())})),
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
        folder = self.cache_path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=f".{self.cache_path.stem}.", suffix=".tmp.npz", dir=folder)
            try:
                with os.fdopen(handle, "wb") as stream:
                    np.savez(stream, **arrays)  # type: ignore[arg-type]
                os.replace(temp, self.cache_path)
            finally:
                if os.path.exists(temp):
                    os.unlink(temp)
        except OSError as exc:  # the ranking still works, only the next run is slower
            logger.warning("feature cache %s cannot be written (%s): the next query recomputes the library", self.cache_path, exc.strerror)
            return
        self.stats.cache_written = True

    # -- refresh ----------------------------------------------------------------------------

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
        cached = self._load_cache()
        stats = LibraryStats(images=len(files), cache_path=self.cache_path)
        entries: list[_Entry] = []
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
                entries.append(_Entry(rel, stat.st_size, stat.st_mtime_ns, _is_gray(rgb), _compact(feats)))
                stats.computed += 1
            if on_image is not None:
                on_image(done, len(files))
        stats.removed = len(cached)
        stats.gray = sum(e.gray for e in entries)
        self.entries = entries
        self._matrix = None
        self.stats = stats
        if stats.computed or stats.removed or not self.cache_path.is_file():
            self._write_cache()
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


# --------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """One recommended reference: ``score = semantic + β · luminance`` (local re-ranking)."""

    rank: int
    path: Path
    score: float
    semantic: float
    luminance: float
    global_score: float


@torch.inference_mode()
def local_score(query: ImageFeatures, candidate: ImageFeatures, beta: float = BETA) -> tuple[float, float, float]:
    """(score, semantic, luminance): means over query positions of the nearest neighbour's cosine
    and of the histogram correlation of the matched cells."""
    q = torch.from_numpy(np.asarray(query.local, dtype=np.float32))
    r = torch.from_numpy(np.asarray(candidate.local, dtype=np.float32))
    sims = q @ r.t()
    best, nearest = sims.max(dim=1)
    hq = torch.from_numpy(np.asarray(query.hist, dtype=np.float32))
    hr = torch.from_numpy(np.asarray(candidate.hist, dtype=np.float32))[nearest]
    semantic = float(best.mean())
    luminance = float((hq * hr).sum(dim=1).mean())
    return semantic + beta * luminance, semantic, luminance


def rank(library: FeatureLibrary, query: ImageFeatures | Sequence[ImageFeatures], *, top: int = 5,
         preselect: int = DEFAULT_PRESELECT, beta: float = BETA) -> list[Suggestion]:
    """The ``top`` library images for a query: global cosine keeps ``preselect``, the local score orders them.

    ``query`` may be several frames of one shot: every score (and its parts) is then the mean
    over the frames, so the winner fits the shot as a whole rather than one moment of it.
    """
    if top < 1:
        raise InputError(f"--top {top}: ask for at least 1 suggestion")
    frames = [query] if isinstance(query, ImageFeatures) else list(query)
    if not frames:
        raise InputError("no query frame to rank the library for")
    glob, usable = library.global_matrix()
    similarity = np.mean([glob @ np.asarray(f.global_, dtype=np.float32) for f in frames], axis=0)
    scores = np.where(usable, similarity, -np.inf)
    keep = min(max(preselect, top), int(np.isfinite(scores).sum()))
    order = np.argsort(-scores, kind="stable")[:keep]
    scored = []
    for index in order:
        candidate = library.entries[int(index)].features
        total, semantic, luminance = np.mean([local_score(f, candidate, beta) for f in frames], axis=0)
        scored.append((float(total), float(semantic), float(luminance), float(scores[index]), int(index)))
    scored.sort(key=lambda s: -s[0])
    return [Suggestion(n, library.path_of(i), t, s, lum, g) for n, (t, s, lum, g, i) in enumerate(scored[:top], 1)]


# --------------------------------------------------------------------------------------------
# Queries: an image, or the shots of a video
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShotQuery:
    """One shot of the input: frames ``start``..``end`` (inclusive), queried with ``frames``
    (their lightness in ``lightness``, same order)."""

    index: int
    start: int
    end: int
    frames: tuple[int, ...]
    lightness: tuple[np.ndarray, ...] = field(repr=False)


@dataclass(frozen=True)
class ShotSuggestions:
    """A shot and its ranked references."""

    shot: ShotQuery
    suggestions: tuple[Suggestion, ...]


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """A single still image (queried as one shot) rather than a video or a frame folder."""
    return Path(path).is_file() and Path(path).suffix.lower() in LIBRARY_EXTENSIONS


def image_query(path: str | os.PathLike[str]) -> ShotQuery:
    """A still image as a one-shot query, converted to the lightness a black-and-white frame shows."""
    rgb = read_rgb(path)
    if rgb is None:
        raise ReferenceImageError(f"query image {os.fspath(path)!r} cannot be read as an image: use a PNG, TIFF or JPEG file")
    return ShotQuery(1, 0, 0, (0,), (rgb_to_gray_lightness(to_unit_rgb(rgb)),))


def shot_bounds(input_path: str | os.PathLike[str], *, shots_preset: str | os.PathLike[str] | None = None,
                on_frame: Callable[[int], None] | None = None) -> tuple[list[tuple[int, int]], VideoInfo]:
    """(start, end) of every shot of a video, from a preset's shot starts or from scene detection.

    Returns the bounds and the :class:`vidcolor.io.reader.VideoInfo` of the input.
    """
    from .io.reader import count_frames, probe  # noqa: PLC0415

    info = probe(input_path)
    frame_count = info.frame_count or count_frames(info)
    if frame_count < 1:
        raise InputError(f"input {os.fspath(input_path)!r} has no decodable frame: nothing to recommend references for")
    if shots_preset is not None:
        from .schedule.presets import load_preset  # noqa: PLC0415

        preset = load_preset(shots_preset, fps=info.fps, frame_count=frame_count)
        shots = preset.resolve(info.fps, frame_count)
        starts = [int(s.start) for s in shots]  # type: ignore[arg-type]
        ends = [int(s.end) if s.end is not None else (starts[i + 1] - 1 if i + 1 < len(starts) else frame_count - 1)  # type: ignore[arg-type]
                for i, s in enumerate(shots)]
        if starts and starts[0] > 0:  # frames before the first shot take its reference
            starts[0] = 0
        return list(zip(starts, ends)), info
    from .schedule.scenes import detect_cuts, shots_from_cuts  # noqa: PLC0415

    cuts = detect_cuts(input_path, info=info, on_frame=on_frame)
    return [(s.start, s.end) for s in shots_from_cuts(cuts, frame_count)], info


def query_frames(start: int, end: int, count: int) -> tuple[int, ...]:
    """``count`` frames spread evenly inside ``start..end`` (one: the middle; three: the quartiles)."""
    return tuple(sorted({start + (end - start) * k // (count + 1) for k in range(1, count + 1)}))


def video_queries(input_path: str | os.PathLike[str], *, shots_preset: str | os.PathLike[str] | None = None,
                  frames_per_shot: int = DEFAULT_FRAMES_PER_SHOT,
                  on_frame: Callable[[int], None] | None = None) -> list[ShotQuery]:
    """One query per shot, from ``frames_per_shot`` frames spread over it (as lightness).

    A shot that pans or changes is better described by several frames than by one; with 1, the
    middle frame is used. When a container overstates its frame count, frames beyond its real end
    are dropped, and a shot left with none is queried with its last decoded frame.
    """
    from .io.reader import VideoReader  # noqa: PLC0415

    if frames_per_shot < 1:
        raise InputError(f"frames per shot {frames_per_shot}: query each shot with at least 1 frame")
    bounds, info = shot_bounds(input_path, shots_preset=shots_preset, on_frame=on_frame)
    wanted = [query_frames(start, end, frames_per_shot) for start, end in bounds]
    found: dict[int, dict[int, np.ndarray]] = {n: {} for n in range(len(bounds))}
    fallback: dict[int, tuple[int, np.ndarray]] = {}
    last_wanted = wanted[-1][-1]
    shot = 0
    with VideoReader(info, start=bounds[0][0]) as reader:
        for frame in reader:
            while shot < len(bounds) and frame.index > bounds[shot][1]:
                shot += 1
            if shot >= len(bounds):
                break
            if frame.index < bounds[shot][0]:
                continue
            lightness = luma_to_lightness(frame.luma, info.luma_format)
            fallback[shot] = (frame.index, lightness)
            if frame.index in wanted[shot]:
                found[shot][frame.index] = lightness
            if shot == len(bounds) - 1 and frame.index >= last_wanted:
                break
    queries = []
    for n, (start, end) in enumerate(bounds):
        frames = found[n]
        if not frames and n in fallback:
            frames = dict([fallback[n]])
        if not frames:
            logger.warning("shot %d (frames %d-%d) has no decodable frame: skipped", n + 1, start, end)
            continue
        order = sorted(frames)
        queries.append(ShotQuery(n + 1, start, end, tuple(order), tuple(frames[i] for i in order)))
    if not queries:
        raise InputError(f"input {os.fspath(input_path)!r}: no frame of any shot could be decoded")
    return queries


def input_queries(input_path: str | os.PathLike[str], *, shots_preset: str | os.PathLike[str] | None = None,
                  frames_per_shot: int = DEFAULT_FRAMES_PER_SHOT,
                  on_frame: Callable[[int], None] | None = None) -> list[ShotQuery]:
    """Queries for an image (one shot) or a video / frame folder (one per shot)."""
    text = os.fspath(input_path)
    if not os.path.exists(text) and "%" not in text:
        raise InputError(f"input {text!r} does not exist: give a black-and-white video, frame folder or image")
    if is_image_file(text):
        if shots_preset is not None:
            raise InputError(f"--shots needs a video, but {text!r} is a single image: drop --shots")
        return [image_query(text)]
    return video_queries(text, shots_preset=shots_preset, frames_per_shot=frames_per_shot, on_frame=on_frame)


def suggest(library: FeatureLibrary, queries: Sequence[ShotQuery], *, top: int = 5, preselect: int = DEFAULT_PRESELECT,
            beta: float = BETA) -> list[ShotSuggestions]:
    """Rank the (refreshed) library for every shot."""
    results = []
    for q in queries:
        frames = [library.backbone.features(lightness) for lightness in q.lightness]
        results.append(ShotSuggestions(q, tuple(rank(library, frames, top=top, preselect=preselect, beta=beta))))
    return results


# --------------------------------------------------------------------------------------------
# Keyframe preset from the top-1 suggestions
# --------------------------------------------------------------------------------------------


def write_preset(path: str | os.PathLike[str], results: Sequence[ShotSuggestions], *, input_path: str | os.PathLike[str] = "",
                 overwrite: bool = False) -> Path:
    """Write a keyframe preset (``presets/README.md`` format) giving each shot its top-1 reference.

    The runners-up are listed in comments so a colorist can swap one in. Written atomically;
    an existing preset is replaced only with ``overwrite``.
    """
    from .schedule.presets import FORMAT_VERSION  # noqa: PLC0415

    preset = Path(path)
    if preset.suffix.lower() != ".toml":
        raise OutputError(f"preset {str(preset)!r} should end in .toml: give e.g. --write-preset film.toml")
    if preset.exists() and not overwrite:
        raise OutputError(f"preset {str(preset)!r} already exists (it may hold your edits): choose another name or pass --overwrite")
    if not results or any(not r.suggestions for r in results):
        raise InputError("no suggestion to write a preset from: every shot needs at least one ranked reference")
    base = preset.absolute().parent
    input_text = os.fspath(input_path)
    lines = [
        f"# vidcolor preset{' for ' + os.path.basename(input_text.rstrip('/')) if input_text else ''}, written by `vidcolor refs suggest`:",
        "# each shot uses its top-ranked library image (He et al. 2018 retrieval). Runners-up are listed under",
        "# each shot; swap one in by editing `reference`. The format is described in presets/README.md.",
        "",
        f"version = {FORMAT_VERSION}",
        "",
    ]
    for result in results:
        shot = result.shot
        best = result.suggestions[0]
        lines += [
            "[[shot]]",
            f"name = {json.dumps(f'shot {shot.index:03d}')}",
            f"start = {shot.start:<10d}# frames {shot.start}-{shot.end}, queried with frame{'s' if len(shot.frames) > 1 else ''} {', '.join(map(str, shot.frames))}",
            f"reference = {json.dumps(_preset_path(best.path, base))}    # score {best.score:.3f}",
        ]
        lines += [f"# alternative {s.rank}: {json.dumps(_preset_path(s.path, base))} (score {s.score:.3f})" for s in result.suggestions[1:]]
        lines.append("")
    text = "\n".join(lines)
    write_text_or_fail(preset, text, "preset", "choose another location")
    return preset


def _preset_path(image: Path, base: Path) -> str:
    """Relative to the preset's folder when possible (presets move with their references).

    Symbolic links are kept: the preset names the image as the library does.
    """
    absolute = os.path.abspath(image)
    try:
        return Path(os.path.relpath(absolute, os.path.abspath(base))).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(absolute).as_posix()


__all__ = [
    "BETA", "DEFAULT_FRAMES_PER_SHOT", "DEFAULT_PRESELECT", "Backbone", "FeatureLibrary", "ImageFeatures", "LibraryStats", "ShotQuery",
    "ShotSuggestions", "Suggestion", "VCNetBackbone", "VGGBackbone", "best_backbone", "deepex_vgg_installed",
    "input_queries", "library_images", "query_frames", "local_score", "rank", "suggest", "write_preset",
]
