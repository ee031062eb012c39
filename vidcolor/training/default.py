"""Training VCNet (the ``default`` model) on the CPU: data, augmentation, losses, loop, checkpoints.

Data (see ``MODEL_CARD.md`` for what the shipped weights used):

* **Pseudo-video from photos** (as the seed papers' image pre-training): a photo is cropped by a
  random affine map plus a smooth random displacement field (a cheap thin-plate-spline stand-in),
  and each next frame is the previous one moved by a further small random field, so the flow
  between frames is known exactly. The reference is another, strongly different affine view of
  the same photo (scale, rotation, mirror, shift), so the true correspondence is known too and
  supervises the attention directly. Occluders pasted from other photos move across the frames.
* **Colour clips**: consecutive frames of DAVIS / Vid4 / Big Buck Bunny (held-out clips excluded),
  the reference a crop of another frame of the same clip; flow from OpenCV DIS for the temporal
  loss.
* Sometimes the reference is unrelated (another photo), degraded, the target itself, or absent,
  so the network learns to fall back gracefully rather than copy wrong colours blindly.

Each iteration unrolls the recurrence over ``unroll`` frames (the previous *prediction* feeds the
next step; sometimes the ground truth does instead, or a "drifted" ground truth the network must
pull back to the reference). As at inference, OpenCV DIS flow (fast preset) on the input
lightness gives the flow candidates: each frame to the previous one and to the reference. Losses: L1 on ab; L1 of the attention-
gathered reference chroma; cross-entropy of the attention against the known correspondence;
flow-warped temporal consistency; an edge-aware smoothness term.

Determinism: the batch of iteration ``i`` is a pure function of ``(seed, i)``, and a checkpoint
holds the model, optimizer and iteration, so stopping and resuming gives the same weights as an
uninterrupted run. Everything runs in one process with ``threads`` torch/OpenCV threads.
"""

from __future__ import annotations

import argparse
import logging
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

from ..color import lab_to_rgb, luma_lightness, rgb_to_lab, shrink_short_side
from ..correspondence.flow import visible_mask
from ..correspondence.tracking import Flow, same_scene, shown_by, within
from ..models.efficientnet_lite import shared_backbone
from ..models.fast import lab_to_rgb_torch
from ..models.vcnet import (AB_SCALE, CANDIDATES, SIZE_MULTIPLE, WEIGHTS_FORMAT, VCNet, VCNetConfig, count_parameters, flow_candidate,
                           reference_size, warp_tensor)
from .common import (DEFAULT_HOLDOUT, PHOTO_EXTENSIONS, RunLog, RunningMeans, config_from_dict, finish_validation,
                     list_clips, optimizer_step, psnr, read_clip, read_photos, save_atomic, start_run, working_size)

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    #: Both folders are relative to the current folder (the repository root in the model card's commands).
    data_root: str = "../shared/data"
    out_dir: str = "runs/default"
    seed: int = 1
    #: Total iterations of the schedule (the learning rate decays over the last 30 %).
    iterations: int = 6500
    batch_size: int = 4
    crop: int = 144
    unroll: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    grad_clip: float = 1.0
    threads: int = 1
    #: Stop this chunk after so many minutes (checkpointing first); 0 = run to ``iterations``.
    max_minutes: float = 0.0
    checkpoint_minutes: float = 4.0
    val_every: int = 500
    #: Validation working short side (the default model's native size).
    val_short_side: int = 160
    #: Cap on frames per validation clip (0 = all).
    val_frames: int = 0
    holdout: tuple[str, ...] = DEFAULT_HOLDOUT
    #: Probability that a sample comes from a colour clip rather than a photo.
    p_clip: float = 0.4
    p_unrelated_ref: float = 0.08
    p_degraded_ref: float = 0.08
    p_identity_ref: float = 0.12
    p_no_ref_batch: float = 0.03
    p_teacher_forcing: float = 0.1
    #: Probability that the previous output handed to the next step is a drifted ground truth.
    p_drifted_previous: float = 0.25
    p_occluder: float = 0.5
    #: Probability that input lightness comes from BT.601/709 luma (as in a gray video), not Lab L.
    p_luma_input: float = 0.75
    #: Probability that a sequence and its reference get one random chroma rotation and saturation
    #: change (up to ``color_jitter_degrees``, ±15 %): the same few clips then show the network new
    #: colours, so it learns to copy them from the reference rather than remember them.
    p_color_jitter: float = 0.0
    color_jitter_degrees: float = 25.0
    #: Also train on the clips MANIFEST.md added for issue 24 (:data:`~.common.ADDED_CLIP_GROUPS`).
    added_clips: bool = False
    #: Share of clip sequences whose reference is another picture of the shot: a far frame (a third
    #: of the clip or more away), cropped 5-20 %, rescaled, mirrored half the time (no pixel alignment).
    p_far_ref: float = 0.0
    #: Share of clip sequences whose reference shows only part of the scene: a near frame (within 3
    #: of the first) with 40-60 % of it (one side: left, right, top or bottom) replaced by padding
    #: (its mean lightness, no chroma), as the colorizer places a reference of another aspect (the
    #: frame's left half). Pixels whose reference flow lands on the padding are not shown, and the
    #: semantic blend acts there (per-pixel scene map, as at inference): the network learns what to
    #: do with content the reference does not show, against an aligned truth.
    p_half_ref: float = 0.0
    #: Scale each frame's reference-flow visibility by :func:`~vidcolor.correspondence.tracking.same_scene`,
    #: as the default colorizer does: the network learns without the reference's optical flow where
    #: the reference is another picture (a far frame mirrored, a similar photo, another clip).
    scene_check: bool = False
    #: Train only the layers v1 lacks (v2d: the semantic blend head and the semantic temperature);
    #: every v1 tensor stays as warm-started, so where the blend weight is zero the output is v1's.
    semantic_only: bool = False
    #: Share of photo sequences whose reference is a *similar photo*: one of the 5 nearest by global
    #: ImageNet-trunk feature (seed 000/001's retrieval), so what matches is the kind of thing only.
    p_retrieved_ref: float = 0.0
    #: L1 weight factor for sequences with a retrieved reference: its colours need not be the truth's.
    retrieved_l1: float = 0.2
    # loss weights
    w_l1: float = 5.0
    #: Squared error on ab: PSNR is an L2 score, and where the colour is uncertain L1 settles on a
    #: confident median while L2 settles on the mean (less saturated, closer on average).
    w_mse: float = 0.0
    w_coarse: float = 2.0
    w_match: float = 0.02
    w_temporal: float = 1.0
    w_smooth: float = 0.05
    #: Seed 001's contextual loss (on the frozen trunk's features) between the last frame's output and
    #: its reference, for sequences whose reference is not pixel-aligned (far frame, retrieved photo).
    w_context: float = 0.0
    #: Photos are kept in memory at this short side.
    photo_short_side: int = 288
    clip_short_side: int = 240
    #: Photos never trained on, as glob patterns under ``photos/`` (e.g. the gray targets of a test).
    exclude_photos: tuple[str, ...] = ()
    #: Limit data for quick tests (0 = all).
    max_photos: int = 0
    max_clips: int = 0
    model: dict[str, object] = field(default_factory=lambda: VCNetConfig().to_dict())
    #: Inference weights to start from (tensors whose name and shape match are copied), or "".
    init_from: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainConfig:
        return config_from_dict(cls, data)


# ------------------------------------------------------------------------------------------------
# data


@dataclass
class TrainingData:
    """Photos and clips held in memory as uint8 RGB."""

    photos: list[np.ndarray]
    clips: dict[str, list[np.ndarray]]
    holdout: dict[str, list[np.ndarray]]
    #: (photos, k) indices of each photo's most similar other photos (for retrieved references), or None.
    neighbours: np.ndarray | None = None


def photo_paths(config: TrainConfig) -> list[Path]:
    """The photo files a run reads: every image under ``photos/`` but ``exclude_photos``, up to ``max_photos``."""
    photo_dir = Path(config.data_root) / "photos"
    paths = sorted(p for p in photo_dir.rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS
                   and not any(p.relative_to(photo_dir).match(pattern) for pattern in config.exclude_photos))
    return paths[: config.max_photos] if config.max_photos else paths


