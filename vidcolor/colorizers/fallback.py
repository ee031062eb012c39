"""Automatic colour where the exemplar model has nothing to copy, pixel by pixel.

An exemplar colorizer copies colour from its reference and from its own previous output. Where
neither shows the pixel (a new object, the far side of a cut, what a cropped keyframe leaves out)
it falls back to its own guess, which is gray-ish or a wrong copy. :class:`FallbackColorizer`
wraps such a colorizer and an automatic one: each frame, how well the reference backs the pixel
(by default its ``coverage``: how well the reference shows this content) is turned into a weight,
high where backing is low, smoothed so the seam follows no pixel noise, and the automatic colour
fills in by that weight (see below: it only adds colour). The result is handed back to the
exemplar model (``set_previous``), so its recurrence and the temporal check around this wrapper
carry the filled-in colour forward like any copied colour: the next frames copy it from the past
(their support is high there) instead of asking the automatic model again, and it does not flicker.

HAVC blends a per-frame model into the propagated result globally; here the blend is local, so a
well-supported face keeps its reference colours while the new car beside it gets automatic ones.

Low coverage alone does not make the exemplar colour wrong: what the reference does not show is
often the same stuff (more of the ground, the wall) that the model copies well anyway, and an
automatic model can give a whole film a colour cast. So the automatic colour is trusted only as far
as it agrees with the exemplar's where the reference does back the exemplar (backing >= ``high``):
a trust of 1 - (their mean squared ab distance there) / (``trust_ratio`` x the exemplar colour's
own mean squared chroma there), smoothed over frames. Relative to the scene's own colour, because
a cast that is harmless on a colourful scene is most of the error on a near-gray one.
On the ten training clips with frame 0's left half as the reference (``bench/autocolor.py --case
left-half --frames 16``, the real pipeline) the untrusted full blend scored 29.47 dB against the
plain model's 29.33 but lost up to 2.2 dB on clips the automatic model gave a cast (bag,
cockatoo, both near-gray scenes); with the trust, 29.94 dB (plain 29.33 in the same run), no clip
more than 0.13 dB below plain. (A fixed trust scale of 400 Lab units², at half strength, scored
29.79 with a clip 0.47 dB below, and lost 1.9 dB on a near-gray bench clip.)

The fill only adds colour, as a colorist would: the automatic colour is taken at a pixel only as
far as its chroma exceeds the exemplar's (in full from ``chroma_margin`` ab units stronger on), and
a blend whose two hues partly cancel is lifted back to the exemplar's chroma, so no pixel comes
out grayer than the copy (:meth:`FallbackColorizer.fill`). The replacing blend it supersedes
scored best on the training clips, but the automatic model was trained on those very clips; on the
seven bench clips it lowered the left-half score (28.45 -> 28.35 dB) and the right half's
colourfulness (0.696 -> 0.629 of the truth's): muted automatic colour replaced copies that were
right, and desaturated what it filled. Measured (``bench/quality.py --reference left-half,first
--models default --variants ";--fallback autocolor" --frames 30``, two tree copies back to back,
autocolor.pt sha256 ed4ed556...): left-half plain 28.41 dB, replacing blend 28.29, this fill 28.45
(held out dog and horsejump-high 31.07 / 31.00 / 31.04; blackswan +0.38 vs plain, bmx-trees -0.10);
frame 0 whole 31.03 / 30.92 / 30.96 (dog -0.35 vs plain); right half's colourfulness 0.700 / 0.624
/ 0.691. On the training clips (``bench/autocolor.py --case left-half --frames 16``) plain 29.33,
this fill 29.74 (worst clip -0.21), right half's colourfulness 0.691 -> 0.751; ``chroma_margin``
5 gave the same, ``trust_ratio`` 4 more colour (0.777) but bedroom -0.79. The right half's mean
chroma does rise (blackswan 14.2 -> 14.9 ab units, bmx-trees 18.7 -> 20.7, truth 20.8 / 20.7; 30
frames in process, no pixel below its own exemplar colour), but the colourfulness measure weighs
the spread of colours over their mean, and the automatic colour is smoother than a copy (same
runs: 0.753 -> 0.719, 0.795 -> 0.761). Off by default (``--fallback none``): about even with the
plain model on the bench.

Cost: the coverage map and the automatic colour are renewed once per ``every`` frames (between,
the last ones stand: the recurrence carries most of the fill anyway), and the automatic model runs
only when some pixel needs it (``min_weight``). Renewing every 4th frame instead of every frame
changed nothing on the training clips (16 frames, in process: 23.59 dB ab-PSNR either way) and
keeps the 1080p speed: ``bench/throughput.py --encoder-preset veryfast``, same load, 2.22 fps
without the fallback and 2.14 with it (load average 7-9 on 2 cores: the ratio counts, not the fps).
With the adding fill, without / with / with / without back to back (``--frames 96``, load 4-9):
2.58 / 2.28 / 2.16 / 2.80 fps, a ratio of 0.83: about 7.1 fps on the quiet machine's 8.60.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from ..color import luma_lightness
from ..correspondence.semantic import ReferenceMemory, SemanticMatcher
from ..errors import InputError
from ..models.efficientnet_lite import SIZE_MULTIPLE as INPUT_MULTIPLE
from ..references import Reference
from .base import ColorizedFrame, Colorizer, pad_to_multiple

#: What the fallback may read as "the exemplar colour is backed" (see :class:`FallbackColorizer`).
SIGNALS = ("coverage", "support", "confidence")
#: Thresholds (low, high) per signal when none are given: coverage is a centred cosine, the others in [0, 1].
DEFAULT_THRESHOLDS = {"coverage": (0.35, 0.55), "support": (0.2, 0.6), "confidence": (0.02, 0.15)}
#: The trust is judged on a frame only when at least this share of its pixels is backed.
MIN_BACKED_SHARE = 0.02
#: Each frame's trust is this share of the previous frames' plus the rest of its own measure.
TRUST_MEMORY = 0.5


class FallbackColorizer(Colorizer):
    """``inner`` (an exemplar colorizer) with ``auto`` (an automatic one) filling in where ``inner``
    had nothing to copy.

    :param signal: what says the exemplar colour is backed: ``coverage`` (how well the reference
        shows this content: the best centred cosine between the frame's and the reference's
        pretrained Lite0 features, :class:`~vidcolor.correspondence.semantic.SemanticMatcher`),
        ``support`` (where the model copied colour; its ``confidence`` for models that cannot tell)
        or ``confidence``.
    :param low: backing at or below which the automatic colour replaces the exemplar's.
    :param high: backing at or above which the exemplar's colour is kept as is.
    :param blur: width of the weight's Gaussian smoothing, as a fraction of the frame's short side.
    :param strength: the largest share the automatic colour may take (1 = all of it).
    :param every: renew the coverage map and the automatic colour every this many frames (1 = every frame).
    :param min_weight: frames whose largest weight is below this skip the automatic model.
    :param trust_ratio: where the reference backs the exemplar colour, the mean squared ab distance
        between the automatic and the exemplar colour, over the exemplar colour's mean squared
        chroma, at which the automatic colour is no longer trusted at all; None: always trusted.
    :param chroma_margin: how much stronger (ab units) the automatic chroma must be than the
        exemplar's at a pixel to be taken in full there (:meth:`fill`); weaker, it is not taken.
    """

    def __init__(self, inner: Colorizer, auto: Colorizer, *, signal: str = "coverage", low: float | None = None,
                 high: float | None = None, blur: float = 0.03, strength: float = 1.0, every: int = 4,
                 min_weight: float = 0.05, trust_ratio: float | None = 2.0, chroma_margin: float = 2.0) -> None:
        if auto.needs_reference:
            raise InputError(f"the fallback needs an automatic model, and {auto.name!r} needs a reference")
        if signal not in SIGNALS:
            raise InputError(f"fallback signal must be one of {', '.join(SIGNALS)}, got {signal!r}")
        low = DEFAULT_THRESHOLDS[signal][0] if low is None else low
        high = DEFAULT_THRESHOLDS[signal][1] if high is None else high
        if not 0.0 <= low < high <= 1.0:
            raise InputError(f"fallback support thresholds must satisfy 0 <= low < high <= 1, got low={low}, high={high}")
        if (not 0.0 <= strength <= 1.0 or blur < 0.0 or every < 1 or (trust_ratio is not None and trust_ratio <= 0)
                or not chroma_margin > 0):
            raise InputError(f"fallback strength must be in [0, 1], blur >= 0, every >= 1, trust_ratio > 0 and "
                             f"chroma_margin > 0; got {strength}, {blur}, {every}, {trust_ratio}, {chroma_margin}")
        self.inner, self.auto, self.signal = inner, auto, signal
        self.low, self.high, self.blur, self.strength = float(low), float(high), float(blur), float(strength)
        self.every, self.min_weight = int(every), float(min_weight)
        self.trust_ratio = None if trust_ratio is None else float(trust_ratio)
        self.chroma_margin = float(chroma_margin)
        self.name = inner.name
        self.needs_reference = inner.needs_reference
        self.size_multiple = inner.size_multiple
        self.default_short_side = inner.default_short_side
        self.temporal_persistence = inner.temporal_persistence
        self._auto_frame: ColorizedFrame | None = None
        self._since_auto = 0
        self._cache_key: tuple[object, ...] | None = None
        self._coverage = np.zeros((0, 0), np.float32)
        self._matcher: SemanticMatcher | None = None
        self._memory: tuple[tuple[str, int, int], ReferenceMemory] | None = None
        self._trust: float | None = None

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "fallback": {
            "auto": self.auto.describe(), "signal": self.signal, "low": self.low, "high": self.high, "blur": self.blur,
            "strength": self.strength, "every": self.every, "min_weight": self.min_weight,
            "trust_ratio": self.trust_ratio, "chroma_margin": self.chroma_margin}}

    def reset(self) -> None:
        self.inner.reset()
        self.auto.reset()
        self._auto_frame = None
        self._since_auto = 0
        self._cache_key = None
        self._trust = None

    def begin_reference(self, reference: Reference, size: tuple[int, int],
                        anchor: Callable[[], np.ndarray | None]) -> None:
        self.inner.begin_reference(reference, size, anchor)

    def set_previous(self, ab: np.ndarray) -> None:
        self.inner.set_previous(ab)

    def backing(self, frame: ColorizedFrame, lightness: np.ndarray, reference: Reference | None) -> np.ndarray:
        """How much the exemplar output is backed by copied colour, per pixel, by :attr:`signal`."""
        if self.signal == "coverage":
            return self.coverage(lightness, reference)
        if self.signal == "support" and frame.support is not None:
            return np.asarray(frame.support, dtype=np.float32)
        return np.asarray(frame.confidence, dtype=np.float32)

    @torch.inference_mode()
    def coverage(self, lightness: np.ndarray, reference: Reference | None) -> np.ndarray:
        """Per pixel, how well ``reference`` shows what the frame shows: the best centred cosine of
        their pretrained features (-1..1; 0 everywhere without a reference)."""
        height, width = lightness.shape
        if reference is None:
            return np.zeros((height, width), np.float32)
        if self._matcher is None:
            self._matcher = SemanticMatcher()
        memory = self._reference_memory(reference, min(height, width))
        padded = pad_to_multiple(np.asarray(lightness, dtype=np.float32), INPUT_MULTIPLE)
        frame = torch.from_numpy(np.ascontiguousarray(padded))[None, None].to(self._device)
        best = self._matcher.match(frame, memory).confidence[0, 0].float().cpu().numpy()
        stride = self._matcher.stride
        best = best[: -(-height // stride), : -(-width // stride)]
        return cv2.resize(best, (width, height), interpolation=cv2.INTER_LINEAR)

    @property
    def _device(self) -> torch.device:
        """Where the matcher's backbone runs (its inputs go there)."""
        assert self._matcher is not None
        return next(self._matcher.backbone.parameters()).device

    def _reference_memory(self, reference: Reference, short_side: int) -> ReferenceMemory:
        """The reference's features at the frame's scale (short side ``short_side``), once per reference."""
        ref_w, ref_h = reference.size
        scale = short_side / min(ref_w, ref_h)
        size = (max(INPUT_MULTIPLE, round(ref_w * scale / INPUT_MULTIPLE) * INPUT_MULTIPLE),
                max(INPUT_MULTIPLE, round(ref_h * scale / INPUT_MULTIPLE) * INPUT_MULTIPLE))
        key = (reference.key, *size)
        if self._memory is None or self._memory[0] != key:
            assert self._matcher is not None
            lab = reference.lab_at(*size)  # cached by the reference, as the exemplar models use it
            ref_l = torch.from_numpy(np.ascontiguousarray(luma_lightness(reference.rgb_at(*size))))[None, None].to(self._device)
            ref_ab = torch.from_numpy(np.ascontiguousarray(lab[..., 1:])).permute(2, 0, 1)[None].to(self._device)
            self._memory = (key, self._matcher.encode_reference(ref_l, ref_ab))
        return self._memory[1]

    def weight(self, backing: np.ndarray) -> np.ndarray:
        """The automatic colour's share per pixel: 1 at backing <= low, 0 at >= high, smoothed."""
        weight = np.clip((self.high - backing) / (self.high - self.low), 0.0, 1.0).astype(np.float32)
        sigma = self.blur * min(backing.shape)
        if sigma > 0.3:
            weight = cv2.GaussianBlur(weight, (0, 0), sigma)
        return weight * self.strength

    def trust(self, auto_ab: np.ndarray, exemplar_ab: np.ndarray, backing: np.ndarray) -> float:
        """How far the automatic colour is trusted on this frame (0..1): by how well it agrees with
        the exemplar colour where the reference backs that, averaged with the previous frames'
        trust so that it does not flicker. Without enough backed pixels to judge by (the far side
        of a cut), the last trust stands, else full trust (nothing better is known there)."""
        if self.trust_ratio is None:
            return 1.0
        backed = backing >= self.high
        if backed.sum() >= MIN_BACKED_SHARE * backed.size:
            distance = float(np.square(auto_ab[backed] - exemplar_ab[backed]).sum(axis=-1).mean())
            chroma = float(np.square(exemplar_ab[backed]).sum(axis=-1).mean())
            measured = float(np.clip(1.0 - distance / max(self.trust_ratio * chroma, 1e-6), 0.0, 1.0))
            self._trust = measured if self._trust is None else TRUST_MEMORY * self._trust + (1 - TRUST_MEMORY) * measured
        return 1.0 if self._trust is None else self._trust

    def fill(self, exemplar_ab: np.ndarray, auto_ab: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exemplar colour with the automatic colour added where it is weak: the filled ab and
        the automatic colour's share per pixel.

        The share is ``weight`` (low backing, trusted) times how far the automatic chroma exceeds
        the exemplar's (0 where it is not stronger, 1 from :attr:`chroma_margin` on), so a vivid
        copy is never replaced by a muted guess: the fill only adds colour. A blend of two
        different hues can still come out grayer than the exemplar colour (they partly cancel);
        there its chroma is lifted back to the exemplar's, the blend's hue kept, so no pixel loses
        chroma to the fallback."""
        exemplar_chroma = np.linalg.norm(exemplar_ab, axis=-1)
        stronger = np.clip((np.linalg.norm(auto_ab, axis=-1) - exemplar_chroma) / self.chroma_margin, 0.0, 1.0)
        share = (weight * stronger).astype(np.float32)
        blend = exemplar_ab + share[..., None] * (auto_ab - exemplar_ab)
        blend_chroma = np.linalg.norm(blend, axis=-1)
        lift = exemplar_chroma / np.maximum(blend_chroma, 1e-6)
        lifted = np.where((lift > 1.0)[..., None], blend * lift[..., None], blend)
        filled = np.where((blend_chroma < 1e-6)[..., None], exemplar_ab, lifted)  # no hue left to lift: keep the copy
        return filled.astype(np.float32), share

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        predicted = self.inner.step(lightness, reference)
        started = time.perf_counter()
        support = predicted.support if predicted.support is not None else predicted.confidence
        # the coverage map and the automatic colour are renewed every `every` frames (and on a new
        # reference or size); between, the last ones stand (the recurrence carries the fill anyway)
        key = (reference.key if reference is not None else None, lightness.shape)
        self._since_auto += 1
        fresh = self._since_auto >= self.every or self._cache_key != key
        if fresh:
            self._since_auto, self._cache_key, self._auto_frame = 0, key, None
            if self.signal == "coverage":
                self._coverage = self.coverage(lightness, reference)
        backing = self._coverage if self.signal == "coverage" else self.backing(predicted, lightness, reference)
        weight = self.weight(backing)
        stats = dict(predicted.stats)
        share = float(weight.mean())
        if float(weight.max()) < self.min_weight:
            stats.update(fallback=share, fallback_seconds=time.perf_counter() - started)
            return ColorizedFrame(predicted.ab, predicted.confidence, stats, predicted.support)
        if self._auto_frame is None:
            self._auto_frame = self.auto.step(lightness, None)
        auto = self._auto_frame
        trust = self.trust(auto.ab, predicted.ab, backing)
        ab, weight = self.fill(predicted.ab, auto.ab, weight * trust)
        share = float(weight.mean())
        confidence = (predicted.confidence + weight * (auto.confidence - predicted.confidence)).astype(np.float32)
        filled = np.clip(support + weight * (1.0 - support), 0.0, 1.0).astype(np.float32)
        self.inner.set_previous(ab)  # the recurrence carries the filled-in colour from here on
        stats.update(fallback=share, fallback_trust=trust, fallback_seconds=time.perf_counter() - started)
        return ColorizedFrame(ab, confidence, stats, filled)


__all__ = ["DEFAULT_THRESHOLDS", "SIGNALS", "FallbackColorizer"]
