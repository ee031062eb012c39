"""FastNet: the ``fast`` model, a Color2Embed-style exemplar colorizer (Zhao et al. 2021) for the CPU.

No dense correspondence: the reference is reduced to one global **colour embedding** and the gray
frame is colorized by a small U-Net whose decoder convolutions are **modulated** by it.

* **Colour encoder** (``ColorEncoder``): strided convolutions on the reference's RGB, mean and
  standard-deviation pooling, plus a lightness-binned chroma palette (the reference's mean Lab ab
  in soft lightness bins, so "dark = green, bright = blue" survives the pooling), then an MLP →
  the embedding ``z``. It runs once per reference; the colorizer caches it.
* **Content encoder**: plain strided convolutions on the gray lightness at 1/2 … 1/16.
* **Progressive feature transformation decoder** (the paper's PFFN): at each scale a
  :class:`ModulatedConv2d` (StyleGAN2 weight modulation / demodulation: ``w' = w · scale · A(z)``,
  ``w'' = w' / sqrt(Σ w'² + 1e-8)`` per output kernel), upsampled and added to the encoder's
  skip. The last layer is modulated without demodulation (StyleGAN2's "toRGB") and predicts ab at
  1/2 resolution, upsampled bilinearly (the pipeline's luma-guided filter restores edges).
* **Previous frame (optional, ``use_previous``)**: the previous output's ab, the lightness change
  since the previous frame and a has-previous flag enter the content encoder; the head also
  predicts a per-pixel gate that keeps the previous ab *in place* (no flow: flow would cost more
  than the whole network). Where the lightness did not change the gate can keep last frame's
  colour, which damps flicker; where it changed the network paints from the embedding again.

Because the embedding is fixed for a reference, :meth:`FastNet.modulate` computes every modulated
weight once; per frame the network then costs exactly what a plain convolution net of the same
shape costs (about 0.2 GMAC at 160x288).

Shapes: inputs are padded to a multiple of :data:`SIZE_MULTIPLE`. Normalisation as VCNet:
lightness enters as ``L / 50 - 1``, chroma as ``ab / AB_SCALE``; the reference as RGB in [0, 1]
(and its Lab for the palette).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .vcnet import AB_SCALE

#: Every input height and width must be a multiple of this (four stride-2 stages).
SIZE_MULTIPLE = 16
#: Side of the square the reference is resized to for the colour encoder.
REFERENCE_SIDE = 128
#: Format tag of FastNet inference weights (``fast.pt``).
WEIGHTS_FORMAT = "vidcolor-fastnet-1"
#: Confidence reported for colours painted from the embedding alone (no pixel-level backing).
EMBEDDING_CONFIDENCE = 0.5

__all__ = [
    "AB_SCALE",
    "EMBEDDING_CONFIDENCE",
    "REFERENCE_SIDE",
    "SIZE_MULTIPLE",
    "WEIGHTS_FORMAT",
    "ColorEncoder",
    "FastNet",
    "FastNetConfig",
    "FastOutput",
    "ModulatedConv2d",
    "Modulation",
    "build_fastnet",
    "lab_to_rgb_torch",
]


@dataclass(frozen=True)
class FastNetConfig:
    """Every hyperparameter of the architecture (stored with the weights)."""

    #: Content encoder / decoder widths at 1/2, 1/4, 1/8, 1/16.
    channels: tuple[int, int, int, int] = (16, 32, 64, 96)
    #: Colour encoder widths (each a stride-2 convolution).
    color_channels: tuple[int, int, int, int] = (24, 48, 96, 128)
    #: Size of the colour embedding z.
    embed_dim: int = 128
    #: Soft lightness bins of the chroma palette fed to the embedding MLP.
    palette_bins: int = 8
    #: Whether the previous frame's ab is an input (video stability).
    use_previous: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FastNetConfig:
        values = dict(data)
        for key in ("channels", "color_channels"):
            if key in values:
                values[key] = tuple(values[key])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


#: A layer's modulation: folded per-sample weights (B, cout, cin, k, k), or (style (B, cin), demod (B, cout) | None).
Modulation = torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution: the embedding scales each input channel of the kernel.

    ``modulation(z, fold)`` turns the embedding into what ``forward(x, modulation)`` applies. Folded
    (``fold=True``), it is the modulated, demodulated kernel ``w'' = w' / sqrt(Σ w'² + 1e-8)`` with
    ``w' = w · scale · A(z)``, computed once per reference for inference. Unfolded it is the style
    and demodulation factors, applied to the activations around one shared convolution: the same
    function (``conv(x · s, w) · d = conv(x, w · s · d)``) but a plain batched convolution, which
    trains several times faster on the CPU than a grouped one.
    """

    def __init__(self, cin: int, cout: int, embed_dim: int, kernel: int = 3, demodulate: bool = True) -> None:
        super().__init__()
        self.cin, self.cout, self.kernel, self.demodulate = cin, cout, kernel, demodulate
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = nn.Linear(embed_dim, cin)
        nn.init.zeros_(self.affine.weight)
        nn.init.ones_(self.affine.bias)  # start as a plain convolution: style 1 on every channel
        #: He-style constant tied to the fan-in (the paper's ``s``).
        self.scale = 1.0 / math.sqrt(cin * kernel * kernel)

    def modulation(self, z: torch.Tensor, fold: bool = False) -> Modulation:
        """(B, E) embedding → this layer's modulation (see the class docstring)."""
        style = self.affine(z)
        w = self.weight[None] * self.scale * style[:, None, :, None, None]  # (B, cout, cin, k, k)
        demod = torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4)) + 1e-8) if self.demodulate else None
        if fold:
            return w * demod[:, :, None, None, None] if demod is not None else w
        return style, demod

    def forward(self, x: torch.Tensor, modulation: Modulation) -> torch.Tensor:
        pad = self.kernel // 2
        if isinstance(modulation, torch.Tensor):
            if modulation.shape[0] != 1:
                raise ValueError("folded modulated weights are for one reference: use fold=False for a batch of references")
            return F.conv2d(x, modulation[0], self.bias, padding=pad)
        style, demod = modulation
        out = F.conv2d(x * style[:, :, None, None], self.weight * self.scale, padding=pad)
        if demod is not None:
            out = out * demod[:, :, None, None]
        return out + self.bias.view(1, -1, 1, 1)


