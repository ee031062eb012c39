"""Reference images are read upright: the EXIF orientation of a JPEG is applied, on every path.

The JPEGs here are real: encoded by OpenCV, with an EXIF APP1 segment holding only the
Orientation tag (0x0112) spliced in after the start-of-image marker, as a camera writes it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcolor.schedule.presets import load_preset
from vidcolor.recommend import image_query
from vidcolor.references import load_reference, read_rgb

#: For each EXIF orientation, how the stored pixels are turned to display them (TIFF/EXIF spec:
#: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
#: counter-clockwise).
TO_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
#: The stored pixels that display as ``upright`` under each orientation (the inverse turns).
TO_STORED: dict[int, Callable[[np.ndarray], np.ndarray]] = {**TO_UPRIGHT, 6: TO_UPRIGHT[8], 8: TO_UPRIGHT[6]}


def upright_image() -> np.ndarray:
    """64 x 96 RGB with four differently coloured quadrants and a marker: every turn of it differs."""
    image = np.zeros((64, 96, 3), np.uint8)
    image[:32, :48] = (200, 40, 40)
    image[:32, 48:] = (40, 160, 40)
    image[32:, :48] = (40, 40, 200)
    image[32:, 48:] = (220, 220, 60)
    image[4:20, 4:12] = (250, 250, 250)  # top-left marker, asymmetric along both axes
    return image


def exif_jpeg(path: Path, rgb: np.ndarray, orientation: int) -> Path:
    """Write ``rgb`` as a baseline JPEG whose EXIF says ``orientation``."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd  # big-endian TIFF header, IFD at 8
    data = encoded.tobytes()
    assert data[:2] == b"\xff\xd8"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:])
    return path


def assert_upright(got: np.ndarray, upright: np.ndarray) -> None:
    """``got`` (float in [0, 1] or uint8) is ``upright`` up to JPEG loss, and no other turn of it."""
    got = got.astype(np.float32) * (255.0 if got.dtype != np.uint8 else 1.0)
    assert got.shape == upright.shape
    error = np.abs(got - upright).mean()
    assert error < 3.0, error
    for turn in TO_UPRIGHT.values():
        other = np.ascontiguousarray(turn(upright))
        if other.shape == upright.shape and not np.array_equal(other, upright):
            assert np.abs(got - other).mean() > 10 * error + 20


@pytest.mark.parametrize("orientation", sorted(TO_UPRIGHT))
def test_every_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    upright = upright_image()
    stored = np.ascontiguousarray(TO_STORED[orientation](upright))
    np.testing.assert_array_equal(TO_UPRIGHT[orientation](stored), upright)  # the table is consistent
    path = exif_jpeg(tmp_path / f"ref-{orientation}.jpg", stored, orientation)
    assert_upright(load_reference(path).rgb, upright)  # --ref and the VapourSynth filter
    assert_upright(read_rgb(path), upright)  # refs suggest libraries and reports


def test_preset_references_are_upright(tmp_path: Path) -> None:
    upright = upright_image()
    exif_jpeg(tmp_path / "phone.jpg", np.ascontiguousarray(np.rot90(upright, 1)), 6)  # stored sideways
    preset = tmp_path / "p.toml"
    preset.write_text('[[shot]]\nstart = 0\nreference = "phone.jpg"\n')
    schedule = load_preset(preset).schedule(10, 25)
    assert_upright(schedule.keyframes[0].reference.rgb, upright)


def test_refs_suggest_query_image_is_upright(tmp_path: Path) -> None:
    upright = upright_image()
    path = exif_jpeg(tmp_path / "query.jpg", np.ascontiguousarray(upright[::-1]), 4)
    lightness = image_query(path).lightness[0]
    assert lightness.shape == upright.shape[:2]
    marker, below = lightness[4:20, 4:12].mean(), lightness[44:60, 4:12].mean()
    assert marker > below + 30  # the white marker is at the top left again


def test_depth_gray_and_alpha_are_read_as_before(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgba16 = rng.integers(0, 65536, (20, 30, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), rgba16)
    got = read_rgb(tmp_path / "a.png")
    assert got is not None and got.dtype == np.uint16
    np.testing.assert_array_equal(got, rgba16[..., 2::-1])  # BGRA on disk → RGB, alpha dropped
    gray = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    got = read_rgb(tmp_path / "g.png")
    assert got is not None
    np.testing.assert_array_equal(got, np.dstack([gray] * 3))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert read_rgb(tmp_path / "bad.jpg") is None
