"""VCNet: a small recurrent exemplar colorizer for the CPU (after Zhang et al., CVPR 2019).

Two sub-networks, as in Deep Exemplar-based Video Colorization, sized for a laptop CPU:

* **Correspondence.** A light encoder on Lab lightness only (trained from scratch) gives matching
  features at 1/8 of the working resolution. Each
  target position attends over every reference position by *centred cosine* similarity and a
  softmax with a learned temperature; the attention gathers the reference's chroma, both as a 1/8
  map and as 4x4 patches of its 1/2-resolution chroma (so copied colour keeps fine detail). The
  same attention over the *previous frame's* features gathers the previous output, which lets
  colour follow motion without optical flow at inference.
* **Colorization.** A small U-Net sees the target's encoder features, the gathered chroma and the
  similarities, and predicts per-pixel gates over candidate chroma maps (warped reference, warped
  previous output, previous output in place, gray) plus a small correction. Gating makes copying
  the default behaviour, which a from-scratch model trained for a few CPU hours learns quickly.
* **Flow candidates.** The previous output, and the reference, warped onto the frame by a cheap
  optical flow (OpenCV DIS, computed by the caller), each with a reliability map (forward-backward
  consistency times lightness agreement), are two more candidates, at 1/2 and at full
  resolution. Flow carries colour with pixel precision where it is right; the attention
  re-anchors to the reference and fills occlusions where it is not. The network learns which to
  trust, pixel by pixel.
* **Semantic candidate (v2, ``VCNetConfig.semantic``).** The luminance encoder finds the same
  pixels in another frame of the shot, not a face in another picture. v2 also matches on the frozen
  ImageNet trunk (:mod:`vidcolor.models.efficientnet_lite`, strides 8 to 32, centred cosine and
  softmax as seed 001 and :class:`~vidcolor.correspondence.semantic.SemanticMatcher`), gathers the
  reference's chroma with it as one more gated candidate, and gives the gates its best similarity
  and attention entropy (how sure the match is). The trunk is not part of the weights; the flag is,
  so files saved before v2 build exactly the v1 network.
* **Semantic blend (v2d, ``VCNetConfig.semantic_blend``).** Inside the gates' softmax a semantic
  candidate either gets no weight (v1's gates are saturated on ``ref_patch``) or, started as a copy
  of that gate, all of it, even for the shot's own frame (v2c). v2d leaves v1's gates and decoder
  exactly as they are and mixes the semantic chroma into their result by an explicit per-pixel
  weight: a small head on the two chroma maps and how good each match is (semantic and luminance
  best similarity, their difference, the semantic attention's entropy, the lightness gap of the
  semantic match, the reference flow's reliability) times ``1 - same_scene``. Where the reference shows the frame's
  own scene the weight is exactly zero: the output is v1's and the trunk is not even run.
  (A lightness penalty inside the match itself, against a bright blue background lending its colour
  to a dark one, was tried on v2c and dropped: it also pushed a darker face off a lighter face.)
* **Semantic refinement (v2e, ``VCNetConfig.semantic_refine``).** A per-pixel weight between two
  fixed candidates cannot do better than the better of the two, and judged on the output even that
  choice closes less than half of the mirrored case's gap. v2e adds a small network after v1's
  refinement that sees v1's final colour, the semantic colour and how sure each match is, and moves
  the output (a gate towards the semantic colour plus a bounded correction) where the reference is
  another picture or does not show the content (times ``1 - scene``). It acts on the output that the
  recurrence carries, so training through the unrolled loop fits it where it counts. Its last layer
  starts at zero: a v2d file warm-started into it gives v2d's output exactly.

Shapes: every spatial size the model sees must be a multiple of :data:`SIZE_MULTIPLE`.
Normalisation: lightness enters as ``L / 50 - 1``, chroma as ``ab / AB_SCALE``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..correspondence.semantic import multiscale_cosine
from .efficientnet_lite import shared_backbone

#: Every input height and width must be a multiple of this (three stride-2 stages).
SIZE_MULTIPLE = 8
#: Lab chroma is divided by this before entering the network.
AB_SCALE = 110.0
#: Format tag of the inference weight files (training state adds ``-train``).
WEIGHTS_FORMAT = "vidcolor-vcnet-1"
#: Order of the candidate chroma maps the gates choose between (v2 appends :data:`SEMANTIC`).
CANDIDATES = ("ref_patch", "ref_coarse", "prev_patch", "prev_still", "prev_flow", "gray", "ref_flow")
#: v2's extra candidate: the reference's chroma gathered by attention over pretrained (ImageNet) features.
SEMANTIC = "semantic"
_GRAY = CANDIDATES.index("gray")
_REF_FLOW = CANDIDATES.index("ref_flow")
#: Channels v2 adds to the 1/8 stage (semantic ab, best similarity, attention entropy) and to the
#: 1/2 stage (semantic ab at 1/2, best similarity).
_SEMANTIC_IN8, _SEMANTIC_IN2 = 4, 3
#: Largest free correction (normalised ab) the network may add to its gated candidates, per stage.
CORRECTION = 0.03
#: v2d: inputs of the semantic blend weight's head at 1/8, besides the two chroma maps it chooses
#: between (v1's gated result and the semantic one, 2 + 2 at 1/2): semantic best cosine, luminance
#: best similarity, their difference, semantic entropy, lightness gap of the semantic match,
#: reference-flow reliability, previous-frame similarity. All of the order of 1: v1's decoder
#: features reach millions (its gates are saturated), and with them the head's weight collapsed to
#: zero everywhere within 60 iterations.
_BLEND_INPUTS = 7
#: v2d: initial bias of the blend head: weight sigmoid(-2) = 0.12 where the reference is another
#: picture, small but with gradient (a copied saturated gate takes everything, -4 learns nothing).
BLEND_BIAS = -2.0
#: v2e: inputs of the semantic refinement at 1/2: v1's final chroma, the semantic chroma, their
#: difference (2 each), lightness, the blend weight, ``1 - scene``, both flow reliabilities, the
#: semantic best cosine and entropy, the luminance best similarity.
_REFINE_INPUTS = 14
#: v2e: width of the semantic refinement's hidden layers.
_REFINE_WIDTH = 16
#: v2e: largest free correction (normalised ab) of the semantic refinement: 0.2 x 110 = 22 ab units,
#: enough to repaint what neither candidate gets right, bounded so the recurrence cannot run away.
SEMANTIC_CORRECTION = 0.2


@dataclass(frozen=True)
class VCNetConfig:
    """Every hyperparameter of the architecture (stored with the weights, so it is the model card's too)."""

    #: Encoder widths at 1/2, 1/4 and 1/8 of the working resolution.
    channels: tuple[int, int, int] = (16, 32, 64)
    #: Width of the matching features (centred, L2-normalised) at 1/8 resolution.
    match_channels: int = 48
    #: Residual blocks in the encoder's 1/8 stage (the last one dilated, for context).
    encoder_blocks: int = 2
    #: Residual blocks in the decoder's 1/8 stage.
    decoder_blocks: int = 2
    #: Initial softmax temperature of the correspondence (learned, in log space).
    temperature: float = 0.02
    #: Width of the full-resolution refinement layer.
    refine_channels: int = 8
    #: v2: also match on the frozen ImageNet trunk (:mod:`vidcolor.models.efficientnet_lite`), so a
    #: reference that is another picture of similar content lends colour by what things are. False
    #: (v1, and every file saved before v2) builds exactly the v1 network.
    semantic: bool = False
    #: Trunk strides compared by the semantic attention, each on its own grid (similarities resampled
    #: to the 1/8 grid). Stride 32 sees a whole face: without it a cheek can match a blue background.
    semantic_strides: tuple[int, ...] = (8, 16)
    #: Initial softmax temperature of the semantic attention over centred cosines (learned).
    semantic_temperature: float = 0.01
    #: v2d: the semantic chroma is blended into v1's gated result by its own per-pixel weight
    #: (scaled by ``1 - same_scene``) instead of competing inside v1's saturated gate softmax; v1's
    #: layers keep their inputs, so with the weight at zero the output is v1's bit for bit.
    semantic_blend: bool = False
    #: v2e: a small network after v1's refinement moves the output towards (or beyond) the semantic
    #: colour where the reference does not show the content (needs ``semantic_blend``); zero-initialised.
    semantic_refine: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> VCNetConfig:
        values = dict(data)
        values["channels"] = tuple(values.get("channels", cls.channels))  # type: ignore[arg-type]
        values["semantic_strides"] = tuple(values.get("semantic_strides", cls.semantic_strides))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a skip; the second starts at zero so a fresh block is the identity."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels, dilation=dilation)
        self.conv2 = _conv(channels, channels, dilation=dilation)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))


