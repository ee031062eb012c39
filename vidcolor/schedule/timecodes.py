"""Timecodes: as written in presets (``HH:MM:SS:FF``, ``HH:MM:SS;FF`` drop-frame, ``HH:MM:SS.mmm``),
turned into frame numbers once the frame rate is known, and as vidcolor prints times."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_TC_FRAMES = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)([:;])(\d+)$")
_TC_SECONDS = re.compile(r"^(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)$")


@dataclass(frozen=True)
class Timecode:
    """A timecode as written in the preset, turned into a frame number once the fps is known.

    ``HH:MM:SS.mmm`` is a time (the frame shown then, as ``vidcolor`` prints times);
    ``HH:MM:SS:FF`` counts frames in non-drop-frame timecode; ``HH:MM:SS;FF`` is drop-frame
    (29.97 and 59.94 fps only).
    """

    text: str

    def frame(self, fps: Fraction) -> int:
        """The frame number at ``fps``; ValueError says what is wrong with the timecode."""
        if fps <= 0:
            raise ValueError(f"frame rate {fps} is not positive")
        if match := _TC_FRAMES.match(self.text):
            hours, minutes, seconds, separator, frames = match.groups()
            nominal = round(fps)
            if int(frames) >= nominal:
                raise ValueError(f"frame field {frames} is not below the frame rate ({nominal} frames per second)")
            total_seconds = (int(hours) * 60 + int(minutes)) * 60 + int(seconds)
            if separator == ":":
                return total_seconds * nominal + int(frames)
            if nominal not in (30, 60) or fps == nominal:
                raise ValueError(f"drop-frame timecode (';') exists only at 29.97 and 59.94 fps, not {float(fps):g}")
            drop = nominal // 15  # 2 frame numbers dropped per minute at 29.97, 4 at 59.94
            total_minutes = int(hours) * 60 + int(minutes)
            if int(minutes) % 10 and int(seconds) == 0 and int(frames) < drop:
                raise ValueError(f"drop-frame timecode skips frame numbers 0..{drop - 1} at the start of minute {minutes}")
            return total_seconds * nominal + int(frames) - drop * (total_minutes - total_minutes // 10)
        if match := _TC_SECONDS.match(self.text):
            hours, minutes, seconds = match.groups()
            time = (int(hours) * 60 + int(minutes)) * 60 + Fraction(seconds)
            return int(round(time * fps))
        raise ValueError("not a timecode: write HH:MM:SS:FF (frames), HH:MM:SS.mmm (seconds) or a frame number")


def is_timecode(text: str) -> bool:
    """Whether ``text`` has one of the three timecode forms (its fields are checked by :meth:`Timecode.frame`)."""
    return bool(_TC_FRAMES.match(text) or _TC_SECONDS.match(text))


def timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm`` for a timestamp, as editors show it."""
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
