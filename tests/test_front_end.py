"""The command line wired to the library: presets with two keyframes, stats and reports, models."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.color import rgb_to_lab

from helpers import color_frames, write_clip


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def solid(path: Path, rgb: tuple[int, int, int]) -> Path:
    image = np.zeros((64, 96, 3), np.uint8)
    image[:] = rgb
    # a little texture so the reference has more than one lightness
    image = np.clip(image.astype(np.int16) + np.random.default_rng(1).integers(-12, 12, image.shape), 0, 255)
    cv2.imwrite(str(path), cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2BGR))
    return path


def mean_ab(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.array([rgb_to_lab(f.astype(np.float32) / 255.0)[..., 1:].reshape(-1, 2).mean(0) for f in frames])


def test_two_keyframe_shot_blends_from_start_to_end_colour(tmp_path):
    source = write_clip(tmp_path / "gray.mp4", color_frames(12, 96, 64), gray=True)
    solid(tmp_path / "red.png", (190, 50, 40))
    solid(tmp_path / "blue.png", (40, 60, 190))
    preset = tmp_path / "shot.toml"
    preset.write_text('[[shot]]\nstart = 0\nreference = "red.png"\nend_reference = "blue.png"\n')
    output = tmp_path / "out.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--preset", str(preset), "--model", "classic",
                         "--no-temporal", "--codec", "ffv1", "-q")
    assert code == 0, text
    ab = mean_ab(output)
    assert len(ab) == 12
    assert ab[0, 0] > 15 and ab[0, 1] > 10  # red: a and b positive
    assert ab[-1, 1] < -15  # blue: b negative
    # the blend moves steadily from one reference to the other
    assert np.all(np.diff(ab[:, 1]) < 2.0)
    assert ab[0, 1] - ab[-1, 1] > 40

    # one reference alone colours every frame red: the end reference is what turned the tail blue
    single = tmp_path / "single.toml"
    single.write_text('[[shot]]\nstart = 0\nreference = "red.png"\n')
    code, text = run_cli("colorize", str(source), "-o", str(tmp_path / "red.mkv"), "--preset", str(single),
                         "--model", "classic", "--no-temporal", "--codec", "ffv1", "-q")
    assert code == 0, text
    assert mean_ab(tmp_path / "red.mkv")[-1, 1] > 10


def test_preset_and_ref_together_are_refused(make_clip, reference_png, tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text(f'[[shot]]\nstart = 0\nreference = "{reference_png.name}"\n')
    code, text = run_cli("colorize", str(make_clip()), "-o", str(tmp_path / "o.mkv"), "--preset", str(preset),
                         "--ref", str(reference_png))
    assert code == 2 and "either --preset or --ref" in text


def test_stats_feed_the_report(make_clip, reference_png, tmp_path):
    source = make_clip("in.mp4", count=10)
    output = tmp_path / "out.mkv"
    code, text = run_cli("colorize", str(source), "-o", str(output), "--ref", str(reference_png), "--model", "classic",
                         "--codec", "ffv1", "--stats", "-q")
    assert code == 0, text
    lines = [json.loads(line) for line in (tmp_path / "out.mkv.stats.jsonl").read_text().splitlines()]
    assert lines[0]["run"]["model"] == "classic"  # the run's metadata comes first
    stats = lines[1:]
    assert [row["frame"] for row in stats] == list(range(10))
    assert all("warp_error" in row and "flagged" in row for row in stats)  # the temporal check ran
    code, text = run_cli("report", str(output), "--source", str(source), "--ground-truth", str(source),
                         "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"))
    assert code == 0, text
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["frames"] == 10 and report["summary"]["psnr"] > 20
    assert [row["confidence"] for row in report["frames"]] == pytest.approx([row["confidence"] for row in stats])
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 11
    assert "PSNR" in text and "warp error" in text


def test_temporal_check_changes_frames_and_can_be_switched_off(make_clip, reference_png, tmp_path):
    source = make_clip("in.mp4", count=8)
    outputs = {}
    for flag in ("--temporal", "--no-temporal"):
        outputs[flag] = tmp_path / f"out{flag}.mkv"
        code, text = run_cli("colorize", str(source), "-o", str(outputs[flag]), "--ref", str(reference_png),
                             "--model", "classic", "--codec", "ffv1", flag, "-q")
        assert code == 0, text
    on, off = mean_ab(outputs["--temporal"]), mean_ab(outputs["--no-temporal"])
    np.testing.assert_allclose(on[0], off[0], atol=0.5)  # the first frame has nothing to check against
    assert np.abs(on[1:] - off[1:]).max() > 0.05


def test_models_import_refuses_a_wrong_file(tmp_path):
    bogus = tmp_path / "colornet_iter_76000.pth"
    bogus.write_bytes(b"not a checkpoint")
    code, text = run_cli("models", "import", "deepex", str(bogus))
    assert code == 2
    assert "colornet_iter_76000.pth" in text
    code, text = run_cli("models", "import", "no-such-model", str(bogus))
    assert code == 2 and "no-such-model" in text


def test_models_list_names_every_model():
    code, text = run_cli("models", "list")
    assert code == 0, text
    for name in ("deepex", "raft-small", "raft-large", "default", "classic"):
        assert name in text
