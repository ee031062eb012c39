"""The luma of every pixel format is read at its own bit depth, or refused by name.

Each format is stored in a real file where a container can hold it (rawvideo in NUT, OpenEXR
frames for float gray) and read back through ``probe`` and ``VideoReader``; ``p010``/``p016``
(which only hardware decoders output, and no file here holds) are real frames made by libswscale.
The reader's luma is compared, as a gray level, with libswscale's own conversion of the decoded
frame to 16-bit gray. Tolerances:

- YUV and gray: 0.6 of one code at the source's bit depth (libswscale rounds to 16 bits);
- RGB: 0.5 % of full scale (libswscale's RGB-to-Y coefficients sum to 1.0038, ours to 1);
- float gray: libswscale's conversions disagree with each other (to 8-bit gray 0.5 stays 0.5, to
  16-bit gray it is taken for limited range), so the reference is its conversion to 8-bit gray
  (within one 8-bit code), and the float samples as decoded (exact at 16 bits).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vidcolor.color import LumaFormat, luma_to_gray_level
from vidcolor.errors import InputError
from vidcolor.io.reader import VideoReader, luma_of, probe

WIDTH, HEIGHT = 34, 18  # odd-ish sizes: row padding and chroma rounding must not leak into luma

#: format -> (bit depth, full range) the reader must report
EXPECTED = {
    "gray": (8, True), "gray10le": (10, True), "gray12le": (12, True), "gray16le": (16, True),
    "yuv420p": (8, False), "yuv422p": (8, False), "yuv444p": (8, False),
    "yuv420p10le": (10, False), "yuv422p10le": (10, False), "yuv444p10le": (10, False),
    "yuv420p12le": (12, False), "yuv422p12le": (12, False), "yuv444p12le": (12, False),
    "nv12": (8, False), "y210le": (10, False), "p010le": (10, False), "p016le": (16, False),
    "yuyv422": (8, False), "uyvy422": (8, False), "y212le": (12, False), "y216le": (16, False),
    "rgb24": (8, True), "rgb48le": (16, True), "gbrp10le": (10, True),
}
IN_MEMORY = {"p010le", "p016le", "y212le"}  # no container here holds them: frames made by libswscale


def source_frames(name: str, count: int = 2) -> list[av.VideoFrame]:
    """Noise over the whole 16-bit range, converted to ``name`` by libswscale."""
    rng = np.random.default_rng(len(name))
    frames = []
    for i in range(count):
        rgb = rng.integers(0, 65536, (HEIGHT, WIDTH, 3), dtype=np.uint16)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format=name)
        frame.pts = i
        frames.append(frame)
    return frames


def rawvideo_file(path: Path, name: str) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, name
        for frame in source_frames(name):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def swscale_gray16(frame: av.VideoFrame, full_range: bool) -> np.ndarray:
    """libswscale's 16-bit gray of ``frame`` (full range), as floats.

    The median of three conversions: libswscale's unpacking of packed YUV (y210 and kin) now and
    then leaves a row unwritten (measured: 40 of 300 y210 -> gray16 conversions differed from a
    repeat), which is why the reader reads packed 4:2:2 luma itself."""
    source_range = None if frame.format.is_rgb else ("JPEG" if full_range else "MPEG")
    grays = [frame.reformat(format="gray16le", src_color_range=source_range, dst_color_range="JPEG").to_ndarray()
             for _ in range(3)]
    return np.median(np.stack(grays).astype(np.float64), axis=0)


def assert_matches_swscale(luma: np.ndarray, luma_format: LumaFormat, reference: np.ndarray, is_rgb: bool) -> None:
    ours = luma_to_gray_level(luma, luma_format).astype(np.float64) * 65535.0
    if is_rgb:
        tolerance = 0.005 * 65535.0
    else:
        codes = luma_format.max_code if luma_format.full_range else 219 << (luma_format.bit_depth - 8)
        tolerance = max(1.0, 0.6 * 65535.0 / codes)
    assert np.abs(ours - reference).max() <= tolerance, (np.abs(ours - reference).max(), tolerance)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_luma_matches_ffmpeg_conversion(tmp_path, name):
    depth, full = EXPECTED[name]
    is_rgb = av.VideoFormat(name).is_rgb
    if name in IN_MEMORY:
        frames = source_frames(name)
        read = [luma_of(frame) for frame in frames]
        references = [swscale_gray16(frame, full) for frame in frames]
    else:
        source = rawvideo_file(tmp_path / f"{name}.nut", name)
        info = probe(source)
        with av.open(str(source)) as container:  # converted while the decoder's buffers live
            frames = list(container.decode(video=0))
            assert [frame.format.name for frame in frames] == [name, name]  # the file really holds this format
            references = [swscale_gray16(frame, full) for frame in frames]
        with VideoReader(info) as reader:
            read = [(frame.luma, info.luma_format) for frame in reader]
    assert len(read) == len(references) == 2
    for (luma, luma_format), reference in zip(read, references, strict=True):
        assert (luma_format.bit_depth, luma_format.full_range) == (depth, full)
        assert luma.shape == (HEIGHT, WIDTH)
        assert luma.dtype == (np.uint8 if depth == 8 else np.uint16)
        assert int(luma.max()) <= luma_format.max_code
        assert int(luma.max()) > luma_format.max_code // 2  # the noise spans the range: no lost high bits
        assert_matches_swscale(luma, luma_format, reference, is_rgb)


def test_float_gray_exr_sequence(tmp_path):
    folder = tmp_path / "exr"
    folder.mkdir()
    rng = np.random.default_rng(7)
    samples = []
    for i in range(2):
        values = rng.uniform(-0.1, 1.1, (HEIGHT, WIDTH)).astype(np.float32)  # out-of-range values clip
        frame = av.VideoFrame(WIDTH, HEIGHT, "grayf32le")
        frame.planes[0].update(np.ascontiguousarray(np.pad(values, ((0, 0), (0, frame.planes[0].line_size // 4 - WIDTH)))).tobytes())
        with av.open(str(folder / f"{i:04d}.exr"), "w") as container:
            stream = container.add_stream("exr")
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "grayf32le"
            for packet in [*stream.encode(frame), *stream.encode()]:
                container.mux(packet)
        samples.append(values)
    info = probe(folder)
    assert (info.luma_format.bit_depth, info.luma_format.full_range) == (16, True)
    with VideoReader(info) as reader:
        frames = list(reader)
    assert len(frames) == 2
    for i, (read, values) in enumerate(zip(frames, samples, strict=True)):
        with av.open(str(folder / f"{i:04d}.exr")) as container:
            decoded = next(container.decode(video=0))
        assert decoded.format.name == "grayf32le"
        np.testing.assert_array_equal(read.luma, np.rint(np.clip(values, 0, 1) * 65535).astype(np.uint16))
        swscale_8bit = decoded.reformat(format="gray").to_ndarray().astype(np.float64)
        assert np.abs(read.luma / 257.0 - swscale_8bit).max() <= 1.0


@pytest.mark.parametrize("name", ["gray32le", "rgbaf32le"])
def test_unreadable_format_is_refused_by_name(name):
    frame = av.VideoFrame(WIDTH, HEIGHT, name)
    with pytest.raises(InputError, match=rf"'clip\.mkv': pixel format '{name}' cannot be read .*ffmpeg -i INPUT -pix_fmt"):
        luma_of(frame, "clip.mkv")
