"""The ``fast`` model: FastNet (Color2Embed-style colour embedding + modulated decoder), shipped weights.

For quick previews of a whole reel. The reference is reduced to one global colour embedding
(computed once per reference key and folded into the decoder's kernels), so a frame costs one
small convolution net, with no correspondence search and no optical flow. The previous output's
chroma is fed back (kept in place where the lightness did not change) to damp flicker; the
temporal check can still be put around it. Weights: ``vidcolor/models/weights/fast.pt``; the
model card ``fast.md`` beside them says how they were trained and how well they do.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

from ..weights import load_trained_network
from ..models.fast import AB_SCALE, EMBEDDING_CONFIDENCE, REFERENCE_SIDE, SIZE_MULTIPLE, WEIGHTS_FORMAT, FastNet, FastNetConfig, Modulation
from ..references import Reference
from .base import (ColorizedFrame, Colorizer, pad_to_multiple, shipped_weights_hint, shipped_weights_path,
                   step_at_native_size)

#: Reference embeddings kept per colorizer.
_REFERENCE_CACHE_SIZE = 8


#: Where the shipped ``fast`` weights live inside the installed package.
fast_weights_path = partial(shipped_weights_path, "fast")


def load_fastnet(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[FastNet, dict[str, object]]:
    """Load FastNet inference weights (``torch.load(weights_only=True)``); returns (model, meta)."""
    return load_trained_network(path, family="FastNet", weights_format=WEIGHTS_FORMAT, device=device, build=lambda config: FastNet(FastNetConfig.from_dict(config)),
                                missing_hint=shipped_weights_hint("fast", "vidcolor.training.fast"))


#: The network's inputs padded to its size multiple.
_pad = partial(pad_to_multiple, multiple=SIZE_MULTIPLE)


class FastColorizer(Colorizer):
    """FastNet with the shipped weights: the quickest exemplar colorizer in vidcolor.

    The network runs at most at :attr:`native_short_side` (a larger working frame is shrunk and its
    chroma returns through the luma-guided filter, as the default model does), so its cost per
    frame is bounded whatever the working size. Without a reference the frame stays gray
    (confidence 0): a global embedding has nothing to fall back on.
    """

    name = "fast"
    size_multiple = SIZE_MULTIPLE
    #: Chosen for speed: the same as the default model, where FastNet takes about a fifth of its time per step.
    default_short_side = 160
    #: Largest short side the network itself runs at (it was trained on 128 px crops of ~192 px frames).
    native_short_side = 160
    #: DIS preset of the temporal check around this model (when the check uses DIS): ultrafast costs
    #: about 0.8 ms a 284x160 frame pair both ways against medium's 7.7 ms (fast.md, "Whole command").
    temporal_dis_preset = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST

    def __init__(
        self, device: str = "cpu", *, weights: str | os.PathLike[str] | None = None, native_short_side: int | None = None
    ) -> None:
        self.device = torch.device(device)
        if native_short_side is not None:
            self.native_short_side = native_short_side
        self.model, self.meta = load_fastnet(weights if weights is not None else fast_weights_path(), self.device)
        self._references: dict[str, list[Modulation]] = {}
        self.reset()

    def describe(self) -> dict[str, object]:
        return {"model": self.name, "native_short_side": self.native_short_side}

    def reset(self) -> None:
        self._previous_ab: torch.Tensor | None = None
        self._previous_l: torch.Tensor | None = None
        self._shape: tuple[int, int] | None = None

    @torch.inference_mode()
    def reference_modulation(self, reference: Reference) -> list[Modulation]:
        """The decoder kernels modulated by the reference's colour embedding, cached per reference key."""
        found = self._references.get(reference.key)
        if found is None:
            rgb = torch.from_numpy(np.ascontiguousarray(reference.rgb_at(REFERENCE_SIDE, REFERENCE_SIDE))).to(self.device)
            lab = torch.from_numpy(np.ascontiguousarray(reference.lab_at(REFERENCE_SIDE, REFERENCE_SIDE))).to(self.device)
            z = self.model.embed(rgb.permute(2, 0, 1)[None], lab.permute(2, 0, 1)[None])
            found = self.model.modulate(z, fold=True)
            if len(self._references) >= _REFERENCE_CACHE_SIZE:
                self._references.pop(next(iter(self._references)))
            self._references[reference.key] = found
        return found

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        return step_at_native_size(lightness, reference, self.native_short_side, SIZE_MULTIPLE, self._step_native)

    @torch.inference_mode()
    def _step_native(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        height, width = lightness.shape
        self._reset_on_new_size(height, width)
        if reference is None:
            zeros = np.zeros((height, width), np.float32)
            return ColorizedFrame(ab=np.zeros((height, width, 2), np.float32), confidence=zeros, stats={"confidence": 0.0})
        modulation = self.reference_modulation(reference)
        l_norm = torch.from_numpy(np.ascontiguousarray(_pad(np.asarray(lightness, dtype=np.float32)))).to(self.device)[None, None] / 50.0 - 1.0
        out = self.model(l_norm, modulation, self._previous_ab, self._previous_l)
        self._previous_ab, self._previous_l = out.ab, l_norm
        ab = (out.ab[0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy() * AB_SCALE).clip(-120.0, 120.0)
        keep = out.keep[0, 0, :height, :width].float().cpu().numpy()
        confidence = keep + (1.0 - keep) * EMBEDDING_CONFIDENCE
        return ColorizedFrame(
            ab=np.ascontiguousarray(ab, dtype=np.float32),
            confidence=np.ascontiguousarray(confidence, dtype=np.float32),
            stats={"confidence": float(confidence.mean()), "kept": float(keep.mean())},
        )

    @torch.inference_mode()
    def set_previous(self, ab: np.ndarray) -> None:
        """Adopt a corrected output (e.g. from the temporal check) as the previous chroma."""
        if self._previous_ab is None or self._shape is None:
            return
        if ab.shape[:2] != self._shape:
            ab = cv2.resize(ab, (self._shape[1], self._shape[0]), interpolation=cv2.INTER_AREA)
        padded = _pad(np.asarray(ab, dtype=np.float32))
        self._previous_ab = torch.from_numpy(np.ascontiguousarray(padded)).to(self.device).permute(2, 0, 1)[None] / AB_SCALE
