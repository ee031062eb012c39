"""Positioned reads (``VideoReader(start=N)``) seek, and give exactly what sequential decoding gives."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidcolor.run.pipeline import read_lightness
from vidcolor.io.reader import (Frame, VideoInfo, VideoReader, count_frames, decoded_frame_count, keyframe_numbers,
                             packet_index, probe)

from helpers import color_frames

GOP = 12
#: libx264 with B-frames (pyramid, 3 in a row) and a short closed GOP: keyframes at 0, 12, 24...
X264 = {"g": str(GOP), "bf": "3", "x264-params": f"bframes=3:b-pyramid=normal:keyint={GOP}:min-keyint={GOP}:scenecut=0"}
#: libx265 keeps its default open GOP: CRA keyframes with leading pictures that need the GOP before
X265 = {"g": str(GOP), "x265-params": f"keyint={GOP}:min-keyint={GOP}:bframes=3:scenecut=0:log-level=error"}


def encode(path: Path, count: int, codec: str, options: dict[str, str], *, pts: list[int] | None = None,
           time_base: Fraction = Fraction(1, 25), rotation: int = 0, width: int = 64, height: int = 48) -> Path:
    """A real clip from a real encoder, with chosen GOP options (helpers.write_clip fixes them)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(color_frames(count, width, height)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts is not None else i), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read(info: VideoInfo, start: int) -> tuple[list[Frame], int]:
    """The frames of a read from ``start`` to the end, and how many frames it decoded."""
    before = decoded_frame_count()
    with VideoReader(info, start=start) as reader:
        frames = list(reader)
    return frames, decoded_frame_count() - before


def assert_same(got: list[Frame], expected: list[Frame]) -> None:
    assert [f.index for f in got] == [f.index for f in expected]
    for a, b in zip(got, expected, strict=True):
        assert (a.pts, a.time) == (b.pts, b.time)
        np.testing.assert_array_equal(a.luma, b.luma)


def starts_for(count: int) -> list[int]:
    """0, a keyframe, just before and after it, one mid-GOP, the last frame, and past the end."""
    return [0, GOP - 1, GOP, GOP + 1, 2 * GOP + 5, count - 1, count, count + 7]


CLIPS = {
    "h264-bframes.mp4": ("libx264", X264, None),
    "h264-bframes.mkv": ("libx264", X264, None),
    "hevc-open-gop.mkv": ("libx265", X265, None),
    "hevc-open-gop.mp4": ("libx265", X265, None),
    # irregular timestamps (time base 1/1000): frame numbers and pts must not be confused
    "vfr-h264.mkv": ("libx264", X264, [int(t) for t in np.cumsum(np.random.default_rng(3).integers(15, 90, 60))]),
}


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_positioned_reads_equal_sequential_decoding(tmp_path, name):
    codec, options, pts = CLIPS[name]
    source = encode(tmp_path / name, 60, codec, options, pts=pts,
                    time_base=Fraction(1, 1000) if pts is not None else Fraction(1, 25))
    info = probe(source)
    sequential, _ = read(info, 0)
    assert len(sequential) == 60
    assert packet_index(info).problem is None and packet_index(info).frame_count == count_frames(info) == 60
    for start in starts_for(60):
        got, cost = read(info, start)
        assert_same(got, sequential[start:])
        if GOP <= start < 60:  # seeked: decoded from the keyframe before (HEVC's CRA may need one more GOP)
            assert cost <= 60 - start + 2 * GOP, (start, cost)


def test_near_end_read_decodes_only_the_last_gop(tmp_path):
    source = encode(tmp_path / "long.mp4", 240, "libx264", X264)
    info = probe(source)
    sequential, full_cost = read(info, 0)
    assert full_cost == 240
    got, cost = read(info, 237)
    assert_same(got, sequential[237:])
    assert cost <= GOP, f"a read of the last 3 frames decoded {cost} frames"
    before = decoded_frame_count()
    lightness = read_lightness(info, 230)  # what no-reference keyframes and chunk starts use
    assert decoded_frame_count() - before <= 2 * GOP
    assert lightness.shape == (48, 64)


