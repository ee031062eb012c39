"""Chunked recurrence and resume: a resumed run gives exactly the frames of an uninterrupted one."""

from __future__ import annotations

import importlib.util
import json
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
from vidcolor.run.chunks import ChunkPlan
from vidcolor.run.pipeline import FrameColorizer
from vidcolor.references import load_reference
from vidcolor.run.resume import work_folder
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

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
    """``kill -9`` mid-run, then the same command: the frames, audio and timestamps of one
    uninterrupted run. Each run is a process of its own, started seconds apart, so all three load
    the same vidcolor: in a work tree edited while the tests run, an in-process run (vidcolor
    imported when the session began, minutes earlier) and a fresh process can differ, and did once
    (PASS_RULES 5 in pytest, 6 in the killed run's process: the resumed run refused its chunks)."""
    source = write_clip(tmp_path / "film.mp4", color_frames(160, 160, 96), audio=True)
    reference = tmp_path / "ref.png"
    import cv2

    cv2.imwrite(str(reference), cv2.cvtColor(color_frames(1, 160, 96)[0], cv2.COLOR_RGB2BGR))
    command = [sys.executable, "-m", "vidcolor", "colorize", str(source), "--ref", str(reference), "--model", "classic",
               "--codec", "ffv1", "--resume", "--chunk-length", "20", "-q"]
    whole = tmp_path / "whole.mkv"
    run = subprocess.run([*command, "-o", str(whole)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert not work_folder(str(whole)).exists()

    killed = tmp_path / "killed.mkv"
    folder = work_folder(str(killed))
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen([*command, "-o", str(killed)], stderr=log)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and len(list(folder.glob("chunk-*.mkv"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(list(folder.glob("chunk-*.mkv")))
    assert 2 <= done < 8 and not killed.exists(), (
        f"the kill should land mid-run: {done} of 8 chunks, exit {process.returncode}: "
        f"{(tmp_path / 'killed.log').read_text()[-2000:]}")
    run = subprocess.run([*command, "-o", str(killed)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "resuming" in run.stderr and f"{done} chunk" in run.stderr
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
    from vidcolor.run.chunks import plan_chunks
    from vidcolor.run.pipeline import colorize_video
    from vidcolor.run.resume import Journal
    from vidcolor.io.writer import resolve_output

    source = write_clip(tmp_path / "in.mp4", color_frames(18, 96, 64), gray=True)
    schedule = ReferenceSchedule([Keyframe(0, load_reference(reference_png))])
    plan = ChunkPlan(length=5)
    whole = tmp_path / "whole.mkv"
    colorize_video(str(source), resolve_output(str(whole), codec="ffv1"), schedule, get_colorizer("classic"), plan=plan,
                   resume=True)
    # leave only chunk 1 and 3 of a second run behind, as if workers 0 and 2 had died
    gappy = tmp_path / "gappy.mkv"
    spec = resolve_output(str(gappy), codec="ffv1")
    from vidcolor.run.pipeline import FrameColorizer as FC

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

    from vidcolor.run.resume import JOURNAL

    assert sorted(int(k) for k in json.loads((work_folder(str(gappy)) / JOURNAL).read_text())["chunks"]) == [5, 15]
    colorize_video(str(source), spec, schedule, get_colorizer("classic"), plan=plan, resume=True)
    assert all_planes_list(gappy) == all_planes_list(whole)


# -- issue 22: what a resumed run may reuse --------------------------------------------------
def interrupt_after(count: int):
    """An ``on_frame`` that stops the run like Ctrl-C after ``count`` frames."""
    seen: list[int] = []

    def on_frame(result) -> None:
        seen.append(result.index)
        if len(seen) == count:
            raise KeyboardInterrupt

    return on_frame


def resumable(source, output, reference_png, model="classic", *, length=4, **kwargs):
    from vidcolor.run.pipeline import colorize_video
    from vidcolor.io.writer import resolve_output

    colorizer = model if not isinstance(model, str) else get_colorizer(model)
    schedule = ReferenceSchedule([Keyframe(0, load_reference(reference_png))])
    return colorize_video(str(source), resolve_output(str(output), codec="ffv1"), schedule, colorizer,
                          plan=ChunkPlan(length=length), **{"resume": True, **kwargs})


def chunk_files(output) -> list[str]:
    return sorted(p.name for p in work_folder(str(output)).glob("chunk-*.mkv"))


def test_changed_version_or_weights_never_mix_chunks(tmp_path, reference_png, monkeypatch, caplog):
    """The signature holds vidcolor's version and the SHA-256 of the weights a model loaded: an
    interrupted run is refused after either changed (naming it), or restarted when asked."""
    import torch

    import vidcolor
    from vidcolor.colorizers.fast import fast_weights_path

    source = write_clip(tmp_path / "in.mp4", color_frames(14, 96, 64), gray=True)
    weights = tmp_path / "mine.pt"
    weights.write_bytes(fast_weights_path().read_bytes())
    output = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        resumable(source, output, reference_png, get_colorizer("fast", weights=str(weights)), on_frame=interrupt_after(9))
    done = chunk_files(output)
    assert done == ["chunk-00000000.mkv", "chunk-00000004.mkv"]

    monkeypatch.setattr(vidcolor, "__version__", "99.0")  # an upgrade between the two runs
    with pytest.raises(OutputError, match=r"other settings \(vidcolor \(was [^,]+, now 99\.0\) changed\).*never mixed.*delete"):
        resumable(source, output, reference_png, get_colorizer("fast", weights=str(weights)))
    monkeypatch.undo()
    assert chunk_files(output) == done  # refusing deletes nothing

    payload = torch.load(weights, weights_only=True)  # fine-tuned weights saved under the same name
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name] = payload["state_dict"][name] + 0.05
    torch.save(payload, weights)
    with pytest.raises(OutputError, match=r"\(weights.mine.pt changed\)"):
        resumable(source, output, reference_png, get_colorizer("fast", weights=str(weights)))
    with caplog.at_level("WARNING", logger="vidcolor.run.resume"):
        summary = resumable(source, output, reference_png, get_colorizer("fast", weights=str(weights)),
                            restart_on_change=True)
    assert "weights.mine.pt changed" in caplog.text and summary.frames == 14  # all redone, none reused
    fresh = tmp_path / "fresh.mkv"
    resumable(source, fresh, reference_png, get_colorizer("fast", weights=str(weights)))
    assert all_planes_list(output) == all_planes_list(fresh)


def avi_with_header_count(path, frames, claimed: int | None):
    """A real AVI whose header misstates its frame count. ``claimed=None``: the way vidcolor once
    wrote AVIs (issue 22, 9): a 1/600 s time base with frames 20 ticks apart, so the header counts
    ticks, far more than the frames; else the count fields of the header are set to ``claimed``
    (as a damaged or hand-edited file has them)."""
    import struct
    from fractions import Fraction

    if claimed is None:
        return write_clip(path, frames, codec="mpeg4", rate=600, pts=[20 * i for i in range(len(frames))],
                          time_base=Fraction(1, 600))
    write_clip(path, frames, codec="mpeg4")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, claimed)  # dwTotalFrames
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, claimed)  # the video stream's dwLength
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("claimed", [None, 9], ids=["header-too-high", "header-too-low"])
def test_resume_counts_the_frames_it_decodes(tmp_path, reference_png, claimed):
    """Whatever the header claims, a resumable run, interrupted or not, has every decoded frame:
    no KeyError when it claims too many, no dropped tail when it claims too few."""
    from vidcolor.run.pipeline import colorize_video
    from vidcolor.io.reader import probe
    from vidcolor.io.writer import resolve_output

    source = avi_with_header_count(tmp_path / "in.avi", color_frames(22, 96, 64), claimed)
    announced = probe(str(source)).frame_count
    assert announced == claimed if claimed else announced > 100, announced  # the premise: the header is wrong
    plain = tmp_path / "plain.mkv"
    colorize_video(str(source), resolve_output(str(plain), codec="ffv1"),
                   ReferenceSchedule([Keyframe(0, load_reference(reference_png))]), get_colorizer("classic"),
                   plan=ChunkPlan(length=4))
    expected = all_planes_list(plain)
    assert len(expected) == 22
    whole = tmp_path / "whole.mkv"
    assert resumable(source, whole, reference_png).frames == 22
    assert all_planes_list(whole) == expected
    resumed = tmp_path / "resumed.mkv"
    with pytest.raises(KeyboardInterrupt):  # stopped at frame 15: past the header's 9, before the real end
        resumable(source, resumed, reference_png, on_frame=interrupt_after(16))
    assert chunk_files(resumed)[-1] == "chunk-00000008.mkv"
    assert resumable(source, resumed, reference_png).frames == 22 - 12
    assert all_planes_list(resumed) == expected
    if importlib.util.find_spec("ray") is not None:  # Ray workers, given the chunks by the header's count
        from vidcolor.run.distributed import ray_chunks

        spread = tmp_path / "ray.mkv"
        assert resumable(source, spread, reference_png, distribute=ray_chunks(num_cpus=2)).frames == 22
        assert all_planes_list(spread) == expected


def frame_folder(folder, count: int, first: int = 0):
    import cv2

    folder.mkdir()
    for number, rgb in enumerate(color_frames(count, 96, 64), start=first):
        cv2.imwrite(str(folder / f"{number:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def test_resume_on_image_sequences_and_frames_edited_in_place(tmp_path, reference_png):
    """--resume takes a %06d pattern and a frame folder; a frame edited in place (the folder's own
    mtime put back) is a changed input: refused with exit 2, naming the input and the fix."""
    import cv2

    scans = frame_folder(tmp_path / "scans", 11)
    common = ["--ref", str(reference_png), "--model", "classic", "--no-temporal", "--codec", "ffv1", "--chunk-length", "4",
              "-q"]  # the settings of resumable()
    plain = tmp_path / "plain.mkv"
    assert CliRunner().invoke(main, ["colorize", str(scans), "-o", str(plain), *common]).exit_code == 0
    expected = all_planes_list(plain)
    assert len(expected) == 11
    for source in (scans, scans / "%06d.png"):
        output = tmp_path / f"{'pattern' if '%' in str(source) else 'folder'}.mkv"
        result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(output), *common, "--resume"])
        assert result.exit_code == 0, result.output
        assert all_planes_list(output) == expected
    edited = tmp_path / "edited.mkv"
    with pytest.raises(KeyboardInterrupt):
        resumable(scans / "%06d.png", edited, reference_png, on_frame=interrupt_after(6))
    assert chunk_files(edited) == ["chunk-00000000.mkv"]
    before = os.stat(scans)
    retouched = cv2.imread(str(scans / "000002.png"))
    cv2.imwrite(str(scans / "000002.png"), 255 - retouched)  # a frame replaced in place
    os.utime(scans, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = CliRunner().invoke(main, ["colorize", str(scans / "%06d.png"), "-o", str(edited), *common, "--resume"])
    assert result.exit_code == 2, result.output
    assert "(input.files, input.size (was " in result.output and str(work_folder(str(edited))) in result.output, result.output[-400:]
    assert chunk_files(edited) == ["chunk-00000000.mkv"] and "internal error" not in result.output


def test_ray_chunks_of_an_image_sequence(tmp_path, reference_png):
    """--executor ray on a %06d pattern (it crashed on os.stat of the pattern) equals a plain run."""
    pytest.importorskip("ray", reason="Ray is in the test extras: pip install -e '.[test]'")
    scans = frame_folder(tmp_path / "scans", 13)
    common = ["--ref", str(reference_png), "--model", "classic", "--codec", "ffv1", "--chunk-length", "4", "-q"]
    plain, spread = tmp_path / "plain.mkv", tmp_path / "ray.mkv"
    assert CliRunner().invoke(main, ["colorize", str(scans / "%06d.png"), "-o", str(plain), *common]).exit_code == 0
    result = CliRunner().invoke(main, ["colorize", str(scans / "%06d.png"), "-o", str(spread), *common,
                                       "--executor", "ray", "--num-cpus", "2"])
    assert result.exit_code == 0, result.output
    assert all_planes_list(spread) == all_planes_list(plain) and len(all_planes_list(plain)) == 13
    assert not work_folder(str(spread)).exists()


def test_damaged_journal_or_chunk_loses_only_what_cannot_be_verified(tmp_path, reference_png, caplog):
    """An unreadable journal is rebuilt from the chunks' sidecars (every chunk whose SHA-256 still
    matches is kept); a truncated or altered chunk is encoded again; the result equals an
    uninterrupted run."""
    from vidcolor.run.resume import JOURNAL

    source = write_clip(tmp_path / "in.mp4", color_frames(18, 96, 64), gray=True)
    whole = tmp_path / "whole.mkv"
    resumable(source, whole, reference_png)
    expected = all_planes_list(whole)
    output = tmp_path / "out.mkv"
    folder = work_folder(str(output))

    with pytest.raises(KeyboardInterrupt):
        resumable(source, output, reference_png, on_frame=interrupt_after(14))
    assert chunk_files(output) == [f"chunk-{s:08d}.mkv" for s in (0, 4, 8)]
    (folder / JOURNAL).write_text('{"version": 2, "signature": "3f1c", "chunks": {"0": {"sta')  # torn by a crash
    with caplog.at_level("WARNING", logger="vidcolor.run.resume"):
        with pytest.raises(KeyboardInterrupt):  # resumed at 12, stopped again at 16
            resumable(source, output, reference_png, on_frame=interrupt_after(5))
    assert "is not JSON" in caplog.text and "3 finished chunk(s) verified by SHA-256 and kept" in caplog.text
    assert chunk_files(output) == [f"chunk-{s:08d}.mkv" for s in (0, 4, 8, 12)]

    truncated = folder / "chunk-00000004.mkv"
    truncated.write_bytes(truncated.read_bytes()[:-40])
    altered = folder / "chunk-00000012.mkv"
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    altered.write_bytes(bytes(data))
    (folder / JOURNAL).unlink()  # and the journal is gone
    caplog.clear()
    with caplog.at_level("WARNING", logger="vidcolor.run.resume"):
        summary = resumable(source, output, reference_png)
    assert f"chunk {truncated} does not match its record" in caplog.text and f"chunk {altered}" in caplog.text
    assert summary.frames == 18 - 8  # chunks 0 and 8 kept; 4, 12 and the rest encoded
    assert all_planes_list(output) == expected and not folder.exists()


def test_work_of_an_older_vidcolor_is_refused_not_mixed(tmp_path, reference_png):
    """A work folder left by the previous journal format (no version, signature of the model's name
    only) is another vidcolor's work: refused by name, its chunk kept, exit code 2 from the CLI."""
    import json

    source = write_clip(tmp_path / "in.mp4", color_frames(6, 96, 64), gray=True)
    output = tmp_path / "out.mkv"
    folder = work_folder(str(output))
    folder.mkdir()
    (folder / "chunk-00000000.mkv").write_bytes(b"an old segment")
    (folder / "journal.json").write_text(json.dumps({"signature": "0" * 64, "chunks": {
        "0": {"start": 0, "end": 4, "file": "chunk-00000000.mkv"}}}))
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(output), "--ref", str(reference_png),
                                       "--model", "classic", "--codec", "ffv1", "--resume", "-q"])
    assert result.exit_code == 2, result.output
    assert "(vidcolor (journal version None, this vidcolor writes 2) changed)" in result.output
    assert "delete" in result.output and (folder / "chunk-00000000.mkv").read_bytes() == b"an old segment"


def resume_in_cli(source, output, reference_png, *extra):
    """The CLI resuming what :func:`resumable` started (its model, chunk length and codec)."""
    return CliRunner().invoke(main, ["colorize", str(source), "-o", str(output), "--ref", str(reference_png),
                                     "--model", "classic", "--no-temporal", "--codec", "ffv1", "--chunk-length", "4",
                                     *extra, "--resume", "-q"])


def test_resume_with_another_size_names_it_once_in_user_terms(tmp_path, reference_png):
    """Resuming with another --size is refused once (not wrapped again as an unreadable folder),
    naming the working size and its option with both values, and the fix; no chunk is lost."""
    source = write_clip(tmp_path / "in.mp4", color_frames(10, 96, 64), gray=True)
    output = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        resumable(source, output, reference_png, on_frame=interrupt_after(6))
    done = chunk_files(output)
    assert done == ["chunk-00000000.mkv"]
    result = resume_in_cli(source, output, reference_png, "--size", "48")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "(working size (--size) 96x64 -> 72x48 changed)" in message, message
    assert "cannot use the resume work folder" not in message and "readable" not in message, message
    assert message.count(str(work_folder(str(output)))) == 2, message  # where the chunks are, and what to delete
    assert "run again with the earlier settings" in message and chunk_files(output) == done


def test_chunks_made_under_earlier_colouring_rules_are_refused(tmp_path, reference_png, monkeypatch):
    """A run interrupted before vidcolor changed how a pass colours (same version number, same
    settings) is not resumed with chunks coloured under the new rules: the refusal names them."""
    from vidcolor.run import signature

    source = write_clip(tmp_path / "in.mp4", color_frames(10, 96, 64), gray=True)
    output = tmp_path / "out.mkv"
    with monkeypatch.context() as patch:
        patch.setattr(signature, "PASS_RULES", signature.PASS_RULES - 1)
        with pytest.raises(KeyboardInterrupt):
            resumable(source, output, reference_png, on_frame=interrupt_after(6))
    done = chunk_files(output)
    assert done == ["chunk-00000000.mkv"]
    result = resume_in_cli(source, output, reference_png)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "made with other settings (vidcolor's colouring rules (another vidcolor made the earlier run) changed)" \
        in message, message
    assert chunk_files(output) == done and not output.exists()


def test_ray_chunks_decode_about_one_pass(tmp_path, reference_png):
    """Every Ray chunk seeks to its warm-up instead of decoding the film from frame 0: the frames
    decoded by all workers together stay near one pass (issue 22, "Done when")."""
    pytest.importorskip("ray", reason="Ray is in the test extras: pip install -e '.[test]'")
    from fractions import Fraction

    from vidcolor.run.distributed import ray_chunks

    source = tmp_path / "gop8.mp4"
    with av.open(str(source), "w") as container:  # a keyframe every 8 frames, as broadcast files have
        stream = container.add_stream("libx264", rate=25, options={"crf": "10", "preset": "ultrafast", "g": "8"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for index, rgb in enumerate(color_frames(96, 96, 64)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    local = resumable(source, tmp_path / "local.mkv", reference_png, length=16)
    spread = resumable(source, tmp_path / "ray.mkv", reference_png, length=16, distribute=ray_chunks(num_cpus=2))
    print(f"decoded frames for 96: local resumable {local.decoded_frames}, Ray in 6 chunks {spread.decoded_frames}")
    assert spread.frames == local.frames == 96
    assert local.decoded_frames <= 96 + 2  # one pass (a probe may decode a frame)
    assert spread.decoded_frames <= 96 + 5 * (8 + 8)  # each later chunk: its 8 warm-up frames + up to a GOP before
    assert all_planes_list(tmp_path / "ray.mkv") == all_planes_list(tmp_path / "local.mkv")


def test_resumed_run_counts_and_reports_every_frame_of_the_output(tmp_path, reference_png):
    """After a resume, the CLI's count is the output's (saying how many frames the earlier run
    made) and --stats holds every frame, the earlier run's from its chunks' sidecars, as an
    uninterrupted run gives them."""
    from vidcolor.report.measure import read_run_stats, run_stats_path

    source = write_clip(tmp_path / "in.mp4", color_frames(10, 96, 64), gray=True)
    args = ["colorize", str(source), "--ref", str(reference_png), "--model", "classic", "--no-temporal", "--codec", "ffv1",
            "--chunk-length", "4", "--resume", "--stats"]
    whole, output = tmp_path / "whole.mkv", tmp_path / "out.mkv"
    result = CliRunner().invoke(main, [*args, "-o", str(whole)])
    assert result.exit_code == 0, result.output
    assert f"wrote {whole}: 10 frames in" in result.output, result.output
    with pytest.raises(KeyboardInterrupt):
        resumable(source, output, reference_png, on_frame=interrupt_after(6))
    assert chunk_files(output) == ["chunk-00000000.mkv"]
    page = tmp_path / "report.html"
    result = CliRunner().invoke(main, [*args, "-o", str(output), "--report", str(page)])
    assert result.exit_code == 0, result.output
    assert f"wrote {output}: 10 frames (4 resumed from the earlier run) in" in result.output, result.output
    assert "6 frames in" in page.read_text() and "(and 4 resumed from an earlier run)" in page.read_text()
    assert len(all_planes(output)) == 10
    expected, got = read_run_stats(run_stats_path(whole)), read_run_stats(run_stats_path(output))
    assert sorted(got) == list(range(10))
    assert got == expected  # confidence and every statistic, the resumed frames' included
    first = json.loads(run_stats_path(output).read_text().splitlines()[0])["run"]
    assert first["frames"] == 6 and first["resumed_frames"] == 4
