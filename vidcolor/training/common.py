"""What the trainers share: reading the shared data, configs from checkpoints, the run folder's logs.

The ``default`` and ``fast`` trainers (and ``eccv16`` for photos and checkpoints) read the same
photos and clips and keep the same run folder (``train.log``, ``metrics.jsonl``, ``last.pt``,
``best.pt``); each job is written here once so the trainers cannot drift apart.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch

from ..color import shrink_short_side

#: Clips never used for training; validation reports them.
DEFAULT_HOLDOUT = ("davis/dog", "davis/horsejump-high")
#: Photo files the trainers read.
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})

Config = TypeVar("Config")


def config_from_dict(cls: type[Config], data: Mapping[str, object]) -> Config:
    """A training config from a checkpoint's plain dict: unknown keys (older or newer trainers) are
    dropped, and lists (``holdout``, ``exclude_photos``) are tuples again after a JSON/pickle round trip."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})


def read_rgb(path: Path) -> np.ndarray | None:
    """A photo as uint8 RGB, or None when OpenCV cannot read it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def is_colourful(rgb: np.ndarray) -> bool:
    """False for gray or nearly gray photos, which teach nothing about colour."""
    spread = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)
    return float(np.percentile(spread, 90)) > 12


def read_photos(paths: Iterable[Path], crop: int, short_side: int) -> list[np.ndarray]:
    """The colourful photos at least ``crop`` pixels on their short side, shrunk to ``short_side``."""
    photos: list[np.ndarray] = []
    for path in paths:
        rgb = read_rgb(path)
        if rgb is None or min(rgb.shape[:2]) < crop or not is_colourful(rgb):
            continue
        photos.append(shrink_short_side(rgb, short_side))
    return photos


#: Groups of ``clips/<group>/<name>/NNNNN.jpg`` folders added to the shared data for issue 24 (MANIFEST.md,
#: "Training additions"); trainers read them only when asked, so older runs replay unchanged.
ADDED_CLIP_GROUPS = ("aot_youtubevos", "cotracker", "imageio", "mmaction2", "pysot", "sam2", "tiny_ucf101")


def list_clips(data_root: Path, added: bool = False) -> dict[str, list[Path] | Path]:
    """Clip name → its frame files (image folders) or the video file (mp4); with ``added``, also
    the clips of :data:`ADDED_CLIP_GROUPS`."""
    clips: dict[str, list[Path] | Path] = {}
    davis = data_root / "clips" / "davis"
    for seq in sorted(davis.glob("*/JPEGImages")):
        clips[f"davis/{seq.parent.name}"] = sorted(seq.glob("*.jpg"))
    for seq in sorted((data_root / "clips" / "vid4").glob("*")):
        if seq.is_dir():
            clips[f"vid4/{seq.name}"] = sorted(seq.glob("*.jpg"))
    bbb = data_root / "clips" / "misc" / "bigbuckbunny.mp4"
    if bbb.is_file():
        clips["misc/bigbuckbunny"] = bbb
    for group in ADDED_CLIP_GROUPS if added else ():
        for seq in sorted((data_root / "clips" / group).glob("*")):
            frames = sorted(seq.glob("*.jpg")) if seq.is_dir() else []
            if frames:
                clips[f"{group}/{seq.name}"] = frames
    return clips


def read_clip(source: list[Path] | Path, short_side: int | None = None) -> list[np.ndarray]:
    """Frames of a clip as uint8 RGB, optionally shrunk to ``short_side``."""
    frames: list[np.ndarray] = []
    if isinstance(source, Path):
        import av

        with av.open(str(source)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
    else:
        for path in source:
            rgb = read_rgb(path)
            if rgb is None:
                raise OSError(f"cannot read clip frame {str(path)!r}: the file is corrupt or not an image")
            frames.append(rgb)
    if short_side:
        frames = [shrink_short_side(f, short_side) for f in frames]
    return frames


def working_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) scaled so the short side is ``short_side`` (never upscaled), rounded to even pixels."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float images in [0, 1]."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-10))


def finish_validation(scores: dict[str, float], model: torch.nn.Module, was_training: bool) -> dict[str, float]:
    """Add the mean PSNR over the clips (what "best" means) and put the model back in its mode."""
    scores["psnr/mean"] = float(np.mean([v for k, v in scores.items() if k.startswith("psnr/")]))
    model.train(was_training)
    return scores


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, renamed into place: a crash never leaves a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def start_run(out_dir: str, threads: int, seed: int) -> Path:
    """Make the run folder and fix threads and the torch seed (a run is a function of its config)."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    torch.manual_seed(seed)
    return folder


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, total: torch.Tensor, lr: float,
                   grad_clip: float) -> None:
    """One AdamW step on ``total`` at learning rate ``lr``, gradients clipped to ``grad_clip``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


class RunningMeans:
    """Loss terms summed since the last log line, given back as means."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, terms: Mapping[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value.detach())
        self.count += 1

    def take(self) -> dict[str, float]:
        """The means since the last call, then start again."""
        means = {name: total / self.count for name, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class RunLog:
    """``train.log`` (timestamped lines, also passed to ``log``) and ``metrics.jsonl`` of a run folder, appended to."""

    def __init__(self, out_dir: Path, log: Callable[[str], None]) -> None:
        self.out_dir = out_dir
        self._log = log
        self._text = open(out_dir / "train.log", "a", encoding="utf-8")
        self._metrics = open(out_dir / "metrics.jsonl", "a", encoding="utf-8")

    def say(self, message: str) -> None:
        self._log(message)
        self._text.write(time.strftime("%Y-%m-%d %H:%M:%S ") + message + "\n")
        self._text.flush()

    def losses(self, iteration: int, elapsed: float, means: Mapping[str, float], line: str) -> None:
        """Say ``line`` and record the loss means."""
        self.say(line)
        self._record({"iteration": iteration, "elapsed": elapsed, **means})

    def validation(self, iteration: int, elapsed: float, scores: Mapping[str, float]) -> None:
        self.say(f"val it {iteration} " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()))
        self._record({"iteration": iteration, "elapsed": elapsed, "val": scores})

    def best(self, payload: object, best: float, iteration: int, export: str | os.PathLike[str] | None) -> None:
        """Save new best inference weights in the run folder (and at ``export``)."""
        save_atomic(payload, self.out_dir / "best.pt")
        if export:
            save_atomic(payload, Path(export))
        self.say(f"new best {best:.3f} dB at iteration {iteration}")

    def stopped(self, minutes: float, iteration: int) -> None:
        self.say(f"stopping after {minutes} min at iteration {iteration}; resume with --resume {self.out_dir / 'last.pt'}")

    def _record(self, entry: Mapping[str, Any]) -> None:
        self._metrics.write(json.dumps(entry) + "\n")
        self._metrics.flush()

    def close(self) -> None:
        self._text.close()
        self._metrics.close()


__all__ = ["ADDED_CLIP_GROUPS", "DEFAULT_HOLDOUT", "PHOTO_EXTENSIONS", "RunLog", "RunningMeans", "config_from_dict", "finish_validation",
           "is_colourful", "list_clips", "optimizer_step", "psnr", "read_clip", "read_photos", "read_rgb",
           "save_atomic", "start_run", "working_size"]
