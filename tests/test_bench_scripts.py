"""The measurement benches of issues 24 and 25 run end to end on tiny real inputs and report what they claim.

Each bench runs as a user runs it (``python bench/X.py ... --json``), on small synthetic clips, so a
broken bench shows up here rather than in a lead's evening run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from helpers import REPO, color_frames, write_clip

BENCH = REPO / "bench"


def run_bench(script: str, *args: str, cwd: Path) -> dict:
    """Run ``bench/<script>`` with ``--json``; its report."""
    report = cwd / f"{Path(script).stem}.json"
    done = subprocess.run([sys.executable, str(BENCH / script), *args, "--json", str(report)], cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(report.read_text(encoding="utf-8"))


def write_frame_folder(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(color_frames(count, 96, 64, seed=seed)):
        cv2.imwrite(str(folder / f"{index:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def test_two_shot_scores_shot_two_windows_and_keyframes_given_either_way(tmp_path: Path) -> None:
    first = write_frame_folder(tmp_path / "shot-a", 4, seed=0)
    second = write_frame_folder(tmp_path / "shot-b", 12, seed=1)
    common = ["--pair", f"{first},{second}", "--moment", "6", "--start", "1-2", "--end", "9-10", "--models", "classic"]
    by_ref = run_bench("two_shot.py", *common, cwd=tmp_path)
    by_preset = run_bench("two_shot.py", *common, "--given", "preset", cwd=tmp_path)

    (film,) = by_ref["films"]
    assert (film["shots"], film["shot2_start"], film["frames"]) == (["shot-a", "shot-b"], 4, 16)
    assert list(film["rows"]) == ["gray", "classic"]
    classic, gray = film["rows"]["classic"], film["rows"]["gray"]
    assert len(classic["psnr"]) == 16
    scores = classic["scores"]
    assert scores["start"] == pytest.approx(sum(classic["psnr"][5:7]) / 2)  # shot 2's frames 1-2
    assert scores["end"] == pytest.approx(sum(classic["psnr"][13:15]) / 2)  # shot 2's frames 9-10
    assert classic["met"] == (scores["start"] - scores["end"] >= -0.5)
    assert scores["shot1"] > gray["scores"]["shot1"] + 3.0  # coloured from its own frame 0, not left gray
    # The same two keyframes as --ref FRAME=IMAGE and as a preset's shots colour the film the same way.
    assert by_preset["films"][0]["rows"]["classic"]["psnr"] == pytest.approx(classic["psnr"], abs=1e-9)
    assert by_ref["summary"]["classic"]["met_on_all"] == classic["met"]


def test_memory_bench_reports_peak_rss_per_length(tmp_path: Path) -> None:
    report = run_bench("memory.py", "--models", "classic", "--lengths", "3,6", cwd=tmp_path)
    rows = report["rows"]
    assert [(r["model"], r["frames"]) for r in rows] == [("classic", 3), ("classic", 6)]
    assert all(r["peak_mb"] > 50 for r in rows)  # a Python process with NumPy and OpenCV, measured, not zero
    assert rows[1]["ratio"] == pytest.approx(rows[1]["peak_mb"] / rows[0]["peak_mb"])
    assert report["flat"]["classic"] == (rows[1]["ratio"] <= 1.10)


def test_throughput_measures_each_preset_against_its_plain_transcode(tmp_path: Path) -> None:
    source = write_clip(tmp_path / "small.mp4", color_frames(6, 128, 72), gray=True)
    report = run_bench("throughput.py", "--source", str(source), "--model", "classic",
                       "--encoder-preset", "medium,veryfast", cwd=tmp_path)
    medium, veryfast = report["rows"]
    assert (medium["encoder_preset"], veryfast["encoder_preset"]) == ("medium", "veryfast")
    for row in (medium, veryfast):
        assert row["frames"] == row["plain_frames"] == 6
        assert row["ratio_command"] == pytest.approx(row["command_seconds"] / row["plain_seconds"])
        assert row["command_seconds"] >= row["run_seconds"] > 0
    assert medium["met_command"] == (medium["ratio_command"] <= 2.0)
    assert veryfast["met_run"] == (veryfast["run_fps"] >= 6.0)


def test_fast_bench_times_the_whole_command_for_both_models(tmp_path: Path) -> None:
    report = run_bench("fast.py", "--sections", "command", "--command-frames", "4", cwd=tmp_path)
    default, fast, plain = report["whole_command"]
    assert (default["model"], fast["model"]) == ("default", "fast")
    assert default["frames"] == fast["frames"] == 4
    assert default["speedup_command"] == pytest.approx(1.0)
    assert fast["speedup_command"] == pytest.approx(default["command_seconds"] / fast["command_seconds"])
    assert plain["speedup_command"] == pytest.approx(default["command_seconds"] / plain["command_seconds"])
    assert "step" not in report
