"""The shipped weights keep their quality: each model, run through the real command line on the
shared clips and photos, stays within a few tenths of a dB of the number measured for exactly this
setting (and close to its model card's benchmark number, quoted beside each threshold).

The protocol is the benchmarks' (``bench/quality.py`` for the exemplar models,
``bench/automatic.py`` / ``bench/cheng2015_photos.py`` for the automatic ones): the gray input is
the BT.601 luma of the true colours, written as 8-bit gray PNGs; exemplar models get the true frame
0 as their reference; the output is the PNG sequence ``vidcolor colorize`` writes; the score is the
mean RGB PSNR against the truth (frames 1..N-1 for the exemplar models, every photo for the
automatic ones). A regression in the weights, the colorizers or the pipeline (reader, working
size, chroma upsampling, writer) shows up here as a lost fraction of a dB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from helpers import shared_path
from vidcolor import weights
from vidcolor.cli import main
from vidcolor.report.metrics import psnr

pytestmark = pytest.mark.shared_data


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def colorize_with_cli(truth: Sequence[np.ndarray], folder: Path, *options: str, reference: bool) -> list[np.ndarray]:
    """Write the gray input of ``truth``, run ``vidcolor colorize`` on it, and read the output back."""
    gray = folder / "gray"
    gray.mkdir(parents=True)
    for index, rgb in enumerate(truth):
        cv2.imwrite(str(gray / f"{index:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))  # BT.601 luma
    out = folder / "out"
    args = ["colorize", str(gray), "-o", str(out / "%06d.png"), "-q", *options]
    if reference:
        cv2.imwrite(str(folder / "reference.png"), cv2.cvtColor(truth[0], cv2.COLOR_RGB2BGR))
        args += ["--ref", str(folder / "reference.png")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    frames = [read_rgb(path) for path in sorted(out.glob("*.png"))]
    assert len(frames) == len(truth)
    return frames


def mean_psnr(outputs: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    return float(np.mean([psnr(o, t) for o, t in zip(outputs, truth, strict=True)]))


def davis_psnr(clip: str, model: str, folder: Path, frames: int) -> float:
    """Exemplar protocol of bench/quality.py: reference = true frame 0, score frames 1..N-1."""
    truth = [read_rgb(p) for p in sorted(shared_path(f"clips/davis/{clip}/JPEGImages").glob("*.jpg"))[:frames]]
    outputs = colorize_with_cli(truth, folder, "--model", model, "--size", "256", "--temporal", "--flow", "dis",
                                reference=True)
    return mean_psnr(outputs[1:], truth[1:])


def photos_psnr(model: str, folder: Path, step: int, *options: str) -> float:
    """Automatic protocol on BSDS500 test (never trained on): every ``step``-th photo, no reference.

    The photos come in two orientations; each runs as its own image sequence."""
    paths = sorted(shared_path("photos/bsds500/test").glob("*.jpg"))[::step]
    photos = [read_rgb(p) for p in paths]
    scores = []
    for shape in sorted({p.shape for p in photos}):
        same = [p for p in photos if p.shape == shape]
        outputs = colorize_with_cli(same, folder / f"{shape[1]}x{shape[0]}", "--model", model, "--no-temporal",
                                    *options, reference=False)
        scores += [psnr(o, t) for o, t in zip(outputs, same, strict=True)]
    return float(np.mean(scores))


@pytest.fixture(autouse=True)
def no_installed_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty model cache: the shipped weights and DIS flow run, never imported official
    weights or RAFT (which ``--model eccv16`` and ``--flow auto`` would otherwise prefer)."""
    monkeypatch.setenv(weights.HOME_ENV, str(tmp_path / "vidcolor-home"))


@pytest.mark.parametrize(("clip", "frames", "card", "measured"),
                         [("horsejump-high", 50, 31.63, 31.62), ("dog", 60, 39.17, 39.16)])
def test_default_keeps_its_held_out_scores(tmp_path: Path, clip: str, frames: int, card: float,
                                          measured: float) -> None:
    """MODEL_CARD.md, shipped version (`bench/quality.py --models classic,default`, size 256, with
    the temporal check), the two held-out clips: default+temporal horsejump-high 31.63 (classic+
    temporal 29.07, gray 21.44), dog 39.17 (38.41, 24.94). The same setting through the CLI, all
    frames, measured ``measured`` (and classic on horsejump-high 29.07, the card's number too).
    Threshold: the card's number less 0.3 dB."""
    score = davis_psnr(clip, "default", tmp_path, frames)
    assert score > card - 0.3, f"{score:.2f} dB; the card says {card}, measured {measured} when written"


def test_fast_keeps_its_held_out_score_on_dog(tmp_path: Path) -> None:
    """fast.md (`bench/fast.py --temporal`, size 256, the bench/quality.py protocol): fast+temporal
    on the held-out dog 33.68 (gray 24.94). The same setting through the CLI, all 60 frames,
    measured 33.64. Threshold: the card's number less 0.3 dB."""
    score = davis_psnr("dog", "fast", tmp_path, frames=60)
    assert score > 33.68 - 0.3, f"{score:.2f} dB"


def test_eccv16_small_keeps_its_score_on_bsds500_test(tmp_path: Path) -> None:
    """eccv16-small.md (`bench/automatic.py`, BSDS500 test, all 200 photos, native 481x321): PSNR
    22.60 (gray 21.82, sepia 22.38). Through the CLI at --size 321 all 200 photos measured 22.59;
    this test's every 5th photo (40) measured 22.48. Threshold: that less 0.3 dB."""
    score = photos_psnr("eccv16", tmp_path, 5, "--size", "321")
    assert score > 22.48 - 0.3, f"{score:.2f} dB"


def test_cheng2015_keeps_its_score_on_bsds500_test(tmp_path: Path) -> None:
    """cheng2015.md (`bench/cheng2015_photos.py`, BSDS500 test, all 200 photos, working short side
    256): PSNR 23.17 in the latest re-run (gray 21.82, sepia 22.41). Through the CLI at its default
    size all 200 photos measured 23.17; this test's every 5th photo (40) measured 22.85.
    Threshold: that less 0.3 dB."""
    score = photos_psnr("cheng2015", tmp_path, 5)
    assert score > 22.85 - 0.3, f"{score:.2f} dB"
