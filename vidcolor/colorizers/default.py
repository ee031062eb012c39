"""The ``default`` model: VCNet, vidcolor's own recurrent exemplar colorizer, with shipped weights.

The weights (``vidcolor/models/weights/default.pt``, about 2 MB) were trained on the CPU by
:mod:`vidcolor.training.default`; ``MODEL_CARD.md`` beside them says on what and how. Reference memories
are computed once per reference (and working size) and reused for every frame that uses it; the
previous frame's memory, lightness and output are carried between steps and dropped by
``reset()``. Each step also computes OpenCV DIS flow to the previous frame (fast preset, as in
training) and to the reference resized to the frame (the medium preset from a 240-line network
size up, where the speed allows it: that motion is larger), which give the network two
pixel-accurate colour candidates besides its attention. The flow to the reference starts from the
previous frame's, carried through this frame's motion, and elsewhere from the pan's global shift, so
it follows a shot far from its keyframe.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

from ..weights import load_trained_network
from ..color import luma_lightness
from ..errors import InputError
from ..correspondence.flow import DISFlow, compose, flow_pool, global_shift, visible_mask
from ..correspondence.tracking import (Flow, Tracked, better_matching, dis_flow, flow_gray, placement, same_scene, scene_agreement,
                                      shown_by, track, within)
from ..models.vcnet import (
    AB_SCALE, FLOW_LIGHTNESS_TOLERANCE, SIZE_MULTIPLE, WEIGHTS_FORMAT, Features, Memory, VCNet, VCNetConfig, flow_candidate,
    reference_size,
)
from ..references import Reference
from .base import (ColorizedFrame, Colorizer, native_size, pad_to_multiple, shipped_weights_hint, shipped_weights_path,
                   step_at_native_size)

#: Reference memories kept per colorizer (a shot usually has one reference).
_REFERENCE_CACHE_SIZE = 8

_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def _checked_preset(option: str, preset: str) -> str:
    if preset not in _DIS_PRESETS:
        raise InputError(f"{option} {preset!r} is not an OpenCV DIS preset: choose one of {', '.join(_DIS_PRESETS)}")
    return preset


class Aligned(NamedTuple):
    """A reference on a canvas of the frame's size, for optical flow and its warped candidate."""

    gray: np.ndarray
    l_norm: torch.Tensor
    ab: torch.Tensor
    #: Where the reference sits on the canvas (x0, y0, x1, y1) when it was placed with its aspect
    #: kept; None when it was resized to the frame.
    rect: tuple[int, int, int, int] | None


#: Where the shipped ``default`` weights live inside the installed package.
default_weights_path = partial(shipped_weights_path, "default")


