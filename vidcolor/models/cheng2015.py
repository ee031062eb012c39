"""Deep Colorization (Cheng, Yang and Sheng, ICCV 2015 / TIP): per-pixel descriptors → small
regressors → luma-guided joint bilateral refinement, with one regressor per image cluster.

What this module keeps from the paper (seed 002) and what it changes, and why:

* **Per-pixel descriptor.** The paper concatenates a 7×7 gray patch (49-D), a DAISY descriptor of
  4 locations × 8 orientations (32-D) and a 33-D semantic class vector from an FCN scene parser.
  vidcolor has the first two exactly (DAISY from :func:`skimage.feature.daisy`, dense, one ring of
  3 histograms plus the centre = 4 locations × 8 orientations, unnormalised so flat regions keep a
  small response). **No pretrained semantic network is available offline**, so the semantic part
  is replaced by a 3-D cheap *context* (row position, lightness blurred at two large scales): it
  tells sky from ground far less well than scene parsing would.
* **Regressor.** Three hidden ReLU layers and a linear 2-D output, trained by least squares as in
  the paper. The output is CIE **Lab ab**, not the paper's YUV UV: vidcolor's colorizers exchange
  Lab ab and the output luma is always the input's, so predicting ab avoids a round trip.
* **Adaptive image clustering.** The paper clusters gist descriptors hierarchically (24 top-level
  clusters, thousands of images). With ~400 training photos vidcolor uses one flat k-means layer
  (k = 3 by default) on a gist-like global descriptor (4×4 grid of mean lightness and of 8-bin
  gradient-orientation energy). Each cluster's regressor starts from a regressor trained on all
  images (also kept: it is the fallback and gives the confidence map). A test image goes to the
  nearest centre (the paper's semantic-histogram tie-break needs the missing semantic labels).
* **Training.** Least squares as in the paper, with weight decay and early stopping on held-out
  photos: with so few photos the regressors otherwise memorise them. A stored global chroma gain
  (``chroma_gain``, 1.2 in the shipped file) trades raw accuracy for colourfulness; the model card
  gives the held-out table it was chosen from.
* **Post-processing.** Joint bilateral filtering of the predicted chroma guided by the gray image
  (OpenCV's ``cv2.ximgproc.jointBilateralFilter``), as the paper's chrominance refinement.
* **Speed.** Descriptors are dense; the regressors may run on every ``stride``-th pixel and the
  chroma is then upsampled guided by the luma (:func:`vidcolor.color.guided_upsample`).

All state (descriptor normalisation, cluster centres, regressor weights) is tensors, loadable with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from skimage.feature import daisy
from torch import nn

from ..color import guided_upsample
from ..errors import InputError, WeightsMismatchError, WeightsNotFoundError
from ..weights import note_loaded

#: Format tag of the shipped weight file (checked on load).
WEIGHTS_FORMAT = "vidcolor-cheng2015-v1"
#: Side of the gray patch around each pixel (paper: 7×7).
PATCH = 7
#: DAISY geometry: 1 ring of 3 histograms + the centre = 4 locations, 8 orientations (paper: 32-D).
DAISY_RINGS, DAISY_HISTOGRAMS, DAISY_ORIENTATIONS = 1, 3, 8
#: DAISY radius in pixels at the working resolution (short side ~256).
DAISY_RADIUS = 10
#: Context features standing in for the missing semantic vector: row, blur at two scales.
CONTEXT_SIGMAS = (0.04, 0.15)
DESCRIPTOR_SIZE = PATCH * PATCH + (1 + DAISY_RINGS * DAISY_HISTOGRAMS) * DAISY_ORIENTATIONS + 1 + len(CONTEXT_SIGMAS)
#: Global descriptor: 4×4 grid of mean lightness + 4×4 grid × 8 orientation energies.
GLOBAL_GRID, GLOBAL_ORIENTATIONS = 4, 8
GLOBAL_SIZE = GLOBAL_GRID * GLOBAL_GRID * (1 + GLOBAL_ORIENTATIONS)
#: Regressors predict ab / AB_SCALE.
AB_SCALE = 100.0


@dataclass(frozen=True)
class RefineSettings:
    """Joint bilateral refinement of the predicted chroma, guided by lightness.

    ``sigma_color`` is in lightness units (0..100); ``diameter`` and ``sigma_space`` in pixels at
    the working resolution. The paper does not state its values; these were chosen on held-out
    photos (see the model card).
    """

    diameter: int = 15
    sigma_color: float = 8.0
    sigma_space: float = 6.0
    passes: int = 1


# -- descriptors ------------------------------------------------------------------------------
def _check_lightness(lightness: np.ndarray) -> np.ndarray:
    image = np.asarray(lightness, dtype=np.float32)
    if image.ndim != 2 or min(image.shape) < 8:
        raise InputError(f"cheng2015 needs a 2-D lightness image of at least 8x8 pixels, got shape {image.shape}")
    return image


def patch_features(lightness: np.ndarray) -> np.ndarray:
    """(H, W, 49): the 7×7 neighbourhood of each pixel, lightness / 100 − 0.5, edges reflected."""
    image = _check_lightness(lightness) / 100.0 - 0.5
    half = PATCH // 2
    padded = np.pad(image, half, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (PATCH, PATCH))
    return np.ascontiguousarray(windows.reshape(image.shape[0], image.shape[1], PATCH * PATCH))


def daisy_features(lightness: np.ndarray) -> np.ndarray:
    """(H, W, 32): dense DAISY (4 locations × 8 orientations) at every pixel.

    skimage evaluates DAISY only where the whole descriptor fits, so the image is reflect-padded by
    the radius first. Histograms are left unnormalised: normalising would blow sensor noise in flat
    sky up to full-strength texture, the very artefact the paper's refinement has to clean.
    """
    image = _check_lightness(lightness) / 100.0
    padded = np.pad(image, DAISY_RADIUS, mode="reflect")
    features = daisy(padded, step=1, radius=DAISY_RADIUS, rings=DAISY_RINGS, histograms=DAISY_HISTOGRAMS,
                     orientations=DAISY_ORIENTATIONS, normalization="off")
    return np.ascontiguousarray(features[: image.shape[0], : image.shape[1]], dtype=np.float32)


def context_features(lightness: np.ndarray) -> np.ndarray:
    """(H, W, 3): the row (0 top .. 1 bottom) and the lightness blurred at two large scales.

    A cheap stand-in for the paper's semantic vector: where in the frame and in what surround.
    """
    image = _check_lightness(lightness) / 100.0 - 0.5
    height, width = image.shape
    short = min(height, width)
    rows = np.broadcast_to(np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None], (height, width))
    planes = [rows]
    for sigma in CONTEXT_SIGMAS:
        planes.append(cv2.GaussianBlur(image, (0, 0), sigma * short, borderType=cv2.BORDER_REFLECT))
    return np.stack(planes, axis=-1).astype(np.float32)


def pixel_descriptors(lightness: np.ndarray) -> np.ndarray:
    """(H, W, DESCRIPTOR_SIZE) float32: patch, DAISY and context features of every pixel."""
    return np.concatenate([patch_features(lightness), daisy_features(lightness), context_features(lightness)], axis=-1)


def global_descriptor(lightness: np.ndarray) -> np.ndarray:
    """(GLOBAL_SIZE,) float32: a gist-like summary for routing an image to a cluster.

    Gist (the paper's choice) pools oriented filter energy over a 4×4 grid; this pools gradient
    orientation energy (8 bins) and mean lightness over a 4×4 grid of a 64×64 thumbnail.
    """
    image = _check_lightness(lightness) / 100.0
    thumb = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(thumb, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(thumb, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((angle / np.pi * GLOBAL_ORIENTATIONS).astype(np.int32), GLOBAL_ORIENTATIONS - 1)
    cell = 64 // GLOBAL_GRID
    means = thumb.reshape(GLOBAL_GRID, cell, GLOBAL_GRID, cell).mean(axis=(1, 3)).ravel()
    energy = np.zeros((GLOBAL_GRID, GLOBAL_GRID, GLOBAL_ORIENTATIONS), np.float64)
    cy, cx = np.divmod(np.arange(64 * 64), 64)
    np.add.at(energy, (cy // cell, cx // cell, bins.ravel()), magnitude.ravel())
    energy /= cell * cell
    return np.concatenate([means, np.sqrt(energy.ravel())]).astype(np.float32)


def nearest_cluster(descriptor: np.ndarray | torch.Tensor, centres: np.ndarray | torch.Tensor) -> int:
    """Index of the centre nearest (Euclidean) to ``descriptor`` (both already standardised)."""
    d = torch.as_tensor(np.asarray(descriptor, dtype=np.float32)).reshape(1, -1)
    c = torch.as_tensor(np.asarray(centres, dtype=np.float32))
    if c.ndim != 2 or c.shape[1] != d.shape[1]:
        raise InputError(f"cluster centres of shape {tuple(c.shape)} do not fit a descriptor of size {d.shape[1]}")
    return int(torch.cdist(d, c).argmin())


# -- refinement -------------------------------------------------------------------------------
def joint_bilateral(ab: np.ndarray, lightness: np.ndarray, settings: RefineSettings = RefineSettings()) -> np.ndarray:
    """Smooth chroma with OpenCV's joint bilateral filter, guided by lightness (edges kept)."""
    guide = np.ascontiguousarray(_check_lightness(lightness), dtype=np.float32)
    out = np.ascontiguousarray(ab, dtype=np.float32).copy()
    if out.shape[:2] != guide.shape:
        raise InputError(f"chroma {out.shape[:2]} and lightness {guide.shape} differ in size: resize one to the other")
    for _ in range(settings.passes):
        for channel in range(out.shape[2]):
            out[..., channel] = cv2.ximgproc.jointBilateralFilter(
                guide, np.ascontiguousarray(out[..., channel]), settings.diameter, settings.sigma_color,
                settings.sigma_space)
    return out


# -- the network ------------------------------------------------------------------------------
class Regressor(nn.Module):
    """Descriptor → ab: three hidden ReLU layers, linear output (the paper's DNN)."""

    def __init__(self, inputs: int = DESCRIPTOR_SIZE, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass(frozen=True)
class Cheng2015Config:
    clusters: int = 3
    hidden: int = 128

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cheng2015Config:
        return cls(clusters=int(data["clusters"]), hidden=int(data["hidden"]))


class Cheng2015(nn.Module):
    """Normalisation buffers, cluster centres, one all-image regressor and one per cluster.

    ``regressors[0]`` is trained on every image; ``regressors[1 + k]`` on cluster ``k``.
    """

    def __init__(self, config: Cheng2015Config = Cheng2015Config()) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("descriptor_mean", torch.zeros(DESCRIPTOR_SIZE))
        self.register_buffer("descriptor_std", torch.ones(DESCRIPTOR_SIZE))
        self.register_buffer("global_mean", torch.zeros(GLOBAL_SIZE))
        self.register_buffer("global_std", torch.ones(GLOBAL_SIZE))
        self.register_buffer("centres", torch.zeros(config.clusters, GLOBAL_SIZE))
        self.register_buffer("chroma_gain", torch.ones(()))
        self.regressors = nn.ModuleList(Regressor(DESCRIPTOR_SIZE, config.hidden) for _ in range(config.clusters + 1))

    def route(self, lightness: np.ndarray) -> int:
        """The cluster of the image (index into ``centres``)."""
        g = (torch.from_numpy(global_descriptor(lightness)) - self.global_mean) / self.global_std
        return nearest_cluster(g, self.centres)

    def regress(self, descriptors: np.ndarray | torch.Tensor, which: int) -> torch.Tensor:
        """ab (N, 2) of descriptors (N, D) by regressor ``which`` (0 = all images), times the
        stored ``chroma_gain``."""
        x = torch.as_tensor(descriptors, dtype=torch.float32)
        x = (x - self.descriptor_mean) / self.descriptor_std
        return self.regressors[which](x) * (AB_SCALE * self.chroma_gain)


@dataclass(frozen=True)
class Prediction:
    """Chroma of one image: refined ab, the raw regressor outputs, confidence and the cluster."""

    ab: np.ndarray
    raw: np.ndarray
    fallback: np.ndarray
    confidence: np.ndarray
    cluster: int


def predict(model: Cheng2015, lightness: np.ndarray, *, stride: int = 1, refine: RefineSettings | None = RefineSettings(),
            use_clusters: bool = True, agreement_scale: float = 20.0) -> Prediction:
    """Colorize one lightness image (float32 (H, W) in [0, 100]).

    The routed cluster's regressor gives the colour; the all-image regressor runs beside it and the
    two agreeing is the confidence (``exp(-|Δab| / agreement_scale)``): a crude ensemble
    disagreement, not a calibrated probability. ``stride > 1`` runs the regressors on a sparse
    grid and upsamples the chroma guided by the luma.
    """
    image = _check_lightness(lightness)
    if stride < 1:
        raise InputError(f"stride must be at least 1, got {stride}")
    height, width = image.shape
    descriptors = pixel_descriptors(image)[::stride, ::stride]
    grid_h, grid_w = descriptors.shape[:2]
    flat = torch.from_numpy(np.ascontiguousarray(descriptors.reshape(-1, DESCRIPTOR_SIZE)))
    cluster = model.route(image) if use_clusters else -1
    with torch.inference_mode():
        fallback = model.regress(flat, 0).reshape(grid_h, grid_w, 2).numpy()
        raw = fallback if cluster < 0 else model.regress(flat, 1 + cluster).reshape(grid_h, grid_w, 2).numpy()
    if stride > 1:
        raw = guided_upsample(np.ascontiguousarray(raw), image)[:height, :width]
        fallback = guided_upsample(np.ascontiguousarray(fallback), image)[:height, :width]
    ab = raw if refine is None else joint_bilateral(raw, image, refine)
    disagreement = np.linalg.norm(raw - fallback, axis=-1)
    confidence = np.exp(-disagreement / agreement_scale).astype(np.float32)
    if refine is not None:
        confidence = np.clip(joint_bilateral(confidence[..., None], image, refine)[..., 0], 0.0, 1.0)
    return Prediction(ab.astype(np.float32), raw.astype(np.float32), fallback.astype(np.float32), confidence, cluster)


# -- weight files -----------------------------------------------------------------------------
def weights_payload(model: Cheng2015, meta: dict[str, Any]) -> dict[str, Any]:
    """What :func:`load_cheng2015` reads: format tag, config, tensors, plain-data meta."""
    return {"format": WEIGHTS_FORMAT, "config": asdict(model.config),
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}, "meta": meta}


def default_weights_path() -> Path:
    """The shipped weights inside the installed package."""
    return Path(__file__).resolve().parent / "weights" / "cheng2015.pt"


def load_cheng2015(path: str | os.PathLike[str] | None = None) -> tuple[Cheng2015, dict[str, Any]]:
    """Load weights written by :mod:`vidcolor.training.cheng2015` (``weights_only=True``)."""
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"cheng2015 weights {str(path)!r} are missing: reinstall vidcolor (they ship inside the package) or "
            "train them with `python -m vidcolor.training.cheng2015 --out PATH`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        note_loaded(path)  # named in the run signature of --resume
    except Exception as exc:  # truncated or foreign file
        raise WeightsMismatchError(f"{str(path)!r} is not a readable cheng2015 weights file ({exc}): retrain or reinstall it") from exc
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise WeightsMismatchError(f"{str(path)!r} is not cheng2015 weights (format tag {WEIGHTS_FORMAT!r} missing)")
    model = Cheng2015(Cheng2015Config.from_dict(payload["config"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise WeightsMismatchError(f"{str(path)!r} does not fit the cheng2015 model it names: {exc}") from exc
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, dict(payload.get("meta", {}))