def test_rotated_clip_seeks_upright(tmp_path):
    source = encode(tmp_path / "rotated.mp4", 40, "libx264", X264, rotation=90)
    info = probe(source)
    sequential, _ = read(info, 0)
    assert sequential[0].luma.shape == (64, 48)
    for start in (13, 30):
        assert_same(read(info, start)[0], sequential[start:])


def test_damaged_packet_between_keyframe_and_target_reads_as_sequential(tmp_path, caplog):
    """A packet that cannot be decoded shifts the frame numbers of sequential decoding: a
    positioned read that meets it decodes from the start rather than number frames differently."""
    source = encode(tmp_path / "clip.mkv", 48, "libx264", X264)
    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        payloads = [bytes(p) for p in container.demux(video=0) if p.size]
    damaged_payload = payloads[GOP + 4]  # inside the second GOP, in decode order
    at = data.find(damaged_payload)
    data[at:at + len(damaged_payload)] = bytes(len(damaged_payload))
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    info = probe(damaged)
    with caplog.at_level(logging.INFO, logger="vidcolor.io.reader"):
        sequential, _ = read(info, 0)
        assert len(sequential) < 48
        got, _ = read(info, GOP + 8)
    assert_same(got, sequential[GOP + 8:])
    assert "could not be decoded" in caplog.text
    assert_same(read(info, 2 * GOP + 1)[0], sequential[2 * GOP + 1:])  # later reads no longer trust the index


def test_stream_without_timestamps_falls_back_to_sequential(tmp_path):
    source = encode(tmp_path / "raw.h264", 30, "libx264", X264)  # an elementary stream: packets carry no pts
    info = probe(source)
    assert packet_index(info).problem is not None
    sequential, _ = read(info, 0)
    for start in (0, GOP + 1, 29, 30):
        assert_same(read(info, start)[0], sequential[start:])


def test_index_follows_the_file_identity(tmp_path):
    source = encode(tmp_path / "clip.mkv", 30, "libx264", X264)
    assert packet_index(probe(source)).frame_count == 30
    encode(tmp_path / "clip.mkv", 36, "libx264", X264)  # rewritten in place: new size and mtime
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    info = probe(source)
    assert packet_index(info).frame_count == 36
    assert [f.index for f in read(info, 33)[0]] == [33, 34, 35]


@pytest.mark.parametrize("kind", ["folder", "pattern"])
def test_frame_sequences_jump_to_the_file(tmp_path, kind):
    folder = tmp_path / "scan"
    folder.mkdir()
    for i, rgb in enumerate(color_frames(20, 64, 48)):
        cv2.imwrite(str(folder / f"{i + 100:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    info = probe(folder if kind == "folder" else folder / "%06d.png")
    sequential, _ = read(info, 0)
    assert len(sequential) == 20
    for start in (0, 1, 7, 19, 20, 25):
        got, cost = read(info, start)
        assert_same(got, sequential[start:])
        assert cost == max(20 - start, 0)  # only the files from ``start`` on are decoded


def test_keyframe_numbers_are_where_a_read_decodes_one_frame(tmp_path):
    info = probe(encode(tmp_path / "clip.mp4", 40, "libx264", X264))
    assert keyframe_numbers(info) == (0, GOP, 2 * GOP, 3 * GOP)
    sequential, _ = read(info, 0)
    got, cost = read(info, 2 * GOP)
    assert_same(got[:1], sequential[2 * GOP:2 * GOP + 1])
    assert cost == 40 - 2 * GOP  # from the keyframe on: nothing decoded before it
    raw = probe(encode(tmp_path / "raw.h264", 20, "libx264", X264))
    assert keyframe_numbers(raw) == ()  # no timestamps: no index to trust
