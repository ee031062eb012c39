"""Every bad input gets a one-line message naming the file and the fix, a non-zero exit, and
nothing under the output name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, main

from helpers import color_frames, decoded_video, leftover_partials, write_clip


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["colorize", *args, "--model", "classic", "-q"])
    return result.exit_code, result.output


def assert_refused(code: int, text: str, output: Path, *needles: str) -> None:
    assert code == EXIT_BAD_INPUT, text
    message = [line for line in text.splitlines() if line.startswith(("vidcolor: error", "Error:"))]
    assert message, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    assert not output.exists()
    assert leftover_partials(output.parent) == []


def test_missing_input(tmp_path, reference_png):
    out = tmp_path / "out.mp4"
    code, text = invoke(str(tmp_path / "nope.mp4"), "-o", str(out), "--ref", str(reference_png))
    assert_refused(code, text, out, "nope.mp4", "does not exist")


def test_text_file_named_mp4(tmp_path, reference_png):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    out = tmp_path / "out.mp4"
    code, text = invoke(str(fake), "-o", str(out), "--ref", str(reference_png))
    assert_refused(code, text, out, "notes.mp4", "not a video")


def test_truncated_mp4(make_clip, tmp_path, reference_png):
    whole = make_clip("whole.mp4", count=20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # moov atom lost
    out = tmp_path / "out.mp4"
    code, text = invoke(str(cut), "-o", str(out), "--ref", str(reference_png))
    assert_refused(code, text, out, "cut.mp4", "truncated")


def test_zero_byte_file(tmp_path, reference_png):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    out = tmp_path / "out.mp4"
    code, text = invoke(str(empty), "-o", str(out), "--ref", str(reference_png))
    assert_refused(code, text, out, "empty.mp4", "zero-byte")


def test_audio_only_file(tmp_path, reference_png):
    audio = tmp_path / "sound.mp4"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        tone = np.zeros((1, 1024), np.float32)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = tmp_path / "out.mp4"
    code, text = invoke(str(audio), "-o", str(out), "--ref", str(reference_png))
    assert_refused(code, text, out, "sound.mp4", "no video stream", "audio")


def test_odd_sized_frame_into_420_codec(tmp_path, reference_png):
    odd = write_clip(tmp_path / "odd.mkv", color_frames(3, 853, 479), codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mp4"
    code, text = invoke(str(odd), "-o", str(out), "--ref", str(reference_png), "--size", "64")
    assert code == 0, text  # h264 cannot subsample an odd size: it encodes 4:4:4, as FFmpeg would
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.codec_context.pix_fmt) == (853, 479, "yuv444p")
    # and ffv1 keeps every pixel of the odd-sized luma
    fixed = tmp_path / "out.mkv"
    code, text = invoke(str(odd), "-o", str(fixed), "--ref", str(reference_png), "--codec", "ffv1", "--size", "64")
    assert code == 0, text
    with av.open(str(fixed)) as container:
        assert next(container.decode(video=0)).width == 853


def test_missing_reference(make_clip, tmp_path):
    source = make_clip()
    out = tmp_path / "out.mp4"
    code, text = invoke(str(source), "-o", str(out), "--ref", str(tmp_path / "ghost.png"))
    assert_refused(code, text, out, "ghost.png", "does not exist")


def test_reference_option_without_an_image(make_clip, tmp_path):
    # `--ref 0=` (the image forgotten after '=') used to be reported as "reference image '.'".
    source = make_clip()
    out = tmp_path / "out.mp4"
    for value in ("0=", "12= ", ""):
        code, text = invoke(str(source), "-o", str(out), "--ref", value)
        assert_refused(code, text, out, f"'{value}'", "no image", "FRAME=IMAGE")
        assert "'.'" not in text


def test_image_given_as_the_preset(make_clip, tmp_path, reference_png):
    # `--preset keyframe.png` (the painted image instead of its .toml) was an internal UnicodeDecodeError, exit 1.
    source = make_clip()
    out = tmp_path / "out.mp4"
    code, text = invoke(str(source), "-o", str(out), "--preset", str(reference_png))
    assert_refused(code, text, out, "reference.png", "not a TOML text file", "--ref")
    films, out_dir = tmp_path / "films", tmp_path / "coloured"
    films.mkdir()
    os.link(source, films / "film.mp4")
    result = CliRunner().invoke(main, ["batch", str(films), "-o", str(out_dir), "--preset", str(reference_png), "-q"])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "reference.png" in result.output and "not a TOML text file" in result.output, result.output
    assert not out_dir.exists()  # refused before the output folder is made


def test_unreadable_reference(make_clip, tmp_path):
    source = make_clip()
    bad = tmp_path / "paint.png"
    bad.write_bytes(b"\x89PNG but not really")
    out = tmp_path / "out.mp4"
    code, text = invoke(str(source), "-o", str(out), "--ref", str(bad))
    assert_refused(code, text, out, "paint.png", "cannot be read")


def test_grayscale_reference_warns_but_runs(make_clip, tmp_path):
    source = make_clip()
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(color_frames(1, 96, 64)[0], cv2.COLOR_RGB2GRAY))
    out = tmp_path / "out.mkv"
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(out), "--ref", str(gray), "--codec", "ffv1",
                                       "--model", "classic", "-q"])
    assert result.exit_code == 0, result.output
    assert "gray.png" in result.stderr and "grayscale" in result.stderr and "no colour" in result.stderr
    assert out.exists()


def test_reference_frame_beyond_end(make_clip, tmp_path, reference_png):
    source = make_clip(count=8)
    out = tmp_path / "out.mp4"
    code, text = invoke(str(source), "-o", str(out), "--ref", f"0={reference_png}", "--ref", f"99={reference_png}")
    assert_refused(code, text, out, "frame 99", "8 frames")


def test_output_equal_to_input(make_clip, reference_png):
    source = make_clip("same.mp4")
    before = source.read_bytes()
    code, text = invoke(str(source), "-o", str(source), "--ref", str(reference_png), "--overwrite")
    assert code == EXIT_BAD_INPUT and "is the input" in text and "same.mp4" in text
    assert source.read_bytes() == before


def test_existing_output_needs_overwrite(make_clip, tmp_path, reference_png):
    source = make_clip()
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    code, text = invoke(str(source), "-o", str(out), "--ref", str(reference_png))
    assert code == EXIT_BAD_INPUT and "exists.mp4" in text and "--overwrite" in text
    assert out.read_bytes() == b"precious"
    code, text = invoke(str(source), "-o", str(out), "--ref", str(reference_png), "--overwrite")
    assert code == 0, text
    assert out.read_bytes() != b"precious"


def test_unwritable_output_folder(make_clip, tmp_path, reference_png):
    source = make_clip()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out.mp4"
    code, text = invoke(str(source), "-o", str(out), "--ref", str(reference_png))
    assert code == EXIT_BAD_INPUT, text
    assert "a-file" in text and ("choose another output" in text or "is a file" in text), text
    code, text = invoke(str(source), "-o", "/proc/vidcolor-out.mp4", "--ref", str(reference_png))
    assert code == EXIT_BAD_INPUT and "/proc" in text and "not writable" in text


def test_unknown_model_and_bad_size(make_clip, tmp_path, reference_png):
    source = make_clip()
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(tmp_path / "o.mp4"), "--ref", str(reference_png),
                                       "--model", "nonsense"])
    assert result.exit_code == 2 and "--model" in result.output and "classic" in result.output
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(tmp_path / "o.mp4"), "--ref", str(reference_png),
                                       "--size", "tiny"])
    assert result.exit_code == 2 and "--size" in result.output


def test_ctrl_c_leaves_no_half_file(tmp_path):
    source = write_clip(tmp_path / "long.mp4", color_frames(400, 320, 240))
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(color_frames(1, 320, 240)[0], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mp4"
    # a shell's background job (`pytest ... &`) starts with SIGINT ignored, which the child would
    # inherit, and Python then never turns Ctrl-C into KeyboardInterrupt: restore the default first
    process = subprocess.Popen([sys.executable, "-m", "vidcolor", "colorize", str(source), "-o", str(out), "--ref",
                                str(reference), "--model", "classic"], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not leftover_partials(tmp_path):
        time.sleep(0.05)
    assert leftover_partials(tmp_path), "the run never started writing"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted" in stderr
    assert not out.exists()
    assert leftover_partials(tmp_path) == []


def test_the_program_leaves_quickly_with_everything_written(tmp_path):
    """`python -m vidcolor` skips the interpreter's teardown (os._exit once the work is done): the
    output, its stats file, the summary line and the exit codes must all be complete by then."""
    source = write_clip(tmp_path / "in.mp4", color_frames(6, 96, 64))
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(color_frames(1, 96, 64)[0], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mkv"
    done = subprocess.run([sys.executable, "-m", "vidcolor", "colorize", str(source), "-o", str(out), "--ref",
                           str(reference), "--model", "classic", "--codec", "ffv1", "--stats"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}: 6 frames")
    assert len(decoded_video(out)) == 6
    assert len((tmp_path / "out.mkv.stats.jsonl").read_text().splitlines()) == 7  # the run, then 6 frames
    missing = subprocess.run([sys.executable, "-m", "vidcolor", "colorize", str(tmp_path / "missing.mp4"), "-o",
                              str(tmp_path / "o.mkv")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == EXIT_BAD_INPUT
    assert "does not exist" in missing.stderr


def test_a_missing_dependency_is_named_with_the_fix_not_an_internal_error(tmp_path, reference_png):
    """An installation that lost a package (here jinja2, which only the HTML report imports) gets
    exit 2 and the package's name with the pip command, never "internal error"."""
    clip = write_clip(tmp_path / "in.mp4", color_frames(6, 64, 48))
    out = tmp_path / "out.mp4"
    script = ("import sys; sys.modules['jinja2'] = None; from vidcolor.cli import run; "  # None: import fails for real
              f"sys.argv = ['vidcolor', 'colorize', {str(clip)!r}, '-o', {str(out)!r}, '--ref', {str(reference_png)!r}, "
              f"'--model', 'classic', '-q', '--report', {str(tmp_path / 'r.html')!r}]; run()")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if k != "VIDCOLOR_DEBUG"})
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "internal error" not in result.stderr
    assert "'jinja2'" in result.stderr and "pip install" in result.stderr, result.stderr


