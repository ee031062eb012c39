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
"""

from __future__ import annotations

import numpy as np

from ..correspondence.tracking import placement
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


__all__ = ["TONE_TOLERANCE", "tone_matched"]
