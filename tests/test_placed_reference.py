"""A reference of another aspect than the frame's is either a crop of it (placed inside the frame,
aspect kept) or the whole frame at another pixel aspect (stretched to it); optical flow decides on
one frame. That frame must be the same whatever frame a pass starts at: the CLI's sequential pass,
VapourSynth's out-of-order requests (a chunk computed from its warm-up) and a run resumed mid-shot
must give the same frames, even in a shot whose later frames would decide otherwise."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.color import rgb_to_gray_lightness
from vidcolor.colorizers.default import DefaultColorizer
from vidcolor.io.reader import probe
from vidcolor.references import Reference, load_reference
from vidcolor.run.anchor import find_moment
from vidcolor.run.chunks import ChunkPlan
from vidcolor.run.pipeline import FrameColorizer, read_lightness
from vidcolor.run.resume import Journal
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

from helpers import write_clip

WIDTH, HEIGHT, COUNT = 160, 96, 24
#: Chunks of 8 frames with the default warm-up of 8: the chunk at frame 16 starts its pass at frame 8.
CHUNK, WARMUP = 8, ChunkPlan().warmup
LATE = 20


def textured(height: int, width: int) -> np.ndarray:
    """A scene with detail at two scales, for optical flow to find."""
    rng = np.random.default_rng(5)
    fine = cv2.GaussianBlur(rng.random((height, width, 3), dtype=np.float32), (0, 0), 1.5)
    coarse = cv2.GaussianBlur(rng.random((height, width, 3), dtype=np.float32), (0, 0), 8)
    return (np.clip((fine - fine.mean()) * 4 + (coarse - coarse.mean()) * 6 + 0.5, 0, 1) * 255).astype(np.uint8)


def pan_onto_the_sky() -> list[np.ndarray]:
    """The camera pans 20 pixels a frame off a textured scene onto a plain sky: from frame 8 on it
    shows nothing of frame 0, and optical flow finds a crop of frame 0 neither placed nor stretched
    (a tie, which keeps a reference stretched)."""
    sky = np.linspace([150, 170, 200], [140, 160, 190], 20 * COUNT).astype(np.uint8)
    scene = np.concatenate([textured(HEIGHT, WIDTH), np.broadcast_to(sky, (HEIGHT, *sky.shape))], axis=1)
    return [np.ascontiguousarray(scene[:, 20 * i: 20 * i + WIDTH]) for i in range(COUNT)]


def pull_back() -> list[np.ndarray]:
    """The camera pulls back from a textured scene, 3.5 % wider a frame: from about frame 8 on,
    frame 0's content is small enough that a still of it a third wider matches better squeezed
    to the frame's width (placed) than stretched to the frame."""
    scene = textured(2 * HEIGHT, 2 * WIDTH)
    frames = []
    for i in range(COUNT):
        half_w, half_h = WIDTH * (1 + 0.035 * i) / 2, HEIGHT * (1 + 0.035 * i) / 2
        view = scene[round(HEIGHT - half_h):round(HEIGHT + half_h), round(WIDTH - half_w):round(WIDTH + half_w)]
        frames.append(cv2.resize(view, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
    return frames


#: Per kind of reference: the shot, and the reference made from one of its frames (frame 0 unless
#: said): its left half (a crop), or the whole frame a third wider (a square-pixel still of
#: anamorphic footage).
SHOTS: dict[str, tuple[Callable[[], list[np.ndarray]], Callable[[np.ndarray], np.ndarray]]] = {
    "crop": (pan_onto_the_sky, lambda first: np.ascontiguousarray(first[:, : WIDTH // 2])),
    "wide": (pull_back, lambda first: cv2.resize(first, (WIDTH * 4 // 3, HEIGHT), interpolation=cv2.INTER_AREA)),
}


def is_placed(reference: Path, lightness: np.ndarray) -> bool:
    """The decision a fresh colorizer makes when the frame of ``lightness`` is the first it meets
    ``reference`` on."""
    colorizer = DefaultColorizer()
    gray = np.clip(lightness * 2.55 + 0.5, 0, 255).astype(np.uint8)
    aligned = colorizer._aligned_reference(load_reference(reference), gray,
                                           colorizer._dis[colorizer.reference_flow_for(HEIGHT)])
    return aligned.rect is not None


def yuv444(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv444p") for f in container.decode(video=0)]


class Shot(NamedTuple):
    kind: str
    source: Path
    reference: Path
    #: The CLI's arguments but the output; its uninterrupted output is ``whole``.
    args: list[str]
    whole: Path


@pytest.fixture(scope="module", params=sorted(SHOTS))
def shot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Shot:
    """One kind of reference's shot, encoded, and the CLI's uninterrupted run of it."""
    folder = tmp_path_factory.mktemp(request.param)
    make_frames, make_reference = SHOTS[request.param]
    frames = make_frames()
    source = write_clip(folder / "shot.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    reference = folder / "reference.png"
    cv2.imwrite(str(reference), cv2.cvtColor(make_reference(frames[0]), cv2.COLOR_RGB2BGR))
    args = ["colorize", str(source), "--ref", str(reference), "--model", "default", "--codec", "ffv1",
            "--chunk-length", str(CHUNK), "-q"]
    result = CliRunner().invoke(main, [*args, "-o", str(folder / "whole.mkv")])
    assert result.exit_code == 0, result.output
    return Shot(request.param, source, reference, args, folder / "whole.mkv")


def test_a_later_frame_of_the_shot_would_decide_otherwise(shot: Shot) -> None:
    """The clip makes the first frame matter: decided on frame 0 (as decoded for the run), a crop
    is placed and the wider still stretched; decided on frame 8, where the pass of the chunk at 16
    starts, the opposite."""
    info = probe(str(shot.source))
    first, late = (is_placed(shot.reference, read_lightness(info, index)) for index in (0, 2 * CHUNK - WARMUP))
    assert (first, late) == ((True, False) if shot.kind == "crop" else (False, True))


def test_vapoursynth_in_any_order_gives_the_cli_frames(shot: Shot) -> None:
    """A late frame asked for first (its chunk's pass starts at frame 8), then every frame in a
    shuffled order, all at once: the CLI's frames, bit for bit."""
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor  # noqa: PLC0415

    expected = yuv444(shot.whole)
    assert len(expected) == COUNT
    out = vsvidcolor.colorize(vs.core.bs.VideoSource(str(shot.source)), ref=str(shot.reference), model="default",
                              chunk_length=CHUNK)
    assert_late_then_any_order(out, expected)


def assert_late_then_any_order(out: Any, expected: list[np.ndarray], seed: int = 6) -> None:
    """The VapourSynth clip ``out`` gives ``expected`` (yuv444 planes) for frame LATE asked for
    first (its chunk's pass starts at frame 8), then for every frame in a shuffled order, all at once."""
    first = np.stack([np.asarray(out.get_frame(LATE)[p]) for p in range(3)])
    np.testing.assert_array_equal(first, expected[LATE], err_msg=f"frame {LATE}, asked for first")
    order = list(range(COUNT))
    random.Random(seed).shuffle(order)
    futures = {i: out.get_frame_async(i) for i in order}
    for i in order:
        got = np.stack([np.asarray(futures[i].result()[p]) for p in range(3)])
        np.testing.assert_array_equal(got, expected[i], err_msg=f"frame {i}")


def test_one_still_at_two_keyframes_chooses_on_each_and_vapoursynth_agrees(tmp_path: Path) -> None:
    """The same still a third wider pinned at frames 0 and 12 of the pull-back: each keyframe's
    shot chooses on its own first frame (stretched at 0, placed at 12), so VapourSynth asked for
    frame 20 first (the second shot's pass) gives the CLI's frames; before, the first shot's
    choice held for the second in the CLI, and whichever came first in VapourSynth held for both."""
    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor  # noqa: PLC0415

    frames = pull_back()
    source = write_clip(tmp_path / "shot.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(SHOTS["wide"][1](frames[0]), cv2.COLOR_RGB2BGR))
    info = probe(str(source))
    assert [is_placed(still, read_lightness(info, index)) for index in (0, 12)] == [False, True]
    cli = tmp_path / "cli.mkv"
    result = CliRunner().invoke(main, ["colorize", str(source), "--ref", f"0={still}", "--ref", f"12={still}", "--model",
                                       "default", "--codec", "ffv1", "--chunk-length", str(CHUNK), "-q", "-o", str(cli)])
    assert result.exit_code == 0, result.output
    expected = yuv444(cli)
    out = vsvidcolor.colorize(vs.core.bs.VideoSource(str(source)), refs={0: str(still), 12: str(still)}, model="default",
                              chunk_length=CHUNK)
    for index in (LATE, *range(COUNT)):
        got = np.stack([np.asarray(out.get_frame(index)[p]) for p in range(3)])
        np.testing.assert_array_equal(got, expected[index], err_msg=f"frame {index}")


def resumed_after_two_chunks(args: list[str], output: Path) -> list[np.ndarray]:
    """The frames of the CLI's ``args`` run with --resume into ``output``, keeping only its first
    two chunks (as a killed run does), then run again: the new process's first pass starts at
    frame 8, the warm-up of the chunk at 16."""
    original = Journal.record

    def record_first_two(self: Journal, start: int, end: int, file: str, *rest: object) -> None:
        if start < 2 * CHUNK:
            original(self, start, end, file, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Journal, "record", record_first_two)
        result = CliRunner().invoke(main, [*args, "--resume", "-o", str(output)])
        assert result.exit_code == 2 and "run the same command again" in result.output, result.output
    result = CliRunner().invoke(main, [*args, "--resume", "-o", str(output)])
    assert result.exit_code == 0, result.output
    return yuv444(output)


def test_resumed_run_gives_the_uninterrupted_frames(shot: Shot) -> None:
    """A resumable run that keeps only its first two chunks (as a killed run does), run again
    (:func:`resumed_after_two_chunks`), gives the uninterrupted run's frames."""
    expected, got = yuv444(shot.whole), resumed_after_two_chunks(shot.args, shot.source.with_name("resumed.mkv"))
    assert len(got) == len(expected) == COUNT
    differing = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if not np.array_equal(a, b)]
    assert not differing, f"resumed frames {differing} differ"


@pytest.mark.parametrize("kind", sorted(SHOTS))
def test_any_chunk_alone_chooses_as_the_sequential_pass_anchored_and_shrunk(kind: str) -> None:
    """Pinned at frame 0, a reference made from frame 5 (``--anchor auto`` finds its moment at or
    near it: the sequential pass starts there), with the network at 64 lines (the working frame is
    shrunk for it): a chunk recomputed alone from its warm-up, which begins where a first frame
    decides otherwise, gives the sequential pass's frames."""
    frames_of, reference_of = SHOTS[kind]
    frames = frames_of()
    light = [rgb_to_gray_lightness(frame.astype(np.float32) / 255) for frame in frames]
    schedule = ReferenceSchedule([Keyframe(0, Reference.from_array(reference_of(frames[5]), key=f"test:{kind}:5"))],
                                 frame_count=COUNT)

    def frame_colorizer() -> FrameColorizer:
        return FrameColorizer(DefaultColorizer(native_short_side=64), schedule, (WIDTH, HEIGHT), ChunkPlan(5, 3),
                              anchor="auto", frame_at=light.__getitem__, frames_from=lambda a, b: iter(light[a:b]))

    sequential = frame_colorizer()
    moment = sequential.moment(0)
    assert 0 < moment <= 5  # a pan shows the crop's content in frames 3-5 alike
    late_begin, late_chunk, late_end = sequential.chunk_bounds(17, COUNT)
    assert late_begin > moment
    expected = [sequential.predict(i, light[i]).ab for i in range(late_end)]
    alone = frame_colorizer()
    alone.start_pass()
    got = [alone.predict(i, light[i]).ab for i in range(late_begin, late_end)]  # the warm-up's are not the chunk's
    differing = [i for i, ab in enumerate(got, late_begin) if i >= late_chunk and not np.array_equal(ab, expected[i])]
    assert not differing, f"frames {differing} differ"


def test_the_moment_of_a_crop_is_the_frame_it_shows() -> None:
    """``--anchor auto`` looks for the frame a reference shows: for a crop (either half of a frame
    of a shot that pulls back) it is that frame, as for the whole frame a third wider; stretched
    to the frame for the comparison alone, a crop matched no frame better than noise."""
    frames = pull_back()
    light = [rgb_to_gray_lightness(frame.astype(np.float32) / 255) for frame in frames]
    for index in (0, 7, 15):
        shown = frames[index]
        for name, picture in (("left half", shown[:, : WIDTH // 2]), ("right half", shown[:, WIDTH // 2:]),
                              ("a third wider", SHOTS["wide"][1](shown))):
            reference = Reference.from_array(np.ascontiguousarray(picture), key=f"test:{index}:{name}")
            assert find_moment(reference, light) == index, f"{name} of frame {index}"
