"""One settings object for every front end: a given option beats the preset, which beats the
default, resolved once by ``vidcolor.run.settings.resolve_settings``; checked through real runs of
``vidcolor colorize``, ``vidcolor batch`` and the VapourSynth filter on tiny clips."""

from __future__ import annotations

import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import VidcolorGroup, main
from vidcolor.cli.batch import batch
from vidcolor.colorizers import default_model
from vidcolor.run.batch import BatchOptions
from vidcolor.run.settings import SETTING_NAMES, RunSettings, SettingError, resolve_settings
from vidcolor.schedule.presets import load_preset
from vidcolor.temporal import TemporalSettings

from helpers import color_frames, write_clip

#: the preset every test starts from: each setting it names differs from vidcolor's default
PRESET = ('model = "classic"\nsize = 32\ncodec = "ffv1"\ncrf = 20\nencoder_preset = "fast"\ndetail = true\n'
          'anchor = "auto"\nfallback = "autocolor"\n'
          '[scenes]\ndetect = false\nthreshold = 40\nmin_length = 4\n'
          '[temporal]\nenabled = false\n'
          '[[shot]]\nstart = 0\nreference = "../ref.png"\n')


@pytest.fixture
def film(tmp_path: Path) -> tuple[Path, Path]:
    """A 10-frame 96x64 clip (4:4:4, so every front end's frames compare bit for bit) and a preset."""
    frames = color_frames(10, 96, 64)
    (tmp_path / "in").mkdir()
    clip = write_clip(tmp_path / "in" / "film.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    cv2.imwrite(str(tmp_path / "ref.png"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    preset = tmp_path / "in" / "film.toml"
    preset.write_text(PRESET)
    return clip, preset


def yuv_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="yuv444p") for frame in container.decode(video=0)]


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, ["colorize", *args])
    assert result.exit_code == 0, result.output
    return result.output


def reported(output: str) -> tuple[str, str, bool]:
    """(model, working size, temporal check on) from the line ``vidcolor colorize`` ends with."""
    found = re.search(r"model (\w+), working size (\d+x\d+)(, temporal check)?\)", output)
    assert found, output
    return found.group(1), found.group(2), found.group(3) is not None


# -- the resolution itself ------------------------------------------------------------------------
def test_given_beats_preset_beats_default_for_every_setting(film: tuple[Path, Path]) -> None:
    _, preset_path = film
    preset = load_preset(preset_path)
    defaults, from_preset = RunSettings(), resolve_settings({}, preset)
    assert resolve_settings({}) == defaults and defaults.model == default_model()
    named = {"model": "classic", "size": "32", "detail": True, "detect_scenes": False, "scene_threshold": 40.0,
             "scene_min_length": 4, "codec": "ffv1", "crf": 20, "encoder_preset": "fast", "temporal": None,
             "anchor": "auto", "fallback": "autocolor"}
    for name in SETTING_NAMES:  # the preset sets exactly what it names; everything else is the default
        assert getattr(from_preset, name) == named.get(name, getattr(defaults, name)), name
        assert name not in named or named[name] != getattr(defaults, name), name  # so the test can tell
    given = {"model": "fast", "size": "48", "detail": False, "detect_scenes": False, "scene_threshold": 20,
             "scene_min_length": 2, "codec": "h264", "crf": 30, "encoder_preset": "slow", "flow": "dis",
             "device": "cpu", "threads": 2, "chunk_length": 16, "warmup": 3, "auto_model": "cheng2015",
             "anchor": "pinned", "fallback": "none"}
    assert set(given) | {"temporal"} == set(SETTING_NAMES)  # a new setting must be added here too
    over = resolve_settings(given, preset)
    for name, value in given.items():
        assert getattr(over, name) == value, name
    # temporal combines: the preset turned the check off; True turns it on again with the defaults
    assert resolve_settings({"temporal": True}, preset).temporal == TemporalSettings()
    assert resolve_settings({"temporal": False}).temporal is None and defaults.temporal == TemporalSettings()


def test_bad_values_name_the_setting(film: tuple[Path, Path]) -> None:
    for given, message in (({"model": "nope"}, "model must be one of"), ({"size": "tiny"}, "size must be"),
                           ({"threads": 0}, "threads must be an integer of at least 1"),
                           ({"detail": "yes"}, "detail must be True or False"), ({"crf": 60}, "crf must be"),
                           ({"flow": "farneback"}, "flow must be one of auto, dis")):
        with pytest.raises(SettingError, match=message) as info:
            resolve_settings(given)
        assert info.value.setting == next(iter(given))
    with pytest.raises(TypeError, match="unknown setting"):
        resolve_settings({"modle": "classic"})


