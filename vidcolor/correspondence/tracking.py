"""Following a reference through a shot with optical flow: the flow pairs the default model measures
every frame, and how the previous frame's flow to the reference is carried forward.

DIS (OpenCV's dense inverse search) is measured from each frame to the previous one and to the
reference; :func:`track` carries the previous frame's flow to the reference through this frame's
motion, and :func:`better_matching` keeps, pixel by pixel, whichever of the measured and the
carried flow fits the reference's lightness better. A keyframe many frames away is then still
found where DIS alone loses it.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .flow import DISFlow, compose, visible_mask, warp


class Flow(NamedTuple):
    """A DIS flow from this frame to a source frame, the flow back, and which pixels it found in the source."""

    forward: np.ndarray
    backward: np.ndarray
    visible: np.ndarray

    @classmethod
    def of(cls, forward: np.ndarray, backward: np.ndarray) -> Flow:
        return cls(forward, backward, visible_mask(forward, backward))


def flow_gray(lightness: np.ndarray) -> np.ndarray:
    """Lab L (0..100) as the 8-bit gray DIS reads, rounded."""
    return np.clip(np.asarray(lightness, dtype=np.float32) * 2.55 + 0.5, 0, 255).astype(np.uint8)


def dis_flow(dis: DISFlow, source: np.ndarray, target: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
    """DIS flow from ``source`` to ``target``, starting from ``guess`` (else from zero).

    The start is always passed explicitly: after a call given a starting flow, OpenCV 4's DIS
    answers a later call given none slightly differently (up to 0.005 px), which would make a
    chunk replayed for VapourSynth differ from the sequential pass. Given zeros it matches a fresh
    object's answer to no start, whatever came before.
    """
    start = guess if guess is not None else np.zeros((*source.shape[:2], 2), np.float32)
    return dis.calc(source, target, start)


class Tracked(NamedTuple):
    """The previous frame's flow to the reference, carried through this frame's motion."""

    forward: np.ndarray
    #: Where the flow held for the previous frame: DIS may start from it there.
    held: np.ndarray
    #: Where it held and this frame's pixel was found in the previous frame: a candidate there.
    visible: np.ndarray


def track(previous: Flow | None, carried: Flow | None) -> Tracked | None:
    """Carry ``carried`` (the previous frame's flows with the reference) through ``previous`` (this
    frame's flows with the previous frame); None at a shot's first frame or a new reference."""
    if previous is None or carried is None:
        return None
    forward = compose(previous.forward, carried.forward)  # this → previous → reference
    held = warp(carried.visible.view(np.uint8), previous.forward).view(bool)  # 0/1 in, rounded to 0/1 out
    return Tracked(forward, held, held & previous.visible)


#: Blur (pixels) of the lightness mismatch by which :func:`better_matching` compares two flows.
MATCH_BLUR = 2.0


def better_matching(measured: Flow, tracked: Tracked, gray: np.ndarray, reference_gray: np.ndarray) -> Flow:
    """Per pixel, the flow to the reference DIS measured or the one tracked from the previous frame.

    The tracked flow where only it held, or where both held and the reference's lightness it
    points to matches this frame's better (locally averaged); the measured flow elsewhere. DIS
    alone loses hold of a keyframe many frames away (its forward-backward check fails, or it
    settles on a look-alike); tracking alone drifts and misses what it never saw. The result
    counts as held wherever either did. ``backward`` stays the measured one.
    """
    target = gray.astype(np.float32)
    source = reference_gray.astype(np.float32)
    measured_error = cv2.GaussianBlur(cv2.absdiff(warp(source, measured.forward), target), (0, 0), MATCH_BLUR)
    tracked_error = cv2.GaussianBlur(cv2.absdiff(warp(source, tracked.forward), target), (0, 0), MATCH_BLUR)
    use_tracked = tracked.visible & (~measured.visible | (tracked_error < measured_error))
    forward = measured.forward.copy()
    cv2.copyTo(tracked.forward, use_tracked.view(np.uint8), forward)
    return Flow(forward, measured.backward, measured.visible | tracked.visible)


#: Gaussian window (pixels, sigma) over which :func:`scene_agreement` compares the warped reference's
#: structure with the frame's.
AGREEMENT_WINDOW = 3.0
#: Local normalised cross-correlation from which a flow-found pixel shows the same structure.
AGREEMENT_NCC = 0.5
#: Local lightness variance (8-bit units squared) under which a window is flat: its correlation says nothing.
AGREEMENT_FLAT = 9.0
#: Share of a frame's pixels that agree (:func:`scene_agreement`) at which the reference stops
#: counting as another picture (:func:`same_scene` 0) and starts counting as the same scene (1).
#: Measured at 160 lines (DIS fast, no tracking): the next frame of the shot 0.79-1.00 on the 7
#: quality clips; a photo of another face 0.02-0.09, the mirrored frame 0 0.00-0.05, another clip 0.00-0.01.
SAME_SCENE_SHARE = (0.10, 0.20)


def scene_agreement(flow: Flow, gray: np.ndarray, reference_gray: np.ndarray) -> np.ndarray:
    """Where the flow to the reference found the same structure: visible both ways and, after the
    warp, locally correlated with the frame (:data:`AGREEMENT_NCC` over a :data:`AGREEMENT_WINDOW`
    window; flat windows do not count). DIS between two different pictures still finds flow that
    matches lightness, but not the texture around it."""
    target = gray.astype(np.float32)
    warped = warp(reference_gray.astype(np.float32), flow.forward)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), AGREEMENT_WINDOW)

    mean_t, mean_w = blur(target), blur(warped)
    var_t = blur(target * target) - mean_t * mean_t
    var_w = blur(warped * warped) - mean_w * mean_w
    covariance = blur(target * warped) - mean_t * mean_w
    textured = np.minimum(var_t, var_w) > AGREEMENT_FLAT
    ncc = covariance / np.sqrt(np.maximum(var_t, AGREEMENT_FLAT) * np.maximum(var_w, AGREEMENT_FLAT))
    return flow.visible & textured & (ncc >= AGREEMENT_NCC)


def same_scene(flow: Flow, gray: np.ndarray, reference_gray: np.ndarray) -> float:
    """How far (0..1) the reference shows this frame's scene, by the share of agreeing pixels.

    Optical flow from a frame to a reference is only meaningful when both show the same scene: a
    photo of another person, or the frame mirrored, gives flow that lands on look-alike lightness
    and pastes the reference's colours (a blue background onto a cheek) there. The ramp between
    the two :data:`SAME_SCENE_SHARE` shares keeps a frame from flickering at the boundary.
    """
    share = float(scene_agreement(flow, gray, reference_gray).mean())
    low, high = SAME_SCENE_SHARE
    return float(np.clip((share - low) / (high - low), 0.0, 1.0))


#: Blur (pixels, sigma) of the map of pixels a placed reference shows (:func:`shown_by`): a smooth
#: border between the flow's colour and the semantic colour, and no holes where DIS's check failed.
SHOWN_BLUR = 4.0
#: Share of visible pixels around a pixel (within :data:`SHOWN_BLUR`) from which it counts as shown.
SHOWN_SHARE = 0.5


def placement(reference_size: tuple[int, int], frame_size: tuple[int, int],
              tolerance: float = 0.05) -> tuple[int, int, int, int] | None:
    """Where a reference of another aspect ratio sits in a frame-sized canvas: (x0, y0, x1, y1), or
    None when the aspects agree within ``tolerance`` (then it is resized to the frame, as a keyframe).

    A reference cropped from the frame (its left half, a detail) shows that part at the frame's
    scale; stretched to the frame its content no longer lines up with anything, and optical flow
    finds none of it. Fitted inside the frame with its aspect kept and centred, the flow (started
    from the pan's global shift) finds where it sits.
    """
    ref_w, ref_h = reference_size
    width, height = frame_size
    if abs(np.log((ref_w / ref_h) / (width / height))) <= np.log1p(tolerance):
        return None
    scale = min(width / ref_w, height / ref_h)
    w, h = max(1, round(ref_w * scale)), max(1, round(ref_h * scale))
    x0, y0 = (width - w) // 2, (height - h) // 2
    return x0, y0, x0 + w, y0 + h


def lands_inside(forward: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """Where ``forward`` (this frame → a canvas) points inside ``rect`` of the canvas."""
    h, w = forward.shape[:2]
    x = forward[..., 0] + np.arange(w, dtype=np.float32)
    y = forward[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    x0, y0, x1, y1 = rect
    return (x >= x0 - 0.5) & (x <= x1 - 0.5) & (y >= y0 - 0.5) & (y <= y1 - 0.5)


def within(flow: Flow, rect: tuple[int, int, int, int]) -> Flow:
    """``flow`` with only the pixels it finds inside ``rect`` visible: the canvas around a placed
    reference is padding, no colour to copy."""
    return Flow(flow.forward, flow.backward, flow.visible & lands_inside(flow.forward, rect))


def shown_by(flow: Flow) -> np.ndarray:
    """How far (0..1) each pixel is content a placed reference shows: its visible pixels, blurred
    (:data:`SHOWN_BLUR`). The rest (the right half, for a reference that is the frame's left half)
    is content the reference does not show."""
    density = cv2.GaussianBlur(flow.visible.astype(np.float32), (0, 0), SHOWN_BLUR)
    return np.minimum(density * np.float32(1.0 / SHOWN_SHARE), np.float32(1.0))
