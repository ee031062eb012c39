"""Working sizes: the resolution the models see (aspect kept, even numbers), the ``--size``
option's parsing, and full-resolution lightness brought to that size."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..color import shrink_area

if TYPE_CHECKING:
    from ..colorizers.base import Colorizer
    from ..io.reader import VideoInfo


def working_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the given short side, aspect kept (no cropping), even numbers."""
    if short_side is None or short_side >= min(width, height):
        scale = 1.0
    else:
        scale = short_side / min(width, height)
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def parse_size(text: str | None) -> tuple[int | None, tuple[int, int] | None]:
    """``--size``: ``N`` (short side in pixels) or ``WxH``; None keeps the model's default."""
    if text is None:
        return None, None
    value = text.lower().strip()
    if "x" in value:
        w, _, h = value.partition("x")
        if not (w.isdigit() and h.isdigit()) or int(w) < 16 or int(h) < 16:
            raise ValueError(f"--size must be N or WxH with both at least 16, got {text!r}")
        return None, (int(w), int(h))
    if not value.isdigit() or int(value) < 16:
        raise ValueError(f"--size must be a short side in pixels (at least 16) or WxH, got {text!r}")
    return int(value), None


def working_size_for(info: VideoInfo, colorizer: Colorizer, short_side: int | None = None,
                     size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The working size a run of ``colorizer`` on ``info`` uses: ``size``, else the short side
    given or the model's own default."""
    return size or working_size(info.width, info.height, short_side or colorizer.default_short_side)



def working_lightness(full_lightness: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """Full-resolution lightness brought to the working size ``work`` (width, height) the models see."""
    small = full_lightness
    if (full_lightness.shape[1], full_lightness.shape[0]) != work:
        small = shrink_area(full_lightness, work)
    return np.ascontiguousarray(small, dtype=np.float32)
