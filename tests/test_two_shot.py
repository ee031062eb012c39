"""bench/two_shot.py tells a colorizer's start/end gap from the content's (issue 24, two-shot Done-when).

``--shown`` splits each window's error into the pixels the keyframe shows and those it does not,
by tracking shot 2's true frames to the moment; ``--anchors`` measures ``--anchor auto`` and
``pinned`` on one film. Checked on a pan whose shown part is known exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
from two_shot import shown_masks  # noqa: E402

WIDTH, HEIGHT, STEP = 128, 72, 3  # shot 2 pans STEP px a frame to the right across a wider picture


def pan(count: int, seed: int = 5) -> list[np.ndarray]:
    """Frames of a picture seen through a window that moves STEP px a frame: broad colour areas (which
    survive 4:2:0 and the working size) shaded by a fine gray texture (which optical flow follows)."""
    rng = np.random.default_rng(seed)
    shape = (HEIGHT, WIDTH + STEP * count)
    colour = cv2.GaussianBlur(rng.uniform(0, 1, size=(*shape, 3)).astype(np.float32), (0, 0), 6.0)
    colour = (colour - colour.mean(axis=(0, 1))) / colour.std(axis=(0, 1)) * 60.0 + 128.0
    texture = cv2.GaussianBlur(rng.uniform(0, 1, size=shape).astype(np.float32), (0, 0), 1.5)
    texture = (texture - texture.mean()) / texture.std()
    canvas = np.clip(colour * (1.0 + 0.15 * texture[..., None]), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(canvas[:, STEP * i:STEP * i + WIDTH]) for i in range(count)]


def expected_shown(frame: int, moment: int) -> np.ndarray:
    """Pixel x of frame k is column STEP*k + x of the picture; the moment shows columns STEP*m ..+WIDTH."""
    column = STEP * frame + np.arange(WIDTH) - STEP * moment
    return np.broadcast_to((column >= 0) & (column < WIDTH), (HEIGHT, WIDTH))


def test_shown_masks_follow_a_pan_to_the_keyframe() -> None:
    frames = pan(20)
    moment = 10
    tracked = [1, 4, 10, 16, 19]
    masks = shown_masks(frames, moment, tracked)
    assert masks[moment].all()  # the keyframe's own frame shows everything
    for index in tracked:
        agree = float((masks[index] == expected_shown(index, moment)).mean())
        assert agree >= 0.95, f"frame {index}: mask agrees with the pan on {agree:.1%} of its pixels"
    # the farther from the moment, the more of the frame the keyframe never shows, on the side the pan left
    assert masks[1].mean() < masks[4].mean() < 1.0 and masks[19].mean() < masks[16].mean() < 1.0
    assert not masks[1][:, :STEP * 9 - 2].any() and masks[1][:, STEP * 9 + 2:].mean() > 0.95


def write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def test_two_shot_measures_both_anchors_and_splits_shown_pixels(tmp_path: Path) -> None:
    first = write_folder(tmp_path / "shot-a", pan(4, seed=1))
    second = write_folder(tmp_path / "shot-b", pan(16, seed=2))
    report_path = tmp_path / "two.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "two_shot.py"), "--pair", f"{first},{second}", "--moment", "8",
         "--start", "1-2", "--end", "13-14", "--models", "classic", "--anchors", "auto,pinned", "--shown",
         "--json", str(report_path)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--shown: PSNR on the pixels" in done.stdout
    report = json.loads(report_path.read_text(encoding="utf-8"))
    (film,) = report["films"]
    rows = film["rows"]
    assert list(rows) == ["gray", "classic@auto", "classic@pinned"]
    assert (rows["classic@auto"]["anchor"], rows["classic@pinned"]["anchor"]) == ("auto", "pinned")
    # auto colours frames 0..7 backward from the moment (frame 8): not the pinned run's frames
    auto, pinned = rows["classic@auto"]["psnr"], rows["classic@pinned"]["psnr"]
    assert auto[4 + 1:4 + 8] != pytest.approx(pinned[4 + 1:4 + 8], abs=1e-6)
    for label, row in rows.items():
        shown = row["shown"]
        # frames 1-2 are 6-7 frames before the moment: 18-21 of 128 columns the keyframe never shows
        assert shown["start"]["unshown_share"] == pytest.approx(STEP * 6.5 / WIDTH, abs=0.04), label
        assert shown["end"]["unshown_share"] == pytest.approx(STEP * 5.5 / WIDTH, abs=0.04), label
        # the pooled PSNR over all pixels lies between those over the two parts
        for window in ("start", "end"):
            parts = sorted([shown[window]["shown"], shown[window]["unshown"]])
            assert parts[0] - 1e-9 <= shown[window]["all"] <= parts[1] + 1e-9, (label, window)
    summary = report["summary"]["classic@auto"]
    assert summary["shown_worst"] == pytest.approx(rows["classic@auto"]["shown"]["start - end"]["shown"])
    # a colorizer copies the keyframe's colours onto what it shows: better there than where it guesses
    assert rows["classic@auto"]["shown"]["start"]["shown"] > rows["classic@auto"]["shown"]["start"]["unshown"] + 3.0
