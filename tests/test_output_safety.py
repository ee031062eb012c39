"""Writers never touch an input (issue 22, items 1 and 9): outputs that are, hold, sit inside or
overlap the input are refused with exit code 2 before any model loads; ``--overwrite`` of an
image-sequence folder replaces only the frames vidcolor wrote there; frame numbers, odd 4:4:4
sizes and AVI headers come out right. Every case runs the real CLI on real files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import EXIT_BAD_INPUT, main
from vidcolor.errors import InputError
from vidcolor.io.reader import probe
from vidcolor.io.writer import MANIFEST_NAME, CodecSpec, OutputSpec, check_encodable

from helpers import color_frames, decoded_video, leftover_partials, shared_path, write_clip


def colorize(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["colorize", *args, "--model", "classic", "--size", "48", "-q"])
    return result.exit_code, result.output


def tree_hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative name -> SHA-256), to prove nothing changed."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def gray_frames(folder: Path, count: int, *, start: int = 0, ext: str = "tif", name: str = "{:06d}", seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number, rgb in enumerate(color_frames(count, 96, 64, seed=seed)[::-1 if seed else 1], start):
        assert cv2.imwrite(str(folder / f"{name.format(number)}.{ext}"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    return folder


def assert_refused(code: int, text: str, *needles: str) -> None:
    assert code == EXIT_BAD_INPUT, text
    assert "vidcolor: error:" in text and "internal error" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"


def frame_names(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith((".png", ".tif")))


# -- overlap with the input -------------------------------------------------------------------
def test_png_pattern_beside_tiff_scans_is_refused_and_scans_stay_byte_identical(tmp_path, reference_png):
    """The issue's case: ``scans/%06d.tif -o scans/%06d.png --overwrite`` deleted the scans."""
    scans = gray_frames(tmp_path / "scans", 6)
    before = tree_hashes(tmp_path / "scans")
    code, text = colorize(str(scans / "%06d.tif"), "-o", str(scans / "%06d.png"), "--ref", str(reference_png), "--overwrite")
    assert_refused(code, text, "scans", "%06d.tif", "holds the input", "scans-color")
    assert tree_hashes(tmp_path / "scans") == before and len(before) == 6
    # the same folder reached through "..", and through a symlink, is refused as well
    code, text = colorize(str(scans / "%06d.tif"), "-o", str(tmp_path / "x" / ".." / "scans" / "%06d.png"),
                          "--ref", str(reference_png), "--overwrite")
    assert_refused(code, text, "holds the input")
    (tmp_path / "alias").symlink_to(scans, target_is_directory=True)
    code, text = colorize(str(scans / "%06d.tif"), "-o", str(tmp_path / "alias" / "%06d.png"),
                          "--ref", str(reference_png), "--overwrite")
    assert_refused(code, text, "alias", "holds the input")
    assert tree_hashes(tmp_path / "scans") == before
    assert leftover_partials(tmp_path) == [] and leftover_partials(scans) == []


