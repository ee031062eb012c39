"""The three networks of *Deep Exemplar-based Video Colorization* (Zhang et al., CVPR 2019).

Written from the paper and from a description of the released networks' numerics (the parity
fixture's README); no code of the official repository is used. Module and parameter names follow
the official state dicts, so the authors' ``vgg19_conv.pth``, ``nonlocal_net_iter_76000.pth`` and
``colornet_iter_76000.pth`` load with ``strict=True`` and compute the same numbers.

- :class:`VGG19Features`: the Caffe-style VGG19 trunk; we stop at relu5_2 (the last layer used).
- :class:`WarpNet`: the correspondence subnet. Frame and reference are embedded separately by
  the same layers, so the reference side (:meth:`DeepExNet.reference`) is computed once per
  reference instead of once per frame.
- :func:`correspond`: mean-centred cosine correlation → softmax warp and similarity map, chunked
  over frame positions so memory is O(chunk × N_ref) rather than O(N_frame × N_ref); at the
  official temperature (1e-10) the softmax is numerically one-hot, so it becomes argmax + gather.
- :class:`ColorVidNet`: the 7-channel U-Net colorization subnet with ``tanh · 128`` output.
- :class:`DeepExNet`: the three together with the per-frame recurrence.

Tensors are NCHW. Lab inputs use the official convention: channels (L - 50, a, b), a and b in
Lab units. Spatial sizes must be multiples of 8 (see :func:`valid_network_size`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError, WeightsMismatchError
from ..weights.registry import ModelSpec, WeightFile, register_model

#: Per-channel means subtracted by the Caffe VGG19, in BGR order, on the [0, 1] scale.
VGG_MEAN_BGR = (0.40760392, 0.45795686, 0.48501961)
#: Added to feature norms before dividing (the official code uses Python's float epsilon).
NORM_EPS = 2.220446049250313e-16
#: The temperature of the official test script: the softmax is then numerically an argmax.
OFFICIAL_TEMPERATURE = 1e-10
#: At or below this temperature the warp is computed as argmax + gather (see :func:`correspond`).
HARD_TEMPERATURE = 1e-9
#: Network sizes must be multiples of this (the U-Net's three stride-2 levels).
SIZE_MULTIPLE = 8
#: Smallest network side: relu5_2 (1/16 scale) needs two rows for its reflection padding.
MIN_SIZE = 32
#: Default memory budget of one correlation chunk, in bytes.
DEFAULT_CHUNK_BYTES = 96 << 20

_VGG_CONVS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
)  # fmt: skip
#: Feature taps: the relu after these convs (the official WarpNet argument names say relu*_1; they are *_2).
VGG_TAPS = {"conv1_2": "r12", "conv2_2": "r22", "conv3_2": "r32", "conv4_2": "r42", "conv5_2": "r52"}


def valid_network_size(height: int, width: int) -> tuple[int, int]:
    """The smallest size ≥ (height, width) the networks accept: multiples of 8, at least 32.

    A multiple of 16 maps exactly through VGG's four poolings; a side ≡ 8 (mod 16), like the
    official 216 rows, leaves relu5_2 half a cell short, which the correspondence subnet covers by
    replicating one edge row (or column) on each side, as the official code does for the height.
    """
    return (max(MIN_SIZE, -(-height // SIZE_MULTIPLE) * SIZE_MULTIPLE), max(MIN_SIZE, -(-width // SIZE_MULTIPLE) * SIZE_MULTIPLE))


def _check_size(x: Tensor, what: str) -> None:
    h, w = x.shape[-2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h < MIN_SIZE or w < MIN_SIZE:
        raise InputError(
            f"{what} is {h}x{w}: the DeepEx networks need sides that are multiples of {SIZE_MULTIPLE} and at "
            f"least {MIN_SIZE}; pad it to {valid_network_size(h, w)[0]}x{valid_network_size(h, w)[1]} first"
        )


# --------------------------------------------------------------------------------------------
# Colour helpers the networks' inputs depend on
# --------------------------------------------------------------------------------------------


def official_lab_to_rgb(lab: Tensor) -> Tensor:
    """(L - 50, a, b) NCHW → sRGB in [0, 1] exactly as the official test script makes the VGG input.

    This is not a textbook inverse: fz is clamped at 0 but fx is not, and the constants are the
    repository's. It matters only to reproduce the official reference features bit for bit.
    """
    l_ = lab[:, 0:1] + 50.0
    fy = (l_ + 16.0) / 116.0
    fx = lab[:, 1:2] / 500.0 + fy
    fz = (fy - lab[:, 2:3] / 200.0).clamp(min=0.0)

    def finv(t: Tensor) -> Tensor:
        return torch.where(t > 0.2068966, t**3, (t - 16.0 / 116.0) / 7.787)

    x, y, z = finv(fx) * 0.95047, finv(fy), finv(fz) * 1.08883
    r = 3.24048134 * x - 1.53715152 * y - 0.49853633 * z
    g = -0.96925495 * x + 1.87599 * y + 0.04155593 * z
    b = 0.05564664 * x - 0.20404134 * y + 1.05731107 * z
    rgb = torch.cat([r, g, b], dim=1)
    encoded = torch.where(rgb > 0.0031308, 1.055 * rgb.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * rgb)
    return encoded.clamp(0.0, 1.0)


def gray_vgg_input(l_centered: Tensor) -> Tensor:
    """(N,1,H,W) L - 50 → the 3-channel gray image in [0, 1] that VGG sees for a frame."""
    gray = (l_centered + 50.0) / 100.0
    return gray.expand(-1, 3, -1, -1)


def feature_normalize(x: Tensor) -> Tensor:
    """Divide each position's feature vector by its L2 norm over channels (plus a tiny epsilon)."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + NORM_EPS)


