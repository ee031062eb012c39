"""Chunked recurrence and resume: a resumed run gives exactly the frames of an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.colorizers import get_colorizer
from vidcolor.errors import OutputError
from vidcolor.pipeline import ChunkPlan, FrameColorizer
from vidcolor.references import load_reference
from vidcolor.resume import work_folder
from vidcolor.schedule import Keyframe, ReferenceSchedule

from helpers import color_frames, write_clip


def all_planes(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [np.concatenate([np.asarray(p).ravel() for p in (f.to_ndarray(format="yuv444p"),)]) for f in container.decode(video=0)]


def all_planes_list(path) -> list[bytes]:
    return [plane.tobytes() for plane in all_planes(path)]


def lightness_frames(count: int) -> list[np.ndarray]:
    from vidcolor.color import rgb_to_gray_lightness

    return [rgb_to_gray_lightness(f.astype(np.float32) / 255) for f in color_frames(count, 96, 64)]


def test_any_chunk_recomputed_alone_equals_the_sequential_pass(reference_png):
    schedule = ReferenceSchedule([Keyframe(0, load_reference(reference_png)), Keyframe(17, load_reference(reference_png))],
                                 cuts=[9])
    plan = ChunkPlan(length=6, warmup=3)
    frames = lightness_frames(30)
    sequential = FrameColorizer(get_colorizer("classic"), schedule, (96, 64), plan)
    expected = [sequential.predict(i, f).ab for i, f in enumerate(frames)]
    for index in (4, 6, 7, 12, 17, 23, 29):
        fresh = FrameColorizer(get_colorizer("classic"), schedule, (96, 64), plan)
        begin, start, end = fresh.chunk_bounds(index, len(frames))
        assert begin <= start <= index < end
        for i in range(begin, end):
            result = fresh.predict(i, frames[i])
            if i == index:
                np.testing.assert_array_equal(result.ab, expected[i])
    # and the chunking really restarts the recurrence (a plan without chunks differs after frame 6)
    unchunked = FrameColorizer(get_colorizer("classic"), schedule, (96, 64), ChunkPlan(length=0))
    plain = [unchunked.predict(i, f).ab for i, f in enumerate(frames[:8])]
    assert np.array_equal(plain[5], expected[5]) and not np.array_equal(plain[6], expected[6])


def test_killed_run_resumes_to_identical_frames(tmp_path):
    source = write_clip(tmp_path / "film.mp4", color_frames(160, 160, 96), audio=True)
    reference = tmp_path / "ref.png"
    import cv2

    cv2.imwrite(str(reference), cv2.cvtColor(color_frames(1, 160, 96)[0], cv2.COLOR_RGB2BGR))
    args = ["colorize", str(source), "--ref", str(reference), "--model", "classic", "--codec", "ffv1",
            "--resume", "--chunk-length", "20", "-q"]
    whole = tmp_path / "whole.mkv"
    result = CliRunner().invoke(main, [*args, "-o", str(whole)])
    assert result.exit_code == 0, result.output
    assert not work_folder(str(whole)).exists()

    killed = tmp_path / "killed.mkv"
    process = subprocess.Popen([sys.executable, "-m", "vidcolor", *args, "-o", str(killed)])
    folder = work_folder(str(killed))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(folder.glob("chunk-*.mkv"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(list(folder.glob("chunk-*.mkv")))
    assert 2 <= done < 8 and not killed.exists(), "the kill should land mid-run"
    result = CliRunner().invoke(main, [*args, "-o", str(killed)])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.stderr and f"{done} chunk" in result.stderr
    expected, got = all_planes(whole), all_planes(killed)
    assert len(got) == len(expected) == 160
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))
    with av.open(str(whole)) as a, av.open(str(killed)) as b:
        assert [bytes(p) for p in a.demux(a.streams.audio[0])] == [bytes(p) for p in b.demux(b.streams.audio[0])]
        times_a = [f.time for f in a.decode(video=0)]
        times_b = [f.time for f in b.decode(video=0)]
    assert times_a == times_b
    assert not folder.exists()


def test_resume_refuses_image_sequence_output(make_clip, reference_png, tmp_path):
    result = CliRunner().invoke(main, ["colorize", str(make_clip()), "-o", str(tmp_path / "frames"), "--ref",
                                       str(reference_png), "--model", "classic", "--resume"])
    assert result.exit_code == 2 and "--resume needs a video file output" in result.output


def test_ray_chunks_equal_one_sequential_pass(tmp_path, reference_png):
    """The chunks of one film colorized in parallel on a local Ray cluster, then joined, give the
    frames of a plain sequential run; a gap left by an earlier run is filled, not duplicated."""
    pytest.importorskip("ray", reason="Ray is in the test extras: pip install -e '.[test]'")
    source = write_clip(tmp_path / "in.mp4", color_frames(18, 96, 64), gray=True)
    common = ["--ref", str(reference_png), "--model", "default", "--chunk-length", "5", "--codec", "ffv1", "-q"]
    runner = CliRunner()
    plain = tmp_path / "plain.mkv"
    result = runner.invoke(main, ["colorize", str(source), "-o", str(plain), *common])
    assert result.exit_code == 0, result.output
    spread = tmp_path / "ray.mkv"
    result = runner.invoke(main, ["colorize", str(source), "-o", str(spread), *common, "--executor", "ray", "--num-cpus", "2"])
    assert result.exit_code == 0, result.output
    assert all_planes_list(spread) == all_planes_list(plain)
    assert not work_folder(str(spread)).exists()


def test_resume_fills_gaps_between_finished_chunks(tmp_path, reference_png, monkeypatch):
    """Chunks finished out of order (as parallel workers leave them) resume without duplicates."""
    from vidcolor.pipeline import colorize_video, plan_chunks
    from vidcolor.resume import Journal
    from vidcolor.writer import resolve_output

    source = write_clip(tmp_path / "in.mp4", color_frames(18, 96, 64), gray=True)
    schedule = ReferenceSchedule([Keyframe(0, load_reference(reference_png))])
    plan = ChunkPlan(length=5)
    whole = tmp_path / "whole.mkv"
    colorize_video(str(source), resolve_output(str(whole), codec="ffv1"), schedule, get_colorizer("classic"), plan=plan,
                   resume=True)
    # leave only chunk 1 and 3 of a second run behind, as if workers 0 and 2 had died
    gappy = tmp_path / "gappy.mkv"
    spec = resolve_output(str(gappy), codec="ffv1")
    from vidcolor.pipeline import FrameColorizer as FC

    chunks = plan_chunks(FC(get_colorizer("classic"), schedule, (96, 64), plan), 18)
    assert chunks == [(0, 5), (5, 10), (10, 15), (15, 18)]
    original = Journal.record
    kept = {5, 15}

    def record_some(self, start, end, file, *rest):  # a real run that "loses" the other chunks
        if start in kept:
            original(self, start, end, file, *rest)

    with monkeypatch.context() as patch:  # fault injection: the journal forgets chunks 0, 2
        patch.setattr(Journal, "record", record_some)
        # the gaps are named, with the fix, instead of a KeyError ("internal error")
        with pytest.raises(OutputError, match="do not cover .* from frame 0 .*missing from frame 0.*run the same command again"):
            colorize_video(str(source), spec, schedule, get_colorizer("classic"), plan=plan, resume=True)
    import json

    from vidcolor.resume import JOURNAL

    assert sorted(int(k) for k in json.loads((work_folder(str(gappy)) / JOURNAL).read_text())["chunks"]) == [5, 15]
    colorize_video(str(source), spec, schedule, get_colorizer("classic"), plan=plan, resume=True)
    assert all_planes_list(gappy) == all_planes_list(whole)
