"""No reference at all: an automatic model colours each shot's first frame, the exemplar model
carries it, and the CLI, batch and the VapourSynth filter give the same frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.report import metrics
from vidcolor.cli import main
from vidcolor.demo import make_demo_clip
from vidcolor.correspondence.flow import DISFlow

FRAMES = 16


@pytest.fixture(scope="module")
def photo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gray camera move over a real photo (shipped inside scikit-image): real content for the
    automatic models, no shared data needed."""
    folder = tmp_path_factory.mktemp("noref")
    return Path(make_demo_clip(str(folder), frames=FRAMES, width=256, height=144).gray_video)


def run_cli(*args: str) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output


def rgb_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def yuv_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="yuv444p").astype(int) for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def cli_output(photo_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("noref-out") / "out.mkv"
    run_cli("colorize", str(photo_clip), "-o", str(output), "--codec", "ffv1", "-q")
    return output


def test_no_reference_gives_stable_colour(photo_clip: Path, cli_output: Path) -> None:
    source = rgb_frames(photo_clip)
    output = rgb_frames(cli_output)
    assert len(output) == FRAMES
    assert np.mean([metrics.colorfulness(f) for f in source]) < 1.0  # the input is gray
    assert np.mean([metrics.colorfulness(f) for f in output]) > 8.0
    motion = metrics.source_motion([f[..., 1] for f in source], DISFlow())
    # flicker no worse than 1.2x the gray input's own warp error (the bar for real footage)
    assert metrics.warp_ratio(output, source, motion) <= 1.2


def test_automatic_model_alone_colours_every_frame_but_flickers_more(photo_clip: Path, cli_output: Path,
                                                                      tmp_path: Path) -> None:
    """``--model cheng2015`` needs no reference: it colours each frame on its own, and so flickers
    more than the no-reference mode, which uses it for the first frame only."""
    output = tmp_path / "per-frame.mkv"
    run_cli("colorize", str(photo_clip), "-o", str(output), "--model", "cheng2015", "--no-temporal",
            "--codec", "ffv1", "-q")
    frames = rgb_frames(output)
    assert len(frames) == FRAMES
    assert min(metrics.colorfulness(f) for f in frames) > 5.0
    source = rgb_frames(photo_clip)
    motion = metrics.source_motion([f[..., 1] for f in source], DISFlow())
    assert metrics.warp_error(frames, motion) > 1.05 * metrics.warp_error(rgb_frames(cli_output), motion)


def test_batch_and_vapoursynth_give_the_cli_frames(photo_clip: Path, cli_output: Path, tmp_path: Path) -> None:
    expected = yuv_frames(cli_output)

    films = tmp_path / "films"
    films.mkdir()
    (films / "reel.mp4").symlink_to(photo_clip)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["batch", str(films), "-o", str(out), "--codec", "ffv1", "-q"])
    assert result.exit_code == 0, result.output
    (batch_output,) = out.glob("reel.*")
    batch_frames = yuv_frames(batch_output)
    assert len(batch_frames) == FRAMES
    assert max(int(np.abs(a - b).max()) for a, b in zip(batch_frames, expected)) <= 1

    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor

    chunked = tmp_path / "chunked.mkv"  # chunks of 6 frames, each warmed up, as the filter below
    run_cli("colorize", str(photo_clip), "-o", str(chunked), "--codec", "ffv1", "--chunk-length", "6", "-q")
    expected = yuv_frames(chunked)
    clip = vsvidcolor.colorize(vs.core.bs.VideoSource(str(photo_clip)), chunk_length=6, cache_chunks=1)
    for index in reversed(range(FRAMES)):  # out of order: each chunk rebuilds the shot's automatic reference
        frame = clip.get_frame(index)
        got = np.stack([np.asarray(frame[p]) for p in range(3)]).astype(int)
        assert np.abs(got - expected[index]).max() <= 1, index