# --------------------------------------------------------------------------------------------
# VGG19
# --------------------------------------------------------------------------------------------


class VGG19Features(nn.Module):
    """The Caffe VGG19 convolution trunk (16 convs, ``vgg19_conv.pth`` keys).

    :meth:`forward` takes RGB in [0, 1], reorders to BGR, subtracts the Caffe means and scales by
    255 (the trunk was trained on 0..255 BGR), and returns the requested relu taps. It stops at the
    deepest tap asked for, so conv5_3/conv5_4 are loaded but never run.
    """

    def __init__(self) -> None:
        super().__init__()
        for name, cin, cout in _VGG_CONVS:
            setattr(self, name, nn.Conv2d(cin, cout, kernel_size=3, padding=1))

    def forward(self, rgb: Tensor, taps: tuple[str, ...] = ("r22", "r32", "r42", "r52")) -> dict[str, Tensor]:
        mean = torch.tensor(VGG_MEAN_BGR, dtype=torch.float32).to(rgb.dtype).to(rgb.device).view(1, 3, 1, 1)
        x = (rgb.flip(1) - mean) * 255.0
        wanted = set(taps)
        out: dict[str, Tensor] = {}
        block = "1"
        for name, _, _ in _VGG_CONVS:
            if not wanted - out.keys():
                break
            if name[4] != block:
                x = F.max_pool2d(x, kernel_size=2, stride=2)
                block = name[4]
            x = F.relu(getattr(self, name)(x), inplace=True)
            tap = VGG_TAPS.get(name)
            if tap in wanted:
                out[tap] = x
        return out


# --------------------------------------------------------------------------------------------
# Correspondence subnet
# --------------------------------------------------------------------------------------------


def _conv_in_prelu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride), nn.InstanceNorm2d(cout), nn.PReLU()]


class _ResidualBlock(nn.Module):
    """pad → conv → IN → PReLU → pad → conv → IN → + input → the same PReLU again."""

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.norm = nn.InstanceNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.prelu(self.norm(self.conv1(self.pad(x))))
        y = self.norm(self.conv2(self.pad(y)))
        return self.prelu(x + y)


