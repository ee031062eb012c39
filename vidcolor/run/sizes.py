"""Working sizes: the resolution the models see (aspect kept, even numbers), the ``--size``
option's parsing, and full-resolution lightness brought to that size."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..color import shrink_area
from ..correspondence.flow import DIS_MIN_SIDE
from ..errors import InputError

if TYPE_CHECKING:
    from ..colorizers.base import Colorizer
    from ..io.reader import VideoInfo

#: The smallest side of a working size: OpenCV's DIS optical flow crashes the process on smaller wide
#: frames (see DIS_MIN_SIDE), and the default and fast models call it on their own DIS objects.
MIN_WORKING_SIDE = DIS_MIN_SIDE
_TOO_SMALL = f"OpenCV's optical flow crashes on frames under {MIN_WORKING_SIDE} px on a side"


def working_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the given short side, aspect kept (no cropping), even numbers."""
    if short_side is None or short_side >= min(width, height):
        scale = 1.0
    else:
        scale = short_side / min(width, height)
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def parse_size(text: str | None, name: str = "--size") -> tuple[int | None, tuple[int, int] | None]:
    """``--size``: ``N`` (short side in pixels) or ``WxH``; None keeps the model's default. ``name``
    is how the messages call the setting (``size`` in a preset or the VapourSynth filter)."""
    if text is None:
        return None, None
    value = text.lower().strip()
    must = f"{name} must be a short side in pixels (an integer of at least {MIN_WORKING_SIDE}) or WxH"
    if "x" in value:
        w, _, h = value.partition("x")
        if not (w.isdigit() and h.isdigit()):
            raise ValueError(f"{must}, got {text!r}")
        size = int(w), int(h)
        if min(size) < MIN_WORKING_SIDE:
            raise ValueError(f"{must} with both sides at least {MIN_WORKING_SIDE}, got {text!r}: {_TOO_SMALL}; "
                             f"use {_at_least_minimum(size)} or larger")
        return None, size
    if not value.isdigit():
        raise ValueError(f"{must}, got {text!r}")
    if int(value) < MIN_WORKING_SIDE:
        raise ValueError(f"{must}, got {text!r}: {_TOO_SMALL}; use {MIN_WORKING_SIDE} or larger")
    return int(value), None


def working_size_for(info: VideoInfo, colorizer: Colorizer, short_side: int | None = None,
                     size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The working size a run of ``colorizer`` on ``info`` uses: ``size``, else the short side
    given or the model's own default."""
    return run_working_size(info.width, info.height, colorizer, short_side, size)


def run_working_size(width: int, height: int, colorizer: Colorizer, short_side: int | None = None,
                     size: tuple[int, int] | None = None) -> tuple[int, int]:
    """:func:`working_size_for` on a ``width`` x ``height`` input. Refused below
    :data:`MIN_WORKING_SIDE` with a clear error rather than a crash: the size given, or a video
    smaller than that, which a short side never enlarges."""
    work = size or working_size(width, height, short_side or colorizer.default_short_side)
    if min(work) < MIN_WORKING_SIDE:
        source = "" if size else f"the video is {width}x{height} and a short side never enlarges it; "
        raise InputError(f"working size {work[0]}x{work[1]} is too small: {_TOO_SMALL}; {source}"
                         f"use --size {_at_least_minimum(size or (width, height))} or larger")
    return work


def _at_least_minimum(size: tuple[int, int]) -> str:
    """``size`` scaled up so its short side is :data:`MIN_WORKING_SIDE` (even numbers, rounded up): the
    nearest working size to suggest, said to keep the aspect only when it does within 5%, as a
    reference's aspect agrees with a frame's (the even numbers of a short side of 32 can miss by more)."""
    scale = MIN_WORKING_SIDE / min(size)
    width, height = (-(-math.ceil(side * scale) // 2) * 2 for side in size)
    same = abs(math.log(width * size[1] / (height * size[0]))) <= math.log(1.05)
    return f"{width}x{height} ({'the same aspect' if same else 'near the same aspect'})"


def working_lightness(full_lightness: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """Full-resolution lightness brought to the working size ``work`` (width, height) the models see."""
    small = full_lightness
    if (full_lightness.shape[1], full_lightness.shape[0]) != work:
        small = shrink_area(full_lightness, work)
    return np.ascontiguousarray(small, dtype=np.float32)
