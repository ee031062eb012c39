"""``--model fast`` is a preview, encoded quickly too (issue 24): without ``--encoder-preset`` its
output is encoded at the model's own x264 preset, every other model keeps ``medium``, and a preset
given anywhere (command line, preset file, batch) wins. What x264 really did is read back from the
settings string it writes into every H.264 stream (its SEI), compared with a plain PyAV encode at
each preset."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import av
import cv2
import pytest
from click.testing import CliRunner

from vidcolor.cli import VidcolorGroup, main
from vidcolor.cli.batch import batch
from vidcolor.colorizers import MODELS, ModelEntry
from vidcolor.io.writer import resolve_output
from vidcolor.run.prepare import colorize_file
from vidcolor.run.settings import model_encoder_preset, resolve_settings
from vidcolor.schedule.keyframes import Keyframe
from vidcolor.references import load_reference

from helpers import color_frames, write_clip

PREVIEW = MODELS["fast"].encoder_preset
FINAL = ModelEntry("x", "m", "C", "").encoder_preset
#: the x264 settings its presets set (x264 writes them all into the stream's SEI)
PRESET_KEYS = ("subme", "ref", "me", "trellis", "mixed_ref", "rc_lookahead", "b_adapt", "direct", "weightp")


def x264_settings(path: Path) -> dict[str, str]:
    """The preset-dependent settings x264 wrote into ``path``'s first packet (its SEI text)."""
    with av.open(str(path)) as container:
        first = next(packet for packet in container.demux(container.streams.video[0]) if packet.size)
        found = re.search(rb"x264 - core .*? options: ([^\x00\x80]*)", bytes(first))
    assert found, f"{path} carries no x264 settings"
    pairs = dict(item.split("=", 1) for item in found.group(1).decode("ascii", "replace").split() if "=" in item)
    return {key: pairs.get(key, "") for key in PRESET_KEYS}


@cache
def preset_settings(preset: str, folder: str) -> dict[str, str]:
    """What a plain PyAV encode at x264 ``preset`` writes: the fingerprint of that preset."""
    path = Path(folder) / f"plain-{preset}.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": preset, "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for rgb in color_frames(3, 96, 64):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return x264_settings(path)


def encoded_with(path: Path, preset: str, folder: Path) -> bool:
    return x264_settings(path) == preset_settings(preset, str(folder))


@pytest.fixture
def film(tmp_path: Path) -> tuple[Path, Path]:
    """An 8-frame 96x64 gray H.264 clip and a colour reference."""
    frames = color_frames(8, 96, 64)
    (tmp_path / "in").mkdir()
    clip = write_clip(tmp_path / "in" / "film.mp4", frames, gray=True)
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    return clip, reference


def colorize(*args: str) -> str:
    result = CliRunner().invoke(main, ["colorize", *args, "-q"])
    assert result.exit_code == 0, result.output
    return result.output


def test_only_fast_has_a_faster_default_preset(tmp_path: Path) -> None:
    """The presets differ in what x264 writes (so the tests below can tell them apart), fast's own
    is faster than medium, and every other model keeps medium."""
    assert preset_settings(PREVIEW, str(tmp_path)) != preset_settings(FINAL, str(tmp_path))
    assert FINAL == "medium" and PREVIEW != FINAL
    from vidcolor.io.writer import ENCODER_PRESETS

    assert ENCODER_PRESETS.index(PREVIEW) < ENCODER_PRESETS.index(FINAL)  # x264 lists them fastest first
    assert {name: model_encoder_preset(name) for name in MODELS} == {name: PREVIEW if name == "fast" else FINAL
                                                                   for name in MODELS}
    assert resolve_settings({"model": "fast"}).encoder_preset is None  # "not given" stays visible
    assert resolve_settings({"model": "fast"}).output_spec("o.mp4").encoder_preset == PREVIEW


def test_fast_encodes_with_its_preset_unless_one_is_given(film: tuple[Path, Path], tmp_path: Path) -> None:
    clip, reference = film
    outputs = {name: tmp_path / f"{name}.mp4" for name in ("fast", "fast-medium", "default")}
    colorize(str(clip), "-o", str(outputs["fast"]), "--ref", str(reference), "--model", "fast", "--stats")
    colorize(str(clip), "-o", str(outputs["fast-medium"]), "--ref", str(reference), "--model", "fast",
             "--encoder-preset", FINAL)
    colorize(str(clip), "-o", str(outputs["default"]), "--ref", str(reference), "--model", "default")
    assert encoded_with(outputs["fast"], PREVIEW, tmp_path)
    assert encoded_with(outputs["fast-medium"], FINAL, tmp_path)
    assert encoded_with(outputs["default"], FINAL, tmp_path)
    # the run description of --stats names the preset the run resolved
    with open(f"{outputs['fast']}.stats.jsonl", encoding="utf-8") as handle:
        run = json.loads(handle.readline())["run"]
    assert run["settings"]["encoder preset"] == PREVIEW


