"""Reader → colorizer → writer round trips with real PyAV codecs and real files."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.colorizers import get_colorizer
from vidcolor.run.pipeline import colorize_video, working_size
from vidcolor.io.reader import VideoReader, probe, sequence_files
from vidcolor.references import load_reference
from vidcolor.schedule.keyframes import ReferenceSchedule
from vidcolor.io.writer import resolve_output

from helpers import color_frames, decoded_video, leftover_partials, shared_path, write_clip


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def audio_packets(path: Path | str) -> list[tuple[bytes, float]]:
    """Payload and presentation time (ms precision: containers differ in time base) per packet."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(bytes(p), round(float(p.pts * p.time_base), 3)) for p in container.demux(stream) if p.size]


def test_ffv1_keeps_luma_timestamps_and_audio(make_clip, reference_png, tmp_path):
    source = make_clip("in.mp4", count=10, audio=True)
    output = tmp_path / "out.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference_png),
                         "--codec", "ffv1", "--model", "classic", "-q")
    assert code == 0, text
    src, out = decoded_video(source), decoded_video(output)
    assert len(out) == len(src) == 10
    assert [t for t, _ in out] == pytest.approx([t for t, _ in src], abs=1e-9)
    for (_, a), (_, b) in zip(src, out):
        np.testing.assert_array_equal(a, b)
    assert audio_packets(output) == audio_packets(source)
    assert leftover_partials(tmp_path) == []


def test_output_is_colour_close_to_ground_truth(make_clip, reference_png, tmp_path):
    source = make_clip("gray.mp4", count=8, gray=True)
    output = tmp_path / "out.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference_png), "--codec", "ffv1",
                         "--model", "classic", "-q")
    assert code == 0, text
    truth = color_frames(8, 96, 64)
    with av.open(str(output)) as container:
        got = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    gray_error = np.mean([np.abs(cv2.cvtColor(cv2.cvtColor(t, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB).astype(int) - t).mean() for t in truth])
    ours_error = np.mean([np.abs(g.astype(int) - t).mean() for g, t in zip(got, truth)])
    assert ours_error < 0.5 * gray_error


def test_ten_bit_luma_is_kept_bit_exact(tmp_path, reference_png):
    source = write_clip(tmp_path / "ten.mkv", color_frames(5, 96, 64), codec="ffv1", pix_fmt="yuv420p10le")
    output = tmp_path / "out.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference_png), "--codec", "ffv1",
                         "--model", "classic", "-q")
    assert code == 0, text
    src, out = decoded_video(source), decoded_video(output)
    assert out[0][1].dtype == np.uint16 and out[0][1].max() > 255
    for (_, a), (_, b) in zip(src, out, strict=True):
        np.testing.assert_array_equal(a, b)


def test_variable_frame_rate_timestamps_survive(tmp_path, reference_png):
    pts = [0, 40, 80, 200, 240, 400, 440, 600]  # irregular gaps, time base 1/1000
    source = write_clip(tmp_path / "vfr.mkv", color_frames(len(pts), 96, 64), codec="ffv1", pix_fmt="yuv444p",
                        pts=pts, time_base=Fraction(1, 1000))
    output = tmp_path / "out.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference_png), "--codec", "ffv1",
                         "--model", "classic", "-q")
    assert code == 0, text
    assert [t for t, _ in decoded_video(output)] == pytest.approx([p / 1000 for p in pts], abs=1e-6)


def test_h264_output_frame_count_and_times(make_clip, reference_png, tmp_path):
    source = make_clip("in.mp4", count=12)
    output = tmp_path / "out.mp4"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference_png), "--model", "classic",
                         "--crf", "20", "--encoder-preset", "ultrafast", "-q")
    assert code == 0, text
    src, out = decoded_video(source), decoded_video(output)
    assert [t for t, _ in out] == pytest.approx([t for t, _ in src], abs=1e-6)
    assert np.mean([np.abs(a.astype(int) - b).mean() for (_, a), (_, b) in zip(src, out)]) < 2.0


