"""Training-free semantic correspondence: a reference's colours carried onto a gray frame by what
things are, not where they are.

vidcolor's default model matches on a small luminance encoder trained from scratch, which finds the
same pixels in another frame of the shot but not a face in an unrelated still. Here both images go
through the frozen ImageNet trunk (:mod:`vidcolor.models.efficientnet_lite`) and are compared as in
Deep Exemplar-based Video Colorization (seed 001, Eq. 3-5), without its learned layers:

* features at a few strides (8 and 16 by default) are resampled to the finest stride's grid;
* each scale is mean-centred and L2-normalised, then the scales are concatenated (scaled so the dot
  product is the mean of the per-scale cosines): ``M(i, j)`` is a centred cosine in [-1, 1];
* every frame position attends over all reference positions, ``softmax_j(M(i, j) / τ)``, τ = 0.01,
  and gathers the reference's ``a, b`` (area-averaged to the same grid);
* the confidence is ``max_j M(i, j)`` (Eq. 5).

Centring: ``centre="joint"`` (the default) subtracts the mean feature over both images, as issue 24
asks; ``centre="each"`` subtracts each image's own mean, as seed 001's Eq. 3 is written (``μ_Fx``,
``μ_Fy``). On the ten face pairs of ``tests/test_semantic_match.py`` both keep every face skin-toned;
"joint" paints fewer pixels where the truth has none in the reference's cool background/clothing
colours (5.0 % of the image on average against 6.7 %; largest such region 9.5 % against 14 %).

The attention runs in blocks of frame positions, so memory stays bounded at any size (224x400
against 256x384 at stride 8 is 1400 x 1536 similarities, 9 MB per block). The reference's features
are computed once (:meth:`SemanticMatcher.encode_reference`) and reused for every frame.

Everything is differentiable; callers that only infer wrap calls in ``torch.inference_mode()``
(:func:`semantic_colors` does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.efficientnet_lite import EfficientNetLite, shared_backbone

Centre = Literal["each", "joint"]


@dataclass(frozen=True)
class MatchConfig:
    """The matcher's constants (issue 24: strides 8 to 32 and τ = 0.01 worked on a film close-up)."""

    #: Backbone strides whose features are compared; the finest sets the output grid.
    strides: tuple[int, ...] = (8, 16)
    #: Softmax temperature over cosine similarities (seed 001's training value).
    temperature: float = 0.01
    #: "joint": subtract the mean feature over both images; "each": each image's own mean.
    centre: Centre = "joint"
    #: Frame positions per attention block (bounds memory: block x reference positions floats).
    chunk: int = 2048


@dataclass
class ReferenceMemory:
    """What a reference offers to every frame: its raw features and chroma on the match grid."""

    #: Per scale, (C_s, M) features at the finest stride's grid, before centring.
    features: list[torch.Tensor]
    #: (2, M) Lab a, b area-averaged onto the same grid.
    ab: torch.Tensor
    #: (h, w) of that grid.
    grid: tuple[int, int]


@dataclass
class SemanticMatch:
    """The attended reference chroma at the frame's match grid, and how sure the match is."""

    #: (B, 2, h, w) Lab a, b.
    ab: torch.Tensor
    #: (B, 1, h, w) best centred cosine similarity, in [-1, 1].
    confidence: torch.Tensor


