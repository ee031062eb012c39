"""The ``autocolor`` model: automatic colour from the pretrained Lite0 trunk, no reference needed.

Each frame is colourised on its own by :class:`~vidcolor.models.autocolor.AutocolorNet`: the
frozen ImageNet trunk (shared with the exemplar matcher, loaded once per process) and a small
decoder trained on the CPU (``vidcolor/models/weights/autocolor.pt``, card ``autocolor.md``). The
decoder gives a distribution over 313 ab bins at stride 4, decoded with the annealed mean at
temperature ``vibrancy`` (1 = the mean, muted; 0 = the mode, vivid but patchy); the weights carry
the temperature chosen for them on training clips. Confidence is ``1 - entropy / log 313``.

A decoder trained on photos paints near-neutral video scenes with one confident warm cast (a
hazy skyline orange, a white bird cream): ``cast_removal`` k takes k times the frame's mean ab
out of every pixel, so a uniform cast goes while the colours' differences inside the frame stay.
``chroma_gain`` g scales the decoded chroma: with a stronger prior correction, colours the decoder
is unsure of collapse toward gray while sure ones survive, and g brings the survivors back to a
colourful level (a neutral scene's cast shrinks more than a colourful scene's colours).

The frame is scaled so its short side is ``net_short_side`` (the size the decoder was trained
at keeps objects at the scale it saw) and edge-padded to a multiple of 32; the chroma returns to
the working size bilinearly, or guided by the lightness (``upsample="guided"``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.autocolor import INPUT_MULTIPLE, OUTPUT_STRIDE, AutocolorConfig, AutocolorDecoder, AutocolorNet
from ..models.efficientnet_lite import shared_backbone, weights_path
from ..references import Reference
from ..weights import load_trained_network, note_loaded
from .base import (ColorizedFrame, Colorizer, lightness_at_network_size, pad_to_multiple, scaled_to_short_side,
                   shipped_weights_hint, shipped_weights_path)

#: Format tag of the inference file (written by ``python -m vidcolor.training.autocolor``).
WEIGHTS_FORMAT = "vidcolor-autocolor-1"
#: The temperature when the weight file names none (the paper's published value).
FALLBACK_VIBRANCY = 0.38
#: Largest prior correction: α = 2 already leaves little but the commonest, near-neutral colours.
MAX_PRIOR_CORRECTION = 2.0
#: Weight meta key of the chosen cast removal (absent in older files: none).
CAST_REMOVAL_KEY = "cast_removal"
#: Weight meta key of the chosen chroma gain (absent in older files: 1).
CHROMA_GAIN_KEY = "chroma_gain"
#: Weight meta key of the settings for no-reference keyframes (absent: the same as everywhere).
KEYFRAME_DECODING_KEY = "keyframe_decoding"
#: Largest chroma gain: beyond it the annealed mean's colours leave the bins' gamut.
MAX_CHROMA_GAIN = 3.0
_UPSAMPLES = ("bilinear", "guided")


def load_autocolor(path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
                   ) -> tuple[AutocolorNet, dict[str, object]]:
    """The shipped (or given) decoder on the process's shared trunk; returns (network, meta)."""
    path = shipped_weights_path("autocolor") if path is None else Path(path)
    decoder, meta = load_trained_network(
        path, family="autocolor", weights_format=WEIGHTS_FORMAT, device=device, to_float=True,
        build=lambda config: AutocolorDecoder(AutocolorConfig.from_dict(config)),
        missing_hint=shipped_weights_hint("autocolor", "`python -m vidcolor.training.autocolor`"))
    backbone = shared_backbone(device)
    note_loaded(weights_path())  # the trunk's file is part of what a resumed run must find unchanged
    net = AutocolorNet(backbone, decoder.config)
    net.decoder = decoder
    return net.eval().to(device), meta