@pytest.mark.parametrize(("codec", "name", "fix"), [
    ("ffv1", "out.mp4", "out.mkv"),     # FFmpeg muxes it, but MP4 players do not read FFV1
    ("ffv1", "out.mov", "out.mkv"),     # these three FFmpeg refuses: an internal error after the model loaded
    ("prores", "out.mp4", "out.mov"),
    ("hevc", "out.avi", "out.mp4"),
])
def test_codec_that_the_output_container_does_not_hold(make_clip, tmp_path, reference_png, codec, name, fix):
    source = make_clip()
    out = tmp_path / name
    code, text = invoke(str(source), "-o", str(out), "--ref", str(reference_png), "--codec", codec)
    container = Path(name).suffix.lstrip(".").upper()
    assert_refused(code, text, out, name, f"--codec {codec}", f"{container} file", fix)
    assert "internal error" not in text


def test_codecs_each_container_holds_are_accepted(tmp_path):
    """FFV1 in AVI is deliberate (.avi's own codec, the classic archive pairing), as are the defaults."""
    from vidcolor.io.writer import resolve_output

    for codec, name in (("ffv1", "a.avi"), ("ffv1", "a.mkv"), ("ffv1", "a.nut"), ("prores", "a.mov"),
                        ("prores", "a.mkv"), ("hevc", "a.mp4"), ("hevc", "a.mov"), ("h264", "a.avi"), ("h264", "a.m4v")):
        assert resolve_output(tmp_path / name, codec=codec).codec.name == codec
    for name in ("a.mp4", "a.m4v", "a.mkv", "a.mov", "a.avi", "a.nut"):
        resolve_output(tmp_path / name)
