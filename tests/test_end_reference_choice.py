"""A two-keyframe shot's end reference chooses placed or stretched (a reference of another aspect)
on the frame it shows, the shot's last, not on the shot's first frame; alike in every pass: the
CLI's, VapourSynth's in any order (first a chunk recomputed from its warm-up), a resumed run's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.color import rgb_to_gray_lightness
from vidcolor.colorizers import build_colorizer
from vidcolor.references import load_reference
from vidcolor.run.chunks import ChunkPlan
from vidcolor.run.pipeline import FrameColorizer
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

from helpers import write_clip
from test_placed_reference import (CHUNK, COUNT, WIDTH, assert_late_then_any_order, is_placed, pull_back,
                                   resumed_after_two_chunks, yuv444)

LAST = COUNT - 1


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, list[np.ndarray]]:
    """The pull-back as one two-keyframe shot: its first frame a third wider at the start (a
    square-pixel still: stretched), the left half of its last frame at the end (a crop), and the
    preset pinning them to frames 0 and 23."""
    folder = tmp_path_factory.mktemp("two-keyframes")
    frames = pull_back()
    source = write_clip(folder / "shot.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    start, end = folder / "start.png", folder / "end.png"
    cv2.imwrite(str(start), cv2.cvtColor(cv2.resize(frames[0], (WIDTH * 4 // 3, frames[0].shape[0]),
                                                    interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(end), cv2.cvtColor(np.ascontiguousarray(frames[LAST][:, : WIDTH // 2]), cv2.COLOR_RGB2BGR))
    preset = folder / "shot.toml"
    preset.write_text(f'version = 1\nmodel = "default"\n\n[[shot]]\nstart = 0\nend = {LAST}\n'
                      f'reference = "start.png"\nend_reference = "end.png"\n')
    light = [rgb_to_gray_lightness(frame.astype(np.float32) / 255) for frame in frames]
    return source, preset, end, light


def test_the_end_reference_chooses_on_the_shots_last_frame(film: tuple[Path, Path, Path, list[np.ndarray]]) -> None:
    """The crop of frame 23 is placed on frame 23 and stretched on frame 0 (the shot's first, where
    it chose before); a pass keeps the choice of frame 23: its frame 22 (nearly all the end
    reference's) differs from the same pass's where every frame read is frame 0 (the choice of
    before; equal there). Frame 23 reaches these colours only through that choice: the tone never
    acts on a reference of another aspect, and the start reference chooses on frame 0 in both.
    That any pass keeps it, the CLI's resumed run (its pass starts at frame 8) and VapourSynth's
    frame 20 asked for first show below."""
    _, preset, end, light = film
    assert (is_placed(end, light[0]), is_placed(end, light[LAST])) == (False, True)
    schedule = ReferenceSchedule([Keyframe(0, load_reference(str(preset.parent / "start.png")),
                                           end_reference=load_reference(str(end)), end_frame=LAST)], frame_count=COUNT)

    def frame_before_last(frame_at: Callable[[int], np.ndarray]) -> np.ndarray:
        frames = FrameColorizer(build_colorizer("default"), schedule, (WIDTH, light[0].shape[0]), ChunkPlan(CHUNK, 2),
                                frame_at=frame_at)
        return frames.predict(LAST - 1, light[LAST - 1]).ab

    chosen_on_last = frame_before_last(light.__getitem__)
    assert not np.array_equal(chosen_on_last, frame_before_last(lambda index: light[0]))


@pytest.fixture(scope="module")
def cli_run(film: tuple[Path, Path, Path, list[np.ndarray]]) -> tuple[list[str], list[np.ndarray]]:
    """The CLI's arguments for the preset (but the output) and the frames of its uninterrupted run."""
    source, preset, _, _ = film
    args = ["colorize", str(source), "--preset", str(preset), "--codec", "ffv1", "--chunk-length", str(CHUNK), "-q"]
    cli = preset.with_name("cli.mkv")
    result = CliRunner().invoke(main, [*args, "-o", str(cli)])
    assert result.exit_code == 0, result.output
    expected = yuv444(cli)
    assert len(expected) == COUNT
    return args, expected


def test_vapoursynth_in_any_order_gives_the_cli_frames(film: tuple[Path, Path, Path, list[np.ndarray]],
                                                       cli_run: tuple[list[str], list[np.ndarray]]) -> None:
    """The preset through VapourSynth, frame 20 asked for first (its chunk's pass starts at frame
    8), then every frame in a shuffled order, all at once: the CLI's frames, bit for bit
    (:func:`assert_late_then_any_order`)."""
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor  # noqa: PLC0415

    source, preset, _, _ = film
    expected = cli_run[1]
    # every chunk kept once made, so the shuffled requests colour each chunk once: with the default
    # cache of 2, evicted chunks were coloured again (10 chunk passes, 128 frames fed, against 3 and 40)
    out = vsvidcolor.colorize(vs.core.bs.VideoSource(str(source)), preset=str(preset), chunk_length=CHUNK,
                              cache_chunks=-(-COUNT // CHUNK))
    assert_late_then_any_order(out, expected, seed=7)


def test_a_resumed_run_gives_the_uninterrupted_frames(film: tuple[Path, Path, Path, list[np.ndarray]],
                                                      cli_run: tuple[list[str], list[np.ndarray]]) -> None:
    """A --resume run that kept only its first two chunks, run again (its pass starts at frame 8,
    the warm-up of the chunk at 16): the uninterrupted run's frames."""
    args, expected = cli_run
    got = resumed_after_two_chunks(args, film[1].with_name("resumed.mkv"))
    differing = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if not np.array_equal(a, b)]
    assert not differing, f"resumed frames {differing} differ"