def test_preset_file_beats_the_model_default_and_the_command_line_beats_both(film: tuple[Path, Path],
                                                                            tmp_path: Path) -> None:
    clip, reference = film
    preset = clip.with_suffix(".toml")  # beside the film: also the film's own preset in a batch
    preset.write_text(f'model = "fast"\nencoder_preset = "{FINAL}"\n[[shot]]\nstart = 0\nreference = "{reference}"\n')
    from_file, given = tmp_path / "file.mp4", tmp_path / "given.mp4"
    colorize(str(clip), "-o", str(from_file), "--preset", str(preset))
    colorize(str(clip), "-o", str(given), "--preset", str(preset), "--encoder-preset", "ultrafast")
    assert encoded_with(from_file, FINAL, tmp_path)
    assert encoded_with(given, "ultrafast", tmp_path)
    # batch: the film's preset file says medium, the option given to batch wins over it
    result = CliRunner().invoke(VidcolorGroup(commands={"batch": batch}),
                                ["batch", str(clip.parent), "-o", str(tmp_path / "out"), "-q", "--encoder-preset", "faster"])
    assert result.exit_code == 0, result.output
    assert encoded_with(tmp_path / "out" / "film.mp4", "faster", tmp_path)
    # and a batch of a film with no preset file and --model fast takes fast's own preset
    preset.unlink()
    result = CliRunner().invoke(VidcolorGroup(commands={"batch": batch}),
                                ["batch", str(clip.parent), "-o", str(tmp_path / "plain"), "-q", "--model", "fast",
                                 "--ref", str(reference)])
    assert result.exit_code == 0, result.output
    assert encoded_with(tmp_path / "plain" / "film.mp4", PREVIEW, tmp_path)


def test_a_resumed_preview_never_mixes_presets(film: tuple[Path, Path], tmp_path: Path) -> None:
    """The resolved preset is part of the resume signature: an interrupted ``--model fast`` run
    resumed with ``--encoder-preset medium`` is refused by name; resumed as it was begun, it ends."""
    clip, reference = film
    output = tmp_path / "out.mp4"
    settings = resolve_settings({"model": "fast", "chunk_length": 4})
    seen: list[int] = []

    def interrupt(result: object) -> None:
        seen.append(1)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_file(str(clip), settings.output_spec(str(output)), settings,
                      keyframes=[Keyframe(0, load_reference(str(reference)))], resume=True, on_frame=interrupt)
    common = [str(clip), "-o", str(output), "--ref", str(reference), "--model", "fast", "--chunk-length", "4", "--resume", "-q"]
    refused = CliRunner().invoke(main, ["colorize", *common, "--encoder-preset", FINAL])
    assert refused.exit_code == 2, refused.output
    assert f"output.encoder_preset (was {PREVIEW}, now {FINAL}) changed" in refused.output  # what to give to finish it
    colorize(*common[:-1])
    assert encoded_with(output, PREVIEW, tmp_path)
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8


def test_help_names_each_default() -> None:
    for command in ("colorize", "batch"):
        text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
        assert f"x264/x265 speed preset. [default: the preset's, else {FINAL}; {PREVIEW} for --model fast]" in text


def test_codecs_without_presets_keep_the_default_so_lossless_runs_resume(tmp_path: Path) -> None:
    """ffv1, png and tiff ignore x264 presets: the fast model's own preset must not enter their
    output spec (and so their resume signature), or an unchanged lossless run would look changed."""
    for name, codec in (("out.mkv", "ffv1"), ("frames", "png"), ("tifs", "tiff")):
        spec = resolve_output(tmp_path / name, codec=codec, encoder_preset=PREVIEW)
        assert not spec.codec.uses_preset and spec.encoder_preset == FINAL
    assert resolve_output(tmp_path / "out.mp4", encoder_preset=PREVIEW).encoder_preset == PREVIEW
