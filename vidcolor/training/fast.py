"""Training FastNet (the ``fast`` model) on the CPU with self-augmented self-reference pairs.

As Color2Embed (seed 003), every training pair is made from one colour image: the target is its
gray lightness, the reference is the *same* image after a random thin-plate-spline warp
(:func:`tps_warp`), a random flip, mild brightness/contrast/saturation jitter and Gaussian noise
(σ = 5 / 255). The warp moves every colour away from its pixel, so the network cannot copy colour
by position and the colour encoder must carry colour by content. For clip samples the reference
is sometimes a wider view of *another* frame of the same clip, which is how video is colorized.

The previous-frame input (``FastNetConfig.use_previous``) is trained with pairs of neighbouring
frames (clips: the frame one or two steps earlier; photos: a crop shifted by a few pixels); the
previous chroma is either the network's own (no-grad) prediction for that frame or the true one
"drifted" (saturation scaled, shifted, blurred), so the keep gate learns when the past is worth
keeping.

Losses: smooth-L1 on ab (the gated output, and the painted chroma alone) plus a perceptual term:
L1 between features of the predicted and the true RGB, the feature network being the **frozen
encoder of the shipped default model** (``vidcolor/models/weights/default.pt``), the only trained
feature network available offline. It sees one channel, so it is applied to the R, G and B planes
separately (each scaled like its lightness input): colour errors then change its features.

Data loading, the clip list and the run folder's logs come from :mod:`vidcolor.training.common`.
Determinism: the batch of iteration ``i`` is a pure function of ``(seed, i)``; a checkpoint holds
model, optimizer and iteration, so chunked runs resume exactly where they stopped.

    python -m vidcolor.training.fast --out runs/fast --minutes 20 --export vidcolor/models/weights/fast.pt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..color import lab_to_rgb, luma_lightness, rgb_to_lab
from ..colorizers.base import pad_to_multiple
from ..models.fast import AB_SCALE, REFERENCE_SIDE, SIZE_MULTIPLE, WEIGHTS_FORMAT, FastNet, FastNetConfig, lab_to_rgb_torch
from ..models.vcnet import Encoder, count_parameters
from .common import (DEFAULT_HOLDOUT, PHOTO_EXTENSIONS, RunLog, RunningMeans, config_from_dict, finish_validation,
                     list_clips, optimizer_step, psnr, read_clip, read_photos, save_atomic, start_run, working_size)

#: Photos never trained on (kept for evaluation elsewhere), as path fragments.
EXCLUDED_PHOTOS = ("bsds500/test",)


@dataclass
class FastTrainConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    #: Both folders are relative to the current folder (the repository root in the model card's commands).
    data_root: str = "../shared/data"
    out_dir: str = "runs/fast"
    seed: int = 1
    iterations: int = 4000
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup: int = 100
    grad_clip: float = 1.0
    threads: int = 1
    max_minutes: float = 0.0
    checkpoint_minutes: float = 4.0
    val_every: int = 500
    #: Validation working short side and frames per held-out clip.
    val_short_side: int = 160
    val_frames: int = 24
    holdout: tuple[str, ...] = DEFAULT_HOLDOUT
    p_clip: float = 0.45
    #: Clip samples whose reference is a wider view of another frame of the clip (not the target).
    p_other_frame_ref: float = 0.5
    #: Batches that get a previous-frame input.
    p_previous: float = 0.6
    #: Of those samples, the share whose previous chroma is the network's own prediction.
    p_own_previous: float = 0.5
    noise_sigma: float = 5.0 / 255.0
    tps_points: int = 4
    tps_amplitude: float = 0.1
    w_rec: float = 5.0
    w_painted: float = 1.0
    w_perc: float = 0.1
    photo_short_side: int = 192
    clip_short_side: int = 192
    max_photos: int = 0
    max_clips: int = 0
    #: Inference weights whose features the perceptual loss compares: "default" = the shipped
    #: default.pt, a path, or "" = no perceptual term.
    perceptual_weights: str = "default"
    model: dict[str, object] = field(default_factory=lambda: FastNetConfig().to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FastTrainConfig:
        return config_from_dict(cls, data)


# ------------------------------------------------------------------------------------------------
# data


@dataclass
class FastData:
    photos: list[np.ndarray]
    clips: dict[str, list[np.ndarray]]
    holdout: dict[str, list[np.ndarray]]


def load_data(config: FastTrainConfig, log: Callable[[str], None] = print) -> FastData:
    """Photos (minus :data:`EXCLUDED_PHOTOS`) and the DAVIS/Vid4 clips (minus the held-out ones)."""
    root = Path(config.data_root)
    photo_dir = root / "photos"
    if not photo_dir.is_dir():
        raise FileNotFoundError(f"training photos not found at {str(photo_dir)!r}: pass --data pointing at shared/data")
    paths = sorted(p for p in photo_dir.rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS
                   and not any(part in p.as_posix() for part in EXCLUDED_PHOTOS))
    if config.max_photos:
        paths = paths[: config.max_photos]
    photos = read_photos(paths, config.crop, config.photo_short_side)
    clips: dict[str, list[np.ndarray]] = {}
    holdout: dict[str, list[np.ndarray]] = {}
    for name, source in list_clips(root).items():
        if not (name.startswith("davis/") or name.startswith("vid4/")):
            continue
        if name in config.holdout:
            holdout[name] = read_clip(source)[: config.val_frames or None]  # type: ignore[arg-type]
        elif not config.max_clips or len(clips) < config.max_clips:
            clips[name] = read_clip(source, config.clip_short_side)
    log(f"data: {len(photos)} photos (without {', '.join(EXCLUDED_PHOTOS)}), train clips {sorted(clips)} "
        f"({sum(map(len, clips.values()))} frames), held out {sorted(holdout)}")
    return FastData(photos, clips, holdout)


def tps_warp(image: np.ndarray, rng: np.random.Generator, points: int = 4, amplitude: float = 0.1) -> np.ndarray:
    """A random thin-plate-spline warp of ``image`` (H, W, C): the seed's self-augmentation.

    A ``points`` x ``points`` grid of control points is moved by Gaussian offsets of ``amplitude``
    times the image size; the TPS interpolating those offsets (kernel r² log r², plus an affine
    part) maps each output pixel to where it samples the input. Borders reflect, so the warp moves
    colours around without inventing new ones.
    """
    h, w = image.shape[:2]
    grid = np.linspace(0.0, 1.0, points)
    src = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)  # control points in [0, 1]²
    dst = src + rng.normal(0.0, amplitude, size=src.shape)
    n = len(src)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)

    # solve for the map output point → input point that sends src to dst
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = kernel(src, src)
    system[:n, n] = 1.0
    system[:n, n + 1 :] = src
    system[n, :n] = 1.0
    system[n + 1 :, :n] = src.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = dst
    coef = np.linalg.solve(system + 1e-9 * np.eye(n + 3), rhs)
    # evaluate the spline's displacement on a coarse grid (at the positions cv2.resize samples)
    # and interpolate it: the field is smooth, and this is 20x cheaper than every pixel
    gh, gw = min(h, 32), min(w, 32)
    cy = ((np.arange(gh) + 0.5) * h / gh - 0.5) / max(h - 1, 1)
    cx = ((np.arange(gw) + 0.5) * w / gw - 0.5) / max(w - 1, 1)
    pts = np.stack(np.meshgrid(cx, cy), axis=-1).reshape(-1, 2)
    moved = kernel(pts, src) @ coef[:n] + coef[n] + pts @ coef[n + 1 :]
    shift = ((moved - pts) * [w - 1, h - 1]).reshape(gh, gw, 2).astype(np.float32)
    shift = cv2.resize(shift, (w, h), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xs + shift[..., 0]
    map_y = ys + shift[..., 1]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def jitter_reference(rgb: np.ndarray, rng: np.random.Generator, noise_sigma: float) -> np.ndarray:
    """Mild brightness/contrast/saturation jitter and Gaussian noise (hue untouched: the reference's
    colours must stay the target's)."""
    out = rgb * rng.uniform(0.9, 1.1)
    mean = out.mean()
    out = mean + (out - mean) * rng.uniform(0.9, 1.1)
    gray = out.mean(axis=-1, keepdims=True)
    out = gray + (out - gray) * rng.uniform(0.9, 1.1)
    out = out + rng.normal(0.0, noise_sigma, size=out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass
class PairSample:
    lightness: np.ndarray  # (S, S) input L (luma lightness)
    ab: np.ndarray  # (S, S, 2) true ab
    prev_lightness: np.ndarray  # (S, S) the previous frame's input L
    prev_ab: np.ndarray  # (S, S, 2) the previous frame's true ab
    ref_rgb: np.ndarray  # (R, R, 3) reference RGB in [0, 1]


def _crop(image: np.ndarray, x: int, y: int, region: int, size: int) -> np.ndarray:
    return cv2.resize(image[y : y + region, x : x + region], (size, size), interpolation=cv2.INTER_AREA)


def make_sample(rng: np.random.Generator, data: FastData, config: FastTrainConfig) -> PairSample:
    """One (target, previous frame, reference) triple; see the module docstring."""
    size = config.crop
    use_clip = bool(data.clips) and rng.random() < config.p_clip
    if use_clip:
        names = sorted(data.clips)
        clip = data.clips[names[int(rng.integers(len(names)))]]
        index = int(rng.integers(2, len(clip)))
        target_full = clip[index]
        prev_full = clip[index - int(rng.integers(1, 3))]
        dx = dy = 0
    else:
        target_full = prev_full = data.photos[int(rng.integers(len(data.photos)))]
        dx, dy = (int(v) for v in rng.integers(-4, 5, size=2))
    h0, w0 = target_full.shape[:2]
    region = min(int(size * rng.uniform(0.8, 1.4)), h0 - 8, w0 - 8)
    x = int(rng.integers(4, w0 - region - 3))
    y = int(rng.integers(4, h0 - region - 3))
    flip = rng.random() < 0.5
    target = _crop(target_full, x, y, region, size).astype(np.float32) / 255.0
    prev = _crop(prev_full, int(np.clip(x + dx, 0, w0 - region)), int(np.clip(y + dy, 0, h0 - region)), region, size).astype(np.float32) / 255.0
    if flip:
        target, prev = np.ascontiguousarray(target[:, ::-1]), np.ascontiguousarray(prev[:, ::-1])
    if use_clip and rng.random() < config.p_other_frame_ref:
        other = clip[int(rng.integers(len(clip)))]
        # a wider view (up to the whole frame, squashed as the colorizer squashes references)
        rw = int(rng.uniform(region, w0))
        rh = int(rng.uniform(region, h0))
        rx, ry = int(rng.integers(0, w0 - rw + 1)), int(rng.integers(0, h0 - rh + 1))
        ref = cv2.resize(other[ry : ry + rh, rx : rx + rw], (REFERENCE_SIDE, REFERENCE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    else:
        ref = cv2.resize(target, (REFERENCE_SIDE, REFERENCE_SIDE), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        ref = np.ascontiguousarray(ref[:, ::-1])
    ref = jitter_reference(tps_warp(ref, rng, config.tps_points, config.tps_amplitude), rng, config.noise_sigma)
    matrix = "bt601" if rng.random() < 0.5 else "bt709"
    return PairSample(
        lightness=luma_lightness(target, matrix),
        ab=rgb_to_lab(target)[..., 1:],
        prev_lightness=luma_lightness(prev, matrix),
        prev_ab=rgb_to_lab(prev)[..., 1:],
        ref_rgb=ref,
    )


@dataclass
class FastBatch:
    l: torch.Tensor  # (B, 1, S, S) normalised
    ab: torch.Tensor  # (B, 2, S, S) normalised
    prev_l: torch.Tensor
    prev_ab: torch.Tensor
    ref_rgb: torch.Tensor  # (B, 3, R, R) in [0, 1]
    ref_lab: torch.Tensor  # (B, 3, R, R) Lab
    has_prev: bool
    own_previous: torch.Tensor  # (B,) 1 where the previous chroma is the network's own prediction
    drift: torch.Tensor  # (B, 3): saturation scale, a shift, b shift for the drifted-truth previous


def make_batch(data: FastData, config: FastTrainConfig, iteration: int) -> FastBatch:
    """The batch of ``iteration``: a pure function of ``(config.seed, iteration)``."""
    rng = np.random.default_rng([config.seed, iteration])
    samples = [make_sample(rng, data, config) for _ in range(config.batch_size)]

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(s, name) for s in samples]).astype(np.float32))

    ref_rgb = stack("ref_rgb")
    ref_lab = torch.from_numpy(np.stack([rgb_to_lab(s.ref_rgb) for s in samples])).permute(0, 3, 1, 2)
    drift = np.stack([rng.uniform(0.6, 1.3, config.batch_size), rng.normal(0, 0.04, config.batch_size), rng.normal(0, 0.04, config.batch_size)], 1)
    return FastBatch(
        l=stack("lightness").unsqueeze(1) / 50.0 - 1.0,
        ab=stack("ab").permute(0, 3, 1, 2) / AB_SCALE,
        prev_l=stack("prev_lightness").unsqueeze(1) / 50.0 - 1.0,
        prev_ab=stack("prev_ab").permute(0, 3, 1, 2) / AB_SCALE,
        ref_rgb=ref_rgb.permute(0, 3, 1, 2),
        ref_lab=ref_lab,
        has_prev=bool(rng.random() < config.p_previous),
        own_previous=torch.from_numpy((rng.random(config.batch_size) < config.p_own_previous).astype(np.float32)),
        drift=torch.from_numpy(drift.astype(np.float32)),
    )


# ------------------------------------------------------------------------------------------------
# losses


class PerceptualFeatures(torch.nn.Module):
    """Frozen encoder of the default model, applied to each RGB plane (see the module docstring)."""

    def __init__(self, weights: str | os.PathLike[str]) -> None:
        super().__init__()
        from ..models.vcnet import VCNetConfig

        if str(weights) == "default":
            from ..colorizers.default import default_weights_path

            weights = default_weights_path()
        payload = torch.load(weights, map_location="cpu", weights_only=True)
        cfg = VCNetConfig.from_dict(payload["config"])
        self.encoder = Encoder(cfg)
        prefix = "encoder."
        self.encoder.load_state_dict({k[len(prefix):]: v for k, v in payload["state_dict"].items() if k.startswith(prefix)})
        self.encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        batch = rgb.shape[0]
        # at half resolution: colour errors are low-frequency, and it quarters the cost
        rgb = F.avg_pool2d(rgb, 2)
        planes = rgb.reshape(batch * 3, 1, *rgb.shape[2:]) * 2.0 - 1.0
        f = self.encoder(planes)
        return [f.f2, f.f4, f.f8]


def compute_losses(model: FastNet, batch: FastBatch, config: FastTrainConfig, perceptual: PerceptualFeatures | None) -> dict[str, torch.Tensor]:
    z = model.embed(batch.ref_rgb, batch.ref_lab)
    weights = model.modulate(z)
    previous_ab = previous_l = None
    if batch.has_prev and model.cfg.use_previous:
        with torch.no_grad():
            own = model(batch.prev_l, weights).ab
        scale, da, db = batch.drift[:, 0].view(-1, 1, 1, 1), batch.drift[:, 1].view(-1, 1, 1, 1), batch.drift[:, 2].view(-1, 1, 1, 1)
        drifted = F.avg_pool2d(batch.prev_ab, 3, stride=1, padding=1, count_include_pad=False) * scale + torch.cat([da, db], 1)
        pick = batch.own_previous.view(-1, 1, 1, 1)
        previous_ab, previous_l = pick * own + (1 - pick) * drifted, batch.prev_l
    out = model(batch.l, weights, previous_ab, previous_l)
    beta = 2.0 / AB_SCALE  # quadratic below 2 Lab units
    terms = {
        "rec": F.smooth_l1_loss(out.ab, batch.ab, beta=beta),
        "painted": F.smooth_l1_loss(out.painted, batch.ab, beta=beta),
        "perc": batch.l.new_zeros(()),
    }
    if perceptual is not None and config.w_perc > 0:
        lightness = (batch.l + 1.0) * 50.0
        pred_rgb = lab_to_rgb_torch(torch.cat([lightness, out.ab * AB_SCALE], 1))
        with torch.no_grad():
            true_rgb = lab_to_rgb_torch(torch.cat([lightness, batch.ab * AB_SCALE], 1))
            true_f = perceptual(true_rgb)
        terms["perc"] = sum((p - t).abs().mean() for p, t in zip(perceptual(pred_rgb), true_f)) / 3.0  # type: ignore[assignment]
    terms["total"] = config.w_rec * terms["rec"] + config.w_painted * terms["painted"] + config.w_perc * terms["perc"]
    terms["keep"] = out.keep.mean().detach()
    return terms


# ------------------------------------------------------------------------------------------------
# validation (the bench protocol, at the working size)


@torch.inference_mode()
def colorize_frames(model: FastNet, frames_rgb: Sequence[np.ndarray], reference_rgb: np.ndarray, short_side: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Colorize frames (gray input = BT.601 luma lightness) recurrently from one reference.

    Returns (predicted ab, (input L, true ab) Lab) per frame at the working size.
    """
    ref = cv2.resize(reference_rgb.astype(np.float32) / 255.0, (REFERENCE_SIDE, REFERENCE_SIDE), interpolation=cv2.INTER_AREA)
    weights = model.modulate(model.embed(torch.from_numpy(ref).permute(2, 0, 1)[None], torch.from_numpy(rgb_to_lab(ref)).permute(2, 0, 1)[None]), fold=True)
    h0, w0 = frames_rgb[0].shape[:2]
    w, h = working_size(w0, h0, short_side)
    previous_ab = previous_l = None
    predictions, truths = [], []
    for rgb in frames_rgb:
        small = cv2.resize(rgb.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
        lab = rgb_to_lab(small)
        lab[..., 0] = luma_lightness(small)
        l_t = torch.from_numpy(np.ascontiguousarray(pad_to_multiple(lab[..., 0], SIZE_MULTIPLE)))[None, None] / 50.0 - 1.0
        out = model(l_t, weights, previous_ab, previous_l)
        previous_ab, previous_l = out.ab, l_t
        predictions.append(out.ab[0, :, :h, :w].permute(1, 2, 0).numpy() * AB_SCALE)
        truths.append(lab)
    return predictions, truths


def validate(model: FastNet, clips: dict[str, list[np.ndarray]], short_side: int) -> dict[str, float]:
    """RGB PSNR of frames 1..N-1 of each held-out clip, reference = true frame 0 (and the gray floor)."""
    was_training = model.training
    model.eval()
    scores: dict[str, float] = {}
    for name, frames in sorted(clips.items()):
        predictions, truths = colorize_frames(model, frames, frames[0], short_side)
        values, grays = [], []
        for ab, lab, rgb in zip(predictions[1:], truths[1:], frames[1:]):
            truth = cv2.resize(rgb.astype(np.float32) / 255.0, (lab.shape[1], lab.shape[0]), interpolation=cv2.INTER_AREA)
            values.append(psnr(lab_to_rgb(np.concatenate([lab[..., :1], ab], -1)), truth))
            grays.append(psnr(lab_to_rgb(np.concatenate([lab[..., :1], np.zeros_like(ab)], -1)), truth))
        scores[f"psnr/{name}"] = float(np.mean(values))
        scores[f"gray/{name}"] = float(np.mean(grays))
    return finish_validation(scores, model, was_training)


# ------------------------------------------------------------------------------------------------
# checkpoints and the loop


def inference_payload(model: FastNet, meta: dict[str, object]) -> dict[str, object]:
    """What ships in ``fast.pt``: format tag, architecture config, tensors, provenance (plain data)."""
    return {"format": WEIGHTS_FORMAT, "config": model.cfg.to_dict(),
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}, "meta": meta}


def learning_rate(config: FastTrainConfig, iteration: int) -> float:
    """Linear warm-up, then cosine decay to 5 % over the whole schedule."""
    if iteration < config.warmup:
        return config.lr * (iteration + 1) / config.warmup
    progress = min(1.0, (iteration - config.warmup) / max(1, config.iterations - config.warmup))
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(config: FastTrainConfig, log: Callable[[str], None] = print, resume: str | os.PathLike[str] | None = None,
          data: FastData | None = None, stop_at: int | None = None, export: str | os.PathLike[str] | None = None) -> FastNet:
    """Train (or continue) FastNet; writes ``last.pt`` (resumable), ``best.pt`` and logs in ``out_dir``."""
    out_dir = start_run(config.out_dir, config.threads, config.seed)
    start, best, elapsed_before, state = 0, -math.inf, 0.0, None
    if resume is not None:
        state = torch.load(resume, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != WEIGHTS_FORMAT + "-train":
            raise ValueError(f"{str(resume)!r} is not a FastNet training checkpoint: pass a last.pt written by vidcolor.training.fast")
        keep = {"out_dir", "data_root", "max_minutes", "checkpoint_minutes", "threads", "val_every", "iterations"}
        config = FastTrainConfig.from_dict({**state["config"], **{k: getattr(config, k) for k in keep}})
    model = FastNet(FastNetConfig.from_dict(config.model))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best, elapsed_before = int(state["iteration"]), float(state["best"]), float(state["elapsed_seconds"])
    run_log = RunLog(out_dir, log)
    say = run_log.say
    if state is not None:
        say(f"resumed from {resume} at iteration {start} (best {best:.3f} dB)")
    if data is None:
        data = load_data(config, say)
    perceptual = PerceptualFeatures(config.perceptual_weights) if config.perceptual_weights and config.w_perc > 0 else None
    say(f"model: {count_parameters(model)} parameters, config {config.model}; perceptual features: {config.perceptual_weights or 'none'}")
    end = config.iterations if stop_at is None else min(stop_at, config.iterations)
    started = last_checkpoint = time.monotonic()
    running = RunningMeans()
    model.train()
    iteration = start

    def checkpoint() -> None:
        save_atomic({"format": WEIGHTS_FORMAT + "-train", "config": asdict(config), "model": model.state_dict(),
                      "optimizer": optimizer.state_dict(), "iteration": iteration, "best": best,
                      "elapsed_seconds": elapsed_before + time.monotonic() - started}, out_dir / "last.pt")

    while iteration < end:
        batch = make_batch(data, config, iteration)
        terms = compute_losses(model, batch, config, perceptual)
        optimizer_step(model, optimizer, terms["total"], learning_rate(config, iteration), config.grad_clip)
        iteration += 1
        running.add(terms)
        elapsed = elapsed_before + time.monotonic() - started
        if iteration % 50 == 0 or iteration == end:
            means = running.take()
            run_log.losses(iteration, elapsed, means, f"it {iteration} lr={learning_rate(config, iteration - 1):.2e} "
                           + " ".join(f"{k}={v:.4f}" for k, v in means.items()) + f" wall={elapsed / 60:.1f}min")
        stop_for_time = bool(config.max_minutes) and time.monotonic() - started > config.max_minutes * 60
        if data.holdout and config.val_every and (iteration % config.val_every == 0 or iteration == end or stop_for_time):
            scores = validate(model, data.holdout, config.val_short_side)
            run_log.validation(iteration, elapsed, scores)
            if scores["psnr/mean"] > best:
                best = scores["psnr/mean"]
                run_log.best(inference_payload(model, {"iteration": iteration, "elapsed_seconds": elapsed, "validation": scores,
                                                       "train_config": json.dumps(asdict(config))}), best, iteration, export)
        if iteration == end or stop_for_time or time.monotonic() - last_checkpoint > config.checkpoint_minutes * 60:
            checkpoint()
            last_checkpoint = time.monotonic()
        if stop_for_time:
            run_log.stopped(config.max_minutes, iteration)
            break
    run_log.close()
    return model


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m vidcolor.training.fast --out DIR --minutes 20 [--resume DIR/last.pt]``."""
    parser = argparse.ArgumentParser(prog="python -m vidcolor.training.fast", description="Train the FastNet (`fast`) model on the CPU.")
    parser.add_argument("--data", default=FastTrainConfig.data_root, help="shared data folder (photos/, clips/)")
    parser.add_argument("--out", default=FastTrainConfig.out_dir, help="run folder for checkpoints and logs")
    parser.add_argument("--iterations", type=int, default=FastTrainConfig.iterations, help="length of the schedule")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop this chunk after so many minutes (resumable)")
    parser.add_argument("--resume", default=None, help="a last.pt to continue from")
    parser.add_argument("--seed", type=int, default=FastTrainConfig.seed)
    parser.add_argument("--batch-size", type=int, default=FastTrainConfig.batch_size)
    parser.add_argument("--crop", type=int, default=FastTrainConfig.crop)
    parser.add_argument("--threads", type=int, default=FastTrainConfig.threads)
    parser.add_argument("--val-every", type=int, default=FastTrainConfig.val_every)
    parser.add_argument("--perceptual-weights", default=FastTrainConfig.perceptual_weights,
                        help="inference weights whose frozen encoder gives the perceptual features ('' = none)")
    parser.add_argument("--export", default=None, help="also write each new best inference weights here")
    args = parser.parse_args(argv)
    config = FastTrainConfig(data_root=args.data, out_dir=args.out, iterations=args.iterations, max_minutes=args.minutes,
                             seed=args.seed, batch_size=args.batch_size, crop=args.crop, threads=args.threads,
                             val_every=args.val_every, perceptual_weights=args.perceptual_weights)
    train(config, resume=args.resume, export=args.export)


if __name__ == "__main__":
    main()