def test_the_automatic_keyframe_is_each_shots_middle_frame() -> None:
    from vidcolor.colorizers import get_colorizer
    from vidcolor.run.pipeline import FrameColorizer
    from vidcolor.schedule.keyframes import ReferenceSchedule

    schedule = ReferenceSchedule([], [6], frame_count=20)  # shots 0-5 and 6-19
    frames = FrameColorizer(get_colorizer("classic"), schedule, (32, 16), frame_at=lambda index: np.zeros((16, 32)))
    assert [frames.automatic_keyframe(i) for i in (0, 5, 6, 19)] == [2, 2, 12, 12]
    # without a way to fetch other frames (or an unknown length) the shot's first frame is used
    blind = FrameColorizer(get_colorizer("classic"), schedule, (32, 16))
    assert blind.automatic_keyframe(19) == 6


def test_the_shot_reference_is_the_candidate_the_automatic_model_is_surest_of() -> None:
    """No-reference mode colours a shot's candidate frames with the automatic model and follows the
    one with the highest mean confidence (autocolor.md, fifth session); equals pick the earliest."""
    import cv2
    import skimage.data

    from vidcolor.color import rgb_to_gray_lightness
    from vidcolor.colorizers import get_colorizer
    from vidcolor.run.pipeline import FrameColorizer, automatic_candidates, automatic_reference, most_confident_reference
    from vidcolor.run.shots import CONFIDENCE_MARGIN
    from vidcolor.schedule.keyframes import ReferenceSchedule

    auto = get_colorizer("autocolor", keyframe=True)
    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    pictures = [rgb_to_gray_lightness(cv2.resize(p, (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
                for p in photos]
    pictures.append(np.full((64, 96), 50.0, np.float32))  # a flat gray frame
    confidence = [float(auto.step(p, None).confidence.mean()) for p in pictures]
    assert max(confidence) - min(confidence) > 0.01  # the frames are told apart
    best = int(np.argmax(confidence))
    frame, reference = most_confident_reference(auto, [(10 + i, p) for i, p in enumerate(pictures)], key="k")
    assert frame == 10 + best and reference.key == f"k:{frame}"
    alone = automatic_reference(auto, pictures[best], key="alone")
    assert np.array_equal(reference.rgb, alone.rgb)  # the very reference that frame alone would give
    twice = most_confident_reference(auto, [(3, pictures[best]), (7, pictures[best])], key="k")
    assert twice[0] == 3
    with pytest.raises(ValueError, match="at least one"):
        most_confident_reference(auto, [], key="k")

    # in the pipeline: 16 of the shot's 20 frames with its middle, fetched with frame_at
    schedule = ReferenceSchedule([], [], frame_count=20)
    frames = FrameColorizer(get_colorizer("classic"), schedule, (96, 64), auto=auto,
                            frame_at=lambda index: pictures[index % len(pictures)])
    assert frames.automatic_candidates(5) == automatic_candidates(0, 19)
    assert len(automatic_candidates(0, 19)) == 16 and frames.automatic_keyframe(5) in automatic_candidates(0, 19)
    # the candidates as sure as the surest within the margin: the one nearest the middle, the earlier of two
    surest = max(confidence[i % len(pictures)] for i in frames.automatic_candidates(5))
    sure = [i for i in frames.automatic_candidates(5) if confidence[i % len(pictures)] >= surest - CONFIDENCE_MARGIN]
    picked = min(sure, key=lambda i: (abs(i - frames.automatic_keyframe(5)), i))
    assert frames.auto_reference(5).key == f"auto:autocolor:0:{picked}"
    blind = FrameColorizer(get_colorizer("classic"), schedule, (96, 64), auto=auto)
    assert blind.automatic_candidates(5) == [0]  # no way to fetch other frames: the shot's first


def test_vapoursynth_scene_change_properties_start_shots_with_their_own_reference(photo_clip: Path) -> None:
    """With no reference, a scene change marked by frame properties (as misc.SCDetect marks them)
    gives the next shot its own automatic reference, exactly as ``cuts=`` does."""
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor

    source = vs.core.bs.VideoSource(str(photo_clip))
    cut = FRAMES // 2
    # two shots: the camera move, then the same move mirrored and run backwards
    spliced = source[:cut] + source.std.FlipHorizontal()[::-1][:FRAMES - cut]
    marked = spliced.std.SetFrameProps(_SceneChangePrev=0, _SceneChangeNext=0)
    marked = marked[:cut] + marked[cut:].std.SetFrameProps(_SceneChangePrev=1)[0] + marked[cut + 1:]

    def planes(clip: vs.VideoNode, index: int) -> np.ndarray:
        frame = clip.get_frame(index)
        return np.stack([np.asarray(frame[p]) for p in range(3)]).astype(int)

    from_props = vsvidcolor.colorize(marked, chunk_length=6, cache_chunks=1)
    from_cuts = vsvidcolor.colorize(spliced, cuts=[cut], chunk_length=6, cache_chunks=1)
    one_shot = vsvidcolor.colorize(marked, cuts=[], chunk_length=6, cache_chunks=1)
    for index in (FRAMES - 1, cut, cut - 1, 0):  # out of order
        assert np.abs(planes(from_props, index) - planes(from_cuts, index)).max() <= 1, index
    # without the cut, one of the two shots follows a reference made from a frame of the other
    assert max(np.abs(planes(from_props, i) - planes(one_shot, i))[1:].max() for i in (0, FRAMES - 1)) > 4


def test_shot_keyframes_keep_each_shots_candidates_while_scanning() -> None:
    """Fed the scan's frames and cuts, :class:`ShotKeyframes` holds every shot's automatic
    keyframe candidates exactly as a decode of those frames would give them, with bounded memory,
    for short and long shots and for a cut PySceneDetect reports a few frames late."""
    from vidcolor.color import LumaFormat, luma_to_lightness
    from vidcolor.run.pipeline import (KEYFRAME_GRID, ShotKeyframes, automatic_candidates, automatic_keyframe_of,
                                       working_lightness)
    from vidcolor.run.shots import KEYFRAME_CANDIDATES
    from vidcolor.io.reader import Frame, VideoInfo

    lengths = [1, 2, 5, KEYFRAME_GRID - 1, KEYFRAME_GRID, KEYFRAME_GRID + 1, 300, 1000]
    starts = list(np.cumsum([0, *lengths]))
    luma_format = LumaFormat(bit_depth=8, full_range=False)
    info = VideoInfo(path="synthetic", width=24, height=12, frame_count=int(starts[-1]), fps=Fraction(25),
                     time_base=Fraction(1, 25), luma_format=luma_format)
    work = (12, 6)
    rng = np.random.default_rng(0)
    luma = [rng.integers(16, 236, size=(12, 24), dtype=np.uint8) for _ in range(starts[-1])]
    late = starts[3]  # this cut is reported 4 frames after it happened
    kept = ShotKeyframes(info, work)
    largest = 0
    for index, plane in enumerate(luma):
        cuts = [c for c in starts[1:-1] if c == index and c != late] + ([late] if index == late + 4 else [])
        kept(Frame(index, index, index / 25, plane), cuts)
        largest = max(largest, len(kept._grid))
    kept.finish(starts[1:-1])
    assert largest <= 2 * KEYFRAME_GRID
    for start, stop in zip(starts, starts[1:]):
        keyframe = automatic_keyframe_of(start, stop - 1)
        assert start <= keyframe < stop
        assert abs(keyframe - (start + stop - 1) // 2) <= max(1, (stop - start) // 256)
        candidates = automatic_candidates(start, stop - 1)
        assert keyframe in candidates and candidates == sorted(set(candidates))
        assert start <= candidates[0] and candidates[-1] < stop
        # every frame of a short shot; KEYFRAME_CANDIDATES spread over a long one (+ the middle)
        assert len(candidates) == min(stop - start, KEYFRAME_CANDIDATES) or len(candidates) == KEYFRAME_CANDIDATES + 1
        assert candidates[-1] - candidates[0] >= (stop - start - 1) * (KEYFRAME_CANDIDATES - 2) / KEYFRAME_CANDIDATES
        for candidate in candidates:
            expected = working_lightness(luma_to_lightness(luma[candidate], luma_format), work)
            got = kept.get(candidate, work)
            if start == late:  # frames past a late cut may be missing: then the pipeline decodes them
                assert got is None or np.array_equal(got, expected)
                continue
            assert got is not None, (start, stop, candidate)
            assert np.array_equal(got, expected), candidate
    assert len(kept) <= len(starts) * (KEYFRAME_CANDIDATES + 1)
    assert kept.get(keyframe, (6, 3)) is None  # kept at another working size: not used


def test_no_reference_keyframes_come_from_the_scene_scan(tmp_path: Path) -> None:
    """Scene detection's pass keeps each shot's keyframe candidates, or, given the automatic model,
    chooses among them and keeps the chosen frame alone; either way the colour pass decodes every
    frame once (no seek back into each shot) and gives the very frames of a run that seeks."""
    from helpers import color_frames, write_clip

    from vidcolor.colorizers import get_colorizer
    from vidcolor.run.pipeline import colorize_video, scan_shots, working_size_for
    from vidcolor.io.reader import probe
    from vidcolor.schedule.keyframes import ReferenceSchedule
    from vidcolor.io.writer import resolve_output

    shots = [color_frames(30, 96, 64, seed=seed) for seed in (1, 2, 3)]
    shots[1] = [frame[::-1, ::-1].copy() for frame in shots[1]]
    clip = write_clip(tmp_path / "three-shots.mp4", [f for shot in shots for f in shot], gray=True)
    info = probe(str(clip))
    colorizer, auto = get_colorizer("classic"), get_colorizer("cheng2015")
    work = working_size_for(info, colorizer)
    cuts, candidates = scan_shots(info, work)
    assert cuts == [30, 60] and candidates is not None and len(candidates) == 3 * 16  # every 2nd frame of each shot
    # with the automatic model the scan chooses each shot's frame and keeps that one alone
    cuts, kept = scan_shots(info, work, auto=auto)
    assert cuts == [30, 60] and kept is not None and len(kept) == 3
    chosen = [kept.chosen(start, end, work) for start, end in ((0, 29), (30, 59), (60, 89))]
    assert all(c is not None and start <= c <= start + 29 for c, start in zip(chosen, (0, 30, 60))), chosen
    assert kept.chosen(0, 28, work) is None and kept.chosen(0, 29, (6, 4)) is None  # another shot or size
    schedule = ReferenceSchedule([], cuts, frame_count=info.frame_count)
    outputs = {}
    for name, keyframes in (("scanned", kept), ("candidates", candidates), ("seeking", None)):
        spec = resolve_output(str(tmp_path / f"{name}.mkv"), codec="ffv1")
        summary = colorize_video(str(clip), spec, schedule, colorizer, auto=auto, info=info, kept_keyframes=keyframes)
        outputs[name] = (summary.decoded_frames, yuv_frames(tmp_path / f"{name}.mkv"))
    assert outputs["scanned"][0] == outputs["candidates"][0] == 90  # one pass
    assert outputs["seeking"][0] > 90  # each shot's candidates decoded again
    for name in ("scanned", "candidates"):
        assert all(np.array_equal(a, b) for a, b in zip(outputs[name][1], outputs["seeking"][1])), name


def two_shot_film(folder: Path) -> Path:
    """60 gray frames in two shots (cut at 30), FFV1 in Matroska: no frame count in the header."""
    from helpers import color_frames, write_clip

    shots = [color_frames(30, 96, 64, seed=seed) for seed in (1, 2)]
    shots[1] = [frame[::-1, ::-1].copy() for frame in shots[1]]
    return write_clip(folder / "two-shots.mkv", [f for shot in shots for f in shot], codec="ffv1", gray=True)


def test_ray_chunks_use_the_shots_frames_chosen_by_the_scan(tmp_path: Path) -> None:
    """Ray workers colour a no-reference shot from the frame scene detection's pass chose, as the
    local run does, instead of decoding and scoring all the shot's candidates again in every chunk."""
    pytest.importorskip("ray", reason="Ray is in the test extras: pip install -e '.[test]'")
    from vidcolor.colorizers import get_colorizer
    from vidcolor.io.reader import QUEUE_LENGTH, keyframe_numbers, probe
    from vidcolor.io.writer import resolve_output
    from vidcolor.run.chunks import ChunkPlan
    from vidcolor.run.distributed import ray_chunks
    from vidcolor.run.pipeline import colorize_video, scan_shots, working_size_for
    from vidcolor.schedule.keyframes import ReferenceSchedule

    clip = two_shot_film(tmp_path)
    info = probe(str(clip))
    colorizer, auto = get_colorizer("classic"), get_colorizer("cheng2015")
    work = working_size_for(info, colorizer)
    cuts, kept = scan_shots(info, work, auto=auto)
    assert cuts == [30] and kept is not None and len(kept) == 2
    schedule, plan = ReferenceSchedule([], cuts, frame_count=info.frame_count), ChunkPlan(length=10, warmup=2)
    runs = {}
    for name, distribute in (("local", None), ("ray", ray_chunks(num_cpus=2))):
        spec = resolve_output(str(tmp_path / f"{name}.mkv"), codec="ffv1")
        summary = colorize_video(str(clip), spec, schedule, colorizer, auto=auto, info=info, kept_keyframes=kept,
                                 plan=plan, resume=True, distribute=distribute)
        runs[name] = (summary.decoded_frames, yuv_frames(tmp_path / f"{name}.mkv"))
    assert all(np.array_equal(a, b) for a, b in zip(runs["local"][1], runs["ray"][1], strict=True))
    # 6 chunks: the 60 frames, 2 warm-up frames before each later chunk, the frames from the keyframe
    # before each chunk's first (a GOP of 12), and at most QUEUE_LENGTH + 4 read ahead past each chunk
    # but the last (124 measured). The shots' chosen frames travel with the chunks: workers that
    # decoded them again decoded 174-179 frames, workers that re-scored the 16 candidates 630.
    begins = [10 * n - plan.warmup for n in range(1, 6)]  # where each later chunk's reader starts
    keyframes = keyframe_numbers(info)
    before = sum(begin - max(k for k in keyframes if k <= begin) for begin in begins)
    assert runs["local"][0] == 60
    assert runs["ray"][0] <= 60 + len(begins) * (plan.warmup + QUEUE_LENGTH + 4) + before, runs["ray"][0]


def test_the_last_shot_of_a_film_of_unknown_length_takes_the_frame_the_scan_chose(tmp_path: Path) -> None:
    """A film whose container does not say how many frames it has (FFV1 in Matroska) leaves the
    schedule's last shot open-ended: the colour pass still takes the frame the scan chose for it,
    as for the same film in MP4 (it took the shot's first frame, so .mkv and .mp4 differed)."""
    from vidcolor.colorizers import get_colorizer
    from vidcolor.io.reader import probe
    from vidcolor.run.pipeline import FrameColorizer, read_lightness, scan_shots, working_size_for
    from vidcolor.schedule.keyframes import ReferenceSchedule

    clip = two_shot_film(tmp_path)
    info = probe(str(clip))
    assert info.frame_count is None  # the point of the test: the length is known only by decoding
    colorizer, auto = get_colorizer("classic"), get_colorizer("cheng2015")
    work = working_size_for(info, colorizer)
    cuts, kept = scan_shots(info, work, auto=auto)
    assert cuts == [30] and kept is not None
    schedule = ReferenceSchedule([], cuts, frame_count=info.frame_count)
    assert schedule.shot_at(45).end is None
    chosen = [kept.chosen(0, 29, work), kept._chosen[30][1]]
    frames = FrameColorizer(colorizer, schedule, work, auto=auto, kept_keyframes=kept,
                            frame_at=lambda index: read_lightness(info, index))
    assert [frames.auto_reference(5).key, frames.auto_reference(45).key] == [
        f"auto:cheng2015:0:{chosen[0]}", f"auto:cheng2015:30:{chosen[1]}"]
    assert kept.chosen(30, None, work) == chosen[1] and kept.chosen(30, 58, work) is None