def test_image_sequence_in_and_out(tmp_path, reference_png):
    folder = tmp_path / "scan"
    folder.mkdir()
    for i, rgb in enumerate(color_frames(6, 96, 64)):
        cv2.imwrite(str(folder / f"{i:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out_folder = tmp_path / "out"
    code, text = run_cli("colorize", str(folder / "%06d.png"), "-o", str(out_folder / "%04d.tif"),
                         "--ref", str(reference_png), "--model", "classic", "-q")
    assert code == 0, text
    written = sequence_files(out_folder)
    assert len(written) == 6 and all(p.endswith(".tif") for p in written)
    gray_in = cv2.imread(str(folder / "000003.png"), cv2.IMREAD_GRAYSCALE).astype(int)
    gray_out = cv2.cvtColor(cv2.imread(written[3]), cv2.COLOR_BGR2GRAY).astype(int)
    assert np.abs(gray_in - gray_out).mean() < 3.0


def test_davis_folder_to_png_sequence(tmp_path):
    frames = shared_path("clips/davis/blackswan/JPEGImages")
    reference = frames / "00000.jpg"
    out_folder = tmp_path / "blackswan"
    code, text = run_cli("colorize", str(frames), "-o", str(out_folder), "--ref", str(reference),
                         "--model", "classic", "--size", "96", "-q")
    assert code == 0, text
    assert len(sequence_files(out_folder)) == len(sequence_files(frames)) == 50
    assert cv2.imread(sequence_files(out_folder)[0]).shape == (480, 854, 3)


def test_bigbuckbunny_ffv1_bit_exact_luma_and_audio(tmp_path):
    source = shared_path("clips/misc/bigbuckbunny.mp4")
    reference = tmp_path / "ref.png"
    with av.open(str(source)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    cv2.imwrite(str(reference), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    output = tmp_path / "bbb.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference), "--codec", "ffv1",
                         "--model", "classic", "--size", "144", "-q")
    assert code == 0, text
    src, out = decoded_video(source), decoded_video(output)
    assert len(out) == len(src) == 132
    assert [t for t, _ in out] == [t for t, _ in src]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(src, out))
    packets = audio_packets(source)
    assert len(packets) > 200 and audio_packets(output) == packets


def test_corrupt_packets_are_skipped_and_counted(tmp_path, caplog):
    source = write_clip(tmp_path / "c.mkv", color_frames(30, 96, 64))
    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        payloads = [bytes(p) for p in container.demux(video=0) if p.size]
    for number in (10, 11, 20):  # zero three packets' bitstream, leaving the container intact
        at = data.find(payloads[number])
        assert at > 0
        data[at:at + len(payloads[number])] = bytes(len(payloads[number]))
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="vidcolor.io.reader"):
        info = probe(damaged)
        with VideoReader(info) as reader:
            count = sum(1 for _ in reader)
    assert count == 27
    assert f"{damaged}: skipped 3 corrupt packet(s)" in caplog.text


def test_working_size_keeps_aspect_and_never_crops():
    assert working_size(1920, 1080, 270) == (480, 270)
    assert working_size(640, 480, 240) == (320, 240)
    w, h = working_size(853, 479, 1000)  # never upscaled, even-sized, aspect within rounding
    assert w <= 854 and h <= 480 and w % 2 == 0 and h % 2 == 0 and abs(w / h - 853 / 479) < 0.01
    assert working_size(480, 854, 240)[0] == 240 and abs(working_size(480, 854, 240)[1] - 427) <= 1


def test_library_pipeline_reports_every_frame(make_clip, reference_png, tmp_path):
    source = make_clip("in.mp4", count=5)
    seen = []
    summary = colorize_video(str(source), resolve_output(tmp_path / "o.mkv", codec="ffv1"),
                             ReferenceSchedule.single(load_reference(reference_png)), get_colorizer("classic"),
                             on_frame=seen.append)
    assert [r.index for r in seen] == [0, 1, 2, 3, 4] and summary.frames == 5
    assert all(0.0 <= r.confidence <= 1.0 for r in seen)
    assert seen[0].confidence > 0.5  # the reference is this very frame


def test_rotation_metadata_is_applied(tmp_path, reference_png):
    """A phone-style clip stored landscape with a 90° display matrix comes out upright (portrait)."""
    source = tmp_path / "rotated.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise, as FFmpeg's display matrix
        for _ in range(4):
            image = np.zeros((64, 96, 3), np.uint8)
            image[:, :30] = 255  # a white band on the stored frame's left
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    output = tmp_path / "out.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference_png), "--model", "classic",
                         "--codec", "ffv1", "-q")
    assert code == 0, text
    frames = decoded_video(output)
    assert len(frames) == 4
    luma = frames[0][1]
    assert luma.shape == (96, 64)  # portrait, as displayed
    assert luma[-20:].mean() > 200 and luma[:40].mean() < 40  # left band turned to the bottom
