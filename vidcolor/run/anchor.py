"""A keyframe's moment: the frame of its shot that the reference really shows.

Colourists pin a painted keyframe at the first frame of its shot, but paint it from a frame
further in, where the shot is clearest. A recurrent colorizer that starts at the pinned frame
matches the reference to content it does not show and carries the resulting smears into the next
frames (issue 24, "Smears after cuts"). With ``anchor = "auto"`` the pipeline finds the moment
(:func:`find_moment`) among the first :data:`ANCHOR_SEARCH` frames of the keyframe's shot and
colours the shot outward from it: forward to the shot's end and, with a forked colorizer in
reverse order, backward to its first frame (:class:`vidcolor.run.pipeline.FrameColorizer`), so
every frame's recurrence starts next to the keyframe. ``"pinned"`` keeps the moment at the pinned
frame (vidcolor's behaviour before anchoring).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..color import shrink_area
from ..correspondence.tracking import placement
from ..references import Reference

#: ``auto``: find each keyframe's moment; ``pinned``: the pinned frame is the moment.
ANCHORS = ("auto", "pinned")

#: ``auto`` measured better on three two-shot films and worse on none (``bench/two_shot.py``, shot 2's
#: frames 1-7, default model: +0.06, +0.09, +0.62 dB; classic: +0.13, +0.37, +1.36 dB), but it
#: decodes up to :data:`ANCHOR_SEARCH` frames per keyframe once more, so a run with references is no
#: longer one decoding pass: it is asked for, not the default, until the stream can look ahead.
#: On the pixels the keyframe shows (default model; ``bench/two_shot.py --models classic,default
#: --anchors auto,pinned --shown``, 5 films: the held-out pair both ways round, car-shadow→blackswan,
#: calendar→bmx-trees, bmx-trees→blackswan; 2026-12-07) auto brings shot 2's start level with its end (start - end: mean -0.00 dB, worst -0.77; pinned -1.32, worst -3.15); the
#: whole-frame gap left (mean -2.50) is content the keyframe never shows (issue 24).
DEFAULT_ANCHOR = "pinned"

#: The moment is looked for among this many frames from the pinned one, so it is also the longest
#: backward run. Anchoring keeps in memory the working-size lightness of these frames and the
#: backward predictions (chroma, confidence) of the frames before the moment, one shot at a time:
#: about 60 MB at the default model's 160-line working size, whatever the film's length. It decodes
#: these frames once more per keyframe (one seek): up to 64 frames per keyframe shot.
ANCHOR_SEARCH = 64

#: Short side of the thumbnails compared: coarse enough that grain, compression and small motion
#: do not matter, fine enough to tell one framing of a shot from another.
ANCHOR_GRID = 32

#: How much better (correlation, -1..1) a frame must match the reference than the pinned frame for
#: the moment to move off it: the pinned frame wins near-ties, so a reference that matches the
#: whole shot equally (a static shot) changes nothing.
ANCHOR_MARGIN = 0.05


def structure(lightness: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``lightness`` area-shrunk to ``size`` (width, height), its smooth shading removed (a Gaussian
    blur of a eighth of the grid subtracted): what is where in the frame, not a gradient of light
    most frames of a shot share."""
    small = shrink_area(np.ascontiguousarray(lightness, dtype=np.float32), size)
    return small - cv2.GaussianBlur(small, (0, 0), ANCHOR_GRID / 8, borderType=cv2.BORDER_REFLECT)


def thumbnail(lightness: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`structure`, zero-mean and unit-norm, so that a dot product of two thumbnails is the
    correlation of their structure, whatever a painted keyframe's other brightness and contrast."""
    small = structure(lightness, size).astype(np.float64).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-6 else small


def thumbnail_size(height: int, width: int) -> tuple[int, int]:
    """(width, height) of the comparison grid for frames of ``height`` x ``width``."""
    scale = ANCHOR_GRID / min(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def moment_scores(reference: Reference, frames: Sequence[np.ndarray]) -> list[float]:
    """Correlation of ``reference``'s lightness with each of ``frames`` (working-size lightness of
    consecutive frames from the pinned one), on the :data:`ANCHOR_GRID` thumbnails.

    A reference of another aspect may be a crop of the frame (its left half) or the frame at
    another pixel aspect (the default model tells which on the moment): each frame scores the
    better of the reference stretched to it and the reference at its own aspect, fitted inside it
    as :func:`~vidcolor.correspondence.tracking.placement` fits it, at the place that matches best.
    Stretched alone, a crop matches no frame, and the moment went to whichever frame's noise
    matched best (blackswan, car-shadow: frames 34 and 15 for frame 0's left half)."""
    if not frames:
        return []
    size = thumbnail_size(*frames[0].shape[:2])
    wanted = thumbnail(reference.lightness_at(*size), size)
    scores = [float(np.dot(wanted, thumbnail(frame, size))) for frame in frames]
    rect = placement(reference.size, size)
    if rect is None:
        return scores
    x0, y0, x1, y1 = rect
    fitted = structure(reference.lightness_at(x1 - x0, y1 - y0), (x1 - x0, y1 - y0))
    if min(fitted.shape) < 2 or float(fitted.std()) < 1e-6:
        return scores
    return [max(score, float(cv2.matchTemplate(structure(frame, size), fitted, cv2.TM_CCOEFF_NORMED).max()))
            for score, frame in zip(scores, frames, strict=True)]


def find_moment(reference: Reference, frames: Sequence[np.ndarray]) -> int:
    """Offset, from the pinned frame (``frames[0]``), of the frame ``reference`` shows: the best
    matching one when it beats the pinned frame by :data:`ANCHOR_MARGIN`, else 0."""
    scores = moment_scores(reference, frames)
    if not scores:
        return 0
    best = int(np.argmax(scores))
    return best if scores[best] >= scores[0] + ANCHOR_MARGIN else 0


__all__ = ["ANCHORS", "DEFAULT_ANCHOR", "ANCHOR_GRID", "ANCHOR_MARGIN", "ANCHOR_SEARCH", "find_moment", "moment_scores", "structure",
           "thumbnail", "thumbnail_size"]
