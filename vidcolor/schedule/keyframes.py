"""Which reference applies to which frame: keyframes resolved into shots.

A keyframe ``(frame, reference)`` applies from its frame until the next keyframe; frames before
the first keyframe use the first reference too, so the whole clip gets colour. Every keyframe
starts a new shot, where the colorizer's recurrent state resets. Scene cuts can add further
resets. Plain data, no torch.

A keyframe may also carry an ``end_reference``: a two-keyframe shot, coloured from both ends and
blended by position (:meth:`ReferenceSchedule.blend_position`). Its ``end_frame`` is the shot's
last frame; when a keyframe gives one that falls before the next keyframe, the frames after it
form a segment of their own (a reset) that keeps the keyframe's start reference.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from ..errors import InputError
from ..references import Reference, as_stored


@dataclass(frozen=True)
class Keyframe:
    """A reference pinned to the first frame of a shot. The frame the reference shows (its moment)
    may lie further in; the pipeline finds it and colours the shot outward from it
    (:mod:`vidcolor.run.anchor`).

    ``end_reference`` (optional) is the colour of the shot's last frame ``end_frame`` (inclusive):
    the pipeline colours the shot from both ends and blends by position. ``end_frame`` may also be
    given alone, to end the shot before the next keyframe. ``None`` means "until the next shot
    boundary, or the end of the clip".
    """

    frame: int
    reference: Reference
    end_reference: Reference | None = None
    end_frame: int | None = None


class ShotSpan(NamedTuple):
    """The segment holding a frame: ``start``..``end`` (inclusive; ``end`` None when the clip's
    length is unknown and this is the last segment) and the keyframe whose reference applies."""

    start: int
    end: int | None
    keyframe: Keyframe | None


class ReferenceSchedule:
    """Keyframes (sorted, unique) plus extra shot boundaries (scene cuts).

    ``frame_count``, when known, lets :meth:`shot_at` give the last segment's end.
    """

    def __init__(self, keyframes: Sequence[Keyframe] = (), cuts: Iterable[int] = (),
                 frame_count: int | None = None) -> None:
        frames = [k.frame for k in keyframes]
        duplicates = sorted({f for f in frames if frames.count(f) > 1})
        if duplicates:
            raise InputError(f"two references are pinned to frame {duplicates[0]}: give one reference per keyframe")
        negative = [f for f in frames if f < 0]
        if negative:
            raise InputError(f"a reference is pinned to frame {negative[0]}: frame numbers start at 0")
        self.keyframes: tuple[Keyframe, ...] = tuple(sorted(keyframes, key=lambda k: k.frame))
        self._starts = [k.frame for k in self.keyframes]
        ended = set()
        for keyframe, following in zip(self.keyframes, [*self._starts[1:], None]):
            if keyframe.end_frame is None:
                continue
            if keyframe.end_frame < keyframe.frame:
                raise InputError(
                    f"the shot starting at frame {keyframe.frame} ends at frame {keyframe.end_frame}, before it starts: "
                    "give an end at or after the start"
                )
            if following is not None and keyframe.end_frame >= following:
                raise InputError(
                    f"the shot starting at frame {keyframe.frame} ends at frame {keyframe.end_frame}, but the next shot "
                    f"starts at frame {following}: end it at frame {following - 1} at the latest"
                )
            if following is None or keyframe.end_frame + 1 < following:
                ended.add(keyframe.end_frame + 1)
        self.cuts = frozenset(cuts) | frozenset(ended)
        self.frame_count = frame_count
        self._boundaries = sorted({0, *self._starts, *self.cuts})

    @classmethod
    def single(cls, reference: Reference | None) -> ReferenceSchedule:
        return cls([Keyframe(0, reference)] if reference is not None else [])

    def as_stored(self, stored_size: tuple[int, int], sample_aspect: Fraction) -> ReferenceSchedule:
        """This schedule with every reference in the film's stored geometry (:func:`vidcolor.references.as_stored`):
        what a front end that knows the film's pixel aspect colours with. Itself when nothing changes
        (always for square pixels), so those films' runs stay as they were."""
        def stored(reference: Reference) -> Reference:
            return as_stored(reference, stored_size, sample_aspect)

        keyframes = [dataclasses.replace(k, reference=stored(k.reference),
                                         end_reference=None if k.end_reference is None else stored(k.end_reference))
                     for k in self.keyframes]
        if all(new == old for new, old in zip(keyframes, self.keyframes, strict=True)):
            return self
        return ReferenceSchedule(keyframes, self.cuts, frame_count=self.frame_count)

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
            if keyframe.end_frame is not None and keyframe.end_frame >= frame_count:
                raise InputError(
                    f"the shot of reference {keyframe.reference.key!r} ends at frame {keyframe.end_frame}, but {source!r} "
                    f"has {frame_count} frames (0..{frame_count - 1}): end the shot inside the clip"
                )

    def reference_at(self, frame: int) -> Reference | None:
        if not self.keyframes:
            return None
        position = bisect.bisect_right(self._starts, frame) - 1
        return self.keyframes[max(position, 0)].reference

    def references_at(self, frame: int) -> list[tuple[Reference, float]]:
        """The references whose colours ``frame`` carries, with their shares: one at 1.0, or a
        two-keyframe shot's start and end references at ``1 - t`` and ``t`` (:meth:`blend_position`)."""
        keyframe = self.keyframe_at(frame)
        if keyframe is None:
            return []
        position = self.blend_position(frame)
        if position is None or keyframe.end_reference is None:
            return [(keyframe.reference, 1.0)]
        return [(keyframe.reference, 1.0 - position), (keyframe.end_reference, position)]

    def keyframe_at(self, frame: int) -> Keyframe | None:
        """The keyframe whose reference applies at ``frame`` (the first one before any keyframe)."""
        if not self.keyframes:
            return None
        position = bisect.bisect_right(self._starts, frame) - 1
        return self.keyframes[max(position, 0)]

    def starts_shot(self, frame: int) -> bool:
        """True where the recurrence must reset: the first frame, a keyframe, or a cut."""
        return frame == 0 or frame in self.cuts or (frame in self._starts and frame != 0)

    def shot_at(self, frame: int) -> ShotSpan:
        """The segment between recurrence resets that holds ``frame``, and its keyframe."""
        position = bisect.bisect_right(self._boundaries, frame) - 1
        start = self._boundaries[max(position, 0)]
        if position + 1 < len(self._boundaries):
            end: int | None = self._boundaries[position + 1] - 1
        else:
            end = self.frame_count - 1 if self.frame_count is not None else None
        return ShotSpan(start, end, self.keyframe_at(frame))

    def shot_end(self, keyframe: Keyframe) -> int | None:
        """Last frame of ``keyframe``'s shot: its ``end_frame``, else the frame before the next
        keyframe, else the clip's last frame (None when the clip's length is unknown)."""
        if keyframe.end_frame is not None:
            return keyframe.end_frame
        position = bisect.bisect_right(self._starts, keyframe.frame)
        if position < len(self._starts):
            return self._starts[position] - 1
        return self.frame_count - 1 if self.frame_count is not None else None

    def blend_position(self, frame: int) -> float | None:
        """Where ``frame`` sits in a two-keyframe shot: 0.0 at its first frame, 1.0 at its last;
        None when the governing keyframe has no end reference or ``frame`` lies outside its shot.

        The pipeline weights the start reference's colours by ``1 - t`` and the end reference's by
        ``t`` (each times its confidence).
        """
        keyframe = self.keyframe_at(frame)
        if keyframe is None or keyframe.end_reference is None or frame < keyframe.frame:
            return None
        end = self.shot_end(keyframe)
        if end is None or frame > end:
            return None
        return 0.0 if end == keyframe.frame else (frame - keyframe.frame) / (end - keyframe.frame)


def parse_ref_option(value: str) -> tuple[int | None, str]:
    """``IMAGE`` → (None, IMAGE); ``FRAME=IMAGE`` → (FRAME, IMAGE)."""
    head, sep, tail = value.partition("=")
    if sep and head.strip().isdigit():
        return int(head), tail
    return None, value