@dataclass
class Features:
    """Encoder output for one frame: U-Net skips at 1/2, 1/4, 1/8 and matching keys at 1/8."""

    f2: torch.Tensor
    f4: torch.Tensor
    f8: torch.Tensor
    #: (B, C, N) centred, L2-normalised matching features, N = (H/8)(W/8).
    key: torch.Tensor


@dataclass
class Memory:
    """What one source frame (reference or previous output) offers to the attention."""

    key: torch.Tensor
    #: (B, 2*16, M): 4x4 patches of the 1/2-resolution chroma, one per 1/8 position.
    patches: torch.Tensor
    #: (B, 2, M): the 1/8-resolution chroma.
    coarse: torch.Tensor
    #: Spatial size (h8, w8) of the source's 1/8 grid.
    grid: tuple[int, int] = field(default=(0, 0))
    #: v2, references only: per trunk stride (B, C_s, h_s, w_s) pretrained features at that stride
    #: (the finest on the 1/8 grid), uncentred.
    semantic: list[torch.Tensor] | None = None
    #: v2, references only: (B, 1, M) mean normalised lightness of each 1/8 cell (the semantic match's lightness gap).
    lightness: torch.Tensor | None = None


@dataclass
class StepOutput:
    """One frame's prediction plus the intermediate maps the training losses need."""

    #: (B, 2, H, W) normalised chroma (multiply by AB_SCALE for Lab units).
    ab: torch.Tensor
    #: (B, 1, H, W) in [0, 1]: weight the gates gave to colour-backed candidates.
    confidence: torch.Tensor
    #: (B, 1, H, W) in [0, 1]: share of the output taken from the reference warped by optical flow
    #: (both stages' gates on that candidate), i.e. colour the reference shows at this very pixel.
    anchored: torch.Tensor
    #: (B, 1, H, W) in [0, 1]: share of the output copied from the reference or the past: both
    #: stages' gate weight on candidates that exist (with all of them present, one minus the gray's).
    support: torch.Tensor
    #: (B, 2, H/8, W/8) reference chroma gathered by the attention (or zeros without reference).
    ref_coarse: torch.Tensor
    #: (B, N, M) attention logits over the reference (None without reference); for the matching loss.
    ref_logits: torch.Tensor | None
    #: Memory of this frame, to be attended by the next step.
    memory: Memory
    #: The previous-output chroma at full size, for the next step's still candidate.
    ab_full: torch.Tensor