def load_training_data(config: TrainConfig, log: Callable[[str], None] = print) -> TrainingData:
    """Read every photo and clip under ``config.data_root`` into memory (a few hundred MB)."""
    root = Path(config.data_root)
    photo_dir = root / "photos"
    if not photo_dir.is_dir():
        raise FileNotFoundError(f"training photos not found at {str(photo_dir)!r}: pass --data pointing at shared/data")
    photos = read_photos(photo_paths(config), config.crop, config.photo_short_side)
    clips: dict[str, list[np.ndarray]] = {}
    holdout: dict[str, list[np.ndarray]] = {}
    sources = list_clips(root, added=config.added_clips)
    for name, source in sources.items():
        if name in config.holdout:
            holdout[name] = read_clip(source)
        elif not config.max_clips or len(clips) < config.max_clips:
            clips[name] = read_clip(source, config.clip_short_side)
    missing = set(config.holdout) - set(holdout)
    if missing:
        raise FileNotFoundError(f"held-out clips {sorted(missing)} not found under {str(root)!r}: check --data / --holdout")
    log(f"data: {len(photos)} photos, train clips {sorted(clips)} ({sum(map(len, clips.values()))} frames), held out {sorted(holdout)}")
    neighbours = similar_photos(photos) if config.p_retrieved_ref > 0 else None
    return TrainingData(photos=photos, clips=clips, holdout=holdout, neighbours=neighbours)


#: Short side at which photos are described for retrieval (the trunk's stride-32 map, averaged).
_RETRIEVAL_SHORT_SIDE = 160


