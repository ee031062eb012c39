"""A keyframe's moment (issue 24, "a shot is at its best next to its keyframe"): found among the
shot's first frames, and the shot coloured outward from it, with the same frames from a
sequential pass, any chunk alone, an interrupted and resumed run, and the VapourSynth filter."""

from __future__ import annotations

import random
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.color import rgb_to_gray_lightness
from vidcolor.colorizers import get_colorizer
from vidcolor.errors import OutputError
from vidcolor.io.writer import resolve_output
from vidcolor.references import Reference, load_reference
from vidcolor.run.anchor import ANCHOR_SEARCH, find_moment, moment_scores
from vidcolor.run.chunks import ChunkPlan
from vidcolor.run.pipeline import FrameColorizer, colorize_video
from vidcolor.run.prepare import build_colorizers
from vidcolor.run.resume import Journal
from vidcolor.run.settings import resolve_settings
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule
from vidcolor.schedule.presets import PresetError, load_preset

from helpers import color_frames, write_clip

SHOT_A, SHOT_B, MOMENT_B = 16, 24, 12  # shot B's reference shows its frame 12


def film_frames() -> list[np.ndarray]:
    """Shot A (moving shapes), then shot B: a fast pan (5 px a frame) across a wider picture, so
    each of its frames shows another part of it."""
    canvas = color_frames(1, 128 + 5 * SHOT_B, 80, seed=3)[0]
    pan = [np.ascontiguousarray(canvas[:, 5 * i: 5 * i + 128]) for i in range(SHOT_B)]
    return color_frames(SHOT_A, 128, 80, seed=1) + pan


def lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_gray_lightness(rgb.astype(np.float32) / 255)


def reference_of(rgb: np.ndarray, key: str) -> Reference:
    return Reference.from_array(rgb.astype(np.float32) / 255, key=key)


def schedule_of(frames: list[np.ndarray]) -> ReferenceSchedule:
    return ReferenceSchedule([Keyframe(0, reference_of(frames[0], "a")),
                              Keyframe(SHOT_A, reference_of(frames[SHOT_A + MOMENT_B], "b"))], frame_count=len(frames))


def frame_colorizer(frames: list[np.ndarray], anchor: str, plan: ChunkPlan = ChunkPlan(0)) -> FrameColorizer:
    light = [lightness(f) for f in frames]
    return FrameColorizer(get_colorizer("classic"), schedule_of(frames), (128, 80), plan, anchor=anchor,
                          frames_from=lambda start, stop: iter(light[start:stop]))


def test_find_moment_finds_the_frame_the_reference_shows() -> None:
    frames = film_frames()
    pan = [lightness(f) for f in frames[SHOT_A:]]
    assert find_moment(reference_of(frames[SHOT_A + MOMENT_B], "b"), pan) == MOMENT_B
    assert find_moment(reference_of(frames[SHOT_A + 19], "b19"), pan) == 19
    assert find_moment(reference_of(frames[SHOT_A], "b0"), pan) == 0
    # a reference brighter and flatter than the film (a painted keyframe) still finds its frame
    painted = np.clip(frames[SHOT_A + MOMENT_B].astype(np.float32) * 0.6 + 90, 0, 255)
    assert find_moment(reference_of(painted, "painted"), pan) == MOMENT_B
    # a static shot matches everywhere alike: the pinned frame keeps the moment
    still = [pan[5]] * 10
    scores = moment_scores(reference_of(frames[SHOT_A + 5], "still"), still)
    assert max(scores) - scores[0] < 1e-9 and find_moment(reference_of(frames[SHOT_A + 5], "still"), still) == 0
    assert find_moment(reference_of(frames[0], "a"), []) == 0


