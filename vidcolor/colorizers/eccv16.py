"""The ``eccv16`` model: automatic colorization (Zhang, Isola, Efros, ECCV 2016), no reference needed.

Each frame is colorized on its own: the network predicts a distribution over 313 ab bins at a
quarter of its input size, decoded with the annealed mean at temperature T (``vibrancy``: 1 = the
distribution mean, muted; 0 = the mode, vivid but patchy). Default: the published T = 0.38; a
vidcolor weight file may carry another T chosen for it on validation photos (``meta["vibrancy"]``;
the shipped small model keeps 0.38). A vidcolor weight file may also carry a global chroma gain
(``meta["chroma_gain"]``, or ``chroma_gain=``): the mean of an uncertain distribution shrinks toward
gray, and on a small model trained without rebalancing, scaling that chroma back up keeps more
accuracy than rebalancing does for the same colourfulness (model card). Confidence is
``1 - entropy / log 313`` of that distribution (a peaked, certain prediction scores near 1). The reference is ignored. Frame-to-frame flicker is expected
(nothing ties frames together): the no-reference mode uses this model for keyframes only and lets
the exemplar colorizer propagate them.

Weights (``weights=``):

* ``"official"``: the authors' release ``colorization_release_v2-9b330a0b.pth``, imported by the
  user with ``vidcolor models import eccv16 FILE``;
* ``"shipped"``: vidcolor's small variant (a quarter of the channels) trained on the CPU
  (``vidcolor/models/weights/eccv16-small.pt``, card ``eccv16-small.md`` beside it);
* ``None`` (default): official when imported, else shipped; or a path to a small-format file.

Input size: the authors feed a 256x256 square (their demo squashes any image to it). The network
is fully convolutional, so vidcolor keeps the frame's aspect ratio instead (``fit="aspect"``): the
frame is scaled so its short side is ``net_short_side`` (256) and edge-padded to a multiple of 8;
objects then have the scale the network saw in training and nothing is distorted (a 16:9 frame
squashed to a square shrinks shapes horizontally by 1.8x). ``fit="square"`` reproduces the demo.
The chroma returns to the working size bilinearly, as in the paper (``upsample="guided"`` snaps
it to the luma edges with vidcolor's guided filter instead).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..weights import load_trained_network
from ..models.eccv16 import (
    DEFAULT_TEMPERATURE,
    OFFICIAL,
    OUTPUT_STRIDE,
    SIZE_MULTIPLE,
    Eccv16Config,
    Eccv16Net,
    annealed_mean,
    normalised_entropy,
)
from ..references import Reference
from .base import ColorizedFrame, Colorizer, lightness_at_network_size, pad_to_multiple, scaled_to_short_side

#: Format tag of vidcolor's own ECCV16 weight files (written by vidcolor.training.eccv16).
WEIGHTS_FORMAT = "vidcolor-eccv16-1"
SHIPPED_FILE = "eccv16-small.pt"
_FITS = ("aspect", "square")
_UPSAMPLES = ("bilinear", "guided")


def shipped_weights_path() -> Path:
    """Where the shipped small ECCV16 weights live inside the installed package."""
    return Path(str(resources.files("vidcolor.models").joinpath("weights", SHIPPED_FILE)))


def official_installed() -> bool:
    """Whether the authors' weights have been imported (``vidcolor models import eccv16 FILE``)."""
    from .. import weights

    return all(weights.installed_files("eccv16").values())


def load_official(device: str | torch.device = "cpu", model: str = "eccv16") -> Eccv16Net:
    """The authors' network with their imported weights (strict keys, ``weights_only`` load)."""
    from .. import weights

    state = weights.load_state_dict(model, "network")
    net = Eccv16Net(OFFICIAL)
    net.load_state_dict(state, strict=True)
    return _frozen(net, device)


def load_small(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Eccv16Net, dict[str, object]]:
    """A vidcolor-trained ECCV16 variant from an inference file; returns (network, meta)."""
    return load_trained_network(
        path, family="ECCV16", weights_format=WEIGHTS_FORMAT, device=device, to_float=True,
        build=lambda config: Eccv16Net(Eccv16Config.from_dict(config)),
        missing_hint="reinstall vidcolor (the small model ships inside the package), import the authors' file with "
                     "`vidcolor models import eccv16 FILE`, or pass a file written by `python -m vidcolor.training.eccv16`")


def _frozen(net: Eccv16Net, device: str | torch.device) -> Eccv16Net:
    net.eval().to(device)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net


