"""Timecodes: the times vidcolor prints read back as the same frames, and both preset forms
(``HH:MM:SS:FF`` frames, ``HH:MM:SS.mmm`` seconds) through the real ``vidcolor refs suggest --shots``.

``HH:MM:SS.mmm`` goes through PySceneDetect's ``FrameTimecode`` (0.6 in CI, 0.7 here), the frame
forms through vidcolor's own counting (tests/test_presets.py has the drop-frame cases).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import EXIT_BAD_INPUT, VidcolorGroup
from vidcolor.cli.refs import refs
from vidcolor.schedule.timecodes import Timecode, is_timecode, timecode

from helpers import color_frames, write_clip

RATES = (Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(24000, 1001), Fraction(60000, 1001))


@pytest.mark.parametrize("fps", RATES, ids=str)
def test_printed_times_read_back_as_the_same_frame(fps: Fraction) -> None:
    """What ``timecode()`` prints for frame n (report, scenes, batch) is frame n again when a
    colorist copies it into a preset: every frame of the first ten minutes, then every 997th to 3 hours."""
    frames = list(range(0, int(600 * fps))) + list(range(int(600 * fps), int(3 * 3600 * fps), 997))
    wrong = [n for n in frames if Timecode(timecode(float(n / fps))).frame(fps) != n]
    assert not wrong, f"{len(wrong)} of {len(frames)} frames read back wrong, first {wrong[:5]}"


@pytest.mark.parametrize("text, fps, frame", [
    ("00:00:01.500", Fraction(24), 36),
    ("00:00:02", Fraction(25), 50),
    ("01:00:00.000", Fraction(30000, 1001), 107892),  # 3600 s x 29.97
    ("00:00:00.021", Fraction(24), 1),  # nearest frame, not the one before
])
def test_seconds_form(text: str, fps: Fraction, frame: int) -> None:
    assert is_timecode(text)
    assert Timecode(text).frame(fps) == frame


@pytest.mark.parametrize("text", ["1:2:3", "00:61:00.000", "00:00:60.0", "00:00:01.", "12.5", "00:00:01,500", ""])
def test_malformed_text_is_not_a_timecode(text: str) -> None:
    assert not is_timecode(text)
    with pytest.raises(ValueError, match="not a timecode: write HH:MM:SS:FF"):
        Timecode(text).frame(Fraction(25))


def test_both_forms_through_refs_suggest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 25 fps clip of 100 frames; the preset starts shots at a frame number, a frame-counting
    timecode and a time: the shots the CLI prints are where those resolve."""
    monkeypatch.setenv("VIDCOLOR_HOME", str(tmp_path / "home"))
    clip = write_clip(tmp_path / "film.mp4", color_frames(100, 96, 64), rate=25, gray=True)
    library = tmp_path / "library"
    library.mkdir()
    for n, rgb in enumerate(color_frames(2, 96, 64, seed=3)):
        cv2.imwrite(str(library / f"ref{n}.png"), np.ascontiguousarray(rgb[..., ::-1]))
    ref = library / "ref0.png"
    preset = tmp_path / "shots.toml"
    preset.write_text(f'[[shot]]\nstart = 0\nreference = "{ref}"\n'
                      f'[[shot]]\nstart = "00:00:01:05"\nreference = "{ref}"\n'  # 1 s + 5 frames = 30
                      f'[[shot]]\nstart = "00:00:02.600"\nreference = "{ref}"\n')  # 2.6 s = 65
    group = VidcolorGroup(commands={"refs": refs})
    result = CliRunner().invoke(group, ["refs", "suggest", str(clip), "--library", str(library), "--shots", str(preset),
                                        "--top", "1", "--frames", "1", "-q"])
    assert result.exit_code == 0, result.output
    shots = [line.split(" (")[0] for line in result.output.splitlines() if line.startswith("shot ")]
    assert shots == ["shot 1: frames 0-29", "shot 2: frames 30-64", "shot 3: frames 65-99"]

    preset.write_text(f'[[shot]]\nstart = "00:00:01:25"\nreference = "{ref}"\n')  # frame field 25 at 25 fps
    bad = CliRunner().invoke(group, ["refs", "suggest", str(clip), "--library", str(library), "--shots", str(preset), "-q"])
    assert bad.exit_code == EXIT_BAD_INPUT
    assert "frame field 25 is not below the frame rate (25 frames per second)" in bad.output and "fix the timecode" in bad.output
