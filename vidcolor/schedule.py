"""Which reference applies to which frame: keyframes resolved into shots.

A keyframe ``(frame, reference)`` applies from its frame until the next keyframe; frames before
the first keyframe use the first reference too, so the whole clip gets colour. Every keyframe
starts a new shot, where the colorizer's recurrent state resets. Scene cuts can add further
resets. Plain data, no torch.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import InputError
from .references import Reference


@dataclass(frozen=True)
class Keyframe:
    frame: int
    reference: Reference


class ReferenceSchedule:
    """Keyframes (sorted, unique) plus extra shot boundaries (scene cuts)."""

    def __init__(self, keyframes: Sequence[Keyframe] = (), cuts: Iterable[int] = ()) -> None:
        frames = [k.frame for k in keyframes]
        duplicates = sorted({f for f in frames if frames.count(f) > 1})
        if duplicates:
            raise InputError(f"two references are pinned to frame {duplicates[0]}: give one reference per keyframe")
        negative = [f for f in frames if f < 0]
        if negative:
            raise InputError(f"a reference is pinned to frame {negative[0]}: frame numbers start at 0")
        self.keyframes: tuple[Keyframe, ...] = tuple(sorted(keyframes, key=lambda k: k.frame))
        self._starts = [k.frame for k in self.keyframes]
        self.cuts = frozenset(cuts)

    @classmethod
    def single(cls, reference: Reference | None) -> ReferenceSchedule:
        return cls([Keyframe(0, reference)] if reference is not None else [])

    def validate(self, frame_count: int | None, source: str = "input") -> None:
        """Every keyframe must fall inside the clip."""
        if frame_count is None:
            return
        for keyframe in self.keyframes:
            if keyframe.frame >= frame_count:
                raise InputError(
                    f"reference {keyframe.reference.key!r} is pinned to frame {keyframe.frame}, but {source!r} has "
                    f"{frame_count} frames (0..{frame_count - 1}): use a frame number inside the clip"
                )

    def reference_at(self, frame: int) -> Reference | None:
        if not self.keyframes:
            return None
        position = bisect.bisect_right(self._starts, frame) - 1
        return self.keyframes[max(position, 0)].reference

    def starts_shot(self, frame: int) -> bool:
        """True where the recurrence must reset: the first frame, a keyframe, or a cut."""
        return frame == 0 or frame in self.cuts or (frame in self._starts and frame != 0)


def parse_ref_option(value: str) -> tuple[int | None, str]:
    """``IMAGE`` → (None, IMAGE); ``FRAME=IMAGE`` → (FRAME, IMAGE)."""
    head, sep, tail = value.partition("=")
    if sep and head.strip().isdigit():
        return int(head), tail
    return None, value
