"""A keyframe preset from the top-1 suggestions of every shot (written by schedule/presets' writer)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .ranking import ShotSuggestions


def write_preset(path: str | os.PathLike[str], results: Sequence[ShotSuggestions], *, input_path: str | os.PathLike[str] = "",
                 overwrite: bool = False) -> Path:
    """Write a keyframe preset (``presets/README.md`` format) giving each shot its top-1 reference.

    The runners-up are listed in comments so a colorist can swap one in. Written atomically;
    an existing preset is replaced only with ``overwrite``.
    """
    from ..schedule.presets import ShotLines, check_new_preset, preset_reference, write_preset_file  # noqa: PLC0415

    preset = check_new_preset(path, overwrite=overwrite, option="--write-preset")
    if not results or any(not r.suggestions for r in results):
        raise InputError("no suggestion to write a preset from: every shot needs at least one ranked reference")
    base = preset.absolute().parent
    input_text = os.fspath(input_path)
    header = [
        f"# vidcolor preset{' for ' + os.path.basename(input_text.rstrip('/')) if input_text else ''}, written by `vidcolor refs suggest`:",
        "# each shot uses its top-ranked library image (He et al. 2018 retrieval). Runners-up are listed under",
        "# each shot; swap one in by editing `reference`. The format is described in presets/README.md.",
    ]
    shots = []
    for result in results:
        shot, best = result.shot, result.suggestions[0]
        queried = f"queried with frame{'s' if len(shot.frames) > 1 else ''} {', '.join(map(str, shot.frames))}"
        alternatives = tuple(f"# alternative {s.rank}: {json.dumps(preset_reference(s.path, base))} (score {s.score:.3f})"
                             for s in result.suggestions[1:])
        shots.append(ShotLines(f"shot {shot.index:03d}", shot.start, preset_reference(best.path, base),
                               f"frames {shot.start}-{shot.end}, {queried}", f"score {best.score:.3f}", alternatives))
    return write_preset_file(preset, header, shots)