def palette(lab: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, 3, H, W) Lab → (B, 3·bins): per soft lightness bin, mean a/AB_SCALE, mean b/AB_SCALE, share."""
    centres = torch.linspace(0.0, 100.0, bins, device=lab.device, dtype=lab.dtype).view(1, bins, 1, 1)
    width = 100.0 / max(bins - 1, 1)
    weights = torch.clamp(1.0 - (lab[:, :1] - centres).abs() / width, min=0.0)  # (B, bins, H, W) triangular
    mass = weights.flatten(2).sum(2)  # (B, bins)
    ab = lab[:, 1:] / AB_SCALE
    means = torch.einsum("bkhw,bchw->bkc", weights, ab) / (mass[..., None] + 1e-3)
    share = mass / mass.sum(1, keepdim=True).clamp_min(1e-6)
    return torch.cat([means.flatten(1), share], dim=1)


class ColorEncoder(nn.Module):
    """Reference RGB (+ its Lab, for the palette) → global colour embedding z (no spatial layout)."""

    def __init__(self, cfg: FastNetConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in cfg.color_channels:
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.bins = cfg.palette_bins
        self.mlp = nn.Sequential(
            nn.Linear(2 * cin + 3 * cfg.palette_bins, 256), nn.LeakyReLU(0.2), nn.Linear(256, cfg.embed_dim)
        )

    def forward(self, rgb: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        f = self.features(rgb * 2.0 - 1.0).flatten(2)
        pooled = torch.cat([f.mean(2), f.std(2)], dim=1)
        return self.mlp(torch.cat([pooled, palette(lab, self.bins)], dim=1))


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


@dataclass
class FastOutput:
    """One frame's prediction."""

    #: (B, 2, H, W) normalised chroma (× AB_SCALE for Lab units).
    ab: torch.Tensor
    #: (B, 1, H, W) in [0, 1]: the gate towards the previous ab (0 without a previous frame).
    keep: torch.Tensor
    #: (B, 2, H, W) the chroma painted from the embedding alone (before the keep gate).
    painted: torch.Tensor