def _centre_normalise(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) → (B, C, N): subtract each channel's spatial mean, then unit length per position."""
    flat = x.flatten(2)
    flat = flat - flat.mean(dim=2, keepdim=True)
    return F.normalize(flat, dim=1, eps=1e-6)


class Encoder(nn.Module):
    """Lightness → features at 1/2, 1/4, 1/8 and matching keys; shared by target, reference and previous."""

    def __init__(self, cfg: VCNetConfig) -> None:
        super().__init__()
        c1, c2, c3 = cfg.channels
        self.stage1 = nn.Sequential(_conv(1, c1, stride=2), nn.LeakyReLU(0.1), _conv(c1, c1), nn.LeakyReLU(0.1))
        self.stage2 = nn.Sequential(_conv(c1, c2, stride=2), nn.LeakyReLU(0.1), ResBlock(c2))
        blocks: list[nn.Module] = [ResBlock(c3, dilation=2 if i == cfg.encoder_blocks - 1 else 1) for i in range(cfg.encoder_blocks)]
        self.stage3 = nn.Sequential(_conv(c2, c3, stride=2), nn.LeakyReLU(0.1), *blocks)
        self.key = nn.Sequential(nn.Conv2d(c3, c3, 1), nn.LeakyReLU(0.1), nn.Conv2d(c3, cfg.match_channels, 1))

    def forward(self, l_norm: torch.Tensor) -> Features:
        f2 = self.stage1(l_norm)
        f4 = self.stage2(f2)
        f8 = self.stage3(f4)
        return Features(f2=f2, f4=f4, f8=f8, key=_centre_normalise(self.key(f8)))


