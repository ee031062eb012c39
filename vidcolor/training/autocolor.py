"""Training the ``autocolor`` decoder on the CPU, on frozen features computed once.

The trunk (EfficientNet-Lite0) is frozen, so its features of a training image never change: they
are computed once per image (and once per horizontal flip) at a fixed size and cached as float16
(``--cache``, about 300 KB per image), and each iteration only runs the small decoder. The loss is
seed 004's: cross-entropy against the soft-encoded true ab (5 nearest bins, Gaussian σ = 5) at
stride 4, each pixel weighted by the class-rebalancing weight of its nearest bin (λ = ½ mix of the
training set's smoothed bin prior with the uniform distribution).

Data (``--data``, the shared data folder): every colour photo under ``photos/`` except
``bsds500/test`` (the photo benchmark of ``bench/automatic.py``), the ten CelebA-HQ ``src`` faces
(the face test's photos) and the validation photos (the first ``val_count`` of ``bsds500/val``), plus every ``clip_step``-th frame of the ten clips added
for training (MANIFEST.md "Training additions"). The seven bench clips and bigbuckbunny are never
read. Each image is scaled to short side ``size`` and centre-cropped to a ``size`` square.

Augmentation without re-encoding (``--crop-min``): a random window of the cached feature maps
(the same window at every stride, ``crop_min`` to 7 cells of the stride-32 grid on a side), so
the decoder sees objects at other places and a global context from part of the picture.

A video validation split (``--val-clips``): whole training clips moved out of training, scored
at every validation on their cached frames (no re-encoding), so that a checkpoint and a decoding
can be chosen on video the decoder never saw (the photo validation set disagrees with video).
``--video-weight`` draws the remaining clips' frames that many times more often than a photo.
Every validation also stores the decoder (batch-norm statistics recomputed) as
``snapshots/it<N>.pt`` in the inference format: early stopping picks one afterwards.

Resumable: ``checkpoint.pt`` in the run folder holds decoder, optimizer, iteration, prior and the
time trained; the batch of iteration ``i`` is a pure function of ``(seed, i)``; ``--max-minutes``
stops a chunk, rerunning the same command continues it. A continuation may start a new cosine
learning-rate cycle at the iteration it resumes from (``--cycle-start``, with its own ``--lr``).
At every stop the batch-norm statistics are recomputed over ``bn_batches`` training batches
(their running averages over the last few batches of 16 made the validation loss jump by 0.06).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ..color import rgb_to_gray_lightness, rgb_to_lab
from ..models.autocolor import STRIDES, AutocolorConfig, AutocolorDecoder, count_parameters
from ..models.eccv16 import REBALANCE_LAMBDA, SOFT_NEIGHBOURS, SOFT_SIGMA, ab_bins, nearest_bin, rebalance_weights, smooth_prior
from ..models.efficientnet_lite import WEIGHTS_SHA256, shared_backbone
from .common import PHOTO_EXTENSIONS, config_from_dict, is_colourful, read_rgb, save_atomic
from .eccv16 import auc_cmf, learning_rate, rebalanced_loss

#: Format tags of the inference file (read by :mod:`vidcolor.colorizers.autocolor`) and of checkpoints.
WEIGHTS_FORMAT = "vidcolor-autocolor-1"
CHECKPOINT_FORMAT = "vidcolor-autocolor-train-1"
#: Photo folders never trained on (relative to ``<data>/photos``): the photo benchmark.
BENCHMARK_DIRS = ("bsds500/test",)
#: Photos never trained on because tests judge the model on them (tests/test_autocolor.py's faces).
TEST_PHOTOS = "stargan_v2_faces_animals/celeba_hq_src_"
#: The clips added for training (MANIFEST.md), relative to ``<data>/clips``; nothing else of clips/ is read.
TRAINING_CLIP_SOURCES = ("imageio", "tiny_ucf101", "mmaction2", "cotracker", "sam2", "aot_youtubevos", "pysot")
#: The annealed-mean temperature stored with the weights until one is chosen on training clips.
DEFAULT_VIBRANCY = 0.38


@dataclass
class TrainConfig:
    """Everything that defines a run (stored in every checkpoint). Folders are relative to the
    current folder (the repository root in the model card's commands)."""

    data_root: str = "../shared/data"
    out_dir: str = "runs/autocolor"
    cache_dir: str = "runs/autocolor-cache"
    size: int = 224
    clip_step: int = 2
    val_count: int = 40
    seed: int = 25
    iterations: int = 3000
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    lr_floor: float = 0.02
    threads: int = 1
    max_minutes: float = 0.0
    checkpoint_minutes: float = 3.0
    val_every: int = 250
    lam: float = REBALANCE_LAMBDA
    #: Smallest random window of the features, in stride-32 cells (0: always the whole crop).
    crop_min: int = 0
    #: The iteration where the current warm-up + cosine learning-rate cycle starts.
    cycle_start: int = 0
    #: Training batches the batch-norm statistics are recomputed over at every stop (0: keep the running ones).
    bn_batches: int = 60
    #: Training clips (relative to ``<data>/clips``) moved out of training into the video validation split.
    val_clips: list[str] = field(default_factory=list)
    #: How many times more often a training clip's frame is drawn than a photo.
    video_weight: float = 1.0
    #: Store the decoder at every validation (``snapshots/it<N>.pt``) for early stopping.
    snapshots: bool = False
    widths: list[int] = field(default_factory=lambda: list(AutocolorConfig().widths))

    def model_config(self) -> AutocolorConfig:
        return AutocolorConfig(widths=tuple(self.widths))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# data


def training_sources(config: TrainConfig) -> tuple[list[Path], list[Path]]:
    """(training images, validation photos), sorted: photos minus the benchmark and validation
    photos, plus every ``clip_step``-th frame of the added training clips."""
    root = Path(config.data_root)
    photos = root / "photos"
    if not photos.is_dir():
        raise FileNotFoundError(f"training photos not found at {str(photos)!r}: pass --data pointing at shared/data")
    excluded = [photos / d for d in BENCHMARK_DIRS]
    all_photos = sorted(p for p in photos.rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS
                        and not any(p.is_relative_to(e) for e in excluded)
                        and not p.relative_to(photos).as_posix().startswith(TEST_PHOTOS))
    val = sorted(p for p in all_photos if p.is_relative_to(photos / "bsds500" / "val"))[: config.val_count]
    train = [p for p in all_photos if p not in set(val)]
    for source in TRAINING_CLIP_SOURCES:
        for clip in sorted((root / "clips" / source).glob("*")):
            frames = sorted(p for p in clip.glob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
            train += frames[:: config.clip_step]
    return train, val


def is_clip_frame(name: str) -> bool:
    """True for a cached item (a path relative to the data folder) that is a training clip's frame."""
    return name.startswith("clips/")


def video_split(names: Sequence[str], val_clips: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(training item indices, video validation item indices) of a cache: the frames of ``val_clips``
    (their unmirrored items) validate, everything else trains."""
    prefixes = tuple(f"clips/{clip.strip('/')}/" for clip in val_clips)
    held = np.array([bool(prefixes) and n.startswith(prefixes) for n in names], dtype=bool)
    unknown = [c for c, prefix in zip(val_clips, prefixes) if not any(n.startswith(prefix) for n in names)]
    if unknown:
        raise ValueError(f"--val-clips {', '.join(unknown)}: no such training clip in the feature cache "
                         f"(give folders under clips/ such as imageio/cockatoo)")
    mirrored = np.array([n.endswith("#flip") for n in names], dtype=bool)
    return np.flatnonzero(~held), np.flatnonzero(held & ~mirrored)


def sampling_probabilities(names: Sequence[str], index: np.ndarray, video_weight: float) -> np.ndarray | None:
    """Draw probabilities over ``index``: clip frames ``video_weight`` times a photo's (None: uniform)."""
    if video_weight == 1.0:
        return None
    weights = np.array([video_weight if is_clip_frame(names[i]) else 1.0 for i in index])
    return weights / weights.sum()


def square_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Short side scaled to ``size`` (area down, cubic up), centre ``size`` square."""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    resized = cv2.resize(rgb, new, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y, x = (new[1] - size) // 2, (new[0] - size) // 2
    return np.ascontiguousarray(resized[y: y + size, x: x + size])


@dataclass
class FeatureCache:
    """Frozen features, lightness and true ab at stride 4 of every image (and its mirror), float16."""

    features: dict[int, np.ndarray]  # stride -> (N, C, size/stride, size/stride)
    lightness4: np.ndarray  # (N, 1, size/4, size/4)
    ab4: np.ndarray  # (N, size/4, size/4, 2)
    names: list[str]

    def subset(self, index: np.ndarray) -> FeatureCache:
        """The items ``index`` as a cache of their own (copies)."""
        return FeatureCache({s: f[index] for s, f in self.features.items()}, self.lightness4[index], self.ab4[index],
                            [self.names[i] for i in index])

    def batch(self, index: np.ndarray, window: tuple[int, int, int] | None = None
              ) -> tuple[dict[int, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Features, lightness and ab of the items ``index``; ``window`` = (top, left, side) in
        stride-32 cells crops the same region out of every map."""
        index = np.sort(index)
        features = {s: torch.from_numpy(f[index]).float() for s, f in self.features.items()}
        light, ab = torch.from_numpy(self.lightness4[index]).float(), torch.from_numpy(self.ab4[index]).float()
        if window is not None:
            top, left, side = window

            def cut(x: torch.Tensor, stride: int, channels_last: bool = False) -> torch.Tensor:
                k = 32 // stride
                rows, cols = slice(top * k, (top + side) * k), slice(left * k, (left + side) * k)
                return x[:, rows, cols] if channels_last else x[:, :, rows, cols]

            features = {s: cut(f, s) for s, f in features.items()}
            light, ab = cut(light, 4), cut(ab, 4, channels_last=True)
        return features, light, ab


def _encode(paths: Sequence[Path], size: int, root: Path, log: Callable[[str], None]) -> FeatureCache:
    backbone = shared_backbone("cpu")
    out = size // 4
    features: dict[int, list[np.ndarray]] = {s: [] for s in STRIDES}
    lights, abs_, names = [], [], []
    started = time.monotonic()
    for number, path in enumerate(paths):
        rgb8 = read_rgb(path)
        if rgb8 is None or min(rgb8.shape[:2]) < size * 0.75 or not is_colourful(rgb8):
            continue
        rgb = square_crop(rgb8, size).astype(np.float32) / 255.0
        for flip in (False, True):
            image = np.ascontiguousarray(rgb[:, ::-1]) if flip else rgb
            lightness = torch.from_numpy(rgb_to_gray_lightness(image))[None, None]
            with torch.inference_mode():
                maps = backbone(lightness, STRIDES)
            for stride in STRIDES:
                features[stride].append(maps[stride][0].numpy().astype(np.float16))
            lights.append(torch.nn.functional.avg_pool2d(lightness, 4)[0].numpy().astype(np.float16))
            abs_.append(cv2.resize(rgb_to_lab(image)[..., 1:], (out, out), interpolation=cv2.INTER_AREA).astype(np.float16))
            names.append(f"{path.relative_to(root).as_posix()}{'#flip' if flip else ''}")
        if number % 200 == 0:
            log(f"features: {number}/{len(paths)} images, {time.monotonic() - started:.0f} s")
    return FeatureCache({s: np.stack(f) for s, f in features.items()}, np.stack(lights), np.stack(abs_), names)


def load_or_encode(paths: Sequence[Path], config: TrainConfig, name: str, log: Callable[[str], None]) -> FeatureCache:
    """The cache ``name`` in ``cache_dir`` if it was made from exactly these files at this size, else encoded now."""
    folder = Path(config.cache_dir) / name
    root = Path(config.data_root)
    key = {"size": config.size, "backbone": WEIGHTS_SHA256, "files": [p.relative_to(root).as_posix() for p in paths]}
    manifest = folder / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text(encoding="utf-8"))["key"] == key:
        names = json.loads(manifest.read_text(encoding="utf-8"))["names"]
        return FeatureCache({s: np.load(folder / f"s{s}.npy") for s in STRIDES}, np.load(folder / "l4.npy"),
                            np.load(folder / "ab4.npy"), names)
    cache = _encode(paths, config.size, root, log)
    folder.mkdir(parents=True, exist_ok=True)
    for stride, array in cache.features.items():
        np.save(folder / f"s{stride}.npy", array)
    np.save(folder / "l4.npy", cache.lightness4)
    np.save(folder / "ab4.npy", cache.ab4)
    manifest.write_text(json.dumps({"key": key, "names": cache.names}) + "\n", encoding="utf-8")
    return cache


def bin_prior(ab4: np.ndarray) -> np.ndarray:
    """The smoothed empirical distribution of the true colours' nearest bins (G_σ ∘ p)."""
    centres = torch.from_numpy(ab_bins())
    counts = np.zeros(centres.shape[0], np.float64)
    for start in range(0, len(ab4), 256):
        index = nearest_bin(torch.from_numpy(ab4[start: start + 256].astype(np.float32)), centres)
        counts += np.bincount(index.numpy().ravel(), minlength=centres.shape[0])
    return smooth_prior(counts)


# ------------------------------------------------------------------------------------------------
# training


@torch.no_grad()
def video_validate(decoder: AutocolorDecoder, cache: FeatureCache, log_weights: np.ndarray,
                   corrections: Sequence[float] = (1.0, 1.25, 1.5)) -> dict[str, float]:
    """On the video validation frames: cross-entropy, and per prior correction α (T = 1) the ab
    RMSE (gray's as ``rmse_gray``), the chroma over the truth's and the worst clip's RMSE minus
    gray's (a cast on a near-gray clip shows there first)."""
    from ..models.eccv16 import annealed_mean, soft_encode

    was_training = decoder.training
    decoder.eval()
    centres = torch.from_numpy(ab_bins())
    adjustment = torch.from_numpy(np.asarray(log_weights, np.float32)).view(1, -1, 1, 1)
    clips = sorted({n.rsplit("/", 1)[0] for n in cache.names})
    clip_of = np.array([clips.index(n.rsplit("/", 1)[0]) for n in cache.names])
    ce, sq = [], {a: [] for a in corrections}
    gray_sq, chroma, true_chroma = [], {a: [] for a in corrections}, []
    for start in range(0, len(cache.names), 16):
        index = np.arange(start, min(start + 16, len(cache.names)))
        features, light, ab = cache.batch(index)
        logits = decoder(features, light)
        target = soft_encode(ab, centres)
        ce.append(-(target * torch.log_softmax(logits, 1).permute(0, 2, 3, 1)).sum(-1).mean((1, 2)))
        gray_sq.append((ab ** 2).sum(-1).mean((1, 2)))
        true_chroma.append(ab.norm(dim=-1).mean((1, 2)))
        for a in corrections:
            pred = annealed_mean(logits - a * adjustment, centres, 1.0).permute(0, 2, 3, 1)
            sq[a].append(((pred - ab) ** 2).sum(-1).mean((1, 2)))
            chroma[a].append(pred.norm(dim=-1).mean((1, 2)))
    decoder.train(was_training)

    def per_clip(values: list[torch.Tensor]) -> np.ndarray:
        flat = torch.cat(values).numpy()
        return np.array([flat[clip_of == c].mean() for c in range(len(clips))])

    gray_rmse = np.sqrt(per_clip(gray_sq))
    out = {"ce": float(per_clip(ce).mean()), "rmse_gray": float(gray_rmse.mean())}
    for a in corrections:
        rmse = np.sqrt(per_clip(sq[a]))
        out[f"rmse@{a}"] = float(rmse.mean())
        out[f"worst@{a}"] = float((rmse - gray_rmse).max())
        out[f"chroma_ratio@{a}"] = float(per_clip(chroma[a]).mean() / max(per_clip(true_chroma).mean(), 1e-6))
    return out


@torch.no_grad()
def validate(decoder: AutocolorDecoder, cache: FeatureCache, temperatures: Sequence[float] = (0.38,)) -> dict[str, float]:
    """Unweighted cross-entropy, and per temperature AuC and chroma over the truth's, on the validation set."""
    from ..models.eccv16 import annealed_mean, soft_encode

    was_training = decoder.training
    decoder.eval()
    centres = torch.from_numpy(ab_bins())
    ce, aucs, chroma, true_chroma, gray_aucs = [], {t: [] for t in temperatures}, {t: [] for t in temperatures}, [], []
    for start in range(0, len(cache.names), 16):
        index = np.arange(start, min(start + 16, len(cache.names)))
        features, light, ab = cache.batch(index)
        logits = decoder(features, light)
        target = soft_encode(ab, centres)
        ce.append(float(-(target * torch.log_softmax(logits, 1).permute(0, 2, 3, 1)).sum(-1).mean()))
        truth = ab.numpy()
        true_chroma.append(float(np.hypot(truth[..., 0], truth[..., 1]).mean()))
        gray_aucs.append(auc_cmf(np.zeros_like(truth), truth))
        for t in temperatures:
            pred = annealed_mean(logits, centres, t).permute(0, 2, 3, 1).numpy()
            aucs[t].append(auc_cmf(pred, truth))
            chroma[t].append(float(np.hypot(pred[..., 0], pred[..., 1]).mean()))
    decoder.train(was_training)
    out = {"ce": float(np.mean(ce)), "gray_auc": float(np.mean(gray_aucs))}
    for t in temperatures:
        out[f"auc@{t}"] = float(np.mean(aucs[t]))
        out[f"chroma_ratio@{t}"] = float(np.mean(chroma[t]) / max(np.mean(true_chroma), 1e-6))
    return out


def random_window(rng: np.random.Generator, config: TrainConfig) -> tuple[int, int, int] | None:
    """A random (top, left, side) window of the stride-32 grid, or None without ``crop_min``."""
    cells = config.size // 32
    if not config.crop_min or config.crop_min >= cells:
        return None
    side = int(rng.integers(config.crop_min, cells + 1))
    return int(rng.integers(0, cells - side + 1)), int(rng.integers(0, cells - side + 1)), side


def cycle_learning_rate(config: TrainConfig, iteration: int) -> float:
    """Warm-up + cosine (eccv16's schedule) over the cycle from ``cycle_start`` to ``iterations``."""
    cycle = replace(config, iterations=config.iterations - config.cycle_start)
    return learning_rate(cycle, iteration - config.cycle_start)


@torch.no_grad()
def recompute_batchnorm(decoder: AutocolorDecoder, cache: FeatureCache, config: TrainConfig,
                        items: np.ndarray | None = None) -> None:
    """Batch-norm statistics as plain averages over ``bn_batches`` fixed training batches (whole
    crops, the inference view) instead of the last few batches' running averages; ``items``: the
    cache's training items (default all)."""
    norms = [m for m in decoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not config.bn_batches or not norms:
        return
    was_training = decoder.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    items = np.arange(len(cache.names)) if items is None else items
    decoder.train()
    for number in range(config.bn_batches):
        rng = np.random.default_rng((config.seed, 1 << 30, number))  # apart from any iteration
        decoder(*cache.batch(items[rng.choice(len(items), config.batch_size, replace=False)])[:2])
    for norm in norms:
        norm.momentum = 0.1
    decoder.train(was_training)


def inference_payload(decoder: AutocolorDecoder, meta: dict[str, object]) -> dict[str, object]:
    """What :func:`vidcolor.colorizers.autocolor.load_autocolor` reads; tensors in float16 (half the file)."""
    state = {k: v.detach().half() if v.is_floating_point() else v.detach().clone() for k, v in decoder.state_dict().items()}
    return {"format": WEIGHTS_FORMAT, "config": decoder.config.to_dict(), "state_dict": state,
            "meta": json.loads(json.dumps(meta))}


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict[str, object]:
    """Run (or resume) training until ``iterations`` or ``max_minutes``; writes ``weights.pt`` at each stop."""
    torch.set_num_threads(config.threads)
    cv2.setNumThreads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_paths, val_paths = training_sources(config)
    wall_start = time.monotonic()
    train_cache = load_or_encode(train_paths, config, f"train-{config.size}", log)
    val_cache = load_or_encode(val_paths, config, f"val-{config.size}", log)
    train_items, video_items = video_split(train_cache.names, config.val_clips)
    video_cache = train_cache.subset(video_items) if len(video_items) else None
    draw = sampling_probabilities(train_cache.names, train_items, config.video_weight)
    log(f"data: {len(train_items)} training items ({len(train_paths)} files x2 flips, after filtering, "
        f"{len(video_items)} frames of {len(config.val_clips)} clips moved to video validation), "
        f"{len(val_cache.names)} validation items; features ready after {time.monotonic() - wall_start:.0f} s")
    if draw is not None:
        video_share = float(sum(p for i, p in zip(train_items, draw) if is_clip_frame(train_cache.names[i])))
        log(f"video weight {config.video_weight}: clip frames are {video_share:.1%} of the draws")
    torch.manual_seed(config.seed)
    decoder = AutocolorDecoder(config.model_config())
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ckpt_path = out / "checkpoint.pt"
    start, elapsed, history = 0, 0.0, []
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = config_from_dict(TrainConfig, json.loads(state["config"]))
        if saved.model_config() != config.model_config() or saved.seed != config.seed or saved.size != config.size:
            raise ValueError(f"{ckpt_path} was written by a different run (widths, size or seed differ): use another --out")
        decoder.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, elapsed = int(state["iteration"]), float(state["elapsed"])
        prior = state["prior"].numpy().astype(np.float64)
        history = json.loads(state["history"])
        log(f"resumed at iteration {start} ({elapsed / 60:.1f} min trained)")
        if saved.iterations != config.iterations:  # the learning-rate schedule follows the new total from here
            log(f"schedule re-planned at iteration {start}: {saved.iterations} -> {config.iterations} iterations")
            history.append({"iteration": start, "replanned_from": saved.iterations, "replanned_to": config.iterations})
        if tuple(saved.val_clips) != tuple(config.val_clips):
            raise ValueError(f"{ckpt_path} was trained with --val-clips {','.join(saved.val_clips) or '(none)'}: use another --out")
        changed = {k: (getattr(saved, k), getattr(config, k))
                   for k in ("lr", "crop_min", "cycle_start", "bn_batches", "video_weight")
                   if getattr(saved, k) != getattr(config, k)}
        if changed:
            log(f"recipe changed at iteration {start}: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
            history.append({"iteration": start, "recipe_changed": {k: list(v) for k, v in changed.items()}})
    else:
        prior = bin_prior(train_cache.ab4[train_items[train_items % 2 == 0]])  # the mirrors have the same colours
        log(f"prior: top bin share {prior.max():.3f}, bins with >0.1% mass {(prior > 1e-3).sum()}")
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    centres = torch.from_numpy(ab_bins())
    weights = torch.from_numpy(rebalance_weights(prior, config.lam))
    log(f"decoder: {count_parameters(decoder):,} parameters, widths {config.widths}; λ = {config.lam}; "
        f"{config.iterations} iterations of {config.batch_size}")

    def save(iteration: int) -> None:
        save_atomic({"format": CHECKPOINT_FORMAT, "config": json.dumps(asdict(config)), "model": decoder.state_dict(),
                     "optimizer": optimizer.state_dict(), "iteration": iteration, "elapsed": elapsed,
                     "prior": torch.from_numpy(prior), "history": json.dumps(history)}, ckpt_path)

    log_weights = np.log(rebalance_weights(prior, config.lam))

    def snapshot(iteration: int) -> dict[str, float]:
        """A copy of the decoder with its own batch-norm statistics, scored on the video validation
        frames and stored in the inference format; the training decoder is left as it is."""
        frozen = copy.deepcopy(decoder)
        recompute_batchnorm(frozen, train_cache, config, train_items)
        scores = {} if video_cache is None else {f"video_{k}": v for k, v in
                                                  video_validate(frozen, video_cache, log_weights).items()}
        meta = {"iteration": iteration, "train_seconds": elapsed, "vibrancy": 1.0, "prior_correction": 1.0,
                "log_rebalance_weights": [round(float(v), 6) for v in log_weights], "config": asdict(config),
                "video_validation": scores}
        save_atomic(inference_payload(frozen, meta), out / "snapshots" / f"it{iteration}.pt")
        return scores

    decoder.train()
    chunk_start = last_ckpt = time.monotonic()
    running, iteration = 0.0, start
    while iteration < config.iterations:
        t0 = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = cycle_learning_rate(config, iteration)
        rng = np.random.default_rng((config.seed, iteration))
        index = train_items[rng.choice(len(train_items), config.batch_size, replace=False, p=draw)]
        features, light, ab = train_cache.batch(index, random_window(rng, config))
        loss = rebalanced_loss(decoder(features, light), ab, centres, weights, SOFT_NEIGHBOURS, SOFT_SIGMA)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 5.0)
        optimizer.step()
        iteration += 1
        elapsed += time.monotonic() - t0
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if iteration > start + 1 else value
        if iteration % 50 == 0:
            log(f"it {iteration} loss {running:.4f} lr {cycle_learning_rate(config, iteration):.2e} {elapsed / 60:.1f} min")
        if iteration % config.val_every == 0 or iteration == config.iterations:
            result = {"iteration": iteration, **validate(decoder, val_cache, (1.0, 0.38, 0.2))}
            if config.snapshots:
                result.update(snapshot(iteration))
            history.append(result)
            log("val " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
        now = time.monotonic()
        if now - last_ckpt > config.checkpoint_minutes * 60:
            save(iteration)
            last_ckpt = now
        if config.max_minutes and now - chunk_start > config.max_minutes * 60:
            break
    recompute_batchnorm(decoder, train_cache, config, train_items)
    result = {"iteration": iteration, "batchnorm_recomputed": config.bn_batches, **validate(decoder, val_cache, (1.0,))}
    if video_cache is not None:
        result.update({f"video_{k}": v for k, v in video_validate(decoder, video_cache, log_weights).items()})
    history.append(result)
    log("val " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    save(iteration)
    meta = {"iteration": iteration, "train_seconds": elapsed, "vibrancy": DEFAULT_VIBRANCY, "config": asdict(config),
            "train_items": len(train_items), "history": history}
    save_atomic(inference_payload(decoder, meta), out / "weights.pt")
    log(f"stopped at iteration {iteration}/{config.iterations} after {elapsed / 60:.1f} min of training")
    return {"iteration": iteration, "elapsed": elapsed, "history": history}


def redecode_weights(source: Path, out: Path, vibrancy: float | None = None, prior_correction: float | None = None,
                     cast_removal: float | None = None, chroma_gain: float | None = None, keyframe: bool = False) -> Path:
    """``source`` (an inference file) with other decoding settings: the decoder's tensors are copied
    bit for bit, the meta keeps its history and records what the settings were before. ``keyframe``
    writes them as the no-reference keyframes' own (``keyframe_decoding``), leaving the plain ones.
    A setting left None keeps the file's own (a re-decode must not quietly reset, e.g., the prior
    correction to 0); each given one is range-checked here, so the file written always loads."""
    from ..colorizers.autocolor import KEYFRAME_DECODING_KEY, MAX_CHROMA_GAIN, MAX_PRIOR_CORRECTION

    keys = ("vibrancy", "prior_correction", "cast_removal", "chroma_gain")
    chosen = {k: float(v) for k, v in zip(keys, (vibrancy, prior_correction, cast_removal, chroma_gain)) if v is not None}
    limits = {"vibrancy": 1.0, "prior_correction": MAX_PRIOR_CORRECTION, "cast_removal": 1.0, "chroma_gain": MAX_CHROMA_GAIN}
    for key, value in chosen.items():
        if not 0.0 <= value <= limits[key]:
            raise ValueError(f"{key} must be in [0, {limits[key]:g}], got {value:g}: the colorizer would refuse the file")
    payload = torch.load(source, map_location="cpu", weights_only=True)
    if payload.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{source} is not an autocolor inference file (format {payload.get('format')!r})")
    meta = dict(payload["meta"])
    previous = meta.get(KEYFRAME_DECODING_KEY)
    if keyframe:
        meta["redecoded_from"] = [*meta.get("redecoded_from", []), {KEYFRAME_DECODING_KEY: previous}]
        meta[KEYFRAME_DECODING_KEY] = {**(previous if isinstance(previous, dict) else {}), **chosen}
    else:
        meta["redecoded_from"] = [*meta.get("redecoded_from", []), {k: meta.get(k) for k in keys}]
        meta.update(chosen)
    save_atomic({**payload, "meta": meta}, out)
    return out


def export_weights(run: Path, out: Path, vibrancy: float, prior_correction: float, cast_removal: float = 0.0,
                   snapshot: Path | None = None) -> Path:
    """Inference weights from ``run``/checkpoint.pt (or from a ``snapshot`` of that run) with the
    chosen decoding: the annealed-mean temperature, how much of the class rebalancing to take back
    out of the logits and how much of the frame's mean colour to take out."""
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    config = config_from_dict(TrainConfig, json.loads(state["config"]))
    decoder = AutocolorDecoder(config.model_config())
    decoder.load_state_dict(state["model"])
    log_weights = np.log(rebalance_weights(state["prior"].numpy().astype(np.float64), config.lam))
    meta = {"iteration": int(state["iteration"]), "train_seconds": float(state["elapsed"]), "vibrancy": vibrancy,
            "prior_correction": prior_correction, "cast_removal": cast_removal,
            "log_rebalance_weights": [round(float(v), 6) for v in log_weights],
            "config": asdict(config), "history": json.loads(state["history"])}
    if snapshot is not None:  # early stopping: that iteration's decoder; the whole run's history shows why it was kept
        chosen = torch.load(snapshot, map_location="cpu", weights_only=True)
        decoder.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in chosen["state_dict"].items()})
        meta.update(iteration=int(chosen["meta"]["iteration"]), train_seconds=float(chosen["meta"]["train_seconds"]),
                    stopped_early_of=int(state["iteration"]))
    save_atomic(inference_payload(decoder, meta), out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidcolor.training.autocolor",
                                     description="Train the autocolor decoder on frozen Lite0 features (CPU, resumable).")
    defaults = TrainConfig()
    parser.add_argument("--data", default=defaults.data_root, help="shared data folder holding photos/ and clips/")
    parser.add_argument("--out", default=defaults.out_dir, help="run folder (checkpoint.pt, weights.pt, train.log)")
    parser.add_argument("--cache", default=defaults.cache_dir, help="folder of the cached trunk features")
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--crop-min", type=int, default=defaults.crop_min,
                        help="smallest random feature window in stride-32 cells (0: whole crops)")
    parser.add_argument("--cycle-start", type=int, default=defaults.cycle_start,
                        help="iteration where the learning-rate cycle (warm-up + cosine to the end) starts: a continuation's own --lr")
    parser.add_argument("--bn-batches", type=int, default=defaults.bn_batches,
                        help="training batches the batch-norm statistics are recomputed over at every stop")
    parser.add_argument("--val-clips", default="",
                        help="comma-separated training clips (under clips/, e.g. imageio/cockatoo) moved to a video validation split")
    parser.add_argument("--video-weight", type=float, default=defaults.video_weight,
                        help="draw a training clip's frame this many times more often than a photo")
    parser.add_argument("--snapshots", action="store_true",
                        help="store the decoder at every validation as OUT/snapshots/it<N>.pt (early stopping)")
    parser.add_argument("--val-every", type=int, default=defaults.val_every)
    parser.add_argument("--lam", type=float, default=defaults.lam, help="rebalancing λ (1 = none)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop this chunk after so many minutes (rerun to resume)")
    parser.add_argument("--widths", default=",".join(map(str, defaults.widths)), help="4 comma-separated decoder widths")
    parser.add_argument("--export", metavar="PATH", help="only write inference weights from OUT/checkpoint.pt to PATH")
    parser.add_argument("--vibrancy", type=float, help=f"with --export: the temperature stored in the file (default {DEFAULT_VIBRANCY})")
    parser.add_argument("--cast-removal", type=float,
                        help="with --export: the share of the frame's mean colour taken out, stored in the file (default 0)")
    parser.add_argument("--snapshot", metavar="PATH", help="with --export: export this snapshot of the run (early stopping)")
    parser.add_argument("--chroma-gain", type=float,
                        help="with --export --from-weights: the factor on the decoded colour, stored in the file")
    parser.add_argument("--from-weights", metavar="PATH",
                        help="with --export: keep this inference file's decoder and meta, change only the decoding settings given")
    parser.add_argument("--keyframe-decoding", action="store_true",
                        help="with --from-weights: store the settings as no-reference keyframes' own, keep the plain ones")
    parser.add_argument("--prior-correction", type=float,
                        help="with --export: the share of the rebalancing weights' log taken out of the logits, stored in the file (default 0)")
    args = parser.parse_args(argv)
    if args.from_weights and not args.export:
        parser.error("--from-weights needs --export PATH (the file to write)")
    if not args.from_weights and (args.chroma_gain is not None or args.keyframe_decoding):
        parser.error("--chroma-gain and --keyframe-decoding only re-decode an inference file: add --from-weights PATH")
    if args.export and args.from_weights:
        if args.snapshot:
            parser.error("--snapshot exports a training run; --from-weights re-decodes an inference file: give one of them")
        print(f"wrote {redecode_weights(Path(args.from_weights), Path(args.export), args.vibrancy, args.prior_correction,
                                        args.cast_removal, args.chroma_gain, args.keyframe_decoding)}")
        return 0
    if args.export:
        snapshot = Path(args.snapshot) if args.snapshot else None
        print(f"wrote {export_weights(Path(args.out), Path(args.export), DEFAULT_VIBRANCY if args.vibrancy is None else args.vibrancy,
                                      args.prior_correction or 0.0, args.cast_removal or 0.0, snapshot)}")
        return 0
    config = TrainConfig(data_root=args.data, out_dir=args.out, cache_dir=args.cache, size=args.size,
                         iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, lam=args.lam, seed=args.seed,
                         crop_min=args.crop_min, cycle_start=args.cycle_start, bn_batches=args.bn_batches,
                         val_clips=[c for c in args.val_clips.split(",") if c], video_weight=args.video_weight,
                         snapshots=args.snapshots, val_every=args.val_every,
                         threads=args.threads, max_minutes=args.max_minutes, widths=[int(w) for w in args.widths.split(",")])
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "a", encoding="utf-8") as log_file:
        log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} command: python -m vidcolor.training.autocolor "
                       f"{' '.join(sys.argv[1:] if argv is None else argv)}\n")

        def log(message: str) -> None:
            print(message, flush=True)
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
            log_file.flush()

        train(config, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