def test_shot_is_coloured_outward_from_its_moment() -> None:
    frames = film_frames()
    light = [lightness(f) for f in frames]
    auto = frame_colorizer(frames, "auto")
    assert auto.moment(0) == 0 and auto.moment(SHOT_A) == SHOT_A + MOMENT_B
    assert auto.shot_start(SHOT_A + 3) == SHOT_A and auto.shot_start(SHOT_A + MOMENT_B + 3) == SHOT_A + MOMENT_B
    got = [auto.predict(i, f).ab for i, f in enumerate(light)]
    # by hand: shot B's frames up to the moment, coloured from the moment backward ...
    schedule = schedule_of(frames)
    backward = get_colorizer("classic")
    expected = {}
    for index in range(SHOT_A + MOMENT_B, SHOT_A - 1, -1):
        expected[index] = backward.step(light[index], schedule.keyframes[1].reference).ab
    for index in range(SHOT_A, SHOT_A + MOMENT_B + 1):
        np.testing.assert_array_equal(got[index], expected[index], err_msg=f"frame {index}")
    # ... and from the moment forward
    forward = get_colorizer("classic")
    for index in range(SHOT_A + MOMENT_B, len(frames)):
        np.testing.assert_array_equal(got[index], forward.step(light[index], schedule.keyframes[1].reference).ab)
    pinned = frame_colorizer(frames, "pinned")
    assert pinned.moment(SHOT_A) == SHOT_A
    old = [pinned.predict(i, f).ab for i, f in enumerate(light)]
    assert all(np.array_equal(a, b) for a, b in zip(old[:SHOT_A], got[:SHOT_A]))  # shot A's moment is its first frame
    assert not any(np.array_equal(old[i], got[i]) for i in range(SHOT_A + 1, SHOT_A + MOMENT_B))


def test_any_chunk_recomputed_alone_equals_the_sequential_pass_when_anchored() -> None:
    frames = film_frames()
    light = [lightness(f) for f in frames]
    plan = ChunkPlan(length=5, warmup=3)
    sequential = frame_colorizer(frames, "auto", plan)
    expected = [sequential.predict(i, f).ab for i, f in enumerate(light)]
    for index in (3, 16, 19, 22, 27, 28, 31, 34, 39):
        fresh = frame_colorizer(frames, "auto", plan)
        begin, start, end = fresh.chunk_bounds(index, len(frames))
        assert begin <= start <= index < end
        assert not start < SHOT_A + MOMENT_B < end  # no chunk spans the backward and the forward frames
        fresh.start_pass()
        for i in range(begin, end):
            result = fresh.predict(i, light[i])
            if i == index:
                np.testing.assert_array_equal(result.ab, expected[i], err_msg=f"frame {index}")