class WarpNet(nn.Module):
    """The correspondence subnet (``nonlocal_net_iter_76000.pth`` keys).

    Four branches bring the normalised relu2_2…relu5_2 maps to 64 channels at 1/4 scale, three
    shared residual blocks mix them, and 1x1 convs project them (``theta`` for the frame, ``phi``
    for the reference) into the space where the cosine correlation is taken.
    """

    def __init__(self) -> None:
        super().__init__()
        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.layer2_1 = nn.Sequential(*_conv_in_prelu(128, 128), *_conv_in_prelu(128, 64, stride=2))
        self.layer3_1 = nn.Sequential(*_conv_in_prelu(256, 128), *_conv_in_prelu(128, 64))
        self.layer4_1 = nn.Sequential(*_conv_in_prelu(512, 256), *_conv_in_prelu(256, 64), up)
        self.layer5_1 = nn.Sequential(*_conv_in_prelu(512, 256), up, *_conv_in_prelu(256, 64), up)
        self.layer = nn.Sequential(_ResidualBlock(256), _ResidualBlock(256), _ResidualBlock(256))
        self.theta = nn.Conv2d(256, 256, 1)
        self.phi = nn.Conv2d(256, 256, 1)

    def branches(self, feats: Mapping[str, Tensor]) -> list[Tensor]:
        """The four 64-channel branch outputs at 1/4 scale, relu5_2's edge-padded to fit."""
        f2 = self.layer2_1(feature_normalize(feats["r22"]))
        f3 = self.layer3_1(feature_normalize(feats["r32"]))
        f4 = self.layer4_1(feature_normalize(feats["r42"]))
        f5 = self.layer5_1(feature_normalize(feats["r52"]))
        dh, dw = f2.shape[2] - f5.shape[2], f2.shape[3] - f5.shape[3]
        if dh or dw:
            # A side ≡ 8 (mod 16) leaves relu5_2 one cell (two rows here) short: replicate edges.
            f5 = F.pad(f5, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="replicate")
        for f in (f3, f4, f5):
            if f.shape[2:] != f2.shape[2:]:
                raise InputError(f"WarpNet branch sizes disagree ({tuple(f.shape[2:])} vs {tuple(f2.shape[2:])}): pad the input to multiples of {SIZE_MULTIPLE}")
        return [f2, f3, f4, f5]

    def embed(self, feats: Mapping[str, Tensor]) -> Tensor:
        """The shared 256-channel embedding at 1/4 scale (before theta/phi)."""
        return self.layer(torch.cat(self.branches(feats), dim=1))

    def frame_keys(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Frame side: (N_frame, 256) centred, unit-norm query vectors, one row per 1/4-scale position."""
        return _center_normalize(self.theta(self.embed(feats)))[0].t().contiguous()

    def reference_keys(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Reference side: (256, N_ref) centred, unit-norm key vectors."""
        return _center_normalize(self.phi(self.embed(feats)))[0].contiguous()


def _center_normalize(x: Tensor) -> Tensor:
    """(1, C, H, W) → (1, C, H·W): subtract each channel's spatial mean, unit-normalise positions."""
    if x.shape[0] != 1:
        raise InputError(f"one image at a time, got a batch of {x.shape[0]}")
    flat = x.flatten(2)
    flat = flat - flat.mean(dim=-1, keepdim=True)
    return flat / (torch.linalg.vector_norm(flat, dim=1, keepdim=True) + NORM_EPS)


@dataclass
class Correspondence:
    """What the correspondence subnet hands on, at 1/4 scale.

    ``warped``: (K, Hq, Wq) reference values (Lab, L centred) pulled to each frame position;
    ``similarity``: (Hq, Wq) best cosine score; ``index``: (Hq·Wq,) best reference position
    (row-major), or ``None`` on the soft path.
    """

    warped: Tensor
    similarity: Tensor
    index: Tensor | None


def correspond(
    queries: Tensor,
    keys: Tensor,
    values: Tensor,
    shape: tuple[int, int],
    temperature: float = OFFICIAL_TEMPERATURE,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Correspondence:
    """Warp ``values`` by softmax(queries · keys / temperature), chunk by chunk of queries.

    :param queries: (N_frame, C) unit vectors; :param keys: (C, N_ref) unit vectors;
    :param values: (N_ref, K), e.g. the 4x4-pooled reference Lab; :param shape: (Hq, Wq) of the frame.

    Each row's softmax only needs that row's scores, so processing rows in chunks is exact and
    bounds memory by ``chunk_bytes``. At ``temperature ≤ HARD_TEMPERATURE`` the softmax of float
    cosine scores is one-hot (score gaps of one ulp become ≥ 100 nats), so the warp is the argmax
    position's value, found without materialising any exponentials.
    """
    n_frame, n_ref = queries.shape[0], keys.shape[1]
    hard = temperature <= HARD_TEMPERATURE
    copies = 1 if hard else 3  # scores, scaled scores and their exponentials on the soft path
    rows = max(1, min(n_frame, chunk_bytes // max(1, n_ref * queries.element_size() * copies)))
    warped = values.new_empty((n_frame, values.shape[1]))
    best = queries.new_empty((n_frame,))
    index = torch.empty((n_frame,), dtype=torch.long, device=queries.device) if hard else None
    for start in range(0, n_frame, rows):
        stop = min(n_frame, start + rows)
        scores = queries[start:stop] @ keys
        top, arg = scores.max(dim=1)
        best[start:stop] = top
        if index is not None:
            index[start:stop] = arg
            warped[start:stop] = values[arg]
        else:
            weights = torch.softmax(scores.div_(temperature), dim=1)
            warped[start:stop] = weights @ values
        del scores
    hq, wq = shape
    return Correspondence(warped.t().reshape(-1, hq, wq), best.reshape(hq, wq), index)


# --------------------------------------------------------------------------------------------
# Colorization subnet
# --------------------------------------------------------------------------------------------


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)


def _up_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout))


def _subsample(cin: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cin, 1, stride=2, groups=cin, bias=False)


class ColorVidNet(nn.Module):
    """The colorization subnet (``colornet_iter_76000.pth`` keys): a U-Net with instance norms.

    Input (N, 7, H, W): L - 50, warped a, warped b, similarity, previous (L - 50, a, b).
    Output (N, 2, H, W): ab = 128 · tanh(·). H and W must be multiples of 8.
    """

    def __init__(self, in_channels: int = 7) -> None:
        super().__init__()
        self.conv1_1 = nn.Sequential(_conv(in_channels, 32), nn.ReLU(), _conv(32, 64))
        self.conv1_2 = _conv(64, 64)
        self.conv1_2norm_ss = _subsample(64)
        self.conv2_1 = _conv(64, 128)
        self.conv2_2 = _conv(128, 128)
        self.conv2_2norm_ss = _subsample(128)
        self.conv3_1 = _conv(128, 256)
        self.conv3_2 = _conv(256, 256)
        self.conv3_3 = _conv(256, 256)
        self.conv3_3norm_ss = _subsample(256)
        self.conv4_1 = _conv(256, 512)
        self.conv4_2 = _conv(512, 512)
        self.conv4_3 = _conv(512, 512)
        for i in (5, 6):
            for j in (1, 2, 3):
                setattr(self, f"conv{i}_{j}", _conv(512, 512, dilation=2))
        self.conv7_1 = _conv(512, 512)
        self.conv7_2 = _conv(512, 512)
        self.conv7_3 = _conv(512, 512)
        self.conv8_1 = _up_conv(512, 256)
        self.conv3_3_short = _conv(256, 256)
        self.conv8_2 = _conv(256, 256)
        self.conv8_3 = _conv(256, 256)
        self.conv9_1 = _up_conv(256, 128)
        self.conv2_2_short = _conv(128, 128)
        self.conv9_2 = _conv(128, 128)
        self.conv10_1 = _up_conv(128, 128)
        self.conv1_2_short = _conv(64, 128)
        self.conv10_2 = _conv(128, 128)
        self.conv10_ab = nn.Conv2d(128, 2, 1)

    def _chain(self, x: Tensor, *names: str) -> Tensor:
        for name in names:
            x = F.relu(getattr(self, name)(x), inplace=True)
        return F.instance_norm(x, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        _check_size(x, "ColorVidNet input")
        x = F.relu(self.conv1_1(x), inplace=True)
        norm1 = self._chain(x, "conv1_2")
        norm2 = self._chain(self.conv1_2norm_ss(norm1), "conv2_1", "conv2_2")
        norm3 = self._chain(self.conv2_2norm_ss(norm2), "conv3_1", "conv3_2", "conv3_3")
        x = self._chain(self.conv3_3norm_ss(norm3), "conv4_1", "conv4_2", "conv4_3")
        x = self._chain(x, "conv5_1", "conv5_2", "conv5_3")
        x = self._chain(x, "conv6_1", "conv6_2", "conv6_3")
        x = self._chain(x, "conv7_1", "conv7_2", "conv7_3")
        x = F.relu(self.conv8_1(x).add_(self.conv3_3_short(norm3)), inplace=True)
        del norm3
        x = self._chain(x, "conv8_2", "conv8_3")
        x = F.relu(self.conv9_1(x).add_(self.conv2_2_short(norm2)), inplace=True)
        del norm2
        x = self._chain(x, "conv9_2")
        x = F.relu(self.conv10_1(x).add_(self.conv1_2_short(norm1)), inplace=True)
        del norm1
        x = F.leaky_relu(self.conv10_2(x), negative_slope=0.2, inplace=True)
        return torch.tanh(self.conv10_ab(x)) * 128.0


# --------------------------------------------------------------------------------------------
# The three together
# --------------------------------------------------------------------------------------------


@dataclass
class ReferenceFeatures:
    """Everything the per-frame step needs from a reference, computed once.

    ``keys``: (256, N_ref) centred unit vectors; ``values``: (N_ref, 3) the 4x4-pooled reference
    Lab (L - 50, a, b); ``shape``: the reference's (Hq, Wq) at 1/4 scale.
    """

    keys: Tensor
    values: Tensor
    shape: tuple[int, int]


@dataclass
class FrameResult:
    """One frame's outputs: ``ab`` (1, 2, H, W) and the correspondence behind it (1/4 scale)."""

    ab: Tensor
    correspondence: Correspondence


class DeepExNet(nn.Module):
    """VGG19 + WarpNet + ColorVidNet with the official per-frame recurrence.

    ``vggnet``, ``nonlocal_net`` and ``colornet`` take the official files' state dicts as they are.
    """

    def __init__(self) -> None:
        super().__init__()
        self.vggnet = VGG19Features()
        self.nonlocal_net = WarpNet()
        self.colornet = ColorVidNet(7)

    @classmethod
    def from_state_dicts(
        cls,
        vggnet: Mapping[str, Tensor],
        nonlocal_net: Mapping[str, Tensor],
        colornet: Mapping[str, Tensor],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> DeepExNet:
        """Build on the meta device and adopt the given tensors (no random init, no copy)."""
        with torch.device("meta"):
            net = cls()
        for module, state, label in ((net.vggnet, vggnet, "vggnet"), (net.nonlocal_net, nonlocal_net, "nonlocal_net"), (net.colornet, colornet, "colornet")):
            try:
                module.load_state_dict(strip_module_prefix(state), strict=True, assign=True)
            except RuntimeError as exc:
                detail = " ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
                detail = detail if len(detail) <= 600 else detail[:600] + " ..."
                raise WeightsMismatchError(
                    f"the {label} state dict does not fit the DeepEx network ({detail}): is it the official {label} checkpoint?"
                ) from exc
        return net.to(device=device, dtype=dtype).eval()

    def reference(self, rgb: Tensor, lab: Tensor) -> ReferenceFeatures:
        """Reference RGB in [0, 1] and its Lab (L - 50, a, b), both (1, 3, H, W) → cached features."""
        _check_size(rgb, "reference")
        keys = self.nonlocal_net.reference_keys(self.vggnet(rgb))
        pooled = F.avg_pool2d(lab, 4)
        return ReferenceFeatures(keys, pooled[0].flatten(1).t().contiguous(), (pooled.shape[2], pooled.shape[3]))

    def correspond(
        self,
        l_centered: Tensor,
        ref: ReferenceFeatures,
        temperature: float = OFFICIAL_TEMPERATURE,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> Correspondence:
        """Frame (1, 1, H, W) L - 50 → warped reference Lab and similarity at 1/4 scale."""
        _check_size(l_centered, "frame")
        queries = self.nonlocal_net.frame_keys(self.vggnet(gray_vgg_input(l_centered)))
        return correspond(queries, ref.keys, ref.values, (l_centered.shape[2] // 4, l_centered.shape[3] // 4), temperature, chunk_bytes)

    def colorize(self, l_centered: Tensor, corr: Correspondence, previous: Tensor | None) -> Tensor:
        """ColorVidNet on [L - 50, warped ab, similarity, previous Lab] (previous None → zeros)."""
        warped_ab = _upsample4(corr.warped[1:3][None])
        similarity = _upsample4(corr.similarity[None, None])
        if previous is None:
            previous = l_centered.new_zeros((1, 3) + tuple(l_centered.shape[2:]))
        return self.colornet(torch.cat([l_centered, warped_ab, similarity, previous], dim=1))

    def forward(
        self,
        l_centered: Tensor,
        ref: ReferenceFeatures,
        previous: Tensor | None = None,
        temperature: float = OFFICIAL_TEMPERATURE,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> FrameResult:
        """One recurrent step. ``previous`` is (1, 3, H, W) [L - 50, ab] of the last output, or None."""
        corr = self.correspond(l_centered, ref, temperature, chunk_bytes)
        return FrameResult(self.colorize(l_centered, corr, previous), corr)


def _upsample4(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=4, mode="nearest")


def strip_module_prefix(state: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Drop the ``module.`` prefix ``nn.DataParallel`` checkpoints carry (all keys or none)."""
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        return OrderedDict((k[len("module."):], v) for k, v in state.items())
    return OrderedDict(state.items())


def expected_tensors(network: str) -> list[tuple[str, tuple[int, ...]]]:
    """Ordered (key, shape) of one network's state dict: ``vggnet``, ``nonlocal_net`` or ``colornet``."""
    builders = {"vggnet": VGG19Features, "nonlocal_net": WarpNet, "colornet": ColorVidNet}
    if network not in builders:
        raise InputError(f"unknown DeepEx network {network!r}: use one of {', '.join(builders)}")
    with torch.device("meta"):
        module = builders[network]()
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


#: The authors' release, as ``vidcolor models import deepex PATH`` finds and checks it.
DEEPEX = register_model(
    ModelSpec(
        name="deepex",
        description="Deep Exemplar-based Video Colorization (Zhang et al., CVPR 2019), the authors' networks",
        files=(
            WeightFile("vgg19_conv.pth", "vggnet", partial(expected_tensors, "vggnet"), "data/vgg19_conv.pth"),
            WeightFile(
                "nonlocal_net_iter_76000.pth",
                "nonlocal_net",
                partial(expected_tensors, "nonlocal_net"),
                "checkpoints/video_moredata_l1/nonlocal_net_iter_76000.pth",
            ),
            WeightFile(
                "colornet_iter_76000.pth",
                "colornet",
                partial(expected_tensors, "colornet"),
                "checkpoints/video_moredata_l1/colornet_iter_76000.pth",
            ),
        ),
        licence="MIT (checkpoints and code, zhangmozhe/Deep-Exemplar-based-Video-Colorization); vgg19_conv.pth is the "
        "VGG-19 of Simonyan & Zisserman (CC BY 4.0)",
        source="https://github.com/zhangmozhe/Deep-Exemplar-based-Video-Colorization/releases (v1.0, colorization_checkpoint.zip)",
    )
)