@torch.no_grad()
def similar_photos(photos: Sequence[np.ndarray], k: int = 5, duplicate: float = 0.97) -> np.ndarray:
    """For each photo, the ``k`` most similar others by global feature of the frozen ImageNet trunk
    on its gray (mean stride-32 map, cosine), as seed 000 retrieves references and seed 001 picked
    its training references; near-copies (cosine above ``duplicate``) are skipped."""
    backbone = shared_backbone("cpu")
    descriptors = []
    for rgb in photos:
        small = shrink_short_side(rgb, _RETRIEVAL_SHORT_SIDE)
        h, w = (small.shape[0] // 32) * 32, (small.shape[1] // 32) * 32
        lightness = luma_lightness(np.ascontiguousarray(small[:h, :w]).astype(np.float32) / 255.0)
        fmap = backbone(torch.from_numpy(lightness)[None, None], (32,))[32]
        descriptors.append(F.normalize(fmap.mean(dim=(2, 3))[0], dim=0))
    table = torch.stack(descriptors)
    similarity = table @ table.T
    similarity[similarity > duplicate] = -2.0  # itself and near-copies
    return similarity.topk(k, dim=1).indices.numpy()


# ------------------------------------------------------------------------------------------------
# sample generation (numpy; every random draw comes from the generator passed in)


@dataclass
class Sample:
    """One training sequence: ``unroll`` target frames, their flows, a reference."""

    lightness: np.ndarray  # (T, S, S) network input L (augmented)
    ab: np.ndarray  # (T, S, S, 2) ground-truth ab
    flow: np.ndarray  # (T, S, S, 2): flow[t] = flow(frame t → frame t-1); flow[0] unused
    valid: np.ndarray  # (T, S, S) where the temporal loss applies; valid[0] unused
    ref_l: np.ndarray  # (S, S)
    ref_ab: np.ndarray  # (S, S, 2)
    match: np.ndarray  # (T, N) index into the reference 1/8 grid, -1 when unknown
    related: bool  # reference shows the same scene
    dis_flow: np.ndarray  # (T, S, S, 2) DIS flow(frame t → t-1) on the input lightness, as at inference
    dis_visible: np.ndarray  # (T, S, S) its forward-backward consistency
    ref_flow: np.ndarray  # (T, S, S, 2) DIS flow(frame t → reference)
    ref_visible: np.ndarray  # (T, S, S) its forward-backward consistency
    aligned: bool = True  # the reference is a view of the same scene (else a retrieved photo: no L1 to copy)
    context: bool = False  # the reference is not pixel-aligned: the contextual loss applies
    ref_scene: np.ndarray | None = None  # (T,) same_scene of each frame with the reference (scene_check)
    ref_shown: np.ndarray | None = None  # (T, S, S) how far a partial reference shows each pixel (ones otherwise)


def _affine(size: int, centre: tuple[float, float], scale: float, angle: float, flip: bool) -> np.ndarray:
    """2x3 map from output pixel (x, y) to source coordinates."""
    c, s = math.cos(angle), math.sin(angle)
    rot = scale * np.array([[c, -s], [s, c]], dtype=np.float64)
    if flip:
        rot = rot @ np.diag([-1.0, 1.0])
    half = (size - 1) / 2.0
    offset = np.asarray(centre, dtype=np.float64) - rot @ np.array([half, half])
    return np.concatenate([rot, offset[:, None]], axis=1)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    return xs, ys


def _apply_affine(mat: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    u = mat[0, 0] * xs + mat[0, 1] * ys + mat[0, 2]
    v = mat[1, 0] * xs + mat[1, 1] * ys + mat[1, 2]
    return np.stack([u, v], axis=-1).astype(np.float32)


def _smooth_field(rng: np.random.Generator, size: int, amplitude: float, knots: int = 4) -> np.ndarray:
    coarse = rng.normal(0.0, amplitude, size=(knots, knots, 2)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _motion_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """A small random inter-frame motion: similarity transform about the centre plus smooth noise."""
    xs, ys = _grid(size)
    half = (size - 1) / 2.0
    angle = math.radians(rng.uniform(-3, 3))
    scale = math.exp(rng.uniform(-0.04, 0.04))
    mat = _affine(size, (half + rng.uniform(-6, 6), half + rng.uniform(-6, 6)), scale, angle, False)
    moved = _apply_affine(mat, xs, ys)
    field_ = moved - np.stack([xs, ys], axis=-1)
    return field_ + _smooth_field(rng, size, rng.uniform(0.0, 2.0))


def _luma_jitter(rng: np.random.Generator, lightness: np.ndarray) -> np.ndarray:
    """Exposure/contrast changes and sensor noise on the network's input lightness only."""
    out = lightness
    if rng.random() < 0.3:
        out = 100.0 * np.power(np.clip(out / 100.0, 0, 1), rng.uniform(0.8, 1.25))
    if rng.random() < 0.3:
        mean = out.mean()
        out = mean + (out - mean) * rng.uniform(0.85, 1.15)
    if rng.random() < 0.5:
        out = out + rng.normal(0.0, rng.uniform(0.0, 2.0), size=out.shape)
    return np.clip(out, 0.0, 100.0).astype(np.float32)


def _degrade_reference_l(rng: np.random.Generator, lightness: np.ndarray) -> np.ndarray:
    sigma = rng.uniform(1.0, 3.0)
    out = cv2.GaussianBlur(lightness, (0, 0), sigma)
    out = out + rng.normal(0.0, rng.uniform(2.0, 6.0), size=out.shape)
    return np.clip(out, 0.0, 100.0).astype(np.float32)


def _occluder(rng: np.random.Generator, photos: Sequence[np.ndarray], size: int, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A patch of another photo moving linearly: per-frame RGB canvases and masks."""
    photo = photos[int(rng.integers(len(photos)))].astype(np.float32) / 255.0
    ph = int(rng.uniform(0.12, 0.35) * size)
    pw = int(rng.uniform(0.12, 0.35) * size)
    y0 = int(rng.integers(0, photo.shape[0] - ph))
    x0 = int(rng.integers(0, photo.shape[1] - pw))
    patch = photo[y0 : y0 + ph, x0 : x0 + pw]
    shape_mask = np.ones((ph, pw), np.float32)
    if rng.random() < 0.5:
        shape_mask = np.zeros((ph, pw), np.float32)
        cv2.ellipse(shape_mask, (pw // 2, ph // 2), (pw // 2, ph // 2), 0, 0, 360, 1.0, -1)
    px, py = rng.uniform(0, size - pw), rng.uniform(0, size - ph)
    vx, vy = rng.uniform(-4, 4), rng.uniform(-4, 4)
    canvases, masks = [], []
    for t in range(frames):
        mat = np.array([[1, 0, px + vx * t], [0, 1, py + vy * t]], np.float32)
        canvases.append(cv2.warpAffine(patch, mat, (size, size), flags=cv2.INTER_LINEAR))
        masks.append(cv2.warpAffine(shape_mask, mat, (size, size), flags=cv2.INTER_LINEAR))
    return canvases, masks


def _warp_np(image: np.ndarray, flow: np.ndarray, border: int = cv2.BORDER_REFLECT101) -> np.ndarray:
    size = flow.shape[0]
    xs, ys = _grid(size)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=border)


def _match_targets(base_maps: np.ndarray, ref_inverse: np.ndarray, inside: np.ndarray, size: int) -> np.ndarray:
    """For each 1/8 cell of a frame, the reference 1/8 cell showing the same base point (-1 if none)."""
    cells = size // 8
    centre = cv2.resize(base_maps, (cells, cells), interpolation=cv2.INTER_AREA).reshape(-1, 2)
    ok = cv2.resize(inside.astype(np.float32), (cells, cells), interpolation=cv2.INTER_AREA).reshape(-1) > 0.99
    q = centre @ ref_inverse[:, :2].T + ref_inverse[:, 2]
    qx, qy = np.floor(q[:, 0] / 8), np.floor(q[:, 1] / 8)
    ok &= (qx >= 0) & (qx < cells) & (qy >= 0) & (qy < cells)
    return np.where(ok, qy * cells + qx, -1).astype(np.int64)


def photo_sample(rng: np.random.Generator, photos: Sequence[np.ndarray], config: TrainConfig,
                 neighbours: np.ndarray | None = None) -> Sample:
    """A pseudo-video with exactly known motion and reference correspondence, from one photo.

    With ``neighbours`` (:func:`similar_photos`), a share ``p_retrieved_ref`` of references are a
    view of a similar photo instead: nothing aligns, only what things are matches.
    """
    size, frames = config.crop, config.unroll
    photo_index = int(rng.integers(len(photos)))
    base = photos[photo_index].astype(np.float32) / 255.0
    h0, w0 = base.shape[:2]
    scale = rng.uniform(0.7, min(1.6, 0.85 * min(h0, w0) / size))
    reach = size * scale / 2
    centre = (rng.uniform(reach, w0 - reach), rng.uniform(reach, h0 - reach))
    mat = _affine(size, centre, scale, math.radians(rng.uniform(-8, 8)), False)
    xs, ys = _grid(size)
    deform = _smooth_field(rng, size, rng.uniform(0.0, 3.0))
    maps = [_apply_affine(mat, xs + deform[..., 0], ys + deform[..., 1])]
    flows = [np.zeros((size, size, 2), np.float32)]
    for _ in range(1, frames):
        motion = _motion_field(rng, size)
        maps.append(_warp_np(maps[-1], motion, cv2.BORDER_REPLICATE))
        flows.append(motion)

    # reference: another view of the same photo (or the target itself, or an unrelated photo)
    kind = rng.random()
    related = aligned = True
    retrieved_from = config.p_identity_ref + config.p_unrelated_ref
    if kind < config.p_identity_ref:
        ref_map, ref_mat = maps[0], None
    elif kind < config.p_identity_ref + config.p_unrelated_ref or (
            neighbours is not None and kind < retrieved_from + config.p_retrieved_ref):
        related = False
        aligned = kind < config.p_identity_ref + config.p_unrelated_ref
        pick = (int(rng.integers(len(photos))) if aligned
                else int(neighbours[photo_index][int(rng.integers(neighbours.shape[1]))]))  # type: ignore[index]
        other = photos[pick].astype(np.float32) / 255.0
        oh, ow = other.shape[:2]
        s_o = min(rng.uniform(0.8, 1.6), 0.95 * min(oh, ow) / size)
        ref_mat = _affine(size, (ow / 2, oh / 2), s_o, 0.0, bool(rng.random() < 0.5))
        ref_map = _apply_affine(ref_mat, xs, ys)
        base_ref = other
    else:
        s_r = scale * math.exp(rng.uniform(-0.35, 0.35))
        offset = rng.uniform(-0.35, 0.35, size=2) * size * scale
        ref_centre = (float(np.clip(centre[0] + offset[0], 0, w0 - 1)), float(np.clip(centre[1] + offset[1], 0, h0 - 1)))
        ref_mat = _affine(size, ref_centre, s_r, math.radians(rng.uniform(-15, 15)), bool(rng.random() < 0.5))
        ref_map = _apply_affine(ref_mat, xs, ys)
    if related:
        base_ref = base
    ref_rgb = cv2.remap(base_ref, ref_map[..., 0], ref_map[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)

    rgbs = [cv2.remap(base, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101) for m in maps]
    insides = [(m[..., 0] >= 0) & (m[..., 0] <= w0 - 1) & (m[..., 1] >= 0) & (m[..., 1] <= h0 - 1) for m in maps]
    occ_masks = [np.zeros((size, size), np.float32) for _ in range(frames)]
    if rng.random() < config.p_occluder:
        canvases, occ_masks = _occluder(rng, photos, size, frames)
        rgbs = [r * (1 - m[..., None]) + c * m[..., None] for r, c, m in zip(rgbs, canvases, occ_masks)]

    labs = [rgb_to_lab(r) for r in rgbs]
    valid = [np.zeros((size, size), bool)]
    for t in range(1, frames):
        lands = xs + flows[t][..., 0], ys + flows[t][..., 1]
        in_frame = (lands[0] >= 0) & (lands[0] <= size - 1) & (lands[1] >= 0) & (lands[1] <= size - 1)
        prev_occ = _warp_np(occ_masks[t - 1], flows[t]) > 0.01
        valid.append(in_frame & insides[t] & (occ_masks[t] < 0.01) & ~prev_occ)
    if related and ref_mat is not None:
        inverse = cv2.invertAffineTransform(ref_mat)
        match = np.stack([_match_targets(m, inverse, ins & (o < 0.01), size) for m, ins, o in zip(maps, insides, occ_masks)])
    elif related:  # identity reference: every cell matches itself (except occluded ones)
        cells = size // 8
        ident = np.arange(cells * cells, dtype=np.int64)
        match = np.full((frames, cells * cells), -1, np.int64)
        match[0] = np.where(cv2.resize(occ_masks[0], (cells, cells), interpolation=cv2.INTER_AREA).reshape(-1) < 0.01, ident, -1)
    else:
        match = np.full((frames, (size // 8) ** 2), -1, np.int64)
    sample = _finish(rng, rgbs, labs, flows, valid, ref_rgb, match, related, config)
    sample.aligned, sample.context = aligned, not aligned
    return sample


_DIS: list[cv2.DISOpticalFlow] = []


def _dis(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    if not _DIS:
        _DIS.append(cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST))
    return _DIS[0].calc(src, dst, None)


def clip_sample(rng: np.random.Generator, clips: dict[str, list[np.ndarray]], config: TrainConfig) -> Sample:
    """Consecutive frames of a real clip, the reference a crop of another frame of it."""
    size, frames = config.crop, config.unroll
    names = sorted(clips)
    clip = clips[names[int(rng.integers(len(names)))]]
    stride = int(rng.integers(1, 3))
    span = stride * (frames - 1)
    start = int(rng.integers(0, len(clip) - span))
    indices = [start + stride * i for i in range(frames)]
    if rng.random() < 0.5:
        indices.reverse()
    h0, w0 = clip[0].shape[:2]
    region = int(size / rng.uniform(0.6, 1.0))
    region = min(region, h0, w0)
    y0, x0 = int(rng.integers(0, h0 - region + 1)), int(rng.integers(0, w0 - region + 1))
    flip = bool(rng.random() < 0.5)

    def crop(image: np.ndarray, x: int, y: int, r: int, mirror: bool) -> np.ndarray:
        out = cv2.resize(image[y : y + r, x : x + r], (size, size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(out[:, ::-1]) if mirror else out

    rgbs = [crop(clip[i], x0, y0, region, flip).astype(np.float32) / 255.0 for i in indices]
    labs = [rgb_to_lab(r) for r in rgbs]
    kind = rng.random()
    related, context = True, False
    rect: tuple[int, int, int, int] | None = None
    if kind < config.p_identity_ref:
        ref_rgb = rgbs[0]
    elif kind < config.p_identity_ref + config.p_unrelated_ref:
        related = False
        other = clips[names[int(rng.integers(len(names)))]]
        frame = other[int(rng.integers(len(other)))]
        r = min(frame.shape[:2])
        ref_rgb = crop(frame, (frame.shape[1] - r) // 2, (frame.shape[0] - r) // 2, r, False).astype(np.float32) / 255.0
        if other is clip:
            related = True
    elif kind < config.p_identity_ref + config.p_unrelated_ref + config.p_far_ref:
        # another picture of the shot: a far frame, cropped 5-20 %, rescaled, often mirrored
        far = [i for i in range(len(clip)) if abs(i - indices[0]) >= len(clip) // 3] or list(range(len(clip)))
        frame = clip[far[int(rng.integers(len(far)))]]
        r = int(min(h0, w0) * (1.0 - rng.uniform(0.05, 0.2)))
        rx, ry = int(rng.integers(0, w0 - r + 1)), int(rng.integers(0, h0 - r + 1))
        ref_rgb = crop(frame, rx, ry, r, bool(rng.random() < 0.5)).astype(np.float32) / 255.0
        context = True
    elif kind < config.p_identity_ref + config.p_unrelated_ref + config.p_far_ref + config.p_half_ref:
        # part of the scene: a near frame, one side of it padding (the left-half reference's case)
        near = int(np.clip(indices[0] + rng.integers(-3, 4), 0, len(clip) - 1))
        ref_rgb = crop(clip[near], x0, y0, region, flip).astype(np.float32) / 255.0
        shown = int(size * rng.uniform(0.4, 0.6))
        side = int(rng.integers(4))
        rect = [(0, 0, shown, size), (size - shown, 0, size, size), (0, 0, size, shown), (0, size - shown, size, size)][side]
    else:
        candidates = [i for i in range(len(clip)) if abs(i - indices[0]) >= 3] or list(range(len(clip)))
        ref_index = candidates[int(rng.integers(len(candidates)))]
        ref_region = min(int(region * math.exp(rng.uniform(-0.2, 0.5))), h0, w0)
        cx = x0 + region / 2 + rng.uniform(-0.3, 0.3) * region
        cy = y0 + region / 2 + rng.uniform(-0.3, 0.3) * region
        rx = int(np.clip(cx - ref_region / 2, 0, w0 - ref_region))
        ry = int(np.clip(cy - ref_region / 2, 0, h0 - ref_region))
        ref_rgb = crop(clip[ref_index], rx, ry, ref_region, bool(rng.random() < 0.3)).astype(np.float32) / 255.0

    grays = [np.clip(lab[..., 0] * 2.55, 0, 255).astype(np.uint8) for lab in labs]
    flows = [np.zeros((size, size, 2), np.float32)]
    valid = [np.zeros((size, size), bool)]
    for t in range(1, frames):
        forward = _dis(grays[t], grays[t - 1])
        backward = _dis(grays[t - 1], grays[t])
        flows.append(forward)
        valid.append(visible_mask(forward, backward))
    match = np.full((frames, (size // 8) ** 2), -1, np.int64)
    if related and kind < config.p_identity_ref:
        match[0] = np.arange((size // 8) ** 2)
    sample = _finish(rng, rgbs, labs, flows, valid, ref_rgb, match, related, config, rect)
    sample.context = context
    return sample


def _finish(
    rng: np.random.Generator,
    rgbs: list[np.ndarray],
    labs: list[np.ndarray],
    flows: list[np.ndarray],
    valid: list[np.ndarray],
    ref_rgb: np.ndarray,
    match: np.ndarray,
    related: bool,
    config: TrainConfig,
    rect: tuple[int, int, int, int] | None = None,
) -> Sample:
    ref_rgb = np.clip(ref_rgb, 0, 1).astype(np.float32)
    if config.p_color_jitter > 0 and rng.random() < config.p_color_jitter:  # no draw when off: old runs replay
        rgbs, labs, ref_rgb = _color_jitter(rng, rgbs, ref_rgb, config.color_jitter_degrees)
    ref_lab = rgb_to_lab(ref_rgb)
    stack = np.stack(labs)
    # input lightness: mostly that of the luma a gray video would carry (same conversion for the
    # reference's matching lightness), sometimes the true Lab L
    if rng.random() < config.p_luma_input:
        matrix = "bt601" if rng.random() < 0.5 else "bt709"
        lightness = np.stack([luma_lightness(r, matrix) for r in rgbs])
        ref_l = luma_lightness(ref_rgb, matrix)
    else:
        lightness = stack[..., 0]
        ref_l = ref_lab[..., 0]
    if rng.random() < config.p_degraded_ref:
        ref_l = _degrade_reference_l(rng, ref_l)
    lightness = _luma_jitter(rng, lightness)
    ref_ab = ref_lab[..., 1:].astype(np.float32)
    if rect is not None:  # a reference that shows part of the scene: the rest is padding, as the colorizer's canvas
        x0, y0, x1, y1 = rect
        inner_l, inner_ab = ref_l[y0:y1, x0:x1].copy(), ref_ab[y0:y1, x0:x1].copy()
        ref_l = np.full_like(ref_l, inner_l.mean())
        ref_l[y0:y1, x0:x1] = inner_l
        ref_ab = np.zeros_like(ref_ab)
        ref_ab[y0:y1, x0:x1] = inner_ab
    dis_flow, dis_visible = dis_flows(lightness)
    ref_flow, ref_visible, ref_scene, ref_shown = reference_flows(lightness, ref_l, config.scene_check, rect)
    return Sample(
        lightness=lightness,
        ab=stack[..., 1:].astype(np.float32),
        flow=np.stack(flows).astype(np.float32),
        valid=np.stack(valid),
        ref_l=ref_l.astype(np.float32),
        ref_ab=ref_ab,
        match=match,
        related=related,
        dis_flow=dis_flow,
        dis_visible=dis_visible,
        ref_flow=ref_flow,
        ref_visible=ref_visible,
        ref_scene=ref_scene,
        ref_shown=ref_shown,
    )


def _color_jitter(rng: np.random.Generator, rgbs: list[np.ndarray], ref_rgb: np.ndarray,
                  degrees: float) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """One chroma rotation and saturation scale for every frame and the reference (Lab L kept;
    colours leaving the gamut are clipped); returns the new RGB frames, their Lab and the reference."""
    angle = math.radians(rng.uniform(-degrees, degrees))
    scale = rng.uniform(0.85, 1.15)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32) * np.float32(scale)

    def shift(rgb: np.ndarray) -> np.ndarray:
        lab = rgb_to_lab(rgb)
        lab[..., 1:] = lab[..., 1:] @ turn.T
        return lab_to_rgb(lab)

    new_rgbs = [shift(r) for r in rgbs]
    return new_rgbs, [rgb_to_lab(r) for r in new_rgbs], shift(ref_rgb)


def dis_flows(lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DIS flow from each frame to the one before, and its forward-backward visibility (frame 0: zeros)."""
    grays = [np.clip(l * 2.55 + 0.5, 0, 255).astype(np.uint8) for l in lightness]
    flows = [np.zeros(lightness.shape[1:] + (2,), np.float32)]
    visible = [np.zeros(lightness.shape[1:], bool)]
    for t in range(1, len(grays)):
        forward = _dis(grays[t], grays[t - 1])
        flows.append(forward)
        visible.append(visible_mask(forward, _dis(grays[t - 1], grays[t])))
    return np.stack(flows), np.stack(visible)


def _gray8(lightness: np.ndarray) -> np.ndarray:
    return np.clip(lightness * 2.55 + 0.5, 0, 255).astype(np.uint8)


def reference_flows(lightness: np.ndarray, ref_l: np.ndarray, scene_check: bool = False,
                    rect: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DIS flow from each frame to the (same-size) reference's lightness, its visibility (scaled
    by how far the reference shows the frame's scene with ``scene_check``, as at inference), that
    share per frame (ones without ``scene_check``), and per pixel how far the reference shows it
    (:func:`shown_by`, for a reference that is only ``rect`` of its canvas; else ones): the
    colorizer's rules for a placed reference (flow landing on the padding is not visible)."""
    ref_gray = _gray8(ref_l)
    flows, visible, scenes, shown = [], [], [], []
    for l in lightness:
        gray = _gray8(l)
        flow = Flow.of(_dis(gray, ref_gray), _dis(ref_gray, gray))
        if rect is not None:
            flow = within(flow, rect)
        flows.append(flow.forward)
        scenes.append(same_scene(flow, gray, ref_gray) if scene_check else 1.0)
        visible.append(flow.visible * np.float32(scenes[-1]) if scene_check else flow.visible)
        shown.append(shown_by(flow) if rect is not None else np.ones(gray.shape, np.float32))
    return np.stack(flows), np.stack(visible), np.asarray(scenes, np.float32), np.stack(shown)


@dataclass
class Batch:
    """Tensors for one iteration; ``l`` and ``ab`` are network-normalised, shape (B, T, C, S, S)."""

    l: torch.Tensor
    ab: torch.Tensor
    flow: torch.Tensor
    valid: torch.Tensor
    ref_l: torch.Tensor
    ref_ab: torch.Tensor
    match: torch.Tensor
    related: torch.Tensor
    has_ref: bool
    dis_flow: torch.Tensor
    dis_visible: torch.Tensor
    ref_flow: torch.Tensor
    ref_visible: torch.Tensor
    #: (B,) 1 where the reference shows the same scene (full L1), 0 for a retrieved photo.
    aligned: torch.Tensor
    #: (B,) 1 where the reference is not pixel-aligned: the contextual loss applies.
    context: torch.Tensor
    #: (B, T) how far the reference shows each frame's scene (ones without ``scene_check``).
    ref_scene: torch.Tensor
    #: (B, T, 1, S, S) how far a partial reference shows each pixel (ones for whole references).
    ref_shown: torch.Tensor | None = None


def make_batch(data: TrainingData, config: TrainConfig, iteration: int) -> Batch:
    """The batch of ``iteration``: a pure function of ``(config.seed, iteration)``."""
    rng = np.random.default_rng([config.seed, iteration])
    samples = []
    for _ in range(config.batch_size):
        if data.clips and rng.random() < config.p_clip:
            samples.append(clip_sample(rng, data.clips, config))
        else:
            samples.append(photo_sample(rng, data.photos, config, data.neighbours))
    has_ref = bool(rng.random() >= config.p_no_ref_batch)

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(s, name) for s in samples]))

    return Batch(
        l=stack("lightness").unsqueeze(2) / 50.0 - 1.0,
        ab=stack("ab").permute(0, 1, 4, 2, 3) / AB_SCALE,
        flow=stack("flow").permute(0, 1, 4, 2, 3),
        valid=stack("valid").unsqueeze(2).float(),
        ref_l=stack("ref_l").unsqueeze(1) / 50.0 - 1.0,
        ref_ab=stack("ref_ab").permute(0, 3, 1, 2) / AB_SCALE,
        match=stack("match"),
        related=torch.tensor([s.related for s in samples], dtype=torch.float32),
        has_ref=has_ref,
        dis_flow=stack("dis_flow").permute(0, 1, 4, 2, 3),
        dis_visible=stack("dis_visible").unsqueeze(2).float(),
        ref_flow=stack("ref_flow").permute(0, 1, 4, 2, 3),
        ref_visible=stack("ref_visible").unsqueeze(2).float(),
        aligned=torch.tensor([s.aligned for s in samples], dtype=torch.float32),
        context=torch.tensor([s.context for s in samples], dtype=torch.float32),
        ref_scene=stack("ref_scene"),
        ref_shown=stack("ref_shown").unsqueeze(2) if config.p_half_ref > 0 else None,
    )


# ------------------------------------------------------------------------------------------------
# losses


def edge_aware_smoothness(ab: torch.Tensor, l_norm: torch.Tensor, sharpness: float = 10.0) -> torch.Tensor:
    """Chroma gradients, forgiven where lightness has an edge (colour may change at edges only)."""
    dx = (ab[..., :, 1:] - ab[..., :, :-1]).abs().sum(1, keepdim=True)
    dy = (ab[..., 1:, :] - ab[..., :-1, :]).abs().sum(1, keepdim=True)
    wx = torch.exp(-sharpness * (l_norm[..., :, 1:] - l_norm[..., :, :-1]).abs())
    wy = torch.exp(-sharpness * (l_norm[..., 1:, :] - l_norm[..., :-1, :]).abs())
    return (dx * wx).mean() + (dy * wy).mean()


def compute_losses(model: VCNet, batch: Batch, config: TrainConfig, iteration: int) -> dict[str, torch.Tensor]:
    """Unroll the recurrence over the batch's frames and return every loss term plus their total."""
    rng = np.random.default_rng([config.seed, iteration, 7])
    reference = model.reference_memory(batch.ref_l, batch.ref_ab) if batch.has_ref else None
    related = batch.related.view(-1, 1, 1, 1)
    # a retrieved reference's colours need not be the truth's: its L1 is only a weak prior
    l1_weight = (batch.aligned + (1.0 - batch.aligned) * config.retrieved_l1).view(-1, 1, 1, 1)
    terms = {k: batch.l.new_zeros(()) for k in ("l1", "mse", "coarse", "match", "temporal", "smooth", "context")}
    previous = previous_ab = None
    frames = batch.l.shape[1]
    for t in range(frames):
        l_t, ab_t = batch.l[:, t], batch.ab[:, t]
        flow_ab = flow_conf = None
        if t > 0 and previous_ab is not None:
            flow_ab, flow_conf = flow_candidate(previous_ab, batch.l[:, t - 1], l_t, batch.dis_flow[:, t], batch.dis_visible[:, t])
        ref_flow_ab = ref_flow_conf = None
        if reference is not None:
            ref_flow_ab, ref_flow_conf = flow_candidate(batch.ref_ab, batch.ref_l, l_t, batch.ref_flow[:, t], batch.ref_visible[:, t])
        out = model.step(
            l_t, reference, previous, previous_ab, flow_ab=flow_ab, flow_confidence=flow_conf,
            ref_flow_ab=ref_flow_ab, ref_flow_confidence=ref_flow_conf,
            scene=_scene_map(batch, t) if config.scene_check else None,
        )
        error = out.ab - ab_t
        terms["l1"] = terms["l1"] + (error.abs() * l1_weight).mean()
        terms["mse"] = terms["mse"] + (error.square() * l1_weight).mean()
        if t == frames - 1 and reference is not None and config.w_context > 0 and bool(batch.context.any()):
            chosen = batch.context.nonzero()[:, 0]
            # summed over frames like the others, though measured on the last one only
            terms["context"] = terms["context"] + frames * contextual_loss(
                l_t[chosen], out.ab[chosen], batch.ref_l[chosen], batch.ref_ab[chosen])
        terms["smooth"] = terms["smooth"] + edge_aware_smoothness(out.ab, l_t)
        if reference is not None:
            target8 = F.avg_pool2d(ab_t, 8)
            terms["coarse"] = terms["coarse"] + ((out.ref_coarse - target8).abs() * related).mean()
            if out.ref_logits is not None and bool((batch.match[:, t] >= 0).any()):
                logits = out.ref_logits
                terms["match"] = terms["match"] + F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), batch.match[:, t].reshape(-1), ignore_index=-1
                )
        if t > 0 and previous_ab is not None:
            warped = warp_tensor(previous_ab, batch.flow[:, t])
            mask = batch.valid[:, t]
            terms["temporal"] = terms["temporal"] + ((out.ab - warped).abs() * mask).sum() / (2 * mask.sum() + 1.0)
        draw = rng.random()
        if t + 1 < frames and draw < config.p_teacher_forcing + config.p_drifted_previous:
            # ground truth as the previous output; sometimes "drifted" (saturation scaled, hue shifted,
            # blotchy) so the network learns to pull a wrong past back to the reference
            prev_ab = ab_t
            if draw >= config.p_teacher_forcing:
                gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
                batch_size = ab_t.shape[0]
                scale = torch.empty(batch_size, 1, 1, 1).uniform_(0.6, 1.6, generator=gen)
                shift = torch.randn(batch_size, 2, 1, 1, generator=gen) * 0.05
                blotch = F.interpolate(torch.randn(batch_size, 2, 4, 4, generator=gen) * 0.05, size=ab_t.shape[-2:], mode="bilinear", align_corners=False)
                prev_ab = ab_t * scale + shift + blotch
            feats = model.encode(l_t)
            previous, previous_ab = model.memory(feats, prev_ab), prev_ab
        else:
            previous, previous_ab = out.memory, out.ab_full
    terms = {k: v / frames for k, v in terms.items()}
    terms["total"] = (
        config.w_l1 * terms["l1"]
        + config.w_mse * terms["mse"]
        + config.w_coarse * terms["coarse"]
        + config.w_match * terms["match"]
        + config.w_temporal * terms["temporal"]
        + config.w_smooth * terms["smooth"]
        + config.w_context * terms["context"]
    )
    return terms


