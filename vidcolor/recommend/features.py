"""Ranking features of one image: a global descriptor, a local feature map and the lightness
histogram under each of its positions, from one of the backbones (:func:`best_backbone`)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

#: Side of the square lightness cell under each feature position, in working pixels (the paper's 16).
CELL = 16
#: Histogram bins over lightness 0..100 (the paper does not say; 16 keeps 256-pixel cells well filled).
HIST_BINS = 16
#: Frames per shot a video is queried with (spread evenly; the scores are averaged over them).
#: Bump when the cached arrays change meaning; older caches are then recomputed.
CACHE_VERSION = 2  # 2: library JPEGs are read upright (EXIF orientation)
#: Images whose aspect ratio exceeds this are centre-cropped to it (panoramas would swamp the grid).
MAX_ASPECT = 2.5


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


def unit_rows(x: torch.Tensor) -> torch.Tensor:
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
    return unit_rows(rows).numpy()


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
        rows = unit_rows(local.flatten(1).t().float())
        hist = cell_histograms(small, self.stride)
        if hist.shape[0] != rows.shape[0]:  # a map shorter than H/stride (e.g. reflection padding)
            raise RuntimeError(f"{self.name}: {rows.shape[0]} feature positions but {hist.shape[0]} cells")
        return ImageFeatures(unit_rows(global_.float()).numpy(), rows.numpy(), hist, (int(h), int(w)))


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
        from ..colorizers.default import default_weights_path, load_vcnet  # noqa: PLC0415 - heavy, on demand

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
        global_ = torch.cat([unit_rows(f8.mean(dim=1)), unit_rows(f8.amax(dim=1))])
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
        from ..models.deepex import VGG19Features, strip_module_prefix  # noqa: PLC0415

        if state_dict is None:
            from .. import weights  # noqa: PLC0415

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
        from ..models.deepex import VGG_MEAN_BGR  # noqa: PLC0415

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
        global_ = torch.cat([unit_rows(flat.mean(dim=1)), unit_rows(flat.amax(dim=1))])
        local = (self.projection.t() @ flat).reshape(self.local_channels, *fmap.shape[1:])
        return global_.cpu(), local.cpu()


class Lite0Backbone(Backbone):
    """The frozen ImageNet EfficientNet-Lite0 trunk the semantic matcher uses
    (:func:`vidcolor.models.efficientnet_lite.shared_backbone`, installed with vidcolor).

    Seed 000's retrieval was designed on pretrained features; on the shared clips and photos this
    trunk finds a clip's far frames better than VCNet's encoder (``bench/retrieval.py``: 90 of 91
    queries first against 86; ``tests/test_recommend.py`` keeps a small version). Its stride-32 map (320 channels) is both the local features and,
    mean- and max-pooled and each L2-normalised as with the other backbones, the global descriptor.
    (Local features at stride 16 found one far frame fewer among 1,743 images: a clip's far frame
    was first by the global descriptor and lost it in the re-ranking.)
    """

    name = "lite0"
    short_side = 224
    stride = 32

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        from ..models.efficientnet_lite import shared_backbone  # noqa: PLC0415 - heavy, on demand

        self.device = torch.device(device)
        self.net = shared_backbone(self.device)

    def describe(self) -> dict[str, object]:
        from ..models.efficientnet_lite import WEIGHTS_SHA256  # noqa: PLC0415

        return {**super().describe(), "weights": WEIGHTS_SHA256[:16]}

    def _maps(self, lightness: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.net(torch.from_numpy(lightness).to(self.device)[None, None], strides=(32,))[32][0]
        flat = fmap.flatten(1)
        global_ = torch.cat([unit_rows(flat.mean(dim=1)), unit_rows(flat.amax(dim=1))])
        return global_.cpu(), fmap.cpu()


def deepex_vgg_installed() -> bool:
    """True when the Deep Exemplar VGG-19 (``vgg19_conv.pth``) has been imported."""
    from .. import weights  # noqa: PLC0415

    return bool(weights.installed_files("deepex").get("vgg19_conv.pth"))


#: Backbones by name, as ``vidcolor refs suggest --backbone`` offers them.
BACKBONES = ("lite0", "vgg19", "vcnet")


def best_backbone(device: str = "cpu", name: str | None = None) -> Backbone:
    """The backbone to rank with: ``"vgg19"`` when its weights are imported (the paper's network;
    not measured here, the weights are not on the test machine), else ``"lite0"``.

    ``name`` forces one; asking for ``vgg19`` without its weights raises the error naming the
    import command.
    """
    if name is None:
        name = "vgg19" if deepex_vgg_installed() else "lite0"
    if name == "lite0":
        return Lite0Backbone(device)
    if name == "vgg19":
        return VGGBackbone(device)
    if name == "vcnet":
        return VCNetBackbone(device)
    raise InputError(f"unknown feature backbone {name!r}: use lite0, vgg19 (needs `vidcolor models import deepex PATH`) or vcnet")
