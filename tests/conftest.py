"""Shared fixtures (helpers live in helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from helpers import color_frames, write_clip


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "clip.mp4", count: int = 8, width: int = 96, height: int = 64, **kwargs: object) -> Path:
        return write_clip(tmp_path / name, color_frames(count, width, height), **kwargs)  # type: ignore[arg-type]
    return make


@pytest.fixture
def reference_png(tmp_path: Path) -> Path:
    """The first colour frame of the synthetic clip, as a painted keyframe would be."""
    path = tmp_path / "reference.png"
    cv2.imwrite(str(path), cv2.cvtColor(color_frames(1, 96, 64)[0], cv2.COLOR_RGB2BGR))
    return path