def yuv444(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv444p") for f in container.decode(video=0)]


def test_cli_resume_and_vapoursynth_give_the_same_anchored_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = film_frames()
    source = write_clip(tmp_path / "film.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    for name, index in (("a.png", 0), ("b.png", SHOT_A + MOMENT_B)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frames[index], cv2.COLOR_RGB2BGR))
    args = ["colorize", str(source), "--ref", f"0={tmp_path / 'a.png'}", "--ref", f"{SHOT_A}={tmp_path / 'b.png'}",
            "--model", "classic", "--codec", "ffv1", "--chunk-length", "5", "-q"]
    for name, extra in (("whole.mkv", ["--anchor", "auto"]), ("pinned.mkv", [])):
        result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    whole, pinned = yuv444(tmp_path / "whole.mkv"), yuv444(tmp_path / "pinned.mkv")
    assert len(whole) == SHOT_A + SHOT_B
    assert all(np.array_equal(whole[i], pinned[i]) for i in range(SHOT_A))
    assert not np.array_equal(whole[SHOT_A + 2], pinned[SHOT_A + 2])  # --anchor auto acts; pinned is the default

    # a resumable run that loses chunks (as a killed run does), then resumed
    schedule = ReferenceSchedule([Keyframe(0, load_reference(tmp_path / "a.png")),
                                  Keyframe(SHOT_A, load_reference(tmp_path / "b.png"))])
    spec = resolve_output(str(tmp_path / "resumed.mkv"), codec="ffv1")
    colorizer, _ = build_colorizers(resolve_settings({"model": "classic"}), True)  # as the CLI's (temporal check on)
    original = Journal.record

    def record_some(self: Journal, start: int, end: int, file: str, *rest: object) -> None:
        if start in (0, 10, SHOT_A + 5, SHOT_A + MOMENT_B + 5):
            original(self, start, end, file, *rest)

    with monkeypatch.context() as patch:
        patch.setattr(Journal, "record", record_some)
        with pytest.raises(OutputError, match="run the same command again"):
            colorize_video(str(source), spec, schedule, colorizer.fork(), plan=ChunkPlan(5), resume=True,
                           anchor="auto")
    colorize_video(str(source), spec, schedule, colorizer.fork(), plan=ChunkPlan(5), resume=True, anchor="auto")
    resumed = yuv444(tmp_path / "resumed.mkv")
    differing = [i for i, (a, b) in enumerate(zip(whole, resumed, strict=True)) if not np.array_equal(a, b)]
    assert not differing, f"resumed frames {differing[:5]} differ"

    # the VapourSynth filter, frames requested in a shuffled order, all at once
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor  # noqa: PLC0415

    clip = vs.core.bs.VideoSource(str(source))
    out = vsvidcolor.colorize(clip, refs={0: str(tmp_path / "a.png"), SHOT_A: str(tmp_path / "b.png")}, model="classic",
                              chunk_length=5, anchor="auto")
    order = list(range(out.num_frames))
    random.Random(4).shuffle(order)
    futures = {i: out.get_frame_async(i) for i in order}
    for i in order:
        got = np.stack([np.asarray(futures[i].result()[p]) for p in range(3)])
        np.testing.assert_array_equal(got, whole[i], err_msg=f"frame {i}")


def test_the_backward_run_is_bounded() -> None:
    """A reference that shows a frame past the search window: the moment stays inside it."""
    frames = film_frames()
    light = [lightness(f) for f in frames]
    long_shot = light[:SHOT_A] + [light[SHOT_A]] * ANCHOR_SEARCH + light[SHOT_A:]
    schedule = ReferenceSchedule([Keyframe(0, reference_of(frames[0], "a")),
                                  Keyframe(SHOT_A, reference_of(frames[SHOT_A + MOMENT_B], "b"))])
    colorizer = FrameColorizer(get_colorizer("classic"), schedule, (128, 80), ChunkPlan(0), anchor="auto",
                               frames_from=lambda start, stop: iter(long_shot[start:stop]))
    assert colorizer.moment(SHOT_A) == SHOT_A  # its frame lies past the window


def test_bad_anchor_values_are_refused(tmp_path: Path) -> None:
    source = write_clip(tmp_path / "c.mp4", color_frames(3, 64, 48))
    cv2.imwrite(str(tmp_path / "r.png"), cv2.cvtColor(color_frames(1, 64, 48)[0], cv2.COLOR_RGB2BGR))
    preset = tmp_path / "p.toml"
    preset.write_text('anchor = "middle"\n[[shot]]\nstart = 0\nreference = "r.png"\n')
    with pytest.raises(PresetError, match="anchor 'middle'.*anchor = \"auto\""):
        load_preset(preset)
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(tmp_path / "o.mp4"), "--ref",
                                       str(tmp_path / "r.png"), "--anchor", "middle"])
    assert result.exit_code == 2 and "--anchor" in result.output


def test_ray_chunks_colour_anchored_as_the_local_run(tmp_path: Path) -> None:
    """Ray workers colour each chunk with the driver's --anchor (they once ran pinned whatever the
    run said, while the resume journal recorded auto)."""
    pytest.importorskip("ray", reason="Ray is in the test extras: pip install -e '.[test]'")
    from vidcolor.run.distributed import ray_chunks  # noqa: PLC0415

    frames = film_frames()
    source = write_clip(tmp_path / "film.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    schedule = schedule_of(frames)

    def run(name: str, anchor: str, **extra: object) -> list[np.ndarray]:
        spec = resolve_output(str(tmp_path / name), codec="ffv1")
        colorize_video(str(source), spec, schedule, get_colorizer("classic"), plan=ChunkPlan(8), resume=True,
                       anchor=anchor, **extra)
        return yuv444(tmp_path / name)

    local, pinned = run("local.mkv", "auto"), run("pinned.mkv", "pinned")
    spread = run("ray.mkv", "auto", distribute=ray_chunks(num_cpus=2))
    assert not np.array_equal(local[SHOT_A + 2], pinned[SHOT_A + 2])  # the anchoring changes shot B
    differing = [i for i, (a, b) in enumerate(zip(local, spread, strict=True)) if not np.array_equal(a, b)]
    assert not differing, f"Ray frames {differing[:5]} differ from the local run's"