def _scene_map(batch: Batch, t: int) -> torch.Tensor:
    """How far the reference shows frame ``t``'s scene: (B,), or per pixel (B, 1, S, S) when the
    run has partial references (the frame's share times :func:`shown_by`, as the colorizer's)."""
    if batch.ref_shown is None:
        return batch.ref_scene[:, t]
    return batch.ref_scene[:, t].view(-1, 1, 1, 1) * batch.ref_shown[:, t]


#: Trunk strides of the contextual loss, and seed 001's bandwidth h.
CONTEXT_STRIDES = (8, 16)
CONTEXT_BANDWIDTH = 0.1


def contextual_loss(l_norm: torch.Tensor, ab: torch.Tensor, ref_l_norm: torch.Tensor, ref_ab: torch.Tensor) -> torch.Tensor:
    """Seed 001's contextual loss (Mechrez et al., forward matching) on frozen ImageNet-trunk features.

    Each feature of the output (its lightness with the predicted chroma, as sRGB) looks for its
    closest feature of the reference: cosine distances normalised by the closest one, affinities
    ``softmax((1 - d) / h)``, loss ``-log(mean_i max_j A(i, j))``, averaged over the strides. It
    needs no pixel alignment, only that what the output shows has the colours the reference gives it.
    """
    backbone = shared_backbone(l_norm.device)
    output = lab_to_rgb_torch(torch.cat([(l_norm + 1.0) * 50.0, ab * AB_SCALE], dim=1))
    with torch.no_grad():
        reference = backbone.forward_rgb(lab_to_rgb_torch(torch.cat([(ref_l_norm + 1.0) * 50.0, ref_ab * AB_SCALE], dim=1)),
                                         CONTEXT_STRIDES)
    ours = backbone.forward_rgb(output, CONTEXT_STRIDES)
    total = l_norm.new_zeros(())
    for stride in CONTEXT_STRIDES:
        y = reference[stride].flatten(2)
        x = ours[stride].flatten(2)
        centre = y.mean(dim=2, keepdim=True)
        x, y = F.normalize(x - centre, dim=1), F.normalize(y - centre, dim=1)
        distance = 1.0 - torch.bmm(x.transpose(1, 2), y)  # (B, N, M)
        relative = distance / (distance.amin(dim=2, keepdim=True) + 1e-5)
        affinity = torch.softmax((1.0 - relative) / CONTEXT_BANDWIDTH, dim=2)
        total = total - torch.log(affinity.amax(dim=2).mean(dim=1) + 1e-5).mean()
    return total / len(CONTEXT_STRIDES)


