"""The ``autocolor`` network: automatic colour from the frozen ImageNet trunk plus a small decoder.

vidcolor's earlier automatic models learnt from a few hundred photos with no prior about what
things are, so they painted everything a safe brownish mean. Here the semantics come from the
frozen EfficientNet-Lite0 trunk (:mod:`vidcolor.models.efficientnet_lite`, the same process-wide
copy the exemplar matcher holds), and only a small U-Net style decoder is trained on the CPU.

Formulation as seed 004 (Zhang et al., ECCV16), reusing :mod:`vidcolor.models.eccv16`'s bins and
decoding: the decoder predicts logits over the 313 ab bins at stride 4, trained with class-
rebalanced cross-entropy, and decoded with the annealed mean at temperature T (``vibrancy``).

Decoder (:class:`AutocolorDecoder`): the stride-32 features with their global mean (scene
context: "outdoors", "a face"), then upsampling x2 with a skip from each of strides 16, 8 and 4
(and the lightness at stride 4), one 3x3 conv + BN + ReLU per stage, a 1x1 conv to 313 logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .eccv16 import Q, ab_bins, annealed_mean, normalised_entropy
from .efficientnet_lite import FEATURE_CHANNELS, SIZE_MULTIPLE, EfficientNetLite

#: Trunk strides the decoder reads, deepest first.
STRIDES = (32, 16, 8, 4)
#: The logits' stride: the decoder stops at the stride-4 skip.
OUTPUT_STRIDE = 4
#: Input sides must be multiples of this (the trunk's stride-32 grid).
INPUT_MULTIPLE = SIZE_MULTIPLE


@dataclass(frozen=True)
class AutocolorConfig:
    """Channel widths of the decoder's stages at strides 32, 16, 8 and 4."""

    widths: tuple[int, int, int, int] = (128, 128, 96, 64)
    #: Feed the stride-32 features' spatial mean to every position (global scene context).
    global_context: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"widths": list(self.widths), "global_context": self.global_context}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> AutocolorConfig:
        widths = tuple(int(w) for w in data["widths"])  # type: ignore[union-attr]
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"an autocolor config needs 4 positive widths, got {widths}")
        return cls(widths=widths, global_context=bool(data.get("global_context", True)))  # type: ignore[arg-type]


def _conv(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class AutocolorDecoder(nn.Module):
    """Trunk features (stride → map) and lightness at stride 4 → 313 ab-bin logits at stride 4."""

    def __init__(self, config: AutocolorConfig = AutocolorConfig()) -> None:
        super().__init__()
        self.config = config
        w32, w16, w8, w4 = config.widths
        c = FEATURE_CHANNELS
        self.stage32 = nn.Sequential(_conv(c[32] * (2 if config.global_context else 1), w32, 1), _conv(w32, w32, 3))
        self.stage16 = _conv(w32 + c[16], w16, 3)
        self.stage8 = _conv(w16 + c[8], w8, 3)
        self.stage4 = _conv(w8 + c[4] + 1, w4, 3)
        self.logits = nn.Conv2d(w4, Q, 1)

    def forward(self, features: dict[int, torch.Tensor], lightness4: torch.Tensor) -> torch.Tensor:
        x = features[32].float()
        if self.config.global_context:
            x = torch.cat([x, x.mean(dim=(2, 3), keepdim=True).expand_as(x)], dim=1)
        x = self.stage32(x)
        for stride, stage in ((16, self.stage16), (8, self.stage8)):
            skip = features[stride].float()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
        skip = features[4].float()
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.stage4(torch.cat([x, skip, (lightness4.float() - 50.0) / 50.0], dim=1))
        return self.logits(x)


def lightness_at_stride4(lightness: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) lightness averaged over 4x4 blocks: the decoder's last skip (H, W multiples of 4)."""
    return F.avg_pool2d(lightness, OUTPUT_STRIDE)


class AutocolorNet(nn.Module):
    """The frozen trunk (not a submodule: it is shared and not saved) and the trained decoder.

    ``forward(lightness)`` takes Lab L (N, 1, H, W) with H and W multiples of 32 and returns the
    logits (N, 313, H/4, W/4); :meth:`decode` turns them into ab and a confidence.
    """

    def __init__(self, backbone: EfficientNetLite, config: AutocolorConfig = AutocolorConfig()) -> None:
        super().__init__()
        self.decoder = AutocolorDecoder(config)
        self._backbone = (backbone,)  # a tuple keeps it out of state_dict() and .to()
        self.register_buffer("centres", torch.from_numpy(ab_bins()), persistent=False)

    @property
    def backbone(self) -> EfficientNetLite:
        return self._backbone[0]

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.backbone(lightness, STRIDES)
        return self.decoder(features, lightness_at_stride4(lightness))

    def decode(self, logits: torch.Tensor, temperature: float,
               adjustment: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ab (N, 2, h, w), confidence (N, 1, h, w)) at the logits' grid: the annealed mean at
        ``temperature`` of the logits minus ``adjustment`` (Q,) and 1 - normalised entropy (a peaked
        distribution is a sure one).

        Training with class-rebalancing weights w tilts the predicted distribution by w; taking
        ``α·log w`` back out (logit adjustment) moves it toward the plain posterior, trading the rare
        vivid colours rebalancing favours for accuracy (α is the model card's ``prior_correction``).
        """
        if adjustment is not None:
            logits = logits - adjustment.to(logits).view(1, -1, 1, 1)
        ab = annealed_mean(logits, self.centres, temperature)
        return ab, 1.0 - normalised_entropy(logits)[:, None]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["AutocolorConfig", "AutocolorDecoder", "AutocolorNet", "INPUT_MULTIPLE", "OUTPUT_STRIDE", "STRIDES",
           "count_parameters", "lightness_at_stride4"]
