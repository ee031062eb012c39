"""The frame's lightness brought near its reference's tone before the colorizer matches them.

A painted keyframe is painted from one moment of its shot, at that moment's exposure. Archival
prints change exposure within a shot: the a-bomb clip's shots open 8-12 frames brighter or darker
than they settle (frames 44-52: sky L 79 falling to 62, the reference's sky at 51; the whole frame
26 L above the reference at frame 44, 14 at frame 52), as a print's density does after a splice.
Matched at its own lightness, such a frame's sky found the reference's white sign border (L 82)
rather than its sky, and took its yellow: the smears issue 24 saw after each cut ("Smears after
cuts": orange around the sign at frames 44-46), gone once the exposure settled.

:func:`tone_matched` shifts the frame's lightness by as much as its mean is further than
:data:`TONE_TOLERANCE` from the reference's (a mean shift, as Welsh et al.'s luminance remapping,
"Transferring color to greyscale images", 2002, without its contrast gain). Within the tolerance,
the frame is left as it is: a shot's own content moves its mean too (DAVIS dog, frames 0-59 against
frame 0: -1.7 to +7.2 L), and a reference of the frame itself must keep matching it exactly. Only
the colorizer sees the shifted lightness; the output keeps the frame's own luma.

The shift corrects an exposure only when the reference shows the frame's scene (a keyframe of the
same shot, painted from a moment at another exposure). For another picture (issue 24's photo of
another person) the means differ because the content does, and the shift made the faces worse
(bench/faces.py: bluish face up to 0.090 from 0.067). :class:`ToneGate` decides it once per shot,
on the frame where its recurrence starts (the one ``begin_reference`` chooses on), so every pass
(CLI, VapourSynth in any order, resumed, chunked) decides alike, for one optical flow per shot.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..correspondence.flow import DISFlow, global_shift
from ..correspondence.tracking import Flow, dis_flow, flow_gray, placement, same_scene
from ..references import Reference

#: Lab L difference between the frame's mean lightness and the reference's that is left alone:
#: the default model's reference-flow tolerance (a warped pixel this far off loses trust to 1/e).
TONE_TOLERANCE = 8.0


def tone_matched(lightness: np.ndarray, reference: Reference) -> np.ndarray:
    """``lightness`` (Lab L, working size) shifted to within :data:`TONE_TOLERANCE` of
    ``reference``'s mean lightness at that size; the same array when it is within already. A
    reference of another aspect (a crop of the frame, placed inside it) shows part of the frame,
    whose tone says nothing of the whole: the frame is returned as it is."""
    height, width = lightness.shape
    if placement(reference.size, (width, height)) is not None:
        return lightness
    difference = float(lightness.mean()) - float(reference.lightness_at(width, height).mean())
    shift = difference - float(np.clip(difference, -TONE_TOLERANCE, TONE_TOLERANCE))
    if shift == 0.0:
        return lightness
    return np.clip(np.asarray(lightness, dtype=np.float32) - np.float32(shift), 0.0, 100.0)


#: :func:`~vidcolor.correspondence.tracking.same_scene` (0..1, ramped over its SAME_SCENE_SHARE) from
#: which the reference counts as showing the frame's scene: the middle of the ramp.
TONE_SCENE = 0.5


def shows_scene(lightness: np.ndarray, reference: Reference) -> bool:
    """Whether ``reference`` shows the scene of the frame ``lightness`` (Lab L, working size):
    :func:`~vidcolor.correspondence.tracking.same_scene` of DIS flow (fast preset, started from the
    pan's global shift) at least :data:`TONE_SCENE`, measured on the frame already
    :func:`tone_matched`, since the exposures may differ. A crop reference is never toned: False."""
    height, width = lightness.shape
    if placement(reference.size, (width, height)) is not None:
        return False
    frame, shown = flow_gray(tone_matched(lightness, reference)), flow_gray(reference.lightness_at(width, height))
    shift = np.float32(global_shift(frame, shown) or (0.0, 0.0))
    forward = np.broadcast_to(shift, (height, width, 2)).copy()
    dis = DISFlow(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    flow = Flow.of(dis_flow(dis, frame, shown, forward), dis_flow(dis, shown, frame, -forward))
    return same_scene(flow, frame, shown) >= TONE_SCENE


class ToneGate:
    """Whether a shot's frames are :func:`tone_matched` to its user's reference: decided once per
    (frame where the recurrence starts, reference) by :func:`shows_scene`, and kept. Asked only
    when the shift would act, so a shot whose frames all stay within the tolerance costs no flow
    and no read of its start frame (a chunk's pass, a Ray worker, a VapourSynth request)."""

    def __init__(self) -> None:
        self._decided: dict[tuple[int, int], tuple[Reference, bool]] = {}

    def matched(self, lightness: np.ndarray, reference: Reference, start: int,
                start_lightness: Callable[[], np.ndarray | None], at_hand: np.ndarray) -> np.ndarray:
        """``lightness`` :func:`tone_matched` to ``reference`` if that shows the scene of frame
        ``start`` (:meth:`applies`), else as it is."""
        shifted = tone_matched(lightness, reference)
        if shifted is lightness or self.applies(start, reference, start_lightness, at_hand):
            return shifted
        return lightness

    def applies(self, start: int, reference: Reference, start_lightness: Callable[[], np.ndarray | None],
                at_hand: np.ndarray) -> bool:
        """The decision for ``reference`` on frame ``start``; ``start_lightness`` (its working-size
        lightness) is called only the first time. When it gives None (a pass that cannot read frames
        other than those it is fed), the frame at hand ``at_hand`` decides."""
        known = self._decided.get((start, id(reference)))
        if known is None or known[0] is not reference:
            lightness = start_lightness()
            decision = shows_scene(at_hand if lightness is None else lightness, reference)
            known = self._decided[(start, id(reference))] = (reference, decision)
        return known[1]


__all__ = ["TONE_SCENE", "TONE_TOLERANCE", "ToneGate", "shows_scene", "tone_matched"]
