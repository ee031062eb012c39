"""Timecodes: as written in presets (``HH:MM:SS:FF``, ``HH:MM:SS;FF`` drop-frame, ``HH:MM:SS.mmm``),
turned into frame numbers once the frame rate is known, and as vidcolor prints times.

A time (``HH:MM:SS.mmm``) becomes a frame number through PySceneDetect's ``FrameTimecode``, as scene
detection counts frames; the frame-counting forms, which ``FrameTimecode`` does not read, are
counted here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from types import ModuleType

from ..errors import InputError

#: The PySceneDetect releases vidcolor declares (setup.cfg): the newest whose OpenCV is an extra.
SCENEDETECT_REQUIREMENT = "scenedetect>=0.6.7.1,<0.7"

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
        if _TC_SECONDS.match(self.text):
            # fps as a float: PySceneDetect 0.6 takes nothing else; 0.7 turns it back into 24000/1001 etc.
            frame_timecode = scenedetect_module("reading timecodes written HH:MM:SS.mmm needs").FrameTimecode(self.text, fps=float(fps))
            return int(frame_timecode.frame_num)  # an attribute in 0.6, a property in 0.7
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


def scenedetect_module(needed_for: str) -> ModuleType:
    """PySceneDetect, imported only when needed (it is a dependency, but an environment assembled by
    hand may lack it: then the message starts with ``needed_for``, e.g. "scene detection needs", and
    says what to install)."""
    try:
        import scenedetect  # noqa: PLC0415 - heavy import, only when used
    except ImportError as exc:
        raise InputError(
            f"{needed_for} PySceneDetect, which is missing from this Python environment ({exc}): install it with "
            f"`pip install '{SCENEDETECT_REQUIREMENT}'` (vidcolor requires it; installing with --no-deps leaves it out)"
        ) from exc
    return scenedetect