class FastNet(nn.Module):
    """Colour-embedding encoder + modulated-convolution decoder; see the module docstring."""

    def __init__(self, cfg: FastNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2, c3, c4 = cfg.channels
        e = cfg.embed_dim
        self.color_encoder = ColorEncoder(cfg)
        cin = 1 + (4 if cfg.use_previous else 0)
        self.enc2 = _conv(cin, c1, stride=2)
        self.enc4 = _conv(c1, c2, stride=2)
        self.enc8 = _conv(c2, c3, stride=2)
        self.enc8b = _conv(c3, c3)
        self.enc16 = _conv(c3, c4, stride=2)
        self.dec16 = ModulatedConv2d(c4, c4, e)
        self.up8 = ModulatedConv2d(c4, c3, e)
        self.dec8 = ModulatedConv2d(c3, c3, e)
        self.up4 = ModulatedConv2d(c3, c2, e)
        self.dec4 = ModulatedConv2d(c2, c2, e)
        self.up2 = ModulatedConv2d(c2, c1, e)
        self.head = ModulatedConv2d(c1, 3, e, demodulate=False)
        with torch.no_grad():
            self.head.bias[2] = -2.0  # start by repainting rather than keeping the previous colour

    def modulated(self) -> list[ModulatedConv2d]:
        return [self.dec16, self.up8, self.dec8, self.up4, self.dec4, self.up2, self.head]

    def embed(self, ref_rgb: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 1] and its Lab → (B, E) colour embedding."""
        return self.color_encoder(ref_rgb, ref_lab)

    def modulate(self, z: torch.Tensor, fold: bool = False) -> list[Modulation]:
        """Every decoder layer's modulation for embedding(s) ``z``; reuse it for each frame.

        ``fold=True`` (one reference, inference) bakes it into the kernels, so a frame then costs
        what a plain convolution net of the same shape costs.
        """
        return [layer.modulation(z, fold) for layer in self.modulated()]

    def forward(
        self,
        l_norm: torch.Tensor,
        weights: list[Modulation],
        previous_ab: torch.Tensor | None = None,
        previous_l: torch.Tensor | None = None,
    ) -> FastOutput:
        """Colorize ``(B, 1, H, W)`` normalised lightness with :meth:`modulate` output ``weights``.

        :param previous_ab: ``(B, 2, H, W)`` the previous frame's output chroma (normalised), or None.
        :param previous_l: ``(B, 1, H, W)`` the previous frame's normalised lightness, or None.
        """
        if l_norm.shape[-1] % SIZE_MULTIPLE or l_norm.shape[-2] % SIZE_MULTIPLE:
            raise ValueError(f"FastNet input size {tuple(l_norm.shape[-2:])} is not a multiple of {SIZE_MULTIPLE}: pad the frame first")
        act = lambda x: F.leaky_relu(x, 0.2)  # noqa: E731
        has_prev = previous_ab is not None and previous_l is not None and self.cfg.use_previous
        if self.cfg.use_previous:
            if has_prev:
                assert previous_ab is not None and previous_l is not None
                x = torch.cat([l_norm, previous_ab, previous_l - l_norm, l_norm.new_ones(()).expand_as(l_norm)], dim=1)
            else:
                x = torch.cat([l_norm, l_norm.new_zeros(l_norm.shape[0], 4, *l_norm.shape[2:])], dim=1)
        else:
            x = l_norm
        e2 = act(self.enc2(x))
        e4 = act(self.enc4(e2))
        e8 = act(self.enc8b(act(self.enc8(e4))))
        e16 = act(self.enc16(e8))
        w16, wu8, w8, wu4, w4, wu2, wh = weights
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        g = act(self.dec16(e16, w16))
        g = act(self.dec8(up(act(self.up8(g, wu8))) + e8, w8))
        g = act(self.dec4(up(act(self.up4(g, wu4))) + e4, w4))
        g = up(act(self.up2(g, wu2))) + e2
        head = self.head(g, wh)
        # nonlinearities at 1/2 resolution, then one bilinear upsampling of (painted ab, keep gate)
        if has_prev:
            assert previous_ab is not None
            out = up(torch.cat([torch.tanh(head[:, :2]), torch.sigmoid(head[:, 2:3])], dim=1))
            painted, keep = out[:, :2], out[:, 2:3]
            ab = painted + keep * (previous_ab - painted)
        else:
            painted = up(torch.tanh(head[:, :2]))
            keep = painted.new_zeros(painted.shape[0], 1, *painted.shape[2:])
            ab = painted
        return FastOutput(ab=ab, keep=keep, painted=painted)


def lab_to_rgb_torch(lab: torch.Tensor) -> torch.Tensor:
    """Differentiable CIE Lab (D65) → sRGB in [0, 1], ``(B, 3, H, W)``; for the perceptual loss."""
    l, a, b = lab[:, 0:1], lab[:, 1:2], lab[:, 2:3]
    fy = (l + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    delta = 6.0 / 29.0

    def finv(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t > delta, t.clamp_min(1e-6) ** 3, 3 * delta**2 * (t - 4.0 / 29.0))

    x, y, z = 0.950456 * finv(fx), finv(fy), 1.088754 * finv(fz)
    r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
    g = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
    bl = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z
    linear = torch.cat([r, g, bl], dim=1).clamp(0.0, 1.0)
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(1e-8) ** (1 / 2.4) - 0.055, 12.92 * linear)


def build_fastnet(
    *,
    channels: tuple[int, int, int, int] = (16, 32, 64, 96),
    color_channels: tuple[int, int, int, int] = (24, 48, 96, 128),
    embed_dim: int = 128,
    palette_bins: int = 8,
    use_previous: bool = True,
) -> FastNet:
    """Build FastNet, naming every hyperparameter (the defaults are the shipped ``fast`` model)."""
    return FastNet(FastNetConfig(channels=channels, color_channels=color_channels, embed_dim=embed_dim,
                                 palette_bins=palette_bins, use_previous=use_previous))