class AutocolorColorizer(Colorizer):
    """Per-frame automatic colour from the pretrained trunk and the trained decoder (ignores references).

    :param vibrancy: annealed-mean temperature T in [0, 1]; None takes the weights' own.
    :param prior_correction: how much of the training's class-rebalancing is taken back out of the
        logits, α in [0, 2] (0 = as trained, vivid; 1 = the plain posterior of the photos trained on;
        above 1 leans further toward the common, muted colours, for footage less colourful than those
        photos, which were chosen for colour); None takes the weights' own.
    :param cast_removal: share k in [0, 1] of the frame's mean ab taken out of every pixel (0 = none,
        1 = the frame's colours average to gray); None takes the weights' own.
    :param chroma_gain: factor g in [0, 3] on the decoded ab (1 = as decoded); None takes the weights' own.
    :param keyframe: colour whole keyframes of no-reference mode: the weights' ``keyframe_decoding``
        (chosen on no-reference runs, muted against casts) replaces their own settings; the
        fallback, which only adds colour where it is stronger than the copy, keeps the plain ones.
    :param net_short_side: short side the network sees (multiple of 32 after padding).
    :param upsample: ``bilinear`` (as the paper) or ``guided`` (snapped to the lightness edges).
    :param weights: a weight file to use instead of the shipped one.
    """

    name = "autocolor"
    needs_reference = False
    size_multiple = 1
    default_short_side = 224

    def __init__(self, device: str = "cpu", *, vibrancy: float | None = None, prior_correction: float | None = None,
                 cast_removal: float | None = None, chroma_gain: float | None = None, keyframe: bool = False,
                 net_short_side: int = 224, upsample: str = "bilinear", weights: str | os.PathLike[str] | None = None) -> None:
        self.device = torch.device(device)
        self.net, self.meta = load_autocolor(weights, self.device)
        settings = dict(self.meta)
        keyframe_decoding = self.meta.get(KEYFRAME_DECODING_KEY)
        if keyframe and isinstance(keyframe_decoding, dict):
            settings.update(keyframe_decoding)
        stored = settings.get("vibrancy")
        if vibrancy is None:
            vibrancy = float(stored) if isinstance(stored, (int, float)) else FALLBACK_VIBRANCY
        if not 0.0 <= float(vibrancy) <= 1.0:
            raise InputError(f"autocolor vibrancy (the annealed-mean temperature T) must be in [0, 1], got {vibrancy}: "
                             "1 = mean (muted), 0 = mode (vivid)")
        stored_correction = settings.get("prior_correction")
        if prior_correction is None:
            prior_correction = float(stored_correction) if isinstance(stored_correction, (int, float)) else 0.0
        if not 0.0 <= float(prior_correction) <= MAX_PRIOR_CORRECTION:
            raise InputError(f"autocolor prior_correction must be in [0, {MAX_PRIOR_CORRECTION:g}], got {prior_correction}: "
                             "0 = as trained (vivid), 1 = the plain posterior of the training photos, more = more muted")
        stored_cast = settings.get(CAST_REMOVAL_KEY)
        if cast_removal is None:
            cast_removal = float(stored_cast) if isinstance(stored_cast, (int, float)) else 0.0
        if not 0.0 <= float(cast_removal) <= 1.0:
            raise InputError(f"autocolor cast_removal must be in [0, 1], got {cast_removal}: the share of the frame's "
                             "mean colour taken out (0 = none, 1 = the frame averages to gray)")
        stored_gain = settings.get(CHROMA_GAIN_KEY)
        if chroma_gain is None:
            chroma_gain = float(stored_gain) if isinstance(stored_gain, (int, float)) else 1.0
        if not 0.0 <= float(chroma_gain) <= MAX_CHROMA_GAIN:
            raise InputError(f"autocolor chroma_gain must be in [0, {MAX_CHROMA_GAIN:g}], got {chroma_gain}: "
                             "the factor on the decoded colour (1 = as decoded, more = more colourful)")
        log_weights = self.meta.get("log_rebalance_weights")
        self.adjustment = (float(prior_correction) * torch.tensor(log_weights, dtype=torch.float32, device=self.device)
                           if prior_correction and isinstance(log_weights, list) else None)
        if upsample not in _UPSAMPLES:
            raise InputError(f"autocolor upsample must be one of {', '.join(_UPSAMPLES)}, got {upsample!r}")
        if int(net_short_side) < INPUT_MULTIPLE:
            raise InputError(f"autocolor net_short_side must be at least {INPUT_MULTIPLE} pixels, got {net_short_side}")
        self.temperature = float(vibrancy)
        self.prior_correction = float(prior_correction)
        self.cast_removal = float(cast_removal)
        self.chroma_gain = float(chroma_gain)
        self.net_short_side = int(net_short_side)
        self.upsample = upsample
        self.weights = "shipped" if weights is None else os.fspath(weights)

    def reset(self) -> None:
        """Nothing to forget: every frame is colourised on its own."""

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {"model": self.name, "weights": self.weights, "vibrancy": self.temperature,
                                         "prior_correction": self.prior_correction,
                                         "net_short_side": self.net_short_side, "upsample": self.upsample}
        if self.cast_removal:  # only when on: runs interrupted before the setting existed still resume
            described["cast_removal"] = self.cast_removal
        if self.chroma_gain != 1.0:  # likewise only when on
            described["chroma_gain"] = self.chroma_gain
        return described

    @torch.inference_mode()
    def predict(self, lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ab (H, W, 2), confidence (H, W)) of one lightness image, at its own size."""
        small, (height, width) = lightness_at_network_size(
            lightness, "autocolor", lambda height, width: scaled_to_short_side(height, width, self.net_short_side))
        net_h, net_w = small.shape
        x = torch.from_numpy(np.ascontiguousarray(pad_to_multiple(small, INPUT_MULTIPLE))).to(self.device)[None, None]
        ab, confidence = self.net.decode(self.net(x), self.temperature, self.adjustment)
        if self.cast_removal:  # the mean over the picture, not the padding
            ab = ab - self.cast_removal * ab[..., : -(-net_h // OUTPUT_STRIDE), : -(-net_w // OUTPUT_STRIDE)].mean(
                dim=(2, 3), keepdim=True)
        if self.chroma_gain != 1.0:
            ab = ab * self.chroma_gain
        maps = F.interpolate(torch.cat([ab, confidence], dim=1), scale_factor=OUTPUT_STRIDE, mode="bilinear",
                             align_corners=False)[0, :, :net_h, :net_w]
        maps_np = np.ascontiguousarray(maps.permute(1, 2, 0).float().cpu().numpy())
        if (net_h, net_w) != (height, width):
            maps_np = cv2.resize(maps_np, (width, height), interpolation=cv2.INTER_LINEAR)
        ab_np = np.ascontiguousarray(maps_np[..., :2])
        if self.upsample == "guided":
            from ..color import guided_upsample

            grid = (max(1, width // OUTPUT_STRIDE), max(1, height // OUTPUT_STRIDE))
            ab_np = guided_upsample(cv2.resize(ab_np, grid, interpolation=cv2.INTER_AREA), lightness)
        return ab_np.astype(np.float32, copy=False), np.clip(maps_np[..., 2], 0.0, 1.0).astype(np.float32)

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        del reference  # fully automatic
        started = time.perf_counter()
        ab, confidence = self.predict(lightness)
        stats = {"confidence": float(confidence.mean()), "chroma": float(np.hypot(ab[..., 0], ab[..., 1]).mean()),
                 "seconds": time.perf_counter() - started}
        return ColorizedFrame(ab=ab, confidence=confidence, stats=stats)


__all__ = ["AutocolorColorizer", "CAST_REMOVAL_KEY", "CHROMA_GAIN_KEY", "KEYFRAME_DECODING_KEY", "MAX_CHROMA_GAIN", "FALLBACK_VIBRANCY", "MAX_PRIOR_CORRECTION", "WEIGHTS_FORMAT", "load_autocolor"]
