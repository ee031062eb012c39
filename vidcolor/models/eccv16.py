"""The ECCV16 automatic colorization network (Zhang, Isola, Efros, "Colorful Image Colorization").

The network maps Lab lightness to a distribution over :data:`Q` = 313 quantized ab colours
(grid 10) at a quarter of the input resolution. This module also holds everything the paper
defines around that distribution, shared by inference (:mod:`vidcolor.colorizers.eccv16`) and
training (:mod:`vidcolor.training.eccv16`):

* :func:`ab_bins`: the 313 bin centres, in the order of the authors' release (a-major, then b);
* :func:`soft_encode`: ground-truth ab → soft target over the k nearest bins (Gaussian kernel);
* :func:`rebalance_weights`: class-rebalancing weights from an empirical prior (Eq. 6);
* :func:`annealed_mean`: the annealed-mean decoding with temperature T (Eq. 8).

The layer layout and names follow the authors' PyTorch port exactly (``model1`` ... ``model8``,
``model_out``), so their release ``colorization_release_v2-9b330a0b.pth`` loads with
``strict=True``; :class:`Eccv16Config` scales the channel widths for the small CPU-trained variant,
which shares every line of code.

Which 313 bins? The paper keeps "the Q = 313 values which are in-gamut" on a grid of 10. A strict
sRGB rule does not give 313: grid centres whose Lab colour is sRGB for some L number 229, and grid
cells touched by any sRGB colour 261 (measured with skimage's D65 conversion); no dilation of the
sRGB gamut reproduces the set exactly either. The authors' set was estimated from ImageNet pixels
and is slightly wider than sRGB (every centre lies within 15 ab units of an sRGB colour). Because
the released ``model_out`` layer stores exactly those centres (divided by 110), in a fixed order,
vidcolor uses that set, written below as one contiguous b range per a column (20 rows, 313 bins);
the small network therefore predicts the very same classes as the official one. With official
weights the centres are read back from ``model_out`` itself, so decoding never depends on this
table matching (a test checks it does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..weights.registry import ModelSpec, WeightFile, register_model, release_hash_prefix

#: Number of quantized ab classes.
Q = 313
#: Grid spacing of the ab quantization.
GRID = 10
#: The release multiplies the network's ab output by this (``model_out`` holds centres / 110).
AB_NORM = 110.0
#: Lightness normalisation of the input: (L - 50) / 100.
L_CENT, L_NORM = 50.0, 100.0
#: Output stride of the network (its 1/4-resolution distribution is upsampled x4).
OUTPUT_STRIDE = 4
#: Input sizes must be a multiple of this (three stride-2 convolutions).
SIZE_MULTIPLE = 8
#: Temperature of the annealed mean: the published paper and the authors' code use 0.38 (the
#: arXiv text in ../shared/seeds says T = 1/6; both are reachable through ``vibrancy``).
DEFAULT_TEMPERATURE = 0.38
#: Soft-encoding neighbours and kernel width (published version: 5 and 5; the arXiv text says 10).
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
#: Rebalancing mix with the uniform distribution, and prior smoothing width.
REBALANCE_LAMBDA = 0.5
PRIOR_SIGMA = 5.0

#: The authors' in-gamut bins as (a, lowest b, highest b) per a column, step 10 both ways.
_GAMUT_COLUMNS: tuple[tuple[int, int, int], ...] = (
    (-90, 50, 90), (-80, 20, 90), (-70, 0, 90), (-60, -20, 90), (-50, -30, 100),
    (-40, -40, 100), (-30, -50, 100), (-20, -50, 100), (-10, -60, 100), (0, -70, 100),
    (10, -80, 90), (20, -80, 90), (30, -90, 90), (40, -100, 90), (50, -100, 80),
    (60, -110, 80), (70, -110, 80), (80, -110, 70), (90, -110, 70), (100, -90, 0),
)


@lru_cache(maxsize=1)
def _bins() -> np.ndarray:
    points = [(a, b) for a, low, high in _GAMUT_COLUMNS for b in range(low, high + 1, GRID)]
    out = np.asarray(points, dtype=np.float32)
    out.setflags(write=False)
    return out


def ab_bins() -> np.ndarray:
    """The 313 ab bin centres, float32 ``(313, 2)``, a-major then b (the release's order); a copy."""
    return _bins().copy()


# --------------------------------------------------------------------------------------------
# network


@dataclass(frozen=True)
class Eccv16Config:
    """Channel widths of blocks 1..8 (the official network: 64, 128, 256, 512 x4, 256)."""

    widths: tuple[int, int, int, int, int, int, int, int] = (64, 128, 256, 512, 512, 512, 512, 256)

    def to_dict(self) -> dict[str, object]:
        return {"widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Eccv16Config:
        widths = tuple(int(w) for w in data["widths"])  # type: ignore[union-attr]
        if len(widths) != 8 or min(widths) < 1:
            raise ValueError(f"an ECCV16 config needs 8 positive widths, got {widths}")
        return cls(widths=widths)  # type: ignore[arg-type]


#: The authors' network.
OFFICIAL = Eccv16Config()
#: vidcolor's shipped CPU variant: a quarter of the channels (1/16 of the computation).
SMALL = Eccv16Config(widths=(16, 32, 64, 128, 128, 128, 128, 64))


def _block(cin: int, cout: int, convs: int, *, stride_last: int = 1, dilation: int = 1) -> nn.Sequential:
    """``convs`` x (conv 3x3 + ReLU), then BatchNorm: the paper's block (indices as in the release)."""
    layers: list[nn.Module] = []
    for i in range(convs):
        stride = stride_last if i == convs - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(True)]
    layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class Eccv16Net(nn.Module):
    """L (B, 1, H, W) in [0, 100] → class logits (B, 313, H/4, W/4).

    ``forward`` returns the logits (what training and the annealed mean need); :meth:`regress`
    reproduces the release's own output (softmax → ``model_out`` → x110 → bilinear x4), i.e. the
    distribution mean (T = 1).
    """

    def __init__(self, config: Eccv16Config = OFFICIAL) -> None:
        super().__init__()
        self.config = config
        w1, w2, w3, w4, w5, w6, w7, w8 = config.widths
        self.model1 = _block(1, w1, 2, stride_last=2)
        self.model2 = _block(w1, w2, 2, stride_last=2)
        self.model3 = _block(w2, w3, 3, stride_last=2)
        self.model4 = _block(w3, w4, 3)
        self.model5 = _block(w4, w5, 3, dilation=2)
        self.model6 = _block(w5, w6, 3, dilation=2)
        self.model7 = _block(w6, w7, 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(w7, w8, 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(w8, w8, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(w8, w8, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(w8, Q, 1),
        )
        self.model_out = nn.Conv2d(Q, 2, 1, bias=False)
        with torch.no_grad():
            self.model_out.weight.copy_(torch.from_numpy(ab_bins().T.copy()).reshape(2, Q, 1, 1) / AB_NORM)
        self.model_out.weight.requires_grad_(False)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = (lightness - L_CENT) / L_NORM
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7, self.model8):
            x = block(x)
        return x

    def bin_centres(self) -> torch.Tensor:
        """(313, 2) ab centres as this network's ``model_out`` holds them (x110)."""
        return self.model_out.weight.detach()[:, :, 0, 0].t() * AB_NORM

    def regress(self, lightness: torch.Tensor) -> torch.Tensor:
        """The release's output: mean ab (B, 2, H, W) at the input size."""
        out = self.model_out(torch.softmax(self.forward(lightness), dim=1)) * AB_NORM
        return F.interpolate(out, scale_factor=OUTPUT_STRIDE, mode="bilinear", align_corners=False)


def expected_tensors(config: Eccv16Config = OFFICIAL) -> list[tuple[str, tuple[int, ...]]]:
    """Ordered (key, shape) of the network's state dict, computed on the meta device."""
    with torch.device("meta"):
        net = Eccv16Net(config)
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.state_dict().values() if p.is_floating_point())


# --------------------------------------------------------------------------------------------
# encoding, rebalancing, decoding


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, k: int = SOFT_NEIGHBOURS, sigma: float = SOFT_SIGMA) -> torch.Tensor:
    """Soft target over the bins: ab (..., 2) → (..., Q), non-zero on the ``k`` nearest bins.

    Each neighbour gets ``exp(-d² / 2σ²)`` of its distance ``d`` to the true colour, normalised to
    sum to 1 (the paper's H_gt⁻¹); the largest share is always the nearest bin's.
    """
    flat = ab.reshape(-1, 2).float()
    d2 = torch.cdist(flat, centres.float()).pow(2)
    near_d2, near = torch.topk(d2, k, dim=1, largest=False)
    weights = torch.exp(-near_d2 / (2.0 * sigma * sigma))
    weights = weights / weights.sum(dim=1, keepdim=True)
    out = torch.zeros(flat.shape[0], centres.shape[0], dtype=weights.dtype, device=ab.device)
    out.scatter_(1, near, weights)
    return out.reshape(*ab.shape[:-1], centres.shape[0])


def nearest_bin(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest bin for ab (..., 2) → (...) int64."""
    flat = ab.reshape(-1, 2).float()
    return torch.cdist(flat, centres.float()).argmin(dim=1).reshape(ab.shape[:-1])


def smooth_prior(counts: np.ndarray, sigma: float = PRIOR_SIGMA, centres: np.ndarray | None = None) -> np.ndarray:
    """Empirical bin probabilities smoothed by a Gaussian of ``sigma`` ab units (G_σ ∘ p).

    The kernel acts in ab space between bin centres (mass moves to neighbours at distance 10 with
    weight exp(-2) ≈ 0.14 for σ = 5), and preserves total mass.
    """
    c = ab_bins() if centres is None else centres
    p = np.asarray(counts, dtype=np.float64)
    if p.shape != (c.shape[0],) or p.sum() <= 0:
        raise ValueError(f"need {c.shape[0]} non-negative bin counts with a positive sum, got shape {p.shape}")
    p = p / p.sum()
    d2 = ((c[:, None, :].astype(np.float64) - c[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * sigma * sigma))
    kernel /= kernel.sum(axis=0, keepdims=True)  # each source bin spreads exactly its own mass
    smoothed = kernel @ p
    return smoothed / smoothed.sum()


def rebalance_weights(prior: np.ndarray, lam: float = REBALANCE_LAMBDA) -> np.ndarray:
    """Eq. 6: ``w ∝ ((1-λ)·p̃ + λ/Q)⁻¹`` with ``Σ_q p̃_q w_q = 1`` (weight 1 on expectation).

    ``prior`` is the smoothed empirical distribution p̃; λ = 1 gives all-ones (no rebalancing).
    """
    p = np.asarray(prior, dtype=np.float64)
    p = p / p.sum()
    w = 1.0 / ((1.0 - lam) * p + lam / p.size)
    w /= float((p * w).sum())
    return w.astype(np.float32)


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE, dim: int = 1) -> torch.Tensor:
    """Eq. 8: E[f_T(log Z)] with f_T(z) = softmax(z / T); logits (B, Q, H, W) → ab (B, 2, H, W).

    Since ``log softmax(x) = x - const``, ``f_T(log Z) = softmax(x / T)`` exactly. T = 1 gives the
    mean, T → 0 the mode (T ≤ 1e-4 is treated as the mode itself, avoiding overflow).
    """
    if temperature <= 1e-4:
        index = logits.argmax(dim=dim)
        ab = centres[index]  # (B, H, W, 2)
        return ab.movedim(-1, dim)
    probs = torch.softmax(logits.float() / temperature, dim=dim)
    return torch.einsum("bqhw,qc->bchw", probs, centres.float().to(probs.device))


def normalised_entropy(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Entropy of softmax(logits) divided by log Q, in [0, 1] (1 = uniform, 0 = certain)."""
    logp = torch.log_softmax(logits.float(), dim=dim)
    entropy = -(logp.exp() * logp).sum(dim=dim)
    return (entropy / math.log(logits.shape[dim])).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# The authors' release file, as ``vidcolor models import eccv16 FILE`` checks it
# --------------------------------------------------------------------------------------------

#: The authors' PyTorch release file (its name carries the start of its SHA-256).
ECCV16_RELEASE = "colorization_release_v2-9b330a0b.pth"


def eccv16_spec(name: str = "eccv16", filename: str = ECCV16_RELEASE) -> ModelSpec:
    """The ECCV16 model spec for a release file name: strict keys of the official network, and the
    SHA-256 prefix the name carries (a file whose hash does not start with it is refused).

    The registry holds ``eccv16_spec()``; tests register the same spec under another name for a
    synthetic file named after its own hash, so acceptance and refusal run the real code path.
    """
    return ModelSpec(
        name=name,
        description="Colorful Image Colorization (Zhang, Isola, Efros, ECCV 2016), the authors' network (automatic, no reference)",
        files=(WeightFile(filename, "network", partial(expected_tensors, OFFICIAL), sha256_prefix=release_hash_prefix(filename)),),
        licence="BSD-2-Clause (richzhang/colorization, code and released models)",
        source=f"https://github.com/richzhang/colorization (PyTorch port; release file {filename})",
    )


ECCV16 = register_model(eccv16_spec())


__all__ = [
    "AB_NORM", "DEFAULT_TEMPERATURE", "ECCV16", "ECCV16_RELEASE", "Eccv16Config", "Eccv16Net", "OFFICIAL", "Q", "SIZE_MULTIPLE", "SMALL",
    "ab_bins", "annealed_mean", "eccv16_spec", "expected_tensors", "nearest_bin", "normalised_entropy", "rebalance_weights",
    "smooth_prior", "soft_encode",
]
