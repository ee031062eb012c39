"""Keyframe reference presets: the TOML format, every validation error, and the schedule they build."""

from __future__ import annotations

import shutil
import tomllib
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcolor.errors import InputError
from vidcolor.schedule.presets import PresetError, Timecode, load_preset
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

from helpers import REPO, color_frames, shared_path


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(color_frames(1, 48, 32, seed=seed)[0], cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def refs(tmp_path: Path) -> Path:
    """A preset folder with refs/a.png, refs/b.png, refs/c.png painted in different colours."""
    for seed, name in enumerate("abc"):
        _png(tmp_path / "refs" / f"{name}.png", seed)
    return tmp_path


def write(folder: Path, text: str, name: str = "film.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(PresetError) as caught:
        load_preset(path, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert str(path) in message  # every error names the preset file
    return message


VALID = """\
version = 1
model = "classic"
size = "96x64"
codec = "ffv1"
crf = 20
encoder_preset = "fast"

[scenes]
detect = true
threshold = 30

[temporal]
enabled = true
strength = 0.5

[[shot]]
name = "opening"
start = 0
reference = "refs/a.png"

[[shot]]
start = "00:00:02:00"
reference = "refs/b.png"
end_reference = "refs/c.png"

[[shot]]
start = "00:00:03.000"
"""


def test_valid_preset_loads_with_paths_relative_to_the_file(refs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(refs, VALID)
    monkeypatch.chdir(REPO)  # relative paths must not depend on the working directory
    preset = load_preset(path)
    settings = (preset.model, preset.size, preset.codec, preset.crf, preset.encoder_preset)
    assert settings == ("classic", "96x64", "ffv1", 20, "fast")
    assert preset.scenes.detect and preset.scenes.threshold == 30.0 and preset.scenes.min_length == 15
    assert dict(preset.temporal) == {"enabled": True, "strength": 0.5}
    assert [s.reference for s in preset.shots] == [refs / "refs/a.png", refs / "refs/b.png", None]
    assert preset.shots[1].end_reference == refs / "refs/c.png"
    assert preset.shots[1].start == Timecode("00:00:02:00")
    assert [s.line for s in preset.shots] == [16, 21, 26]
    shots = preset.resolve(Fraction(25), 100)
    assert [s.start for s in shots] == [0, 50, 75]


def test_schedule_keyframes_cuts_and_two_keyframe_shot(refs: Path) -> None:
    schedule = load_preset(write(refs, VALID)).schedule(100, Fraction(25))
    assert [k.frame for k in schedule.keyframes] == [0, 50]
    a, b = schedule.keyframes
    assert a.reference.key.endswith("a.png") and a.end_reference is None
    assert b.reference.key.endswith("b.png") and b.end_reference is not None and b.end_reference.key.endswith("c.png")
    # the shot without a reference is a cut that keeps the previous shot's reference
    assert 75 in schedule.cuts and schedule.starts_shot(75) and not schedule.starts_shot(74)
    assert schedule.reference_at(80) is b.reference
    # the two-keyframe shot ends before the cut: blended over 50..74, none after
    assert b.end_frame == 74
    assert schedule.blend_position(50) == 0.0 and schedule.blend_position(74) == 1.0
    assert schedule.blend_position(62) == pytest.approx(0.5)
    assert schedule.blend_position(80) is None and schedule.blend_position(10) is None
    assert schedule.shot_at(60) == (50, 74, b)
    assert schedule.shot_at(99) == (75, 99, b)
    assert schedule.shot_at(3) == (0, 49, a)


def test_the_same_image_is_loaded_once(refs: Path) -> None:
    text = '[[shot]]\nstart = 0\nreference = "refs/a.png"\n[[shot]]\nstart = 10\nreference = "refs/a.png"\n'
    schedule = load_preset(write(refs, text)).schedule(20, 25)
    assert schedule.keyframes[0].reference is schedule.keyframes[1].reference


def test_last_two_keyframe_shot_ends_at_the_clip_end_or_needs_an_end(refs: Path) -> None:
    text = '[[shot]]\nstart = 5\nreference = "refs/a.png"\nend_reference = "refs/b.png"\n'
    preset = load_preset(write(refs, text))
    schedule = preset.schedule(41, 24)
    assert schedule.keyframes[0].end_frame == 40 and schedule.blend_position(40) == 1.0
    assert schedule.blend_position(0) is None  # before the shot: start reference only
    with pytest.raises(PresetError, match=r"line 1, shot 1: has an end_reference but the clip's frame count is unknown"):
        preset.schedule(None, 24)


def test_unknown_top_level_key_names_line_and_suggests(refs: Path) -> None:
    message = error_of(write(refs, 'version = 1\nmodle = "classic"\n[[shot]]\nstart = 0\nreference = "refs/a.png"\n'))
    assert "line 2" in message and "unknown key 'modle'" in message and "did you mean 'model'?" in message


def test_unknown_shot_key_names_line_and_shot(refs: Path) -> None:
    text = ('[[shot]]\nstart = 0\nreference = "refs/a.png"\n\n[[shot]]\nname = "street"\nstart = 9\n'
            'refrence = "refs/b.png"\n')
    message = error_of(write(refs, text))
    assert 'line 8, shot 2 ("street")' in message and "unknown key 'refrence'" in message
    assert "did you mean 'reference'?" in message


@pytest.mark.parametrize("table, body, expected", [
    ("scenes", "treshold = 20", "unknown key 'treshold' at the [scenes] table"),
    ("scenes", "detect = 1", "detect 1 is not true or false"),
    ("scenes", "threshold = 300", "threshold 300 is out of range"),
    ("temporal", "strenght = 1.0", "did you mean 'strength'"),
    ("temporal", "persistence = -1", "persistence -1 is not a non-negative number"),
])
def test_section_errors(refs: Path, table: str, body: str, expected: str) -> None:
    text = f'[{table}]\n{body}\n\n[[shot]]\nstart = 0\nreference = "refs/a.png"\n'
    message = error_of(write(refs, text))
    assert expected in message and "line 2" in message


@pytest.mark.parametrize("line, expected", [
    ('model = "nope"', "model 'nope' is not a vidcolor model"),
    ('codec = "divx"', "codec 'divx' is not one vidcolor writes"),
    ("crf = 80", "crf 80 is not an integer from 0 to 51"),
    ('size = "big"', "--size must be"),
    ('encoder_preset = "turbo"', "encoder_preset 'turbo'"),
    ("timecode_fps = 0", "timecode_fps 0 is not a frame rate"),
    ("version = 2", "version 2 is not a preset version"),
])
def test_bad_settings(refs: Path, line: str, expected: str) -> None:
    message = error_of(write(refs, f'{line}\n[[shot]]\nstart = 0\nreference = "refs/a.png"\n'))
    assert expected in message and "line 1" in message


def test_overlapping_shots_name_both(refs: Path) -> None:
    text = ('[[shot]]\nstart = 0\nend = 30\nreference = "refs/a.png"\n\n'
            '[[shot]]\nname = "b"\nstart = 20\nreference = "refs/b.png"\n')
    message = error_of(write(refs, text))
    assert "line 1, shot 1: ends at frame 30, overlapping line 6, shot 2 (\"b\") which starts at frame 20" in message
    assert "end it at frame 19 at the latest" in message


def test_overlap_found_after_timecodes_resolve(refs: Path) -> None:
    # 00:00:01:00 at 25 fps is frame 25: the same start as the second shot
    text = ('[[shot]]\nstart = "00:00:01:00"\nreference = "refs/a.png"\n'
            '[[shot]]\nstart = 25\nreference = "refs/b.png"\n')
    path = write(refs, text)
    preset = load_preset(path)  # no fps yet: timecodes wait
    with pytest.raises(PresetError, match="starts at frame 25, the same frame as line 1, shot 1"):
        preset.resolve(25, 100)
    error_of(path, fps=25)


def test_missing_image_names_shot_and_path(refs: Path) -> None:
    text = '[[shot]]\nstart = 0\nreference = "refs/a.png"\n[[shot]]\nstart = 4\nreference = "refs/missing.png"\n'
    message = error_of(write(refs, text))
    assert "line 6, shot 2" in message and str(refs / "refs" / "missing.png") in message and "does not exist" in message


def test_unreadable_image_is_refused(refs: Path) -> None:
    (refs / "refs" / "notes.png").write_text("not an image")
    message = error_of(write(refs, '[[shot]]\nstart = 0\nreference = "refs/notes.png"\n'))
    assert "is not an image vidcolor can read" in message


def test_timecode_beyond_the_clip(refs: Path) -> None:
    text = '[[shot]]\nstart = 0\nreference = "refs/a.png"\n[[shot]]\nstart = "00:00:20:00"\nreference = "refs/b.png"\n'
    path = write(refs, text)
    message = error_of(path, fps=Fraction(25), frame_count=360)
    assert "line 4, shot 2: start '00:00:20:00' (frame 500) is beyond the clip, which has 360 frames" in message
    assert "00:00:14.360" in message  # the clip's span, as a timecode
    with pytest.raises(PresetError, match="beyond the clip"):
        load_preset(path).schedule(360, 25)


def test_frame_number_beyond_the_clip_in_schedule(refs: Path) -> None:
    preset = load_preset(write(refs, '[[shot]]\nstart = 400\nreference = "refs/a.png"\n'))
    with pytest.raises(PresetError, match=r"start frame 400 is beyond the clip, which has 360 frames \(0..359"):
        preset.schedule(360, 25)


def test_timecode_needs_a_frame_rate(refs: Path) -> None:
    preset = load_preset(write(refs, '[[shot]]\nstart = "00:00:01:00"\nreference = "refs/a.png"\n'))
    with pytest.raises(PresetError, match="frame rate is unknown.*timecode_fps"):
        preset.schedule(100, None)
    fixed = load_preset(write(refs, 'timecode_fps = "24000/1001"\n[[shot]]\nstart = "00:00:01:00"\nreference = "refs/a.png"\n'))
    assert fixed.schedule(100, None).keyframes[0].frame == 24


@pytest.mark.parametrize("text, fps, frame", [
    ("00:00:01:12", Fraction(24), 36),
    ("01:00:00:00", Fraction(25), 90000),
    ("00:00:01.500", Fraction(24), 36),
    ("00:00:01.502", Fraction(30000, 1001), 45),  # vidcolor prints frame 45 at 29.97 as 00:00:01.502
    ("00:01:00;02", Fraction(30000, 1001), 1800),  # drop-frame: ;00 and ;01 do not exist in minute 1
    ("00:10:00;00", Fraction(30000, 1001), 17982),
])
def test_timecodes(text: str, fps: Fraction, frame: int) -> None:
    assert Timecode(text).frame(fps) == frame


@pytest.mark.parametrize("text, fps, expected", [
    ("00:00:01:30", Fraction(25), "frame field 30 is not below the frame rate"),
    ("00:01:00;00", Fraction(30000, 1001), "skips frame numbers"),
    ("00:00:01;00", Fraction(25), "drop-frame timecode"),
])
def test_bad_timecodes(text: str, fps: Fraction, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        Timecode(text).frame(fps)


def test_malformed_timecode_in_file(refs: Path) -> None:
    message = error_of(write(refs, '[[shot]]\nstart = "1:2:3"\nreference = "refs/a.png"\n'))
    assert "line 2, shot 1" in message and "start '1:2:3' is not a timecode" in message


@pytest.mark.parametrize("text, expected", [
    ("version = 1\n", "there is no [[shot]]"),
    ('[[shot]]\nreference = "refs/a.png"\n', "line 1, shot 1: the shot has no start"),
    ('[[shot]]\nstart = 0\nend_reference = "refs/a.png"\n', "an end_reference needs a reference"),
    ('[[shot]]\nstart = -3\nreference = "refs/a.png"\n', "start -3 is negative"),
    ('[[shot]]\nstart = 1.5\nreference = "refs/a.png"\n', "neither a frame number nor a timecode"),
    ('[[shot]]\nstart = 9\nend = 3\nreference = "refs/a.png"\n', "ends at frame 3, before its start"),
    ('[[shot]]\nstart = 0\nreference = "refs/a.png"\n[[shot]]\nstart = 0\nreference = "refs/b.png"\n',
     "starts at frame 0, the same frame as line 1, shot 1"),
    ('version = 1\nmodel = "classic\n', "is not valid TOML"),
])
def test_structure_errors(refs: Path, text: str, expected: str) -> None:
    assert expected in error_of(write(refs, text))


def test_preset_without_any_reference_cannot_schedule(refs: Path) -> None:
    preset = load_preset(write(refs, "[[shot]]\nstart = 0\n"))
    with pytest.raises(PresetError, match="no shot has a reference image"):
        preset.schedule(10, 25)


def test_missing_preset_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist: check the path given to --preset"):
        load_preset(tmp_path / "nope.toml")


@pytest.mark.parametrize("content", [cv2.imencode(".png", color_frames(1, 32, 16)[0])[1].tobytes(),
                                     'model = "classic"  # caf\xe9 in Latin-1\n'.encode("latin-1")],
                         ids=["png-image", "latin-1-text"])
def test_preset_that_is_not_utf8_text_names_the_file_and_the_fix(tmp_path: Path, content: bytes) -> None:
    # An image given as the preset crashed with UnicodeDecodeError (an internal error, exit 1).
    path = tmp_path / "keyframe.png"
    path.write_bytes(content)
    with pytest.raises(PresetError, match=r"keyframe\.png.* is not a TOML text file .*UTF-8.*: give the preset's \.toml"):
        load_preset(path)
    assert path.read_bytes() == content  # the input is left as it was


def test_template_is_complete_and_loads(tmp_path: Path) -> None:
    template = REPO / "presets" / "examples" / "template.toml"
    copy = tmp_path / "film.toml"
    shutil.copy(template, copy)
    for shot in tomllib.loads(template.read_text())["shot"]:
        for key in ("reference", "end_reference"):
            if key in shot:
                _png(tmp_path / shot[key])
    preset = load_preset(copy)
    assert preset.timecode_fps == Fraction(24000, 1001) and preset.temporal["enabled"] is True
    schedule = preset.schedule(1000, None)
    assert [k.frame for k in schedule.keyframes] == [0, 296]  # 00:00:12:08 at 23.976 (nominal 24) fps
    assert schedule.keyframes[1].end_frame == 480 and 481 in schedule.cuts  # 00:00:20:00, then the gap
    assert 587 in schedule.cuts  # 24.5 s at 24000/1001 fps: the reference-less shot


def test_schedule_end_frame_rules() -> None:
    from vidcolor.references import Reference

    ref = Reference.from_array(np.zeros((4, 4, 3), np.float32), "r")
    with pytest.raises(InputError, match="ends at frame 12, but the next shot starts at frame 10"):
        ReferenceSchedule([Keyframe(0, ref, None, 12), Keyframe(10, ref)])
    schedule = ReferenceSchedule([Keyframe(0, ref, ref, 5), Keyframe(10, ref)], frame_count=20)
    assert schedule.starts_shot(6) and schedule.shot_at(7) == (6, 9, schedule.keyframes[0])
    with pytest.raises(InputError, match="ends at frame 25"):
        ReferenceSchedule([Keyframe(0, ref, None, 25)]).validate(20)


def test_a_bomb_example_preset_maps_each_shot_to_its_reference() -> None:
    references = shared_path("clips/bw/references")
    preset = load_preset(REPO / "presets" / "examples" / "a-bomb.toml", fps=Fraction(29), frame_count=360)
    schedule = preset.schedule(360, Fraction(29))
    expected = sorted(references.glob("*.png"))
    assert len(expected) == 4
    got = [Path(schedule.reference_at(frame).key) for frame in (5, 93, 194, 351)]
    assert got == [p.resolve() for p in expected]
    assert [k.frame for k in schedule.keyframes] == [0, 44, 134, 299]


def test_temporal_settings(refs: Path) -> None:
    shot = '[[shot]]\nstart = 0\nreference = "refs/a.png"\n'
    from vidcolor.temporal import TemporalSettings

    assert load_preset(write(refs, shot)).temporal_settings() == TemporalSettings()  # on by default
    assert load_preset(write(refs, "[temporal]\nenabled = false\nstrength = 0.3\n" + shot)).temporal_settings() is None
    settings = load_preset(write(refs, "[temporal]\nstrength = 0.3\n" + shot)).temporal_settings()
    assert settings is not None and settings.strength == 0.3 and settings.persistence == TemporalSettings().persistence