class SemanticMatcher:
    """Matches gray frames to one colour reference on pretrained features (see module docstring)."""

    def __init__(self, backbone: EfficientNetLite | None = None, config: MatchConfig = MatchConfig()) -> None:
        if config.temperature <= 0:
            raise InputError(f"the matching temperature must be positive, got {config.temperature}")
        if config.centre not in ("each", "joint"):
            raise InputError(f"centre must be 'each' or 'joint', got {config.centre!r}")
        self.backbone = shared_backbone() if backbone is None else backbone
        if not config.strides or any(s not in self.backbone.taps for s in config.strides):
            raise InputError(f"matching strides must be among {sorted(self.backbone.taps)}, got {config.strides}")
        self.config = config

    @property
    def stride(self) -> int:
        """Stride of the output grid (the finest matched stride)."""
        return min(self.config.strides)

    def features(self, lightness: torch.Tensor) -> tuple[list[torch.Tensor], tuple[int, int]]:
        """(B, 1, H, W) lightness → per scale (B, C_s, h*w) features on the finest stride's grid."""
        return grid_features(self.backbone, lightness, self.config.strides)

    def encode_reference(self, lightness: torch.Tensor, ab: torch.Tensor) -> ReferenceMemory:
        """A reference from its (1, 1, H, W) lightness and (1, 2, H, W) Lab a, b.

        For a gray video, pass the lightness the reference would show as a frame of that video
        (``vidcolor.color.luma_lightness`` of its RGB), so both sides see the same kind of gray.
        """
        if lightness.shape[0] != 1 or ab.shape[:2] != (1, 2) or ab.shape[-2:] != lightness.shape[-2:]:
            raise InputError(f"a reference is one picture: lightness (1, 1, H, W) and ab (1, 2, H, W), "
                             f"got {tuple(lightness.shape)} and {tuple(ab.shape)}")
        features, grid = self.features(lightness)
        pooled = F.interpolate(ab, size=grid, mode="area")
        return ReferenceMemory(features=[f[0] for f in features], ab=pooled[0].flatten(1), grid=grid)

    def match(self, lightness: torch.Tensor, reference: ReferenceMemory) -> SemanticMatch:
        """The reference's chroma attended for each position of the (B, 1, H, W) frames."""
        features, grid = self.features(lightness)
        batch = lightness.shape[0]
        abs_, confs = [], []
        for b in range(batch):
            query, keys = centred_keys([f[b] for f in features], reference.features, self.config.centre)
            ab, conf = attend(query, keys, reference.ab, self.config.temperature, self.config.chunk)
            abs_.append(ab.view(2, *grid))
            confs.append(conf.view(1, *grid))
        return SemanticMatch(ab=torch.stack(abs_), confidence=torch.stack(confs))


def grid_features(backbone: EfficientNetLite, lightness: torch.Tensor,
                  strides: tuple[int, ...]) -> tuple[list[torch.Tensor], tuple[int, int]]:
    """(B, 1, H, W) Lab L → per stride (B, C_s, h*w) backbone features, all on the finest stride's
    (h, w) grid (coarser maps bilinearly resampled), ready for :func:`centred_keys`."""
    maps = backbone(lightness, strides)
    grid = tuple(maps[min(strides)].shape[-2:])
    flat = []
    for stride in sorted(maps):
        fmap = maps[stride]
        if fmap.shape[-2:] != grid:
            fmap = F.interpolate(fmap, size=grid, mode="bilinear", align_corners=False)
        flat.append(fmap.flatten(2))
    return flat, grid  # type: ignore[return-value]


def centred_keys(frame: list[torch.Tensor], reference: list[torch.Tensor],
                  centre: Centre) -> tuple[torch.Tensor, torch.Tensor]:
    """Per scale: centre, L2-normalise; concatenate scaled by 1/sqrt(scales) → (C, N), (C, M).

    Leading batch dimensions pass through: (B, C_s, N) and (B, C_s, M) give (B, C, N), (B, C, M).
    """
    queries, keys = [], []
    scale = 1.0 / math.sqrt(len(frame))
    for q, k in zip(frame, reference, strict=True):
        if centre == "each":
            q = q - q.mean(dim=-1, keepdim=True)
            k = k - k.mean(dim=-1, keepdim=True)
        else:
            mean = (q.sum(dim=-1, keepdim=True) + k.sum(dim=-1, keepdim=True)) / (q.shape[-1] + k.shape[-1])
            q, k = q - mean, k - mean
        queries.append(F.normalize(q, dim=-2, eps=1e-6) * scale)
        keys.append(F.normalize(k, dim=-2, eps=1e-6) * scale)
    return torch.cat(queries, dim=-2), torch.cat(keys, dim=-2)


