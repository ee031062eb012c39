"""The Deep Exemplar video colorizer (Zhang et al., CVPR 2019) behind vidcolor's Colorizer interface.

It runs the authors' three networks (:mod:`vidcolor.models.deepex`, loaded from their released
checkpoints through :mod:`vidcolor.weights`) with their recurrence: each frame is matched against
the reference, and the previous colorized frame is fed back unwarped. Engineering beyond the
official script, none of which changes what the networks compute:

- any working size and aspect ratio: the frame is reflect-padded to the networks' size grid
  (multiples of 8; a side ≡ 8 mod 16 uses the official one-row relu5_2 padding) and cropped back;
  the reference keeps its own aspect ratio instead of being cropped to the frame's;
- the reference side (VGG, WarpNet branches, ``phi``) runs once per reference, not per frame;
- the correlation is computed in chunks (argmax + gather at the official temperature), so memory
  stays bounded at any size;
- ``torch.inference_mode`` and an optional thread count.

The official look (chroma × 1.25, then a fast global smoother guided by L with λ = 500, σ = 4)
is available through ``chroma_gain``/``smooth_lambda``/``smooth_sigma`` for a ``deepex-official``
preset; it applies to the output only, never to the frame fed back, as in the official script.

Under the temporal check, :meth:`DeepExColorizer.set_previous` feeds the *corrected* frame back
instead of the raw prediction (the correction is taken back out of the official look first), so
flicker the check removed does not return through the recurrence.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Literal

import cv2
import numpy as np
import torch

from ..color import rgb_to_lab
from ..errors import InputError
from ..correspondence.flow import resolve_device
from ..models.deepex import (
    DEFAULT_CHUNK_BYTES,
    MIN_SIZE,
    OFFICIAL_TEMPERATURE,
    SIZE_MULTIPLE,
    Correspondence,
    DeepExNet,
    ReferenceFeatures,
    valid_network_size,
)
from ..references import Reference
from .base import ColorizedFrame, Colorizer

logger = logging.getLogger(__name__)

ReferenceFit = Literal["keep-aspect", "crop"]
#: The look of the official test script, for a ``deepex-official`` preset.
OFFICIAL_LOOK = {"chroma_gain": 1.25, "smooth_lambda": 500.0, "smooth_sigma": 4.0}


class DeepExColorizer(Colorizer):
    """Deep Exemplar-based Video Colorization with the authors' networks.

    :param device: torch device ("cpu" by default, "cuda", "cuda:1", ...).
    :param state_dicts: ``{"vggnet": ..., "nonlocal_net": ..., "colornet": ...}`` state dicts; by
        default they are loaded from the installed ``deepex`` weights (``vidcolor models import``).
    :param temperature: softmax temperature of the warp; the official 1e-10 makes it an argmax.
    :param chunk_bytes: memory budget of one block of correlation scores.
    :param chroma_gain: multiplies the output ab (official look: 1.25).
    :param smooth_lambda: when set, a fast global smoother guided by L filters the output ab
        (official look: 500); ``smooth_sigma`` is its colour sigma (official: 4).
    :param reference_fit: "keep-aspect" resizes the reference to about the frame's pixel count at
        its own aspect ratio; "crop" centre-crops it to the frame's aspect ratio and size, like
        the official script.
    :param max_reference_pixels: caps the reference's network size (correlation cost is
        proportional to frame pixels × reference pixels).
    :param num_threads: when set, ``torch.set_num_threads`` (process-wide) for CPU inference.
    :param reference_cache: how many references' features to keep.
    """

    name = "deepex"
    size_multiple = SIZE_MULTIPLE
    #: The networks were trained on 216x384 crops.
    default_short_side = 216

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        state_dicts: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
        temperature: float = OFFICIAL_TEMPERATURE,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        chroma_gain: float = 1.0,
        smooth_lambda: float | None = None,
        smooth_sigma: float = 4.0,
        reference_fit: ReferenceFit = "keep-aspect",
        max_reference_pixels: int | None = None,
        num_threads: int | None = None,
        reference_cache: int = 4,
    ) -> None:
        if not temperature > 0:
            raise InputError(f"deepex: temperature must be > 0, got {temperature}")
        if chunk_bytes < 1 << 16:
            raise InputError(f"deepex: chunk_bytes must be at least 65536, got {chunk_bytes}")
        if not chroma_gain >= 0:
            raise InputError(f"deepex: chroma_gain must be >= 0, got {chroma_gain}")
        if smooth_lambda is not None and not smooth_lambda > 0:
            raise InputError(f"deepex: smooth_lambda must be > 0 (or None for no smoothing), got {smooth_lambda}")
        if not smooth_sigma > 0:
            raise InputError(f"deepex: smooth_sigma must be > 0, got {smooth_sigma}")
        if reference_fit not in ("keep-aspect", "crop"):
            raise InputError(f"deepex: reference_fit must be 'keep-aspect' or 'crop', got {reference_fit!r}")
        if max_reference_pixels is not None and max_reference_pixels < MIN_SIZE * MIN_SIZE:
            raise InputError(f"deepex: max_reference_pixels must be at least {MIN_SIZE * MIN_SIZE}, got {max_reference_pixels}")
        if num_threads is not None:
            if num_threads < 1:
                raise InputError(f"deepex: num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        self.temperature = float(temperature)
        self.chunk_bytes = int(chunk_bytes)
        self.chroma_gain = float(chroma_gain)
        self.smooth_lambda = smooth_lambda
        self.smooth_sigma = float(smooth_sigma)
        self.reference_fit: ReferenceFit = reference_fit
        self.max_reference_pixels = max_reference_pixels
        self._cache_size = max(1, int(reference_cache))
        if state_dicts is None:
            state_dicts = _installed_state_dicts()
        missing = [k for k in ("vggnet", "nonlocal_net", "colornet") if k not in state_dicts]
        if missing:
            raise InputError(f"deepex: state_dicts lacks {', '.join(missing)}: give the vggnet, nonlocal_net and colornet state dicts")
        self.net = DeepExNet.from_state_dicts(state_dicts["vggnet"], state_dicts["nonlocal_net"], state_dicts["colornet"], device=self.device)
        self._references: OrderedDict[tuple[str, str, int, int], ReferenceFeatures] = OrderedDict()
        self._previous: torch.Tensor | None = None
        #: The last frame's output (after the official look) at the working size: what
        #: ``set_previous`` receives corrected.
        self._last_output: np.ndarray | None = None

    # ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Start a new shot: the next frame gets zeros as its previous frame (reference features stay cached)."""
        self._previous = None
        self._last_output = None

    @torch.inference_mode()
    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        """Colorize one frame of any size; see :class:`~vidcolor.colorizers.base.Colorizer`."""
        lightness = _check_lightness(lightness)
        height, width = lightness.shape
        net_h, net_w = valid_network_size(height, width)
        if self._previous is not None and tuple(self._previous.shape[2:]) != (net_h, net_w):
            logger.warning("deepex: working size changed within a shot (%s -> %dx%d); restarting the recurrence", tuple(self._previous.shape[2:]), net_h, net_w)
            self._previous = None
        padded = _pad(lightness, net_h, net_w)
        l_centered = torch.from_numpy(padded - np.float32(50.0))[None, None].to(self.device)
        t0 = time.perf_counter()
        stats: dict[str, float] = {}
        if reference is not None:
            ref = self._reference_features(reference, net_h, net_w)
            corr = self.net.correspond(l_centered, ref, self.temperature, self.chunk_bytes)
            if corr.index is not None:
                stats["reference_coverage"] = float(torch.unique(corr.index).numel()) / float(ref.values.shape[0])
        else:
            # No exemplar: nothing to warp. The colorization subnet sees zero chroma and zero
            # similarity (what it sees where nothing matches) and leans on the previous frame.
            hq, wq = net_h // 4, net_w // 4
            corr = Correspondence(l_centered.new_zeros((3, hq, wq)), l_centered.new_zeros((hq, wq)), None)
        t1 = time.perf_counter()
        ab_t = self.net.colorize(l_centered, corr, self._previous)
        t2 = time.perf_counter()
        self._previous = torch.cat([l_centered, ab_t], dim=1)

        ab = ab_t[0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy()
        similarity = corr.similarity.float().cpu().numpy()
        confidence = cv2.resize(similarity, (net_w, net_h), interpolation=cv2.INTER_LINEAR)[:height, :width]
        confidence = np.clip(confidence, 0.0, 1.0).astype(np.float32)
        if reference is None:
            confidence[:] = 0.0
        ab = self._postprocess(np.ascontiguousarray(ab, dtype=np.float32), lightness)
        self._last_output = ab.copy()
        stats.update(
            similarity_mean=float(similarity.mean()),
            similarity_min=float(similarity.min()),
            similarity_max=float(similarity.max()),
            seconds_correspondence=t1 - t0,
            seconds_colorization=t2 - t1,
        )
        return ColorizedFrame(ab=ab, confidence=confidence, stats=stats)

    @torch.inference_mode()
    def set_previous(self, ab: np.ndarray) -> None:
        """Feed a corrected output (from the temporal check) back as the previous frame.

        The recurrence holds the raw network chroma, so the correction ``ab - output`` is divided
        by ``chroma_gain`` and added to it (the smoother's effect stays out of the feedback, as in
        the official script); with the plain look the corrected frame is fed back as is. The pad
        rows/columns take the correction mirrored, like the lightness. An unchanged output leaves
        the recurrence exactly as it was.
        """
        if self._previous is None or self._last_output is None:
            return
        height, width = self._last_output.shape[:2]
        ab = np.asarray(ab, dtype=np.float32)
        if ab.shape[:2] != (height, width):
            ab = cv2.resize(ab, (width, height), interpolation=cv2.INTER_AREA)
        raw = self._previous[0, 1:].permute(1, 2, 0).float().cpu().numpy()  # (net_h, net_w, 2)
        raw_crop = raw[:height, :width]
        if self.chroma_gain == 1.0 and self.smooth_lambda is None:
            fed = ab
        elif self.chroma_gain > 0.0:
            fed = raw_crop + (ab - self._last_output) / np.float32(self.chroma_gain)
        else:
            return  # the output is all zeros whatever the network says: nothing to take back
        delta = np.stack([_pad(np.ascontiguousarray(fed[..., c] - raw_crop[..., c]), *raw.shape[:2]) for c in range(2)], axis=-1)
        fed_full = raw + delta
        fed_full[:height, :width] = fed
        fed_t = torch.from_numpy(np.ascontiguousarray(fed_full.transpose(2, 0, 1)))[None].to(self._previous.device, self._previous.dtype)
        self._previous = torch.cat([self._previous[:, :1], fed_t], dim=1)
        self._last_output = ab.copy()

    def prepare_reference(self, reference: Reference, height: int, width: int) -> None:
        """Compute and cache ``reference``'s features for frames of working size ``height`` x ``width``.

        Optional: ``step`` does it on first use; calling it at a shot start keeps that cost out of
        the first frame's time.
        """
        with torch.inference_mode():
            self._reference_features(reference, *valid_network_size(height, width))

    # ----------------------------------------------------------------------------------------

    def reference_size(self, reference: Reference, net_h: int, net_w: int) -> tuple[int, int]:
        """The reference's network size (height, width) for a frame of network size net_h x net_w."""
        if self.reference_fit == "crop":
            height, width = net_h, net_w
        else:
            ref_w, ref_h = reference.size
            aspect = ref_w / ref_h
            area = float(net_h * net_w)
            height, width = math.sqrt(area / aspect), math.sqrt(area * aspect)
        if self.max_reference_pixels is not None and height * width > self.max_reference_pixels:
            scale = math.sqrt(self.max_reference_pixels / (height * width))
            height, width = height * scale, width * scale
        return (
            max(MIN_SIZE, int(round(height / SIZE_MULTIPLE)) * SIZE_MULTIPLE),
            max(MIN_SIZE, int(round(width / SIZE_MULTIPLE)) * SIZE_MULTIPLE),
        )

    def _reference_features(self, reference: Reference, net_h: int, net_w: int) -> ReferenceFeatures:
        ref_h, ref_w = self.reference_size(reference, net_h, net_w)
        key = (reference.key, self.reference_fit, ref_h, ref_w)
        cached = self._references.get(key)
        if cached is not None:
            self._references.move_to_end(key)
            return cached
        if self.reference_fit == "crop":
            rgb = _crop_resize(reference.rgb, ref_h, ref_w)
            lab = rgb_to_lab(rgb)
        else:
            rgb = reference.rgb_at(ref_w, ref_h)
            lab = reference.lab_at(ref_w, ref_h)
        lab = lab - np.array([50.0, 0.0, 0.0], dtype=np.float32)
        rgb_t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(self.device)
        lab_t = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1)))[None].to(self.device)
        features = self.net.reference(rgb_t, lab_t)
        self._references[key] = features
        while len(self._references) > self._cache_size:
            self._references.popitem(last=False)
        return features

    def _postprocess(self, ab: np.ndarray, lightness: np.ndarray) -> np.ndarray:
        if self.chroma_gain != 1.0:
            ab *= np.float32(self.chroma_gain)
        if self.smooth_lambda is not None:
            guide = np.clip(lightness * (255.0 / 100.0), 0, 255).astype(np.uint8)
            smoother = cv2.ximgproc.createFastGlobalSmootherFilter(guide, float(self.smooth_lambda), float(self.smooth_sigma))
            ab = np.stack([smoother.filter(np.ascontiguousarray(ab[..., c])) for c in range(2)], axis=-1).astype(np.float32)
        return ab


