"""Exceptions raised by vidcolor.

Each one subclasses the builtin a caller would already catch (as PyAV maps FFmpeg errors onto
``FileNotFoundError`` and friends), and every message names the offending file or value and what
to do about it. Front ends translate them at their edge (click errors, ``vs.Error``).
"""

from __future__ import annotations


class VidcolorError(Exception):
    """Base class of every error vidcolor raises on purpose."""


class InputError(VidcolorError, ValueError):
    """An input video, image sequence or argument that vidcolor cannot use."""


class VideoOpenError(InputError, OSError):
    """The input exists but is not a video FFmpeg can decode (text, truncated, audio only...)."""


class ReferenceImageError(InputError):
    """A reference image is missing, unreadable, or unusable."""


class OutputError(VidcolorError, OSError):
    """The output cannot be written where asked (exists, equals the input, folder not writable)."""


class WeightsNotFoundError(VidcolorError, FileNotFoundError):
    """A model's weight files are not installed; the message names the import command."""


class WeightsMismatchError(VidcolorError, ValueError):
    """A weight file has the wrong keys, shapes or hash."""