class Eccv16Colorizer(Colorizer):
    """Per-frame automatic colorization with the ECCV16 network (ignores references)."""

    name = "eccv16"
    needs_reference = False
    size_multiple = 1
    default_short_side = 256

    def __init__(
        self,
        device: str = "cpu",
        *,
        weights: str | os.PathLike[str] | None = None,
        vibrancy: float | None = None,
        net_short_side: int = 256,
        fit: str = "aspect",
        upsample: str = "bilinear",
        chroma_gain: float | None = None,
    ) -> None:
        self.device = torch.device(device)
        self._settings(DEFAULT_TEMPERATURE if vibrancy is None else vibrancy, net_short_side, fit, upsample,
                       1.0 if chroma_gain is None else chroma_gain)
        if weights is None:
            weights = "official" if official_installed() else "shipped"
        if weights == "official":
            self.net, self.meta = load_official(self.device), {"weights": "official"}
            self.weights = "official"
        elif weights == "shipped":
            self.net, self.meta = load_small(shipped_weights_path(), self.device)
            self.weights = "shipped"
        else:
            self.net, self.meta = load_small(weights, self.device)
            self.weights = os.fspath(weights)
        # the temperature and chroma gain chosen for these weights on validation photos (model card)
        stored_vibrancy, stored_gain = self.meta.get("vibrancy"), self.meta.get("chroma_gain")
        if vibrancy is None and isinstance(stored_vibrancy, (int, float)):
            vibrancy = float(stored_vibrancy)
        if chroma_gain is None and isinstance(stored_gain, (int, float)):
            chroma_gain = float(stored_gain)
        self._settings(DEFAULT_TEMPERATURE if vibrancy is None else vibrancy, net_short_side, fit, upsample,
                       1.0 if chroma_gain is None else chroma_gain)
        self.centres = self.net.bin_centres().to(self.device)

    @classmethod
    def from_network(cls, net: Eccv16Net, label: str, *, device: str = "cpu", vibrancy: float = DEFAULT_TEMPERATURE,
                     net_short_side: int = 256, fit: str = "aspect", upsample: str = "bilinear",
                     chroma_gain: float = 1.0) -> Eccv16Colorizer:
        """A colorizer around an already loaded network (tests, benchmarks of training snapshots)."""
        self = cls.__new__(cls)
        self.device = torch.device(device)
        self._settings(vibrancy, net_short_side, fit, upsample, chroma_gain)
        self.net, self.meta, self.weights = _frozen(net, self.device), {"weights": label}, label
        self.centres = self.net.bin_centres().to(self.device)
        return self

    def _settings(self, vibrancy: float, net_short_side: int, fit: str, upsample: str, chroma_gain: float) -> None:
        if not 0.0 <= float(vibrancy) <= 1.0:
            raise InputError(f"eccv16 vibrancy (the annealed-mean temperature T) must be in [0, 1], got {vibrancy}: "
                             "1 = mean (muted), 0 = mode (vivid), paper 0.38")
        if fit not in _FITS:
            raise InputError(f"eccv16 fit must be one of {', '.join(_FITS)}, got {fit!r}")
        if upsample not in _UPSAMPLES:
            raise InputError(f"eccv16 upsample must be one of {', '.join(_UPSAMPLES)}, got {upsample!r}")
        if int(net_short_side) < 32:
            raise InputError(f"eccv16 net_short_side must be at least 32 pixels, got {net_short_side}")
        if not 0.0 <= float(chroma_gain) <= 4.0:
            raise InputError(f"eccv16 chroma_gain must be in [0, 4], got {chroma_gain}: 1 = as decoded, 0 = gray")
        self.temperature = float(vibrancy)
        self.chroma_gain = float(chroma_gain)
        self.net_short_side = int(net_short_side)
        self.fit = fit
        self.upsample = upsample

    def reset(self) -> None:
        """Nothing to forget: every frame is colorized on its own."""

    def describe(self) -> dict[str, object]:
        return {"model": self.name, "weights": self.weights, "vibrancy": self.temperature, "chroma_gain": self.chroma_gain,
                "net_short_side": self.net_short_side, "fit": self.fit, "upsample": self.upsample}

    def _network_size(self, height: int, width: int) -> tuple[int, int]:
        if self.fit == "square":
            return self.net_short_side, self.net_short_side
        return scaled_to_short_side(height, width, self.net_short_side)

    @torch.inference_mode()
    def predict(self, lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ab (H, W, 2), confidence (H, W)) for one lightness image at its own size."""
        small, (height, width) = lightness_at_network_size(lightness, "eccv16", self._network_size)
        net_h, net_w = small.shape
        padded = pad_to_multiple(small, SIZE_MULTIPLE)
        x = torch.from_numpy(np.ascontiguousarray(padded)).to(self.device)[None, None]
        logits = self.net(x)
        ab = annealed_mean(logits, self.centres, self.temperature) * self.chroma_gain
        confidence = 1.0 - normalised_entropy(logits)[:, None]
        maps = torch.cat([ab, confidence], dim=1)
        maps = F.interpolate(maps, scale_factor=OUTPUT_STRIDE, mode="bilinear", align_corners=False)[0, :, :net_h, :net_w]
        maps_np = maps.permute(1, 2, 0).float().cpu().numpy()
        if (net_h, net_w) != (height, width):
            maps_np = cv2.resize(maps_np, (width, height), interpolation=cv2.INTER_LINEAR)
        ab_np = np.ascontiguousarray(maps_np[..., :2])
        if self.upsample == "guided" and (net_h < height or net_w < width):
            from ..color import guided_upsample

            ab_np = guided_upsample(cv2.resize(ab_np, (net_w, net_h), interpolation=cv2.INTER_AREA), lightness)
        return ab_np.astype(np.float32, copy=False), np.clip(maps_np[..., 2], 0.0, 1.0).astype(np.float32)

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        ab, confidence = self.predict(lightness)
        chroma = float(np.hypot(ab[..., 0], ab[..., 1]).mean())
        return ColorizedFrame(ab=ab, confidence=confidence, stats={"confidence": float(confidence.mean()), "chroma": chroma})


__all__ = ["Eccv16Colorizer", "load_official", "load_small", "official_installed", "shipped_weights_path"]
