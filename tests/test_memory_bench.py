"""bench/memory.py's reference and size options: another picture as the reference, any 16:9 height.

Issue 24 asks for a peak flat with length also when the default model's semantic branch runs on every
frame, which a same-shot reference does not exercise; these tests check that the bench builds that case.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import REPO, decoded_video
from test_bench_scripts import run_bench

sys.path.insert(0, str(REPO / "bench"))

import memory  # noqa: E402
import quality  # noqa: E402


def test_mirrored_reference_is_quality_benchs_mirrored_first_view(tmp_path: Path) -> None:
    size = memory.frame_size(144)
    assert size == (256, 144) and memory.frame_size(1080) == (1920, 1080) and memory.frame_size(480) == (854, 480)
    for case in memory.REFERENCES:
        memory.make_source(tmp_path / "gray.mp4", 3, 0.0, tmp_path / f"{case}.png", size, case)
    first = cv2.cvtColor(cv2.imread(str(tmp_path / "first.png")), cv2.COLOR_BGR2RGB)
    other = cv2.cvtColor(cv2.imread(str(tmp_path / "mirrored.png")), cv2.COLOR_BGR2RGB)
    assert first.shape == (144, 256, 3) and first.std() > 10  # the coffee photo in colour, not a flat field
    np.testing.assert_array_equal(other, quality.mirrored(first))  # flipped, 5 % off each side: no pixel alignment
    frames = decoded_video(tmp_path / "gray.mp4")
    luma = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY).astype(np.float32) * (219.0 / 255.0) + 16.0
    assert len(frames) == 3 and np.abs(frames[0][1].astype(np.float32) - luma).mean() < 2.0  # the clip's own first view


def test_memory_bench_runs_the_mirrored_case_at_another_height(tmp_path: Path) -> None:
    report = run_bench("memory.py", "--models", "classic", "--lengths", "3,5", "--reference", "mirrored",
                       "--height", "144", cwd=tmp_path)
    assert (report["reference"], report["size"]) == ("mirrored", [256, 144])
    assert [(r["model"], r["frames"]) for r in report["rows"]] == [("classic", 3), ("classic", 5)]
    # the child's ru_maxrss starts at the bench's own peak (vfork/exec): a measurement of vidcolor lies above it
    assert all(r["peak_mb"] > report["bench_rss_mb"] + 50 for r in report["rows"])


def test_memory_bench_refuses_a_height_h264_cannot_encode(capsys: pytest.CaptureFixture[str]) -> None:
    for height in ("145", "32"):
        with pytest.raises(SystemExit) as stopped:
            memory.main(["--height", height])
        assert stopped.value.code == 2 and "--height: give an even number of lines" in capsys.readouterr().err