def multiscale_cosine(frame: list[torch.Tensor], reference: list[torch.Tensor],
                      grid: tuple[int, int], reference_grid: tuple[int, int]) -> torch.Tensor:
    """(B, N, M): for every frame position of ``grid`` and reference position of ``reference_grid``,
    the mean over scales of joint-centred cosines, as :func:`centred_keys` gives them, but each
    scale compared on its own stride's grid and the similarities bilinearly resampled to the fine
    grids.

    ``frame`` and ``reference`` hold per stride (B, C_s, h_s, w_s) maps, the finest at ``grid`` /
    ``reference_grid``. Resampling the coarse similarities instead of the coarse features is the same
    bilinear interpolation up to the per-position normalisation, and costs a fraction: at 160 lines the
    stride-32 features (320 channels) compared on the stride-8 grid were most of the attention's time.
    """
    total = None
    for q_map, k_map in zip(frame, reference, strict=True):
        batch = q_map.shape[0]
        q_hw, k_hw = tuple(q_map.shape[-2:]), tuple(k_map.shape[-2:])
        q, k = q_map.flatten(2), k_map.flatten(2)
        mean = (q.sum(dim=-1, keepdim=True) + k.sum(dim=-1, keepdim=True)) / (q.shape[-1] + k.shape[-1])
        cosine = torch.bmm(F.normalize(q - mean, dim=1, eps=1e-6).transpose(1, 2), F.normalize(k - mean, dim=1, eps=1e-6))
        if q_hw != grid:  # frame axis: (B, n, m) -> (B, m, N)
            cosine = F.interpolate(cosine.transpose(1, 2).reshape(-1, 1, *q_hw), size=grid, mode="bilinear",
                                   align_corners=False).reshape(batch, -1, grid[0] * grid[1]).transpose(1, 2)
        if k_hw != reference_grid:  # reference axis: (B, N, m) -> (B, N, M)
            cosine = F.interpolate(cosine.reshape(-1, 1, *k_hw), size=reference_grid, mode="bilinear",
                                   align_corners=False).reshape(batch, -1, reference_grid[0] * reference_grid[1])
        total = cosine if total is None else total + cosine
    assert total is not None, "no scales to compare"
    return total / len(frame)


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, temperature: float,
           chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft attention of (C, N) queries over (C, M) keys gathering (V, M) values, in blocks of queries.

    Returns the (V, N) gathered values and the (N,) best similarity of each query.
    """
    out = query.new_empty(values.shape[0], query.shape[1])
    best = query.new_empty(query.shape[1])
    for start in range(0, query.shape[1], chunk):
        sim = query[:, start:start + chunk].transpose(0, 1) @ keys  # (n, M)
        best[start:start + chunk] = sim.amax(dim=1)
        out[:, start:start + chunk] = values @ torch.softmax(sim / temperature, dim=1).transpose(0, 1)
    return out, best


def semantic_colors(frame_lightness: np.ndarray, reference_lightness: np.ndarray, reference_ab: np.ndarray,
                    *, config: MatchConfig = MatchConfig(), matcher: SemanticMatcher | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """NumPy convenience: (H, W) lightness, a reference's (H', W') lightness and (H', W', 2) ab →
    (h, w, 2) attended ab and (h, w) confidence on the frame's match grid (stride ``min(strides)``)."""
    matcher = SemanticMatcher(config=config) if matcher is None else matcher
    device = next(matcher.backbone.parameters()).device
    with torch.inference_mode():
        ref_l = torch.from_numpy(np.ascontiguousarray(reference_lightness, dtype=np.float32))[None, None].to(device)
        ref_ab = torch.from_numpy(np.ascontiguousarray(reference_ab, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
        memory = matcher.encode_reference(ref_l, ref_ab)
        frame = torch.from_numpy(np.ascontiguousarray(frame_lightness, dtype=np.float32))[None, None].to(device)
        result = matcher.match(frame, memory)
    return result.ab[0].permute(1, 2, 0).cpu().numpy(), result.confidence[0, 0].cpu().numpy()
