"""The interface every colorizer implements, and the small data types it exchanges.

A colorizer sees one shot at a time: ``reset()`` at a shot boundary, then ``step()`` once per
frame in display order with that frame's reference. It works at the working resolution on Lab
lightness and returns Lab chroma; the pipeline owns resizing, the luma-guided upsampling and the
final luma, so no colorizer can alter luminance.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from ..color import guided_upsample
from ..errors import InputError
from ..references import Reference


@dataclass(frozen=True)
class ColorizedFrame:
    """Chroma predicted for one frame at the working resolution.

    ``ab`` is float32 ``(H, W, 2)`` in CIE Lab units (roughly -110..110); ``confidence`` is float32
    ``(H, W)`` in [0, 1]: how much the colour is backed by the reference or by the previous frame.

    ``support`` (float32 ``(H, W)`` in [0, 1], or None when a model cannot tell) is how much of the
    output is colour copied from the reference or the past rather than the model's own gray-ish
    guess. Unlike ``confidence`` (which the temporal check and keyframe blends weigh), it says
    where an exemplar model had *nothing to copy*: there a fallback to an automatic model may
    colour instead.
    """

    ab: np.ndarray
    confidence: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)
    support: np.ndarray | None = None


class Colorizer(ABC):
    """A recurrent exemplar colorizer: predicts each frame's chroma from its reference and its past."""

    #: Name used by ``--model`` and the registry.
    name: str = ""
    #: Working sizes are padded internally to a multiple of this (the caller need not care).
    size_multiple: int = 1
    #: Default short side of the working resolution, in pixels.
    default_short_side: int = 256
    #: False for automatic models (eccv16, cheng2015): they colour every frame without an exemplar.
    needs_reference: bool = True
    #: The temporal check's ``persistence`` when the user sets none (see :class:`~vidcolor.temporal.TemporalSettings`).
    temporal_persistence: float = 1.0

    @abstractmethod
    def reset(self) -> None:
        """Forget the previous frame: the next ``step`` starts a new shot."""

    def _reset_on_new_size(self, height: int, width: int) -> None:
        """For recurrent networks: their state belongs to one frame size, so another size starts afresh."""
        if getattr(self, "_shape", None) != (height, width):
            self.reset()
            self._shape = (height, width)

    @abstractmethod
    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        """Colorize one frame.

        :param lightness: float32 ``(H, W)`` Lab L in [0, 100] at the working resolution.
        :param reference: the exemplar for this frame, or ``None`` when the shot has none.
        """

    def fork(self) -> Colorizer:
        """An independent copy (same weights and settings, its own recurrent state), reset.

        Used for a second pass over the same frames, e.g. from a shot's end reference.
        """
        clone = copy.deepcopy(self)
        clone.reset()
        return clone

    def begin_reference(self, reference: Reference, size: tuple[int, int],
                        anchor: Callable[[], np.ndarray | None]) -> None:
        """A pass over frames (``size``: working width, height) that follow ``reference`` begins,
        right after ``reset()``.

        ``anchor()`` gives the working-size lightness of the frame where the recurrence of that
        stretch of the shot starts in a sequential pass (the keyframe's moment), or None where it
        cannot be had; it may decode a frame, so call it only when needed. A colorizer that chooses
        something per reference by looking at a frame chooses on that one, so that every pass (a
        chunk from its warm-up, a VapourSynth request, a resumed run) chooses alike, whatever frame
        it starts at. Default: nothing to choose.
        """

    def describe(self) -> dict[str, object]:
        """Everything that changes this colorizer's output (name and settings), as plain data:
        an interrupted run resumes only under the same description."""
        return {"model": self.name}

    def set_previous(self, ab: np.ndarray) -> None:
        """Replace the chroma remembered as the last output (on the last frame's grid).

        The temporal check calls this after correcting a frame, so a recurrent colorizer carries the
        corrected colours forward rather than its own flickering ones. Non-recurrent colorizers
        ignore it (the default).
        """


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """``image`` edge-padded at the bottom and right to a multiple of ``multiple`` (networks that
    halve the resolution several times need it); unchanged when it already is one."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return image
    return np.pad(image, ((0, ph), (0, pw)) + ((0, 0),) * (image.ndim - 2), mode="edge")


def scaled_to_short_side(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) scaled so the shorter side is ``short_side``, aspect kept."""
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def lightness_at_network_size(lightness: np.ndarray, model: str,
                               network_size: Callable[[int, int], tuple[int, int]]) -> tuple[np.ndarray, tuple[int, int]]:
    """A 2-D lightness frame resized to the size an automatic network reads, and the frame's own
    (height, width) to bring its answer back to; shrinking averages (INTER_AREA) so no detail aliases."""
    lightness = np.asarray(lightness, dtype=np.float32)
    if lightness.ndim != 2:
        raise InputError(f"{model} needs a 2-D lightness frame, got shape {lightness.shape}")
    height, width = lightness.shape
    net_h, net_w = network_size(height, width)
    if (net_h, net_w) == (height, width):
        return lightness, (height, width)
    shrink = net_h < height
    return cv2.resize(lightness, (net_w, net_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR), (height, width)


def shipped_weights_path(model: str) -> Path:
    """Where the shipped weights of ``model`` live inside the installed package."""
    return Path(str(resources.files("vidcolor.models").joinpath("weights", f"{model}.pt")))


def shipped_weights_hint(model: str, written_by: str) -> str:
    """What to do when the weights of a model that ships with vidcolor are missing."""
    return (f"reinstall vidcolor (the {model} model ships inside the package) or pass the path of weights "
            f"written by {written_by}")


def native_size(width: int, height: int, native_short_side: int, size_multiple: int) -> tuple[int, int] | None:
    """(width, height) :func:`step_at_native_size` shrinks a frame of ``width`` x ``height`` to, or
    None when its short side is at most ``native_short_side`` (it runs as it is)."""
    scale = native_short_side / min(height, width)
    if scale >= 1.0:
        return None
    return max(size_multiple, round(width * scale)), max(size_multiple, round(height * scale))


def step_at_native_size(lightness: np.ndarray, reference: Reference | None, native_short_side: int, size_multiple: int,
                        step_native: Callable[[np.ndarray, Reference | None], ColorizedFrame]) -> ColorizedFrame:
    """Run a network no larger than it was trained for: a frame whose short side exceeds
    ``native_short_side`` is area-shrunk for it, and its chroma comes back up guided by the full
    lightness (confidence and support bilinearly)."""
    height, width = lightness.shape
    small_size = native_size(width, height, native_short_side, size_multiple)
    if small_size is None:
        return step_native(lightness, reference)
    result = step_native(cv2.resize(lightness, small_size, interpolation=cv2.INTER_AREA), reference)
    ab = guided_upsample(result.ab, lightness)
    confidence = cv2.resize(result.confidence, (width, height), interpolation=cv2.INTER_LINEAR)
    support = (None if result.support is None
               else cv2.resize(result.support, (width, height), interpolation=cv2.INTER_LINEAR))
    return ColorizedFrame(ab=ab.astype(np.float32, copy=False), confidence=confidence, stats=result.stats,
                          support=support)
