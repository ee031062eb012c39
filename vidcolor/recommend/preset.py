"""A keyframe preset from the top-1 suggestions of every shot."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError, OutputError
from ..io.durable import write_text_or_fail
from .ranking import ShotSuggestions


def write_preset(path: str | os.PathLike[str], results: Sequence[ShotSuggestions], *, input_path: str | os.PathLike[str] = "",
                 overwrite: bool = False) -> Path:
    """Write a keyframe preset (``presets/README.md`` format) giving each shot its top-1 reference.

    The runners-up are listed in comments so a colorist can swap one in. Written atomically;
    an existing preset is replaced only with ``overwrite``.
    """
    from ..schedule.presets import FORMAT_VERSION  # noqa: PLC0415

    preset = Path(path)
    if preset.suffix.lower() != ".toml":
        raise OutputError(f"preset {str(preset)!r} should end in .toml: give e.g. --write-preset film.toml")
    if preset.exists() and not overwrite:
        raise OutputError(f"preset {str(preset)!r} already exists (it may hold your edits): choose another name or pass --overwrite")
    if not results or any(not r.suggestions for r in results):
        raise InputError("no suggestion to write a preset from: every shot needs at least one ranked reference")
    base = preset.absolute().parent
    input_text = os.fspath(input_path)
    lines = [
        f"# vidcolor preset{' for ' + os.path.basename(input_text.rstrip('/')) if input_text else ''}, written by `vidcolor refs suggest`:",
        "# each shot uses its top-ranked library image (He et al. 2018 retrieval). Runners-up are listed under",
        "# each shot; swap one in by editing `reference`. The format is described in presets/README.md.",
        "",
        f"version = {FORMAT_VERSION}",
        "",
    ]
    for result in results:
        shot = result.shot
        best = result.suggestions[0]
        lines += [
            "[[shot]]",
            f"name = {json.dumps(f'shot {shot.index:03d}')}",
            f"start = {shot.start:<10d}# frames {shot.start}-{shot.end}, queried with frame{'s' if len(shot.frames) > 1 else ''} {', '.join(map(str, shot.frames))}",
            f"reference = {json.dumps(_preset_path(best.path, base))}    # score {best.score:.3f}",
        ]
        lines += [f"# alternative {s.rank}: {json.dumps(_preset_path(s.path, base))} (score {s.score:.3f})" for s in result.suggestions[1:]]
        lines.append("")
    text = "\n".join(lines)
    write_text_or_fail(preset, text, "preset", "choose another location")
    return preset


def _preset_path(image: Path, base: Path) -> str:
    """Relative to the preset's folder when possible (presets move with their references).

    Symbolic links are kept: the preset names the image as the library does.
    """
    absolute = os.path.abspath(image)
    try:
        return Path(os.path.relpath(absolute, os.path.abspath(base))).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(absolute).as_posix()