def _installed_state_dicts() -> dict[str, Mapping[str, torch.Tensor]]:
    from .. import weights

    weights.require_installed("deepex")  # one error naming every missing file
    return {role: weights.load_state_dict("deepex", role) for role in ("vggnet", "nonlocal_net", "colornet")}


def _check_lightness(lightness: np.ndarray) -> np.ndarray:
    array = np.asarray(lightness)
    if array.ndim != 2 or min(array.shape) < 1:
        raise InputError(f"deepex: lightness must be a 2-D (H, W) array of Lab L, got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InputError("deepex: lightness contains NaN or infinity: check the frame conversion")
    return array


def _pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad bottom/right to (height, width); edge-replicate what a tiny image cannot reflect."""
    ph, pw = height - image.shape[0], width - image.shape[1]
    if not ph and not pw:
        return image
    mode = "reflect" if ph < image.shape[0] and pw < image.shape[1] else "edge"
    return np.pad(image, ((0, ph), (0, pw)), mode=mode)


def _crop_resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop to the aspect ratio of width x height, then resize (area filter when shrinking)."""
    h, w = rgb.shape[:2]
    if w * height > h * width:
        cw = max(1, int(round(h * width / height)))
        x0 = (w - cw) // 2
        rgb = rgb[:, x0 : x0 + cw]
    else:
        ch = max(1, int(round(w * height / width)))
        y0 = (h - ch) // 2
        rgb = rgb[y0 : y0 + ch]
    interp = cv2.INTER_AREA if rgb.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=interp)
