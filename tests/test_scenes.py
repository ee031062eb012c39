"""Scene detection (PySceneDetect on vidcolor's reader) and preset skeletons for painting."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import VidcolorGroup
from vidcolor.cli.batch import scenes
from vidcolor.errors import OutputError
from vidcolor.schedule.presets import load_preset
from vidcolor.io.reader import probe
from vidcolor.references import is_grayscale, load_reference
from vidcolor.schedule.scenes import detect_cuts, shots_from_cuts, write_scene_preset

from helpers import REPO, color_frames, shared_path, write_clip

CUT = 20


def two_shots(count: int = 40) -> list[np.ndarray]:
    """A clip whose second half is a different scene: bright gradient, then dark inverted shapes."""
    first = color_frames(CUT, 96, 64, seed=0)
    second = [(255 - f) // 3 for f in color_frames(count - CUT, 96, 64, seed=5)]
    return first + second


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "two.mp4", two_shots())


def test_one_cut_at_the_scene_change(clip: Path) -> None:
    assert detect_cuts(clip) == [CUT]


def test_no_cut_in_a_single_shot(tmp_path: Path) -> None:
    assert detect_cuts(write_clip(tmp_path / "one.mp4", color_frames(30, 96, 64))) == []


def test_image_sequence_gives_the_same_cut(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    for i, rgb in enumerate(two_shots()):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert detect_cuts(folder) == [CUT]


def test_threshold_controls_sensitivity(clip: Path) -> None:
    assert detect_cuts(clip, threshold=250) == []


def test_keyframe_is_early_in_the_shot() -> None:
    sharp = [0.0] * 100
    sharp[7] = 5.0  # sharpest frame early in shot 1
    sharp[90] = 9.0  # too late in shot 2 to be its keyframe
    shots = shots_from_cuts([50], 100, sharp)
    assert [(s.start, s.end, s.keyframe) for s in shots] == [(0, 49, 7), (50, 99, 52)]


def test_skeleton_preset_painted_back_loads(clip: Path, tmp_path: Path) -> None:
    preset_path = tmp_path / "film.toml"
    result = write_scene_preset(clip, preset_path, tmp_path / "keyframes")
    assert [(s.start, s.end) for s in result.shots] == [(0, CUT - 1), (CUT, 39)]
    images = [s.image for s in result.shots]
    assert all(p is not None and p.parent == tmp_path / "keyframes" for p in images)
    # each keyframe is the gray frame, as RGB (three equal channels) so editors open it ready to paint
    info = probe(clip)
    for shot in result.shots:
        png = cv2.imread(str(shot.image), cv2.IMREAD_UNCHANGED)
        assert png.shape == (64, 96, 3) and np.array_equal(png[..., 0], png[..., 2])
        assert shot.start <= shot.keyframe <= shot.end
    truth = two_shots()[result.shots[1].keyframe]
    gray = cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(cv2.imread(str(images[1]), cv2.IMREAD_GRAYSCALE).astype(int) - gray).mean() < 4
    # the skeleton loads as written (gray references) ...
    assert len(load_preset(preset_path, fps=info.fps, frame_count=info.frame_count).shots) == 2
    # ... and after painting: a colour image copied over each gray keyframe
    for shot in result.shots:
        colour = two_shots()[shot.keyframe]
        cv2.imwrite(str(shot.image), cv2.cvtColor(colour, cv2.COLOR_RGB2BGR))
    preset = load_preset(preset_path)
    schedule = preset.schedule(info.frame_count, info.fps)
    assert [k.frame for k in schedule.keyframes] == [0, CUT]
    assert not any(is_grayscale(k.reference.rgb) for k in schedule.keyframes)
    assert schedule.reference_at(CUT + 5).key == str(images[1].resolve())


def test_rerun_never_overwrites_painted_keyframes(clip: Path, tmp_path: Path) -> None:
    preset_path = tmp_path / "film.toml"
    first = write_scene_preset(clip, preset_path, tmp_path / "keyframes")
    painted = first.shots[0].image
    assert painted is not None
    cv2.imwrite(str(painted), np.full((64, 96, 3), (0, 0, 255), np.uint8))
    with pytest.raises(OutputError, match="already exists.*--overwrite"):
        write_scene_preset(clip, preset_path, tmp_path / "keyframes")
    again = write_scene_preset(clip, preset_path, tmp_path / "keyframes", overwrite=True)
    assert again.shots[0].kept_existing
    assert not is_grayscale(load_reference(painted).rgb)
    assert "kept: it existed already" in preset_path.read_text()


def test_scenes_command(clip: Path, tmp_path: Path) -> None:
    group = VidcolorGroup(commands={"scenes": scenes})
    runner = CliRunner()
    result = runner.invoke(group, ["scenes", str(clip), "-o", str(tmp_path / "out" / "film.toml"), "--keyframes",
                                   str(tmp_path / "kf")])
    assert result.exit_code == 0, result.output
    assert "2 shot(s)" in result.output and len(list((tmp_path / "kf").glob("*.png"))) == 2
    again = runner.invoke(group, ["scenes", str(clip), "-o", str(tmp_path / "out" / "film.toml")])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(group, ["scenes", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "x.toml")])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_a_bomb_cuts_match_the_preset_shots() -> None:
    film = shared_path("clips/bw/a-bomb_blast_effects_part.mp4")
    cuts = detect_cuts(film)
    preset = load_preset(REPO / "presets" / "examples" / "a-bomb.toml")
    starts = [s.start for s in preset.resolve(Fraction(29), 360)][1:]
    assert len(cuts) == len(starts) == 3
    assert all(abs(c - s) <= 2 for c, s in zip(cuts, starts))
    # the references' frames (~5, ~93, ~194, ~351) fall one in each detected shot
    bounds = [0, *cuts, 360]
    assert [sum(lo <= f < hi for f in (5, 93, 194, 351)) for lo, hi in zip(bounds, bounds[1:])] == [1, 1, 1, 1]


def test_preset_scene_detection_adds_cuts(clip: Path, tmp_path: Path) -> None:
    from vidcolor.cli.batch import schedule_from_preset

    cv2.imwrite(str(tmp_path / "ref.png"), cv2.cvtColor(two_shots()[0], cv2.COLOR_RGB2BGR))
    preset_path = tmp_path / "film.toml"
    preset_path.write_text('[scenes]\ndetect = true\n\n[[shot]]\nstart = 0\nreference = "ref.png"\n')
    info = probe(clip)
    schedule, preset = schedule_from_preset(str(preset_path), info, quiet=True)
    assert preset.scenes.detect and schedule.cuts == {CUT} and schedule.starts_shot(CUT)
    assert schedule.shot_at(CUT + 3) == (CUT, 39, schedule.keyframes[0])
    schedule, _ = schedule_from_preset(str(preset_path), info, detect=False, quiet=True)  # --no-detect-scenes
    assert schedule.cuts == frozenset()