# ------------------------------------------------------------------------------------------------
# validation


def _pad_to(image: np.ndarray, multiple: int) -> np.ndarray:
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return image
    pad = ((0, ph), (0, pw)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, pad, mode="reflect")


@torch.inference_mode()
def colorize_clip(model: VCNet, frames_rgb: Sequence[np.ndarray], reference_rgb: np.ndarray, short_side: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Colorize frames (uint8 RGB, gray input = their lightness) from one reference, recurrently.

    Returns (predicted ab, (gray-input L, true ab)) per frame at the working resolution.
    """
    h0, w0 = frames_rgb[0].shape[:2]
    w, h = working_size(w0, h0, short_side)
    rh, rw = reference_rgb.shape[:2]
    ref_w, ref_h = reference_size(rw, rh, w * h)
    ref_rgb = cv2.resize(reference_rgb.astype(np.float32) / 255.0, (ref_w, ref_h), interpolation=cv2.INTER_AREA)
    ref_lab = rgb_to_lab(ref_rgb)
    ref_lab[..., 0] = luma_lightness(ref_rgb)
    ref_t = torch.from_numpy(ref_lab).permute(2, 0, 1)[None]
    memory = model.reference_memory(ref_t[:, :1] / 50.0 - 1.0, ref_t[:, 1:] / AB_SCALE)
    # the reference at the frame's (padded) size, for the reference flow candidate
    ph, pw = h + (-h) % SIZE_MULTIPLE, w + (-w) % SIZE_MULTIPLE
    ref_same = cv2.resize(reference_rgb.astype(np.float32) / 255.0, (pw, ph), interpolation=cv2.INTER_AREA)
    ref_same_lab = rgb_to_lab(ref_same)
    ref_same_l = luma_lightness(ref_same)
    ref_gray = _gray8(ref_same_l)
    ref_l_t = torch.from_numpy(ref_same_l)[None, None] / 50.0 - 1.0
    ref_ab_t = torch.from_numpy(np.ascontiguousarray(ref_same_lab[..., 1:])).permute(2, 0, 1)[None] / AB_SCALE
    previous = previous_ab = previous_l = None
    previous_gray: np.ndarray | None = None
    predictions, truths = [], []
    for rgb in frames_rgb:
        small = cv2.resize(rgb.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
        lab = rgb_to_lab(small)
        lab[..., 0] = luma_lightness(small)  # the gray input's lightness, as bench/_inprocess.py feeds it
        padded = _pad_to(lab[..., 0], SIZE_MULTIPLE)
        l_t = torch.from_numpy(np.ascontiguousarray(padded))[None, None] / 50.0 - 1.0
        gray = np.clip(padded * 2.55 + 0.5, 0, 255).astype(np.uint8)
        flow_ab = flow_conf = None
        if previous_ab is not None and previous_gray is not None and previous_l is not None:
            forward = _dis(gray, previous_gray)
            visible = visible_mask(forward, _dis(previous_gray, gray))
            flow_ab, flow_conf = flow_candidate(
                previous_ab, previous_l, l_t, torch.from_numpy(forward).permute(2, 0, 1)[None], torch.from_numpy(visible)[None, None].float()
            )
        forward = _dis(gray, ref_gray)
        visible = visible_mask(forward, _dis(ref_gray, gray))
        ref_flow_ab, ref_flow_conf = flow_candidate(
            ref_ab_t, ref_l_t, l_t, torch.from_numpy(forward).permute(2, 0, 1)[None], torch.from_numpy(visible)[None, None].float()
        )
        out = model.step(
            l_t, memory, previous, previous_ab, flow_ab=flow_ab, flow_confidence=flow_conf,
            ref_flow_ab=ref_flow_ab, ref_flow_confidence=ref_flow_conf,
        )
        previous, previous_ab, previous_l, previous_gray = out.memory, out.ab_full, l_t, gray
        ab = out.ab[0, :, :h, :w].permute(1, 2, 0).numpy() * AB_SCALE
        predictions.append(np.clip(ab, -120, 120))
        truths.append(lab)
    return predictions, truths


def validate(model: VCNet, clips: dict[str, list[np.ndarray]], short_side: int, max_frames: int = 0) -> dict[str, float]:
    """Per-clip RGB PSNR of frames 1..N-1 (reference = true colours of frame 0), and the gray baseline.

    As in ``bench/_inprocess.py``, the input is the BT.601 luma of the true frames and the output is
    that lightness with the predicted chroma, compared with the true RGB at the working size.
    """
    was_training = model.training
    model.eval()
    scores: dict[str, float] = {}
    for name, frames in sorted(clips.items()):
        frames = frames[:max_frames] if max_frames else frames
        predictions, truths = colorize_clip(model, frames, frames[0], short_side)
        frames_true = [f.astype(np.float32) / 255.0 for f in frames[1:]]
        values, grays, chroma_pred, chroma_true = [], [], [], []
        for ab, lab in zip(predictions[1:], truths[1:]):
            truth = cv2.resize(frames_true.pop(0), (lab.shape[1], lab.shape[0]), interpolation=cv2.INTER_AREA)
            values.append(psnr(lab_to_rgb(np.concatenate([lab[..., :1], ab], axis=-1)), truth))
            grays.append(psnr(lab_to_rgb(np.concatenate([lab[..., :1], np.zeros_like(ab)], axis=-1)), truth))
            chroma_pred.append(float(np.hypot(ab[..., 0], ab[..., 1]).mean()))
            chroma_true.append(float(np.hypot(lab[..., 1], lab[..., 2]).mean()))
        scores[f"psnr/{name}"] = float(np.mean(values))
        scores[f"gray/{name}"] = float(np.mean(grays))
        scores[f"chroma_ratio/{name}"] = float(np.mean(chroma_pred) / max(np.mean(chroma_true), 1e-6))
    return finish_validation(scores, model, was_training)


# ------------------------------------------------------------------------------------------------
# checkpoints


def inference_payload(model: VCNet, meta: dict[str, object]) -> dict[str, object]:
    """What ships in ``default.pt``: format tag, architecture config, weights, provenance."""
    return {
        "format": WEIGHTS_FORMAT,
        "config": model.cfg.to_dict(),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "meta": meta,
    }


def save_checkpoint(path: Path, model: VCNet, optimizer: torch.optim.Optimizer, config: TrainConfig, iteration: int, best: float, elapsed: float) -> None:
    """A resumable training state: weights, optimizer moments, iteration, config, best score."""
    save_atomic(
        {
            "format": WEIGHTS_FORMAT + "-train",
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "iteration": iteration,
            "best": best,
            "elapsed_seconds": elapsed,
        },
        path,
    )


def load_checkpoint(path: Path) -> dict[str, object]:
    """Read a training state written by :func:`save_checkpoint`."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != WEIGHTS_FORMAT + "-train":
        raise ValueError(f"{str(path)!r} is not a vidcolor training checkpoint: pass a file written by vidcolor training")
    return state


def warm_start(model: VCNet, path: Path) -> int:
    """Copy every tensor of weights at ``path`` (inference file or checkpoint) that fits ``model``.

    Tensors of layers that grew (appended input or output channels) are copied into the leading
    slice, which keeps the function of the old network when the new inputs are zero.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    weights = payload["state_dict"] if "state_dict" in payload else payload["model"]  # inference file or last.pt
    own = model.state_dict()
    copied = 0
    for name, old in weights.items():
        new = own.get(name)
        if new is None or new.ndim != old.ndim or any(o > n for o, n in zip(old.shape, new.shape)):
            continue
        if new.shape != old.shape:
            # grown layer (inputs or outputs appended): old weights in place, new weights zero, new
            # biases as initialised, so the grown network starts computing what the old one did
            new = new.clone()
            if new.ndim >= 2:
                new.zero_()
        else:
            new = new.clone()
        new[tuple(slice(0, size) for size in old.shape)] = old
        own[name] = new
        copied += 1
    model.load_state_dict(own)
    if model.cfg.semantic and not model.cfg.semantic_blend and "log_semantic_temperature" not in weights:
        open_semantic_gate(model)
    return copied


#: How far below the luminance attention's gate the semantic gate of a warm-started v2 begins.
SEMANTIC_GATE_OFFSET = 2.0


def open_semantic_gate(model: VCNet) -> None:
    """Start a v2 network's semantic gate as the ``ref_patch`` gate lowered by :data:`SEMANTIC_GATE_OFFSET`.

    v1's gates are saturated (``ref_patch`` takes all the weight wherever there is a reference), so
    a gate started at a constant -4 has a softmax weight of zero and no gradient: measured, 308
    iterations left it and the semantic temperature exactly where they began. Tied to
    ``ref_patch``, it starts at about 12 % of that share, near the previous function, and learns.
    """
    k = len(CANDIDATES)
    with torch.no_grad():
        model.head.weight[k + 2] = model.head.weight[0]
        model.head.bias[k + 2] = model.head.bias[0] - SEMANTIC_GATE_OFFSET


def build_model(config: TrainConfig) -> VCNet:
    return VCNet(VCNetConfig.from_dict(config.model))


#: Parameter names :attr:`TrainConfig.semantic_only` trains (the layers a v1 file lacks).
SEMANTIC_ONLY_PREFIXES = ("semantic_blend.", "log_semantic_temperature", "semantic_refine.")


def trained_parameters(model: VCNet, config: TrainConfig) -> list[torch.nn.Parameter]:
    """The parameters the optimizer moves; with ``semantic_only`` the rest stop needing gradients."""
    if not config.semantic_only:
        return list(model.parameters())
    chosen = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(SEMANTIC_ONLY_PREFIXES))
        if parameter.requires_grad:
            chosen.append(parameter)
    return chosen


def learning_rate(config: TrainConfig, iteration: int) -> float:
    """Linear warm-up, constant, then cosine decay to 5 % over the last 30 % of the schedule."""
    if iteration < config.warmup:
        return config.lr * (iteration + 1) / config.warmup
    decay_start = int(0.7 * config.iterations)
    if iteration < decay_start:
        return config.lr
    progress = min(1.0, (iteration - decay_start) / max(1, config.iterations - decay_start))
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


# ------------------------------------------------------------------------------------------------
# the loop


def train(
    config: TrainConfig,
    log: Callable[[str], None] = print,
    resume: str | os.PathLike[str] | None = None,
    data: TrainingData | None = None,
    stop_at: int | None = None,
    export: str | os.PathLike[str] | None = None,
    export_last: str | os.PathLike[str] | None = None,
) -> VCNet:
    """Train (or continue training) VCNet; returns the model.

    Writes ``last.pt`` (resumable state) every ``checkpoint_minutes`` and at the end, ``best.pt``
    (inference weights) whenever the held-out validation PSNR improves (also copied to ``export``
    if given), and appends to ``train.log`` and ``metrics.jsonl`` in ``config.out_dir``. When the
    schedule's last iteration is reached, ``export_last`` (if given) receives the final weights.
    ``stop_at`` ends this run at that iteration (for chunked runs and tests) without changing the
    schedule, which is set by ``config.iterations``.
    """
    out_dir = start_run(config.out_dir, config.threads, config.seed)
    start_iteration, best, elapsed_before = 0, -math.inf, 0.0
    state = None
    if resume is not None:
        state = load_checkpoint(Path(resume))
        config = TrainConfig.from_dict({**state["config"], **_run_overrides(config)})  # type: ignore[dict-item]
    model = build_model(config)
    if config.init_from and state is None:
        copied = warm_start(model, Path(config.init_from))
        log(f"initialised {copied} tensors from {config.init_from}")
    optimizer = torch.optim.AdamW(trained_parameters(model, config), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    if state is not None:
        model.load_state_dict(state["model"])  # type: ignore[arg-type]
        optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        start_iteration = int(state["iteration"])  # type: ignore[arg-type]
        best = float(state["best"])  # type: ignore[arg-type]
        elapsed_before = float(state.get("elapsed_seconds", 0.0))  # type: ignore[union-attr]
        log(f"resumed from {resume} at iteration {start_iteration} (best {best:.3f} dB)")
    run_log = RunLog(out_dir, log)
    if data is None:
        data = load_training_data(config, run_log.say)
    run_log.say(f"model: {count_parameters(model)} parameters, config {config.model}")
    end = config.iterations if stop_at is None else min(stop_at, config.iterations)
    started = time.monotonic()
    last_checkpoint = started
    running = RunningMeans()
    model.train()
    iteration = start_iteration
    while iteration < end:
        batch = make_batch(data, config, iteration)
        terms = compute_losses(model, batch, config, iteration)
        if terms["total"].requires_grad:  # semantic_only: a batch without a reference, or showing only its own scene, has none
            optimizer_step(model, optimizer, terms["total"], learning_rate(config, iteration), config.grad_clip)
        iteration += 1
        running.add(terms)
        elapsed = elapsed_before + time.monotonic() - started
        if iteration % 50 == 0 or iteration == end:
            means = running.take()
            parts = " ".join(f"{k}={v:.4f}" for k, v in means.items())
            run_log.losses(iteration, elapsed, means, f"it {iteration} lr={learning_rate(config, iteration - 1):.2e} {parts} "
                                                      f"T={model.log_temperature.exp().item():.4f} wall={elapsed / 60:.1f}min")
        if config.val_every and (iteration % config.val_every == 0 or iteration == end):
            scores = validate(model, data.holdout, config.val_short_side, config.val_frames)
            run_log.validation(iteration, elapsed, scores)
            if scores["psnr/mean"] > best:
                best = scores["psnr/mean"]
                meta = {"iteration": iteration, "elapsed_seconds": elapsed, "validation": scores, "train_config": asdict(config)}
                run_log.best(inference_payload(model, meta), best, iteration, export)
        stop_for_time = config.max_minutes and time.monotonic() - started > config.max_minutes * 60
        if iteration == end or stop_for_time or time.monotonic() - last_checkpoint > config.checkpoint_minutes * 60:
            save_checkpoint(out_dir / "last.pt", model, optimizer, config, iteration, best, elapsed)
            last_checkpoint = time.monotonic()
        if stop_for_time:
            run_log.stopped(config.max_minutes, iteration)
            break
    if export_last and iteration == config.iterations:
        meta = {"iteration": iteration, "elapsed_seconds": elapsed_before + time.monotonic() - started,
                "train_config": asdict(config)}
        save_atomic(inference_payload(model, meta), Path(export_last))
        run_log.say(f"final weights (iteration {iteration}) written to {export_last}")
    run_log.close()
    return model


def _run_overrides(config: TrainConfig) -> dict[str, object]:
    """Settings a resumed run may change (where it runs and for how long), not what it learns."""
    return {
        "out_dir": config.out_dir,
        "data_root": config.data_root,
        "max_minutes": config.max_minutes,
        "checkpoint_minutes": config.checkpoint_minutes,
        "threads": config.threads,
        "val_every": config.val_every,
        "iterations": config.iterations,
        "val_short_side": config.val_short_side,
        "val_frames": config.val_frames,
    }


def main(argv: Sequence[str] | None = None, prog: str = "vidcolor-train") -> None:
    """Command-line entry: ``main(["--out", DIR, "--minutes", "40", "--resume", DIR/last.pt])``."""
    parser = argparse.ArgumentParser(prog=prog, description="Train the VCNet default model on the CPU.")
    parser.add_argument("--data", default=TrainConfig.data_root, help="shared data folder (photos/, clips/)")
    parser.add_argument("--out", default=TrainConfig.out_dir, help="run folder for checkpoints and logs")
    parser.add_argument("--iterations", type=int, default=TrainConfig.iterations)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop this chunk after so many minutes")
    parser.add_argument("--resume", default=None, help="a last.pt to continue from")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--crop", type=int, default=TrainConfig.crop)
    parser.add_argument("--unroll", type=int, default=TrainConfig.unroll, help="frames per training sequence (the recurrence)")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate (e.g. lower to fine-tune)")
    parser.add_argument("--warmup", type=int, default=TrainConfig.warmup, help="iterations of linear learning-rate warm-up")
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--val-every", type=int, default=TrainConfig.val_every)
    parser.add_argument("--val-size", type=int, default=TrainConfig.val_short_side, help="validation working short side")
    parser.add_argument("--clip-share", type=float, default=TrainConfig.p_clip,
                        help="share of training sequences cut from the colour clips (the rest: photos as pseudo-video)")
    parser.add_argument("--color-jitter", type=float, default=TrainConfig.p_color_jitter,
                        help="share of sequences whose colours (and their reference's) are rotated and rescaled together")
    parser.add_argument("--l1-weight", type=float, default=TrainConfig.w_l1, help="weight of the L1 loss on ab")
    parser.add_argument("--mse-weight", type=float, default=TrainConfig.w_mse,
                        help="weight of the squared error on ab (PSNR's own loss; e.g. 50 beside --l1-weight 2.5)")
    parser.add_argument("--export", default=None, help="also write each new best inference weights here")
    parser.add_argument("--init-from", default="", help="inference weights to warm-start a new run from")
    parser.add_argument(
        "--channels", default=",".join(map(str, VCNetConfig.channels)),
        help="encoder widths at 1/2, 1/4, 1/8 (wider than --init-from's: its function is kept, new channels start at zero)",
    )
    parser.add_argument("--match-channels", type=int, default=VCNetConfig.match_channels, help="matching feature width")
    parser.add_argument("--semantic", action="store_true",
                        help="v2: add the candidate matched on the frozen ImageNet trunk (--init-from a v1 file keeps its function)")
    parser.add_argument("--semantic-strides", default=",".join(map(str, VCNetConfig.semantic_strides)),
                        help="v2: trunk strides the semantic attention compares (8,16,32: stride 32 tells a face from a background)")
    parser.add_argument("--semantic-blend", action="store_true",
                        help="v2d: blend the semantic chroma into v1's result by a learned weight times 1 - same_scene "
                             "(needs --semantic and --scene-check)")
    parser.add_argument("--semantic-refine", action="store_true",
                        help="v2e: a zero-initialised network after v1's refinement moves the output with the semantic "
                             "colour where the reference does not show the content (needs --semantic-blend)")
    parser.add_argument("--half-ref", type=float, default=TrainConfig.p_half_ref,
                        help="share of clip sequences whose reference is a near frame with 40-60 %% of it padding "
                             "(content the reference does not show, as a left-half reference)")
    parser.add_argument("--semantic-only", action="store_true",
                        help="train only the layers v1 lacks (the semantic blend head and temperature); v1's stay as --init-from gave them")
    parser.add_argument("--scene-check", action="store_true",
                        help="drop the reference's optical flow where the reference is another picture, as inference does")
    parser.add_argument("--added-clips", action="store_true", help="also train on the clips MANIFEST.md added for issue 24")
    parser.add_argument("--far-ref", type=float, default=TrainConfig.p_far_ref,
                        help="share of clip sequences whose reference is a far frame, cropped 5-20 %%, often mirrored")
    parser.add_argument("--retrieved-ref", type=float, default=TrainConfig.p_retrieved_ref,
                        help="share of photo sequences whose reference is a similar photo (global trunk feature)")
    parser.add_argument("--retrieved-l1", type=float, default=TrainConfig.retrieved_l1,
                        help="L1 weight factor for sequences whose reference is a retrieved similar photo")
    parser.add_argument("--context-weight", type=float, default=TrainConfig.w_context,
                        help="weight of the contextual loss for references that are not pixel-aligned")
    parser.add_argument("--exclude-photos", default="",
                        help="comma-separated glob patterns under photos/ never to train on (e.g. a test's targets)")
    parser.add_argument("--val-frames", type=int, default=TrainConfig.val_frames, help="frames per validation clip (0 = all)")
    parser.add_argument("--export-last", default=None,
                        help="when the schedule ends, write the final inference weights here (no choice among checkpoints)")
    args = parser.parse_args(argv)
    try:
        channels = tuple(int(width) for width in args.channels.split(","))
    except ValueError:
        channels = ()
    if len(channels) != 3 or min(channels) < 1:
        parser.error(f"--channels takes three positive widths such as 16,32,64, not {args.channels!r}")
    try:
        strides = tuple(int(stride) for stride in args.semantic_strides.split(","))
    except ValueError:
        strides = ()
    if not strides or any(stride not in (8, 16, 32) for stride in strides) or min(strides) != 8:
        parser.error(f"--semantic-strides takes trunk strides among 8,16,32 including 8 (the network's 1/8 grid), "
                     f"not {args.semantic_strides!r}")
    if args.semantic_blend and not (args.semantic and args.scene_check):
        parser.error("--semantic-blend needs --semantic (the blended candidate) and --scene-check (its weight is scaled by 1 - same_scene)")
    if args.semantic_refine and not args.semantic_blend:
        parser.error("--semantic-refine needs --semantic-blend (it refines the blended output)")
    if args.semantic_only and not (args.semantic and args.init_from):
        parser.error("--semantic-only needs --semantic and --init-from (the v1 weights it keeps)")
    if args.unroll < 1:
        parser.error(f"--unroll takes the number of frames per training sequence (at least 1), not {args.unroll}")
    if args.warmup < 0:
        parser.error(f"--warmup takes a number of iterations (0 or more), not {args.warmup}")
    for flag, share in (("--clip-share", args.clip_share), ("--color-jitter", args.color_jitter),
                        ("--far-ref", args.far_ref), ("--retrieved-ref", args.retrieved_ref), ("--half-ref", args.half_ref)):
        if not 0.0 <= share <= 1.0:
            parser.error(f"{flag} takes a fraction between 0 and 1, not {share}")
    for flag, weight in (("--l1-weight", args.l1_weight), ("--mse-weight", args.mse_weight),
                         ("--context-weight", args.context_weight), ("--retrieved-l1", args.retrieved_l1)):
        if weight < 0:
            parser.error(f"{flag} takes a weight of 0 or more, not {weight}")
    config = TrainConfig(
        data_root=args.data,
        out_dir=args.out,
        iterations=args.iterations,
        max_minutes=args.minutes,
        seed=args.seed,
        batch_size=args.batch_size,
        crop=args.crop,
        unroll=args.unroll,
        lr=args.lr,
        warmup=args.warmup,
        threads=args.threads,
        val_every=args.val_every,
        val_short_side=args.val_size,
        init_from=args.init_from,
        p_clip=args.clip_share,
        p_color_jitter=args.color_jitter,
        w_l1=args.l1_weight,
        w_mse=args.mse_weight,
        added_clips=args.added_clips,
        p_far_ref=args.far_ref,
        p_half_ref=args.half_ref,
        p_retrieved_ref=args.retrieved_ref,
        w_context=args.context_weight,
        retrieved_l1=args.retrieved_l1,
        val_frames=args.val_frames,
        scene_check=args.scene_check,
        semantic_only=args.semantic_only,
        exclude_photos=tuple(pattern for pattern in args.exclude_photos.split(",") if pattern),
        model=VCNetConfig(channels=channels, match_channels=args.match_channels,  # type: ignore[arg-type]
                          semantic=args.semantic, semantic_strides=strides, semantic_blend=args.semantic_blend,
                          semantic_refine=args.semantic_refine).to_dict(),
    )
    train(config, resume=args.resume, export=args.export, export_last=args.export_last)