def test_pattern_in_the_current_folder_holding_the_input_is_refused(make_clip, tmp_path, reference_png, monkeypatch):
    make_clip("film.mp4")
    (tmp_path / "notes.txt").write_text("shot list\n")
    before = tree_hashes(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, text = colorize("film.mp4", "-o", "./%06d.png", "--ref", str(reference_png), "--overwrite")
    assert_refused(code, text, "./%06d.png", "film.mp4", "film-color/%06d.png")
    assert tree_hashes(tmp_path) == before


def test_output_folder_holding_the_input_is_refused(make_clip, tmp_path, reference_png):
    work = tmp_path / "work"
    work.mkdir()
    source = write_clip(work / "film.mkv", color_frames(4, 96, 64), codec="ffv1", pix_fmt="yuv444p")
    before = tree_hashes(work)
    code, text = colorize(str(source), "-o", str(tmp_path), "--codec", "png", "--ref", str(reference_png), "--overwrite")
    assert_refused(code, text, str(tmp_path), "holds the input", "film.mkv")
    assert tree_hashes(work) == before


def test_output_inside_an_input_folder_is_refused(tmp_path, reference_png):
    frames = gray_frames(tmp_path / "frames", 4, ext="png")
    before = tree_hashes(frames)
    for output in (frames / "color" / "%06d.png", frames / "colorized.mkv", frames):
        code, text = colorize(str(frames), "-o", str(output), "--ref", str(reference_png), "--overwrite")
        assert_refused(code, text, str(output), "input", "frames-color")
    assert tree_hashes(frames) == before and sorted(os.listdir(frames)) == sorted(before)


def test_output_inside_a_pattern_inputs_folder_is_refused_as_for_the_folder(tmp_path, reference_png):
    """``frames/%06d.png -o frames/out/%06d.png`` ran while ``frames -o frames/out/%06d.png`` was
    refused: a pattern's folder is the input's folder too (README: such outputs are refused)."""
    frames = gray_frames(tmp_path / "frames", 4, ext="png")
    before = tree_hashes(frames)
    for output in (frames / "out" / "%06d.png", frames / "out", frames / "colorized.mkv"):
        code, text = colorize(str(frames / "%06d.png"), "-o", str(output), "--ref", str(reference_png), "--overwrite")
        assert_refused(code, text, str(output), "inside the input folder", str(frames / "%06d.png"), "frames-color")
    assert tree_hashes(frames) == before and sorted(os.listdir(frames)) == sorted(before)
    assert leftover_partials(tmp_path) == []


def test_batch_output_inside_a_frame_folder_is_refused_before_anything_runs(make_clip, tmp_path, reference_png):
    films = tmp_path / "films"
    films.mkdir()
    write_clip(films / "a.mp4", color_frames(4, 96, 64))
    reel = gray_frames(films / "reel", 4, ext="png")
    before = tree_hashes(films)
    result = CliRunner().invoke(main, ["batch", str(films), "-o", str(reel / "color"), "--ref", str(reference_png),
                                       "--model", "classic", "-q"])
    assert_refused(result.exit_code, result.output, "inside the input folder", str(reel))
    assert tree_hashes(films) == before and not (reel / "color").exists()


# -- overwrite of an image-sequence folder --------------------------------------------------
def test_overwrite_replaces_only_the_frames_vidcolor_wrote(tmp_path, reference_png):
    long_take = gray_frames(tmp_path / "long", 6, ext="png")
    out = tmp_path / "out"
    code, text = colorize(str(long_take), "-o", str(out / "%06d.png"), "--ref", str(reference_png))
    assert code == 0, text
    assert frame_names(out) == [f"{i:06d}.png" for i in range(6)]
    assert json.loads((out / MANIFEST_NAME).read_text())["frames"] == frame_names(out)
    (out / "notes.txt").write_text("grade notes\n")
    (out / "edl").mkdir()
    (out / "edl" / "reel.edl").write_text("TITLE: reel\n")
    foreign = {"notes.txt": (out / "notes.txt").read_bytes(), "edl/reel.edl": (out / "edl" / "reel.edl").read_bytes()}
    old_frame = (out / "000000.png").read_bytes()

    short_take = gray_frames(tmp_path / "short", 4, ext="png", seed=1)
    code, text = colorize(str(short_take), "-o", str(out / "%06d.png"), "--ref", str(reference_png))
    assert_refused(code, text, str(out), "--overwrite", "6 frame(s) vidcolor wrote")
    code, text = colorize(str(short_take), "-o", str(out / "%06d.png"), "--ref", str(reference_png), "--overwrite")
    assert code == 0, text
    # the 4 new frames replaced the old ones, the 2 stale ones vidcolor wrote are gone, the rest is kept
    assert frame_names(out) == [f"{i:06d}.png" for i in range(4)]
    assert (out / "000000.png").read_bytes() != old_frame  # another clip, another picture
    assert {name: (out / name).read_bytes() for name in foreign} == foreign
    assert json.loads((out / MANIFEST_NAME).read_text())["frames"] == frame_names(out)
    assert leftover_partials(out) == [] and leftover_partials(tmp_path) == []


def test_folder_with_images_vidcolor_did_not_write_is_refused_even_with_overwrite(tmp_path, reference_png):
    source = gray_frames(tmp_path / "scans", 3, ext="png")
    out = gray_frames(tmp_path / "out", 2, ext="png")  # someone else's frames
    (out / "notes.txt").write_text("keep\n")
    before = tree_hashes(out)
    code, text = colorize(str(source), "-o", str(out / "%06d.png"), "--ref", str(reference_png), "--overwrite")
    assert_refused(code, text, str(out), "did not write", "000000.png")
    assert tree_hashes(out) == before and leftover_partials(out) == []
    # other files alone: refused without --overwrite, kept beside the frames with it
    notes = tmp_path / "notes-only"
    notes.mkdir()
    (notes / "README").write_text("restoration log\n")
    code, text = colorize(str(source), "-o", str(notes), "--codec", "png", "--ref", str(reference_png))
    assert_refused(code, text, str(notes), "did not write", "README", "--overwrite")
    code, text = colorize(str(source), "-o", str(notes), "--codec", "png", "--ref", str(reference_png), "--overwrite")
    assert code == 0, text
    assert (notes / "README").read_text() == "restoration log\n" and len(frame_names(notes)) == 3


def test_interrupted_overwrite_leaves_the_previous_frames_as_they_were(tmp_path, reference_png):
    from vidcolor.colorizers import build_colorizer
    from vidcolor.run.pipeline import FrameResult, colorize_video
    from vidcolor.references import load_reference
    from vidcolor.schedule.keyframes import ReferenceSchedule
    from vidcolor.io.writer import resolve_output

    source = gray_frames(tmp_path / "scans", 6, ext="png")
    out = tmp_path / "out"
    code, text = colorize(str(source), "-o", str(out / "%06d.png"), "--ref", str(reference_png))
    assert code == 0, text
    (out / "notes.txt").write_text("keep\n")
    before = tree_hashes(out)

    def stop_after_three(result: FrameResult) -> None:
        if result.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_video(str(gray_frames(tmp_path / "other", 6, ext="png", seed=1)), resolve_output(str(out / "%06d.png")),
                       ReferenceSchedule.single(load_reference(str(reference_png))), build_colorizer("classic"),
                       short_side=48, overwrite=True, on_frame=stop_after_three)
    assert tree_hashes(out) == before and leftover_partials(out) == [] and leftover_partials(tmp_path) == []


def test_outputs_of_the_wrong_kind_are_refused(make_clip, tmp_path, reference_png):
    source = make_clip()
    (tmp_path / "film.mp4").mkdir()  # a folder where a video file should go
    code, text = colorize(str(source), "-o", str(tmp_path / "film.mp4"), "--ref", str(reference_png), "--overwrite")
    assert_refused(code, text, "film.mp4", "is a folder", "colorized.mp4")
    (tmp_path / "frames").write_text("a file where a frame folder should go\n")
    code, text = colorize(str(source), "-o", str(tmp_path / "frames"), "--codec", "png", "--ref", str(reference_png),
                          "--overwrite")
    assert_refused(code, text, "frames", "is a file", "frames-frames/%06d.png")
    assert (tmp_path / "frames").read_text() == "a file where a frame folder should go\n"


@pytest.mark.parametrize("start", [0, 100])
@pytest.mark.parametrize("form", ["pattern", "folder"])
def test_image_sequence_keeps_the_input_frame_numbers(tmp_path, reference_png, start, form):
    scans = gray_frames(tmp_path / "scans", 4, start=start, name="scan_{:06d}")
    source = scans / "scan_%06d.tif" if form == "pattern" else scans
    out = tmp_path / "out"
    code, text = colorize(str(source), "-o", str(out / "%06d.png"), "--ref", str(reference_png))
    assert code == 0, text
    assert frame_names(out) == [f"{n:06d}.png" for n in range(start, start + 4)]
    # frame 000000 (or 000100) of the output is the colorized scan of the same number
    for number in (start, start + 3):
        scan = cv2.imread(str(scans / f"scan_{number:06d}.tif"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        colour = cv2.imread(str(out / f"{number:06d}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        assert np.abs(scan - colour).mean() < 2.0


def test_video_frames_are_named_by_their_index_from_zero(make_clip, tmp_path, reference_png):
    """Frame n of a video is n.png, the number ``--ref n=`` and the reports use (it was n+1)."""
    source = make_clip("film.mkv", count=5, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out"
    code, text = colorize(str(source), "-o", str(out / "%06d.png"), "--ref", str(reference_png))
    assert code == 0, text
    assert frame_names(out) == [f"{n:06d}.png" for n in range(5)]


# -- item 9: odd 4:4:4 sizes, AVI header, refusal before the model loads -----------------------------------------
def test_odd_sized_444_input_into_mkv_is_encoded_444(tmp_path, reference_png):
    frames = color_frames(3, 97, 65)
    source = write_clip(tmp_path / "odd.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    code, text = colorize(str(source), "-o", str(out), "--ref", str(reference_png))
    assert code == 0, text
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv444p")
        assert (stream.width, stream.height) == (97, 65)
    written, original = decoded_video(out), decoded_video(source)
    assert len(written) == len(original) == 3
    for (_, luma), (_, truth) in zip(written, original, strict=True):
        assert np.abs(luma.astype(np.int16) - truth.astype(np.int16)).mean() < 1.5  # crf 18, the same picture


def test_odd_size_into_an_encoder_without_444_is_refused(make_clip, tmp_path):
    info = probe(make_clip("odd.mkv", count=2, width=97, height=65, codec="ffv1", pix_fmt="yuv444p"))
    mpeg2 = CodecSpec("mpeg2", "mpeg2video", ((8, "yuv420p"),))  # MPEG-2 has 4:2:0 and 4:2:2 only
    with pytest.raises(InputError, match=r"97x65.*odd size.*--codec ffv1"):
        check_encodable(OutputSpec(str(tmp_path / "out.mpg"), mpeg2), info)


def test_avi_header_holds_the_frame_count_and_rate(tmp_path, reference_png):
    source = shared_path("clips/misc/carphone_pristine.mp4")  # 120 frames at 29.97 fps, time base 1/30000
    ntsc = Fraction(30000, 1001)
    assert (probe(source).fps, probe(source).frame_count) == (ntsc, 120)
    out = tmp_path / "out.avi"
    code, text = colorize(str(source), "-o", str(out), "--ref", str(reference_png), "--chunk-length", "50")
    assert code == 0, text
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.frames, stream.average_rate) == (120, ntsc)
        assert float(stream.duration * stream.time_base) == pytest.approx(120 / ntsc)
        times = [float(frame.time) for frame in container.decode(video=0)]
    assert times == pytest.approx([i / ntsc for i in range(120)])
    # a resumed run joins its AVI chunks (each read back from frame 0) into the same file
    chunked = tmp_path / "chunked.avi"
    code, text = colorize(str(source), "-o", str(chunked), "--ref", str(reference_png), "--resume", "--chunk-length", "50")
    assert code == 0, text
    with av.open(str(chunked)) as container:
        assert (container.streams.video[0].frames, container.streams.video[0].average_rate) == (120, ntsc)
    joined, whole = decoded_video(chunked), decoded_video(out)
    assert [t for t, _ in joined] == pytest.approx(times)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(joined, whole, strict=True))


#: Runs the CLI with an audit hook that records every file opened, then writes what it saw.
_WATCHED_CLI = """
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from vidcolor.cli.main import main
try:
    main(sys.argv[2:], prog_name="vidcolor")
finally:
    weights = [path for path in opened if path.endswith(".pt")]
    with open(sys.argv[1], "w") as handle:
        json.dump({"weights": weights, "modules": sorted(sys.modules)}, handle)
"""


def watched_cli(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
    record = tmp_path.parent / f"{tmp_path.name}-opened.json"  # outside the folder the test hashes
    run = subprocess.run([sys.executable, "-c", _WATCHED_CLI, str(record), *args], capture_output=True, text=True,
                         timeout=300, check=False)
    return run, json.loads(record.read_text())


@pytest.mark.parametrize("kind", ["file", "sequence"])
def test_existing_output_is_refused_before_the_model_loads(make_clip, tmp_path, reference_png, kind):
    source = make_clip()
    if kind == "file":
        out = tmp_path / "exists.mp4"
        out.write_bytes(b"precious")
    else:
        out = gray_frames(tmp_path / "exists", 2, ext="png")
    before = tree_hashes(tmp_path)
    run, seen = watched_cli(tmp_path, "colorize", str(source), "-o", str(out), "--ref", str(reference_png),
                            "--model", "default", "-q")
    assert run.returncode == EXIT_BAD_INPUT, run.stderr
    assert "exists" in run.stderr and ("--overwrite" in run.stderr or "did not write" in run.stderr), run.stderr
    assert seen["weights"] == [] and "vidcolor.colorizers.default" not in seen["modules"]
    assert tree_hashes(tmp_path) == before
    # the watch sees model loading when there is some: the same run into a new name loads default.pt
    run, seen = watched_cli(tmp_path, "colorize", str(source), "-o", str(tmp_path / "new.mp4"), "--ref",
                            str(reference_png), "--model", "default", "-q")
    assert run.returncode == 0, run.stderr
    assert any(path.endswith("default.pt") for path in seen["weights"])


def test_batch_refuses_an_existing_output_before_the_model_loads(tmp_path, reference_png):
    films = tmp_path / "films"
    films.mkdir()
    write_clip(films / "a.mp4", color_frames(4, 96, 64))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.mp4").write_bytes(b"someone's file")
    run, seen = watched_cli(tmp_path, "batch", str(films), "-o", str(out), "--ref", str(reference_png),
                            "--model", "default", "-q")
    text = run.stdout + run.stderr
    assert run.returncode == 3, text  # the file failed alone, named with the fix
    assert "a.mp4" in text and "already exists" in text and "--overwrite" in text, text
    assert seen["weights"] == [] and "vidcolor.colorizers.default" not in seen["modules"]
    assert (out / "a.mp4").read_bytes() == b"someone's file"