# -- vidcolor colorize ---------------------------------------------------------------------------
def test_cli_option_beats_preset_beats_default(film: tuple[Path, Path], tmp_path: Path) -> None:
    clip, preset = film
    ref = str(tmp_path / "ref.png")
    plain = cli(str(clip), "-o", str(tmp_path / "d.mkv"), "--ref", ref, "--codec", "ffv1", "--model", "classic")
    assert reported(plain) == ("classic", "96x64", True)  # defaults: the clip's size, the check on
    from_preset = cli(str(clip), "-o", str(tmp_path / "p.mkv"), "--preset", str(preset))
    assert reported(from_preset) == ("classic", "48x32", False)
    over = cli(str(clip), "-o", str(tmp_path / "o.mkv"), "--preset", str(preset), "--model", "fast", "--size", "48",
               "--temporal")
    assert reported(over) == ("fast", "72x48", True)
    # the preset's detail = true took effect, and --no-detail wins over it: frames tell
    detail_off = tmp_path / "n.mkv"
    cli(str(clip), "-o", str(detail_off), "--preset", str(preset), "--no-detail")
    same = tmp_path / "same.mkv"  # everything the preset says, given as options instead
    cli(str(clip), "-o", str(same), "--ref", ref, "--model", "classic", "--size", "32", "--no-temporal", "--detail",
        "--codec", "ffv1", "--no-detect-scenes", "--fallback", "autocolor")
    assert all(np.array_equal(a, b) for a, b in zip(yuv_frames(same), yuv_frames(tmp_path / "p.mkv"), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(yuv_frames(detail_off), yuv_frames(tmp_path / "p.mkv")))


# -- vidcolor batch ------------------------------------------------------------------------------
def test_batch_option_beats_the_films_preset(film: tuple[Path, Path], tmp_path: Path) -> None:
    clip, preset = film
    group = VidcolorGroup(commands={"batch": batch})
    for out, extra in (("a", []), ("b", ["--size", "48", "--no-detail"])):
        result = CliRunner().invoke(group, ["batch", str(clip.parent), "-o", str(tmp_path / out), "-q", *extra])
        assert result.exit_code == 0, result.output
    # the film's own preset (film.toml beside it) with nothing given equals `colorize --preset`
    cli(str(clip), "-o", str(tmp_path / "p.mkv"), "--preset", str(preset))
    cli(str(clip), "-o", str(tmp_path / "o.mkv"), "--preset", str(preset), "--size", "48", "--no-detail")
    assert all(np.array_equal(a, b) for a, b in zip(yuv_frames(tmp_path / "a" / "film.mkv"),
                                                    yuv_frames(tmp_path / "p.mkv"), strict=True))
    over = yuv_frames(tmp_path / "b" / "film.mkv")
    assert all(np.array_equal(a, b) for a, b in zip(over, yuv_frames(tmp_path / "o.mkv"), strict=True))
    assert not np.array_equal(over[5], yuv_frames(tmp_path / "p.mkv")[5])
    # settings not given stay out of the job's identity; given ones are part of it
    assert BatchOptions(size="48", model=None).settings == {"size": "48"}
    with pytest.raises(TypeError, match="unknown setting"):
        BatchOptions(sise="48")


# -- the VapourSynth filter ----------------------------------------------------------------------
def test_filter_keyword_beats_preset_beats_default(film: tuple[Path, Path], tmp_path: Path) -> None:
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor

    clip, preset = film
    source = vs.core.bs.VideoSource(str(clip))

    def filtered(**keywords: object) -> list[np.ndarray]:
        out = vsvidcolor.colorize(source, **keywords)
        frames = (out.get_frame(i) for i in range(out.num_frames))
        return [np.stack([np.asarray(f[p]) for p in range(3)]) for f in frames]

    cli(str(clip), "-o", str(tmp_path / "p.mkv"), "--preset", str(preset))
    cli(str(clip), "-o", str(tmp_path / "o.mkv"), "--preset", str(preset), "--size", "48", "--temporal")
    cli(str(clip), "-o", str(tmp_path / "d.mkv"), "--ref", str(tmp_path / "ref.png"), "--model", "classic",
        "--codec", "ffv1")
    for keywords, cli_output in (({"preset": str(preset)}, "p.mkv"),
                                 ({"preset": str(preset), "size": 48, "temporal": True}, "o.mkv"),
                                 ({"ref": str(tmp_path / "ref.png"), "model": "classic"}, "d.mkv")):
        got, expected = filtered(**keywords), yuv_frames(tmp_path / cli_output)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True)), keywords


def test_filter_takes_a_presets_width_by_height_size(film: tuple[Path, Path], tmp_path: Path) -> None:
    """A ``size = "WxH"`` preset gives the filter the CLI's frames (the filter used to drop it and
    work at the model's size)."""
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor

    clip, preset = film
    preset.write_text(PRESET.replace("size = 32", 'size = "40x32"'))  # with detail: DIS at 40x32, see DISFlow
    output = cli(str(clip), "-o", str(tmp_path / "p.mkv"), "--preset", str(preset))
    assert reported(output)[1] == "40x32"
    out = vsvidcolor.colorize(vs.core.bs.VideoSource(str(clip)), preset=str(preset))
    expected = yuv_frames(tmp_path / "p.mkv")
    for index in (0, 4, 9):
        got = np.stack([np.asarray(out.get_frame(index)[p]) for p in range(3)])
        np.testing.assert_array_equal(got, expected[index], err_msg=f"frame {index}")