class VCNet(nn.Module):
    """The recurrent exemplar colorizer; see the module docstring for the design."""

    def __init__(self, cfg: VCNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        self.encoder = Encoder(cfg)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(cfg.temperature)))
        gated = cfg.semantic and not cfg.semantic_blend  # v2a-c: the semantic candidate is a gated input
        sem8, sem2 = (_SEMANTIC_IN8, _SEMANTIC_IN2) if gated else (0, 0)
        if cfg.semantic:
            self.log_semantic_temperature = nn.Parameter(torch.tensor(math.log(cfg.semantic_temperature)))
        # 1/8 stage: features + ref coarse ab (2) + ref sim (1) + prev warped ab (2) + prev sim (1)
        # + prev still ab (2) + flow-warped prev ab (2) + flow reliability (1) + has-ref, has-prev flags (2)
        # + flow-warped reference ab (2) + its reliability (1) [+ v2: semantic ab, best sim, entropy].
        self.dec8_in = _conv(c3 + 16 + sem8, c3)
        self.dec8 = nn.Sequential(*[ResBlock(c3) for _ in range(cfg.decoder_blocks)])
        self.dec4_in = _conv(c3 + c2, c2)
        self.dec4 = ResBlock(c2)
        # 1/2 stage: features + 5 candidate ab maps (10) + two similarity maps + flow reliability (3)
        # + flow-warped reference ab (2) + its reliability (1) [+ v2: semantic ab, best sim].
        self.dec2_in = _conv(c2 + c1 + 16 + sem2, c1)
        self.dec2 = ResBlock(c1)
        # head channels: gates of the first 6 candidates, 2 correction channels, gate of "ref_flow"
        # [+ v2: gate of "semantic"; it starts almost closed, like "ref_flow" did]
        self.head = _conv(c1, len(CANDIDATES) + 2 + int(gated))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias[len(CANDIDATES) + 1 :] = -4.0
        if cfg.semantic_blend:
            if not cfg.semantic:
                raise ValueError("semantic_blend needs semantic=True (the blended candidate is the semantic match)")
            self.semantic_blend = nn.Sequential(_conv(4 + _BLEND_INPUTS, 8), nn.LeakyReLU(0.1), nn.Conv2d(8, 1, 1))
            nn.init.zeros_(self.semantic_blend[2].weight)
            nn.init.constant_(self.semantic_blend[2].bias, BLEND_BIAS)
        if cfg.semantic_refine:
            if not cfg.semantic_blend:
                raise ValueError("semantic_refine needs semantic_blend=True (it refines the blended output)")
            self.semantic_refine = nn.Sequential(
                _conv(_REFINE_INPUTS, _REFINE_WIDTH), nn.LeakyReLU(0.1),
                _conv(_REFINE_WIDTH, _REFINE_WIDTH, dilation=2), nn.LeakyReLU(0.1),
                nn.Conv2d(_REFINE_WIDTH, 3, 1))
            nn.init.zeros_(self.semantic_refine[4].weight)
            nn.init.zeros_(self.semantic_refine[4].bias)
        # full resolution: upsampled ab (2), lightness (1), flow-warped prev ab (2), its reliability (1),
        # flow-warped reference ab (2), its reliability (1) → residual (2) and gates (2) towards the
        # flow-warped chroma maps, which keep full detail.
        self.refine1 = _conv(9, cfg.refine_channels)
        self.refine2 = _conv(cfg.refine_channels, 4)
        nn.init.zeros_(self.refine2.weight)
        nn.init.zeros_(self.refine2.bias)
        with torch.no_grad():
            self.refine2.bias[2] = -2.0
            self.refine2.bias[3] = -4.0

    # -- memories ---------------------------------------------------------------------------------

    def encode(self, l_norm: torch.Tensor) -> Features:
        """Encode normalised lightness ``(B, 1, H, W)``; H and W multiples of :data:`SIZE_MULTIPLE`."""
        _check_size(l_norm)
        return self.encoder(l_norm)

    @staticmethod
    def memory(features: Features, ab_norm: torch.Tensor) -> Memory:
        """Pair a frame's keys with its chroma ``(B, 2, H, W)`` so later frames can copy from it."""
        ab2 = F.avg_pool2d(ab_norm, 2)
        patches = F.pixel_unshuffle(ab2, 4).flatten(2)
        coarse = F.avg_pool2d(ab_norm, 8)
        return Memory(key=features.key, patches=patches, coarse=coarse.flatten(2), grid=(coarse.shape[2], coarse.shape[3]))

    def reference_memory(self, l_norm: torch.Tensor, ab_norm: torch.Tensor) -> Memory:
        """Encode a reference image once; reuse the result for every frame that uses it."""
        memory = self.memory(self.encode(l_norm), ab_norm)
        if self.cfg.semantic:
            memory.semantic = self.semantic_features(l_norm)
            memory.lightness = F.avg_pool2d(l_norm, 8).flatten(2)
        return memory

    def semantic_features(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        """v2: per trunk stride (B, C_s, h_s, w_s) frozen ImageNet features of normalised lightness,
        the finest on its 1/8 grid.

        The trunk is the process-wide frozen one on the input's device (not part of this network's
        weights); gradients still flow to the input, for losses on predicted colour.
        """
        _check_size(l_norm)
        maps = shared_backbone(l_norm.device)((l_norm + 1.0) * 50.0, self.cfg.semantic_strides)
        features = [maps[stride] for stride in sorted(maps)]
        grid = tuple(features[0].shape[-2:])
        if grid != (l_norm.shape[2] // 8, l_norm.shape[3] // 8):
            raise ValueError(f"the semantic grid {grid} is not the 1/8 grid of {tuple(l_norm.shape[-2:])}")
        return features

    # -- one step ---------------------------------------------------------------------------------

    def attend(self, query: torch.Tensor, memory: Memory, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather a memory's chroma for each query position.

        Returns (patch ab at 1/2, coarse ab at 1/8, best cosine similarity at 1/8, logits (B, N, M)).
        """
        scaled = query * torch.exp(-self.log_temperature)  # fold 1/temperature into the small side
        logits = torch.bmm(scaled.transpose(1, 2), memory.key)  # (B, N, M) cosine / temperature
        patch_ab, coarse_ab, _ = _gather(logits, memory, grid)
        best = (logits.amax(dim=2) * self.log_temperature.exp()).reshape(query.shape[0], 1, *grid)
        return patch_ab, coarse_ab, best, logits

    def attend_semantic(
        self, frame: list[torch.Tensor], memory: Memory, grid: tuple[int, int], frame_l_norm: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """v2: the reference's chroma for each frame position by what it shows (seed 001's matching).

        Centred cosine over the trunk's strides (joint centring as
        :class:`~vidcolor.correspondence.semantic.SemanticMatcher`, each stride compared on its own
        grid: :func:`~vidcolor.correspondence.semantic.multiscale_cosine`), softmax at a learned
        temperature. Returns (patch ab at 1/2, coarse ab at 1/8, best cosine, normalised attention
        entropy, lightness gap), the last three (B, 1, h8, w8): how sure the match is, and how far
        the attended reference cells' mean lightness is from the frame cell's (0 without
        ``frame_l_norm``).
        """
        assert memory.semantic is not None
        cosine = multiscale_cosine(frame, memory.semantic, grid, memory.grid)  # (B, N, M)
        batch = cosine.shape[0]
        logits = cosine * torch.exp(-self.log_semantic_temperature)
        patch_ab, coarse_ab, weights = _gather(logits, memory, grid)
        best = cosine.amax(dim=2).reshape(batch, 1, *grid)
        # -sum(w log w) = logsumexp(z) - sum(w z): no log over the whole matrix
        entropy = (torch.logsumexp(logits, dim=2) - (weights * logits).sum(dim=2)) / math.log(max(weights.shape[2], 2))
        if frame_l_norm is not None and memory.lightness is not None:
            frame_l8 = F.avg_pool2d(frame_l_norm, 8).flatten(2)  # (B, 1, N)
            gap = (torch.bmm(memory.lightness, weights.transpose(1, 2)) - frame_l8).abs().reshape(batch, 1, *grid)
        else:
            gap = best.new_zeros(batch, 1, *grid)
        return patch_ab, coarse_ab, best, entropy.reshape(batch, 1, *grid), gap

    def step(
        self,
        l_norm: torch.Tensor,
        reference: Memory | None,
        previous: Memory | None,
        previous_ab: torch.Tensor | None,
        features: Features | None = None,
        flow_ab: torch.Tensor | None = None,
        flow_confidence: torch.Tensor | None = None,
        ref_flow_ab: torch.Tensor | None = None,
        ref_flow_confidence: torch.Tensor | None = None,
        semantic: list[torch.Tensor] | None = None,
        scene: torch.Tensor | None = None,
    ) -> StepOutput:
        """Colorize one frame from its reference memory and the previous step's memory/output.

        :param l_norm: ``(B, 1, H, W)`` normalised lightness.
        :param reference: from :meth:`reference_memory`, or None for a frame without exemplar.
        :param previous: ``StepOutput.memory`` of the previous frame, or None at a shot start.
        :param previous_ab: ``StepOutput.ab_full`` of the previous frame (same size), or None.
        :param features: ``encode(l_norm)`` if already computed.
        :param flow_ab: ``(B, 2, H, W)`` previous output warped onto this frame by optical flow
            (see :func:`flow_candidate`), or None.
        :param flow_confidence: ``(B, 1, H, W)`` in [0, 1], how far to trust ``flow_ab``.
        :param ref_flow_ab: the reference's chroma warped onto this frame by optical flow, or None.
        :param ref_flow_confidence: ``(B, 1, H, W)`` in [0, 1], how far to trust ``ref_flow_ab``.
        :param semantic: v2: ``semantic_features(l_norm)`` if already computed (else computed here
            when there is a reference).
        :param scene: v2d: ``(B,)`` in [0, 1], how far the reference shows this frame's scene
            (:func:`~vidcolor.correspondence.tracking.same_scene`), or ``(B, 1, H, W)`` per pixel
            (a reference that shows part of the frame); the semantic blend weight is scaled by
            ``1 - scene``, and at 1 everywhere the semantic match is skipped (v1's output
            exactly). None: not scaled.
        """
        feats = features if features is not None else self.encode(l_norm)
        batch, _, height, width = l_norm.shape
        grid = (height // 8, width // 8)
        zeros8 = l_norm.new_zeros(batch, 2, *grid)
        zeros2 = l_norm.new_zeros(batch, 2, height // 2, width // 2)
        sim_floor = l_norm.new_full((batch, 1, *grid), -1.0)
        ones = l_norm.new_ones(batch, 1, *grid)

        if reference is not None:
            ref_patch, ref_coarse, ref_sim, ref_logits = self.attend(feats.key, reference, grid)
            has_ref = ones
        else:
            ref_patch, ref_coarse, ref_sim, ref_logits, has_ref = zeros2, zeros8, sim_floor, None, ones * 0
        if previous is not None and previous_ab is not None:
            prev_patch, prev_coarse, prev_sim, _ = self.attend(feats.key, previous, grid)
            prev_still2 = F.avg_pool2d(previous_ab, 2)
            prev_still8 = F.avg_pool2d(previous_ab, 8)
            has_prev = ones
        else:
            prev_patch, prev_coarse, prev_sim, prev_still2, prev_still8, has_prev = zeros2, zeros8, sim_floor, zeros2, zeros8, ones * 0

        if flow_ab is None or flow_confidence is None:
            flow_ab = l_norm.new_zeros(batch, 2, height, width)
            flow_confidence = l_norm.new_zeros(batch, 1, height, width)
        flow2, flow_conf2 = F.avg_pool2d(flow_ab, 2), F.avg_pool2d(flow_confidence, 2)
        flow8, flow_conf8 = F.avg_pool2d(flow2, 4), F.avg_pool2d(flow_conf2, 4)
        if ref_flow_ab is None or ref_flow_confidence is None:
            ref_flow_ab = l_norm.new_zeros(batch, 2, height, width)
            ref_flow_confidence = l_norm.new_zeros(batch, 1, height, width)
        rflow2, rflow_conf2 = F.avg_pool2d(ref_flow_ab, 2), F.avg_pool2d(ref_flow_confidence, 2)
        rflow8, rflow_conf8 = F.avg_pool2d(rflow2, 4), F.avg_pool2d(rflow_conf2, 4)

        extra8: list[torch.Tensor] = []
        extra2: list[torch.Tensor] = []
        sem_patch = zeros2
        gated = self.cfg.semantic and not self.cfg.semantic_blend
        blend_inputs = None  # v2d: what the blend weight's head sees at 1/8
        blend = None
        if self.cfg.semantic:
            matches = reference is not None and reference.semantic is not None
            if self.cfg.semantic_blend and scene is not None and bool((scene >= 1.0).all()):
                matches = False  # the reference shows this very scene: v1's output, and no trunk to run
            if matches:
                assert reference is not None
                frame_semantic = semantic if semantic is not None else self.semantic_features(l_norm)
                sem_patch, sem_coarse, sem_best, sem_entropy, sem_gap = self.attend_semantic(
                    frame_semantic, reference, grid, l_norm)
                if self.cfg.semantic_blend:
                    blend_inputs = torch.cat([sem_best, ref_sim, sem_best - ref_sim, sem_entropy, sem_gap, rflow_conf8, prev_sim], dim=1)
            else:
                sem_coarse, sem_best, sem_entropy = zeros8, sim_floor, ones
            if gated:
                extra8 = [sem_coarse, sem_best, sem_entropy]
                extra2 = [sem_patch, F.interpolate(sem_best, scale_factor=4, mode="bilinear", align_corners=False)]

        x = torch.cat([feats.f8, ref_coarse, ref_sim, prev_coarse, prev_sim, prev_still8, flow8, flow_conf8, has_ref, has_prev, rflow8, rflow_conf8, *extra8], dim=1)
        x = self.dec8(F.leaky_relu(self.dec8_in(x), 0.1))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.dec4(F.leaky_relu(self.dec4_in(torch.cat([x, feats.f4], dim=1)), 0.1))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        ref_up = F.interpolate(ref_coarse, scale_factor=4, mode="bilinear", align_corners=False)
        sims = F.interpolate(torch.cat([ref_sim, prev_sim], dim=1), scale_factor=4, mode="bilinear", align_corners=False)
        candidates = [ref_patch, ref_up, prev_patch, prev_still2, flow2]
        x = torch.cat([x, feats.f2, *candidates, sims, flow_conf2, rflow2, rflow_conf2, *extra2], dim=1)
        x = self.dec2(F.leaky_relu(self.dec2_in(x), 0.1))
        head = self.head(x)
        k = len(CANDIDATES)
        gates = torch.softmax(torch.cat([head[:, : k - 1], head[:, k + 1 :]], dim=1), dim=1)
        # (B, K, 2, h, w), CANDIDATES order [+ v2: semantic]
        stacked = torch.stack([*candidates, zeros2, rflow2, *([sem_patch] if gated else [])], dim=1)
        # the correction is bounded: colour comes from the candidates, so a recurrent run cannot
        # amplify its own saturation frame after frame
        ab2 = (gates.unsqueeze(2) * stacked).sum(dim=1) + CORRECTION * torch.tanh(head[:, k - 1 : k + 1])
        confidence2 = 1.0 - gates[:, _GRAY : _GRAY + 1]
        # copied colour: the gates' weight on candidates that exist (an absent source offers zeros, not colour)
        offered = torch.stack([has_ref, has_ref, has_prev, has_prev, has_prev, has_ref * 0, has_ref]
                              + [has_ref] * int(gated), dim=1)[:, :, :, :1, :1]
        copied = (gates * offered[:, :, 0]).sum(dim=1, keepdim=True)
        ref_flow_share = gates[:, _REF_FLOW : _REF_FLOW + 1]
        if blend_inputs is not None:
            # v2d: v1's result stays as it is; the semantic chroma comes in by its own weight
            blend = torch.sigmoid(self.semantic_blend(torch.cat(
                [ab2, sem_patch, F.interpolate(blend_inputs, scale_factor=4, mode="bilinear", align_corners=False)], dim=1)))
            if scene is not None:
                shows = scene.clamp(0.0, 1.0)
                shows = shows.view(-1, 1, 1, 1) if shows.dim() == 1 else F.avg_pool2d(shows, 2)
                blend = blend * (1.0 - shows)
            free = (1.0 - shows).expand_as(blend) if scene is not None else torch.ones_like(blend)
            ab2 = ab2 + blend * (sem_patch - ab2)
            confidence2 = confidence2 + blend * (1.0 - confidence2)
            copied = copied + blend * (1.0 - copied)
            ref_flow_share = ref_flow_share * (1.0 - blend)

        ab_up = F.interpolate(ab2, scale_factor=2, mode="bilinear", align_corners=False)
        refine_in = torch.cat([ab_up, l_norm, flow_ab, flow_confidence, ref_flow_ab, ref_flow_confidence], dim=1)
        refine = self.refine2(F.leaky_relu(self.refine1(refine_in), 0.1))
        gate_prev = torch.sigmoid(refine[:, 2:3]) * flow_confidence
        gate_ref = torch.sigmoid(refine[:, 3:4]) * ref_flow_confidence * (1.0 - gate_prev)
        ab = ab_up + CORRECTION * torch.tanh(refine[:, :2]) + gate_prev * (flow_ab - ab_up) + gate_ref * (ref_flow_ab - ab_up)
        confidence = F.interpolate(confidence2, scale_factor=2, mode="bilinear", align_corners=False)
        ref_flow_gate2 = F.interpolate(ref_flow_share, scale_factor=2, mode="bilinear", align_corners=False)
        anchored = gate_ref + (1.0 - gate_prev - gate_ref) * ref_flow_gate2
        copied2 = F.interpolate(copied, scale_factor=2, mode="bilinear", align_corners=False)
        support = gate_prev + gate_ref + (1.0 - gate_prev - gate_ref) * copied2
        if self.cfg.semantic_refine and blend is not None:
            ab = self._refine_semantic(ab, sem_patch, l_norm, blend, free, flow_confidence, ref_flow_confidence,
                                       blend_inputs)
        return StepOutput(
            ab=ab,
            confidence=confidence,
            anchored=anchored,
            support=support,
            ref_coarse=ref_coarse,
            ref_logits=ref_logits,
            memory=self.memory(feats, ab),
            ab_full=ab,
        )


    def _refine_semantic(
        self, ab: torch.Tensor, sem_patch: torch.Tensor, l_norm: torch.Tensor, blend: torch.Tensor, free: torch.Tensor,
        flow_confidence: torch.Tensor, ref_flow_confidence: torch.Tensor, blend_inputs: torch.Tensor,
    ) -> torch.Tensor:
        """v2e: v1's final chroma moved towards the semantic one (gate) plus a bounded correction,
        both times ``free`` (1 - scene at 1/2): where the reference shows the content, nothing moves.

        Runs at 1/2 resolution (a wider view for the same cost) and adds its change upsampled.
        """
        ab2 = F.avg_pool2d(ab, 2)
        sem_best, ref_sim, sem_entropy = blend_inputs[:, 0:1], blend_inputs[:, 1:2], blend_inputs[:, 3:4]
        scores = F.interpolate(torch.cat([sem_best, sem_entropy, ref_sim], dim=1), scale_factor=4, mode="bilinear", align_corners=False)
        x = torch.cat([ab2, sem_patch, sem_patch - ab2, F.avg_pool2d(l_norm, 2), blend, free,
                       F.avg_pool2d(flow_confidence, 2), F.avg_pool2d(ref_flow_confidence, 2), scores], dim=1)
        out = self.semantic_refine(x)
        change2 = free * (torch.tanh(out[:, :1]) * (sem_patch - ab2) + SEMANTIC_CORRECTION * torch.tanh(out[:, 1:]))
        return ab + F.interpolate(change2, scale_factor=2, mode="bilinear", align_corners=False)


def _gather(logits: torch.Tensor, memory: Memory, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax ``logits`` (B, N, M) over a memory's positions and gather its chroma: (patch ab at 1/2,
    coarse ab at 1/8, the attention weights)."""
    h8, w8 = grid
    weights = torch.softmax(logits, dim=2)
    gathered = torch.bmm(torch.cat([memory.patches, memory.coarse], dim=1), weights.transpose(1, 2))
    patches, coarse = gathered[:, :-2], gathered[:, -2:]
    batch = logits.shape[0]
    return F.pixel_shuffle(patches.reshape(batch, -1, h8, w8), 4), coarse.reshape(batch, 2, h8, w8), weights


def warp_tensor(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp (B, C, H, W) by flow (B, 2, H, W) in pixels: out[y, x] = image[y + dy, x + dx]."""
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=image.dtype, device=image.device), torch.arange(w, dtype=image.dtype, device=image.device), indexing="ij"
    )
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return F.grid_sample(image, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="border", align_corners=True)


#: Lightness difference (Lab units) at which a flow-warped pixel's reliability falls to 1/e.
FLOW_LIGHTNESS_TOLERANCE = 4.0


def flow_candidate(
    previous_ab: torch.Tensor, previous_l: torch.Tensor, l_norm: torch.Tensor, flow: torch.Tensor, visible: torch.Tensor,
    tolerance: float = FLOW_LIGHTNESS_TOLERANCE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous output pulled onto this frame by ``flow`` (this frame → previous), and its reliability.

    Reliability = forward-backward visibility (``visible``, (B, 1, H, W) in {0, 1}) times how well
    the warped previous lightness matches this frame's (both normalised as ``L / 50 - 1``): it
    falls to 1/e at a difference of ``tolerance`` Lab L units (training used the default for both
    candidates).
    """
    pulled = warp_tensor(torch.cat([previous_ab, previous_l], dim=1), flow)
    mismatch = (pulled[:, 2:3] - l_norm).abs() * 50.0
    return pulled[:, :2], visible * torch.exp(-mismatch / tolerance)


def _check_size(x: torch.Tensor) -> None:
    if x.shape[-1] % SIZE_MULTIPLE or x.shape[-2] % SIZE_MULTIPLE:
        raise ValueError(
            f"VCNet input size {tuple(x.shape[-2:])} is not a multiple of {SIZE_MULTIPLE}: pad the frame first"
        )


def build_vcnet(
    *,
    channels: tuple[int, int, int] = (16, 32, 64),
    match_channels: int = 48,
    encoder_blocks: int = 2,
    decoder_blocks: int = 2,
    temperature: float = 0.02,
    refine_channels: int = 8,
    semantic: bool = False,
) -> VCNet:
    """Build VCNet, naming every hyperparameter (the defaults are the shipped ``default`` model)."""
    return VCNet(VCNetConfig(
        channels=channels, encoder_blocks=encoder_blocks,  # encoder (lightness only, from scratch)
        match_channels=match_channels, temperature=temperature,  # correspondence
        decoder_blocks=decoder_blocks, refine_channels=refine_channels,  # colorization U-Net
        semantic=semantic,  # v2: semantic correspondence on the frozen ImageNet trunk
    ))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def reference_size(ref_w: int, ref_h: int, area: int) -> tuple[int, int]:
    """A reference's working size: its own aspect, about ``area`` pixels, multiples of 8."""
    scale = math.sqrt(area / (ref_w * ref_h))
    return (
        max(SIZE_MULTIPLE, round(ref_w * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE),
        max(SIZE_MULTIPLE, round(ref_h * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE),
    )
