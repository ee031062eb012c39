"""The report computed from files: structure, alignment, ground-truth metrics, writers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from helpers import shared_path
from vidcolor.report import measure as report
from vidcolor.errors import InputError

N_FRAMES = 6


def colour_clip(n: int = N_FRAMES, height: int = 64, width: int = 96) -> list[np.ndarray]:
    """A smooth colour texture panning right by 2 px a frame (RGB uint8)."""
    rng = np.random.default_rng(4)
    big = cv2.GaussianBlur(rng.random((height, width + 2 * n, 3)).astype(np.float32), (0, 0), 3.0)
    big = (big - big.min()) / (big.max() - big.min())
    return [np.rint(255 * big[:, 2 * t : 2 * t + width]).astype(np.uint8) for t in range(n)]


def write_sequence(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        image = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"{index:04d}.png"), image)
    return folder


@pytest.fixture()
def clip(tmp_path: Path) -> dict[str, Path]:
    truth = colour_clip()
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in truth]
    # Flicker: every other frame's colour pushed toward red, luma roughly kept.
    flicker = []
    for t, f in enumerate(truth):
        g = f.astype(np.int16)
        if t % 2:
            g = g + np.array([30, -15, -15], np.int16)
        flicker.append(np.clip(g, 0, 255).astype(np.uint8))
    return {
        "truth": write_sequence(tmp_path / "truth", truth),
        "source": write_sequence(tmp_path / "source", gray),
        "flicker": write_sequence(tmp_path / "flicker", flicker),
        "gray_rgb": write_sequence(tmp_path / "gray_rgb", [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in gray]),
    }


def test_report_with_ground_truth(clip: dict[str, Path]) -> None:
    result = report.build_report(clip["truth"], clip["source"], clip["truth"])
    summary, frames = result["summary"], result["frames"]
    assert summary["frames"] == N_FRAMES == len(frames)
    assert summary["warp_ratio"] == pytest.approx(1.0)  # the truth is exactly as stable as itself
    assert summary["psnr"] == math.inf and summary["ssim"] == pytest.approx(1.0)
    assert summary["warp_error"] == pytest.approx(summary["ground_truth_warp_error"])
    assert [f["frame"] for f in frames] == list(range(N_FRAMES))
    # Image sequences run at 24 fps: frame 1 is at 1/24 s.
    assert frames[0]["timecode"] == "00:00:00.000" and frames[1]["timecode"] == "00:00:00.042"
    assert frames[0]["warp_error"] is None and frames[0]["occluded"] is None
    assert all(0.0 <= f["occluded"] < 0.2 for f in frames[1:])  # 2 px pan: a thin border
    assert all(f["confidence"] is None for f in frames)


def test_flicker_raises_warp_ratio_and_lowers_psnr(clip: dict[str, Path]) -> None:
    good = report.build_report(clip["truth"], clip["source"], clip["truth"])
    bad = report.build_report(clip["flicker"], clip["source"], clip["truth"])
    assert bad["summary"]["warp_ratio"] > 3.0
    assert bad["summary"]["cdc"] > 3 * good["summary"]["cdc"]
    # Frame-level alignment: only the pushed (odd) frames lose PSNR.
    psnrs = [f["psnr"] for f in bad["frames"]]
    assert all(math.isinf(p) for p in psnrs[0::2])
    assert all(p < 30 for p in psnrs[1::2])
    gray = report.build_report(clip["gray_rgb"], clip["source"])
    assert "psnr" not in gray["summary"] and "warp_ratio" not in gray["summary"]
    assert gray["summary"]["colorfulness"] == pytest.approx(0.0, abs=1e-6)
    assert "psnr" not in gray["frames"][0]


def test_writers_and_run_stats(clip: dict[str, Path], tmp_path: Path) -> None:
    report.write_run_stats(report.run_stats_path(clip["flicker"]),
                           [{"frame": i, "confidence": 0.5 + 0.05 * i, "flagged": float(i == 3)} for i in range(N_FRAMES)])
    result = report.build_report(clip["flicker"], clip["source"], clip["truth"])
    assert [f["confidence"] for f in result["frames"]] == pytest.approx([0.5 + 0.05 * i for i in range(N_FRAMES)])
    assert [f["flagged"] for f in result["frames"]] == [False, False, False, True, False, False]
    assert result["summary"]["flagged_frames"] == 1

    json_path, csv_path = tmp_path / "r.json", tmp_path / "r.csv"
    report.write_json(result, json_path)
    loaded = json.loads(json_path.read_text())  # strict JSON: inf PSNR became null
    assert loaded["frames"][0]["psnr"] is None and loaded["frames"][1]["psnr"] > 0
    assert set(loaded["summary"]) >= {"psnr", "ssim", "warp_error", "warp_ratio", "cdc", "colorfulness", "frames"}
    report.write_csv(result, csv_path)
    with open(csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["frame", "timecode", "warp_error", "occluded", "confidence", "flagged", "psnr"]
    assert len(rows) == N_FRAMES + 1
    assert rows[1][2] == "" and float(rows[2][2]) > 0 and rows[4][5] == "1" and rows[2][5] == "0"


def test_without_run_stats_outliers_are_flagged(tmp_path: Path) -> None:
    truth = colour_clip(8)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in truth]
    output = [f.copy() for f in truth]
    output[5] = np.clip(output[5].astype(np.int16) + np.array([40, -20, -20]), 0, 255).astype(np.uint8)
    result = report.build_report(write_sequence(tmp_path / "out", output), write_sequence(tmp_path / "src", gray))
    # The jump into frame 5 and back out in frame 6 are the outliers.
    assert [f["flagged"] for f in result["frames"]] == [False] * 5 + [True, True, False]


def test_mismatched_inputs_are_named(clip: dict[str, Path], tmp_path: Path) -> None:
    short = write_sequence(tmp_path / "short", [np.zeros((64, 96, 3), np.uint8)] * 3)
    with pytest.raises(InputError, match="output .*short.* ended after 3 frames"):
        report.build_report(short, clip["source"])
    small = write_sequence(tmp_path / "small", [np.zeros((32, 48, 3), np.uint8)] * N_FRAMES)
    with pytest.raises(InputError, match="is 48x32 but the source"):
        report.build_report(clip["truth"], clip["source"], small)
    with pytest.raises(InputError, match="run stats"):
        report.build_report(clip["truth"], clip["source"], run_stats=tmp_path / "missing.jsonl")


def test_video_files(clip: dict[str, Path], tmp_path: Path) -> None:
    truth = colour_clip()
    path = tmp_path / "out.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "bgr0"
        for rgb in truth:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = report.build_report(path, path, clip["truth"])  # a colour video as its own source
    assert result["summary"]["frames"] == N_FRAMES
    assert result["summary"]["psnr"] == math.inf  # lossless RGB round trip
    assert result["frames"][1]["timecode"] == "00:00:00.040"


def test_real_clip_ground_truth_is_its_own_reference(tmp_path: Path) -> None:
    source = shared_path("clips/davis/car-shadow/JPEGImages")
    folder = tmp_path / "car-shadow"
    folder.mkdir()
    for path in sorted(source.glob("*.jpg"))[:6]:
        (folder / path.name).symlink_to(path)
    result = report.build_report(folder, folder, folder)
    assert result["summary"]["frames"] == 6
    assert result["summary"]["warp_ratio"] == pytest.approx(1.0)
    assert 0.0 < result["summary"]["cdc"] < 0.01
    assert 10.0 < result["summary"]["colorfulness"] < 60.0