def load_vcnet(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[VCNet, dict[str, object]]:
    """Load VCNet weights written by :func:`vidcolor.training.default.inference_payload`; returns (model, meta)."""
    return load_trained_network(path, family="VCNet", weights_format=WEIGHTS_FORMAT, device=device, build=lambda config: VCNet(VCNetConfig.from_dict(config)),
                                missing_hint=shipped_weights_hint("default", "`vidcolor train`"))


#: The network's inputs padded to its size multiple.
_pad = partial(pad_to_multiple, multiple=SIZE_MULTIPLE)


def _padded_gray(lightness: np.ndarray) -> np.ndarray:
    """8-bit gray of a frame padded to the network's size: what optical flow reads."""
    return flow_gray(_pad(np.asarray(lightness, dtype=np.float32)))


class DefaultColorizer(Colorizer):
    """VCNet with the shipped weights: fast enough for 1080p encodes on a laptop CPU.

    The network runs at the working size up to a short side of :attr:`native_short_side`, near the
    scale it was trained at; a larger working frame is shrunk to that cap and its chroma comes back
    through the luma-guided filter. How each constant below was chosen, with the measurements:
    ``MODEL_CARD.md``, "Inference constants: how they were chosen".
    """

    name = "default"
    #: The network already carries its previous output, so the temporal check must let carried colour fade.
    temporal_persistence = 0.8
    size_multiple = SIZE_MULTIPLE
    #: Speed; ``--size 256`` buys quality.
    default_short_side = 160
    #: Largest short side the network itself runs at: far above its training scale the attention
    #: has too many look-alike positions to choose from.
    native_short_side = 360
    #: OpenCV DIS presets of the two flow candidates. ``medium`` finds the reference's larger motion
    #: better but costs a fifth of ``step()``, so ``None`` picks it only from
    #: :attr:`REFERENCE_FLOW_MEDIUM_FROM` lines up, sizes a user picks for quality.
    previous_flow_preset = "fast"
    reference_flow_preset: str | None = None
    REFERENCE_FLOW_MEDIUM_FROM = 240
    #: Start each frame's flow to the reference from the previous frame's (carried through the
    #: motion), else from the pan's global shift: DIS searches from zero and misses large motion.
    warm_reference_flow = True
    #: Confidence of colour not copied from the reference through optical flow (the network's gates
    #: alone say 1.0 everywhere): tells the temporal check and two keyframes which colour to trust.
    unanchored_confidence = 0.0
    #: Keep the previous frame's flow to the reference, carried forward, as a candidate beside DIS's
    #: new one (:func:`better_matching`): tracking finds a keyframe where DIS loses it.
    track_reference_flow = True
    #: Lab L difference at which a pixel of the warped reference loses trust (to 1/e): looser than
    #: the previous frame's 4, as the reference is another moment of the shot or a graded still.
    reference_flow_tolerance = 8.0
    #: Drop the reference-flow candidate as far as the reference is another picture than this
    #: frame's scene (:func:`~vidcolor.correspondence.tracking.same_scene`): flow between two
    #: different faces pastes the reference's background onto a cheek.
    reference_scene_check = True
    #: A reference of another aspect ratio than the frame's (a crop: the frame's left half, a
    #: detail) is placed inside the frame's canvas with its aspect kept rather than stretched to
    #: it, so optical flow finds the part it shows; the v2d semantic blend then takes the content it
    #: does not show, pixel by pixel (:func:`~vidcolor.correspondence.tracking.shown_by`).
    place_references = True

    def __init__(
        self, device: str = "cpu", *, weights: str | os.PathLike[str] | None = None, native_short_side: int | None = None,
        previous_flow_preset: str | None = None, reference_flow_preset: str | None = None,
        warm_reference_flow: bool | None = None, unanchored_confidence: float | None = None,
        track_reference_flow: bool | None = None, reference_flow_tolerance: float | None = None,
        reference_scene_check: bool | None = None, place_references: bool | None = None,
    ) -> None:
        self.device = torch.device(device)
        if native_short_side is not None:
            self.native_short_side = native_short_side
        if previous_flow_preset is not None:
            self.previous_flow_preset = _checked_preset("previous_flow_preset", previous_flow_preset)
        if reference_flow_preset is not None:
            self.reference_flow_preset = _checked_preset("reference_flow_preset", reference_flow_preset)
        if warm_reference_flow is not None:
            self.warm_reference_flow = warm_reference_flow
        if track_reference_flow is not None:
            self.track_reference_flow = track_reference_flow
        if reference_scene_check is not None:
            self.reference_scene_check = reference_scene_check
        if place_references is not None:
            self.place_references = place_references
        if reference_flow_tolerance is not None:
            if not reference_flow_tolerance > 0.0:
                raise InputError(f"reference_flow_tolerance {reference_flow_tolerance} must be a positive Lab L difference")
            self.reference_flow_tolerance = float(reference_flow_tolerance)
        if unanchored_confidence is not None:
            if not 0.0 <= unanchored_confidence <= 1.0:
                raise InputError(f"unanchored_confidence {unanchored_confidence} is outside 0..1")
            self.unanchored_confidence = float(unanchored_confidence)
        self.model, self.meta = load_vcnet(weights if weights is not None else default_weights_path(), self.device)
        self._references: dict[tuple[str, int, int], Memory] = {}
        #: Reference canvases by (key, canvas width, height, placed).
        self._aligned: dict[tuple[str, int, int, bool], Aligned] = {}
        #: Whether a reference of another aspect is placed, by (key, canvas width, height):
        #: chosen by :meth:`begin_reference`, else on the first frame that meets it.
        self._placed: dict[tuple[str, int, int], bool] = {}
        self._make_flows()
        self.reset()

    def _make_flows(self) -> None:
        self._dis = {preset: DISFlow(code) for preset, code in _DIS_PRESETS.items()}

    def reference_flow_for(self, short_side: int) -> str:
        """The DIS preset of the reference flow when the network runs at ``short_side`` lines."""
        if self.reference_flow_preset is not None:
            return self.reference_flow_preset
        return "medium" if short_side >= self.REFERENCE_FLOW_MEDIUM_FROM else "fast"

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        del state["_dis"]  # OpenCV objects: not picklable, and stateless between calls
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._make_flows()

    def reset(self) -> None:
        self._previous: Memory | None = None
        self._previous_ab: torch.Tensor | None = None
        self._previous_features: Features | None = None
        self._previous_l: torch.Tensor | None = None
        self._previous_gray: np.ndarray | None = None
        #: The previous frame's reference key and flows with it: the next frame's starting point.
        self._reference_flow: tuple[str, Flow] | None = None
        self._shape: tuple[int, int] | None = None

    def _lightness_tensor(self, lightness: np.ndarray) -> torch.Tensor:
        padded = _pad(np.asarray(lightness, dtype=np.float32))
        return torch.from_numpy(np.ascontiguousarray(padded)).to(self.device)[None, None] / 50.0 - 1.0

    def _reference_memory(self, reference: Reference, area: int) -> Memory:
        width, height = reference.size
        ref_w, ref_h = reference_size(width, height, area)
        key = (reference.key, ref_w, ref_h)
        memory = self._references.get(key)
        if memory is None:
            rgb = reference.rgb_at(ref_w, ref_h)
            lab = reference.lab_at(ref_w, ref_h)
            l_norm = torch.from_numpy(luma_lightness(rgb)).to(self.device)[None, None] / 50.0 - 1.0
            ab = torch.from_numpy(np.ascontiguousarray(lab[..., 1:])).to(self.device).permute(2, 0, 1)[None] / AB_SCALE
            memory = self.model.reference_memory(l_norm, ab)
            if len(self._references) >= _REFERENCE_CACHE_SIZE:
                self._references.pop(next(iter(self._references)))
            self._references[key] = memory
        return memory

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        return step_at_native_size(lightness, reference, self.native_short_side, SIZE_MULTIPLE, self._step_native)

    def begin_reference(self, reference: Reference, size: tuple[int, int],
                        anchor: Callable[[], np.ndarray | None]) -> None:
        """Choose, on the frame ``anchor()`` gives (where the shot's recurrence starts: the
        keyframe's moment), whether a reference of another aspect is placed or stretched
        (:meth:`_aligned_reference`), for this pass whatever frame it starts at. Without that
        frame, the first frame the reference meets chooses, as without this call."""
        if not self.place_references:
            return
        width, height = size
        network_w, network_h = native_size(width, height, self.native_short_side, SIZE_MULTIPLE) or size
        canvas = (network_w + -network_w % SIZE_MULTIPLE, network_h + -network_h % SIZE_MULTIPLE)
        if placement(reference.size, canvas) is None:
            return
        key = (reference.key, *canvas)
        lightness = anchor()
        if lightness is None:
            self._placed.pop(key, None)
            return
        if (network_w, network_h) != (width, height):
            lightness = cv2.resize(lightness, (network_w, network_h), interpolation=cv2.INTER_AREA)
        self._placed[key] = self._placed_fits_better(reference, _padded_gray(lightness),
                                                     self._dis[self.reference_flow_for(min(network_w, network_h))])

    def _aligned_reference(self, reference: Reference, gray: np.ndarray, reference_dis: DISFlow) -> Aligned:
        """The reference on a canvas of the (padded) frame ``gray``'s size: gray for DIS, L and ab tensors; cached.

        Resized to the frame when the aspects agree. Otherwise (with :attr:`place_references`) it
        may be a crop of the frame (its left half, a detail: fitted inside the canvas with its aspect
        kept, centred, the rest padding, :func:`~vidcolor.correspondence.tracking.placement`) or the
        frame itself at another pixel aspect (a square-pixel still exported from anamorphic DVD
        footage: resized to the frame, as before). Which one, :meth:`_placed_fits_better` tells on
        the frame :meth:`begin_reference` was given (one frame of the shot, so that a pass
        starting anywhere in it chooses alike), else on the first frame the reference meets.
        """
        height, width = gray.shape
        rect = placement(reference.size, (width, height)) if self.place_references else None
        if rect is not None:
            key = (reference.key, width, height)
            placed = self._placed.get(key)
            if placed is None:
                placed = self._placed[key] = self._placed_fits_better(reference, gray, reference_dis)
            rect = rect if placed else None
        return self._cached_canvas(reference, width, height, rect)

    def _placed_fits_better(self, reference: Reference, gray: np.ndarray, reference_dis: DISFlow) -> bool:
        """Whether optical flow finds more of the frame ``gray`` in ``reference`` placed with its
        aspect kept than stretched to the frame (a tie keeps it stretched)."""
        height, width = gray.shape
        rect = placement(reference.size, (width, height))
        placed = self._cached_canvas(reference, width, height, rect)
        stretched = self._cached_canvas(reference, width, height, None)
        return self._agreeing_share(gray, placed, reference_dis) > self._agreeing_share(gray, stretched, reference_dis)

    def _cached_canvas(self, reference: Reference, width: int, height: int,
                       rect: tuple[int, int, int, int] | None) -> Aligned:
        """:meth:`_canvas`, kept: every frame of a shot reads the same canvas."""
        key = (reference.key, width, height, rect is not None)
        found = self._aligned.get(key)
        if found is None:
            found = self._canvas(reference, width, height, rect)
            if len(self._aligned) >= _REFERENCE_CACHE_SIZE:
                self._aligned.pop(next(iter(self._aligned)))
            self._aligned[key] = found
        return found

    def _canvas(self, reference: Reference, width: int, height: int, rect: tuple[int, int, int, int] | None) -> Aligned:
        """The reference resized to the canvas, or to ``rect`` on it (padding: its mean lightness, no chroma)."""
        x0, y0, x1, y1 = rect if rect is not None else (0, 0, width, height)
        inner = luma_lightness(reference.rgb_at(x1 - x0, y1 - y0))
        lightness = np.full((height, width), inner.mean(), np.float32)
        lightness[y0:y1, x0:x1] = inner
        chroma = np.zeros((height, width, 2), np.float32)
        chroma[y0:y1, x0:x1] = reference.lab_at(x1 - x0, y1 - y0)[..., 1:]
        gray = flow_gray(lightness)
        l_norm = torch.from_numpy(lightness).to(self.device)[None, None] / 50.0 - 1.0
        ab = torch.from_numpy(chroma).to(self.device).permute(2, 0, 1)[None] / AB_SCALE
        return Aligned(gray, l_norm, ab, rect)

    def _estimate_flows(
        self, gray: np.ndarray, previous_gray: np.ndarray | None, reference_gray: np.ndarray | None,
        reference_dis: DISFlow, carried: Flow | None, rect: tuple[int, int, int, int] | None = None,
    ) -> tuple[Flow | None, Flow | None, float, np.ndarray | None]:
        """DIS flows from this frame to the previous frame and to the reference, both ways, how
        far the reference shows this frame's scene (1.0 without :attr:`reference_scene_check`,
        unless the network is a v2d, whose semantic blend needs it), and for a placed reference
        (``rect``, :class:`Aligned`) which pixels it shows (:func:`shown_by`; else None).

        ``carried`` is the previous frame's flows with the reference, carried through this frame's
        motion by :func:`~vidcolor.correspondence.tracking.track`. With :attr:`warm_reference_flow`
        DIS starts from it (and from the pan's global shift where it did not hold:
        :meth:`_reference_flow_starts`) rather than from zero; with :attr:`track_reference_flow` it also stays a candidate (:func:`better_matching`).
        """
        previous = reference = None
        if previous_gray is not None:
            dis = self._dis[self.previous_flow_preset]
            previous = Flow.of(dis_flow(dis, gray, previous_gray), dis_flow(dis, previous_gray, gray))
        if reference_gray is not None:
            tracked = track(previous, carried)
            forward_guess = backward_guess = None
            if self.warm_reference_flow:
                forward_guess, backward_guess = self._reference_flow_starts(
                    gray, reference_gray, tracked, carried, previous)
            reference = Flow.of(dis_flow(reference_dis, gray, reference_gray, forward_guess),
                                 dis_flow(reference_dis, reference_gray, gray, backward_guess))
            if self.track_reference_flow and tracked is not None:
                reference = better_matching(reference, tracked, gray, reference_gray)
            if rect is not None:
                reference = within(reference, rect)
        wanted = self.reference_scene_check or self.model.cfg.semantic_blend
        scene = same_scene(reference, gray, reference_gray) if reference is not None and wanted else 1.0
        shown = shown_by(reference) if reference is not None and rect is not None else None
        return previous, reference, scene, shown

    @staticmethod
    def _reference_flow_starts(
        gray: np.ndarray, reference_gray: np.ndarray, tracked: Tracked | None, carried: Flow | None,
        previous: Flow | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Where DIS starts this frame's flows to and from the reference.

        The previous frame's flows, carried through this frame's motion, where they held (found
        both ways); elsewhere the pan's global shift (phase correlation), else zero. Carrying only
        what held lets a region the chain got wrong far from the keyframe lock on as it nears.
        """
        shift = global_shift(gray, reference_gray) or (0.0, 0.0)
        forward = np.broadcast_to(np.float32(shift), (*gray.shape, 2)).copy()
        backward = np.negative(forward)
        if tracked is not None and carried is not None and previous is not None:
            # OpenCV's masked copy: numpy's where= costs more than the remaps here
            cv2.copyTo(tracked.forward, tracked.held.view(np.uint8), forward)
            carried_backward = compose(carried.backward, previous.backward)  # reference → previous → this
            cv2.copyTo(carried_backward, visible_mask(carried.backward, carried.forward).view(np.uint8), backward)
        return forward, backward

    def _agreeing_share(self, gray: np.ndarray, canvas: Aligned, dis: DISFlow) -> float:
        """Share of the frame's pixels that optical flow finds in ``canvas`` (started where a first
        frame's flow to the reference starts, padding excluded):
        :func:`~vidcolor.correspondence.tracking.scene_agreement`."""
        forward, backward = self._reference_flow_starts(gray, canvas.gray, None, None, None)
        flow = Flow.of(dis_flow(dis, gray, canvas.gray, forward), dis_flow(dis, canvas.gray, gray, backward))
        if canvas.rect is not None:
            flow = within(flow, canvas.rect)
        return float(scene_agreement(flow, gray, canvas.gray).mean())

    def _scene_tensor(self, scene: float, shown: np.ndarray | None, l_norm: torch.Tensor) -> torch.Tensor:
        """How far the reference shows this frame's scene, for the v2d blend: ``(1,)``, or per pixel
        ``(1, 1, H, W)`` for a placed reference (the frame's share times :func:`shown_by`)."""
        if shown is None:
            return l_norm.new_full((1,), scene)
        return torch.from_numpy(shown * np.float32(scene)).to(self.device)[None, None]

    def _flow_candidate(
        self, flow: Flow, l_norm: torch.Tensor, source_l: torch.Tensor, source_ab: torch.Tensor, tolerance: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return flow_candidate(
            source_ab,
            source_l,
            l_norm,
            torch.from_numpy(flow.forward).to(self.device).permute(2, 0, 1)[None],
            torch.from_numpy(flow.visible).to(self.device, torch.float32)[None, None],
            tolerance,
        )

    @torch.inference_mode()
    def _step_native(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        height, width = lightness.shape
        self._reset_on_new_size(height, width)
        l_norm = self._lightness_tensor(lightness)
        gray = _padded_gray(lightness)
        has_previous = self._previous_ab is not None and self._previous_l is not None and self._previous_gray is not None
        reference_dis = self._dis[self.reference_flow_for(min(height, width))]
        aligned = self._aligned_reference(reference, gray, reference_dis) if reference is not None else None
        carried = None
        carries = self.warm_reference_flow or self.track_reference_flow
        if carries and reference is not None and self._reference_flow is not None:
            carried_key, carried_flow = self._reference_flow
            carried = carried_flow if carried_key == reference.key else None
        # the flows need only the gray frames: estimate them while the network encodes
        flows = (flow_pool().submit(self._estimate_flows, gray, self._previous_gray if has_previous else None,
                                    aligned.gray if aligned is not None else None, reference_dis, carried,
                                    aligned.rect if aligned is not None else None)
                 if has_previous or aligned is not None else None)
        features = self.model.encode(l_norm)
        memory = self._reference_memory(reference, l_norm.shape[2] * l_norm.shape[3]) if reference is not None else None
        previous_flow, reference_flow, scene, shown = flows.result() if flows is not None else (None, None, 1.0, None)
        flow_ab = flow_confidence = ref_flow_ab = ref_flow_confidence = None
        if previous_flow is not None:
            flow_ab, flow_confidence = self._flow_candidate(previous_flow, l_norm, self._previous_l, self._previous_ab,
                                                            FLOW_LIGHTNESS_TOLERANCE)
        if aligned is not None and reference_flow is not None:
            ref_flow_ab, ref_flow_confidence = self._flow_candidate(
                reference_flow, l_norm, aligned.l_norm, aligned.ab, self.reference_flow_tolerance)
            if self.reference_scene_check:
                ref_flow_confidence = ref_flow_confidence * scene
        self._reference_flow = (reference.key, reference_flow) if reference is not None and reference_flow is not None else None
        out = self.model.step(
            l_norm, memory, self._previous, self._previous_ab, features=features, flow_ab=flow_ab, flow_confidence=flow_confidence,
            ref_flow_ab=ref_flow_ab, ref_flow_confidence=ref_flow_confidence,
            scene=self._scene_tensor(scene, shown, l_norm) if reference_flow is not None else None,
        )
        self._previous, self._previous_ab, self._previous_features = out.memory, out.ab_full, features
        self._previous_l, self._previous_gray = l_norm, gray
        ab = (out.ab[0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy() * AB_SCALE).clip(-120.0, 120.0)
        floor = self.unanchored_confidence
        anchored = out.anchored[0, 0, :height, :width].clamp(0.0, 1.0)
        confidence = out.confidence[0, 0, :height, :width].clamp(0.0, 1.0) * (floor + (1.0 - floor) * anchored)
        confidence = confidence.float().cpu().numpy()
        support = out.support[0, 0, :height, :width].clamp(0.0, 1.0).float().cpu().numpy()
        stats = {"confidence": float(confidence.mean())}
        if reference_flow is not None:
            stats["reference_scene"] = scene if self.reference_scene_check else 1.0  # how far its optical flow was trusted
            if self.model.cfg.semantic_blend:
                stats["same_scene"] = scene  # the semantic colour takes at most 1 - this
            if shown is not None:
                stats["shown"] = float(shown[:height, :width].mean())  # share of the frame a placed reference shows
        return ColorizedFrame(
            ab=np.ascontiguousarray(ab, dtype=np.float32),
            confidence=np.ascontiguousarray(confidence, dtype=np.float32),
            stats=stats,
            support=np.ascontiguousarray(support, dtype=np.float32),
        )

    @torch.inference_mode()
    def set_previous(self, ab: np.ndarray) -> None:
        """Adopt a corrected output (e.g. from the temporal check) as the state for the next frame."""
        if self._previous_features is None or self._shape is None:
            return
        if ab.shape[:2] != self._shape:
            ab = cv2.resize(ab, (self._shape[1], self._shape[0]), interpolation=cv2.INTER_AREA)
        padded = _pad(np.asarray(ab, dtype=np.float32))
        ab_t = torch.from_numpy(np.ascontiguousarray(padded)).to(self.device).permute(2, 0, 1)[None] / AB_SCALE
        self._previous = self.model.memory(self._previous_features, ab_t)
        self._previous_ab = ab_t

