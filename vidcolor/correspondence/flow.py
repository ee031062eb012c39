"""Dense optical flow between consecutive frames, and the warping/occlusion helpers built on it.

Convention everywhere in vidcolor: ``flow = estimator(src, dst)`` is a float32 ``(H, W, 2)`` array
of (dx, dy) such that ``src[y, x]`` corresponds to ``dst[y + dy, x + dx]``; so ``warp(dst_image,
flow)`` pulls ``dst`` onto ``src``'s grid (backward warping).

Two estimators share that convention: :class:`RAFTFlow` (torchvision's RAFT, small or large, with
weights read from a local file: nothing is ever downloaded) and :class:`DISFlow` (OpenCV, weight
free). :func:`make_flow` picks one and falls back to DIS, with a logged notice, when the RAFT
weights are not installed.
"""

from __future__ import annotations

import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from ..errors import InputError, WeightsMismatchError, WeightsNotFoundError
from ..weights import note_loaded
from ..weights.registry import ModelSpec, TensorList, WeightFile, register_model

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Flow methods accepted by :func:`make_flow`.
FLOW_METHODS = ("auto", "dis", "raft-small", "raft-large")

#: torchvision's file names for the default RAFT weights (``Raft_Small_Weights.C_T_V2`` and
#: ``Raft_Large_Weights.C_T_SKHT_V2``); ``torch.hub`` caches downloads under these names, and the
#: 8 hex digits are the start of the file's SHA-256.
RAFT_WEIGHT_FILES: dict[str, str] = {
    "raft-small": "raft_small_C_T_V2-01064c6d.pth",
    "raft-large": "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
}


def _raft_expected(variant: str) -> TensorList:
    import torch
    from torchvision.models.optical_flow import raft_large, raft_small

    with torch.device("meta"):
        model = (raft_small if variant == "raft-small" else raft_large)(weights=None, progress=False)
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


for _variant, _file in RAFT_WEIGHT_FILES.items():
    register_model(
        ModelSpec(
            name=_variant,
            description=f"torchvision's RAFT ({_variant.split('-')[1]}) optical flow, for the temporal check",
            files=(WeightFile(_file, "raft", functools.partial(_raft_expected, _variant),
                              sha256_prefix=_file.rsplit("-", 1)[1].split(".")[0]),),
            licence="BSD-3-Clause (torchvision)",
            source=f"https://download.pytorch.org/models/{_file}",
        )
    )


#: RAFT's correlation pyramid needs feature maps of at least 16 px, i.e. 128 px images.
RAFT_MIN_SIZE = 128

#: OpenCV 5.1's DIS picks its pyramid from the frame's width alone when the frame is too small for its
#: preset, and then kills the process (SIGSEGV) on frames wider than tall: under 32 px high from 80 px
#: wide at the fast and ultrafast presets, under 16 px high from 40 px wide at medium (and refuses
#: frames under 12 px both ways). Frames with both sides of at least this never crashed (mapped from
#: 8 to 4096 px both ways): :class:`DISFlow` pads smaller ones to it, working sizes never go below it.
DIS_MIN_SIDE = 32


class FlowEstimator(Protocol):
    """Anything that maps two gray float32 frames in [0, 1] of equal shape to a flow field."""

    name: str

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray: ...


class DISFlow:
    """OpenCV's DIS optical flow: weight-free, fast on CPU, the fallback when RAFT has no weights."""

    name = "dis"

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._scales = (self._dis.getFinestScale(), self._dis.getPatchSize())

    def __reduce__(self) -> tuple[type[DISFlow], tuple[int]]:
        return DISFlow, (self.preset,)  # the OpenCV object cannot be pickled or copied

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        _check_pair(src, dst)
        return self.calc(_to_u8(src), _to_u8(dst))

    def calc(self, a: np.ndarray, b: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """Flow from uint8 frame ``a`` to ``b``, searched from ``start`` (H, W, 2) when given.

        Every caller of DIS goes through here, so that each flow depends on its two frames (and
        start) only, whatever the object computed before: the CLI reuses one object for a whole
        film, the VapourSynth filter makes one per request thread, and both must give the same frames.
        """
        # On frames too small for the preset's pyramid (e.g. 40x32 at the medium preset) calc() picks
        # other scales and stores them in the object, so a second call computed otherwise than the first
        # (the VapourSynth filter's fresh per-thread objects then differed from the CLI's). Put the
        # preset's back: each flow depends on its two frames only.
        self._dis.setFinestScale(self._scales[0])
        self._dis.setPatchSize(self._scales[1])
        height, width = a.shape
        pad_h, pad_w = max(0, DIS_MIN_SIDE - height), max(0, DIS_MIN_SIDE - width)
        if not (pad_h or pad_w):
            return self._dis.calc(a, b, start)
        # a crash, not an error, below DIS_MIN_SIDE: the frames' edges carry on and the flow is cut back
        a, b = (cv2.copyMakeBorder(x, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE) for x in (a, b))
        if start is not None:
            start = cv2.copyMakeBorder(start, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(self._dis.calc(a, b, start)[:height, :width])


class RAFTFlow:
    """torchvision's RAFT (small or large) on gray frames, any size, any torch device.

    The network is built with ``weights=None`` (random initialisation, no download) and then
    loaded from ``state_dict`` when given: tests run it untrained, production passes the weights
    :func:`load_raft_state_dict` read from disk. Frames are replicated to three channels, scaled to
    [-1, 1] like torchvision's ``OpticalFlow`` transform, and padded (edge replicate) to a multiple
    of 8 and at least 128 px, which RAFT's correlation pyramid requires.
    """

    def __init__(
        self,
        variant: str = "raft-small",
        state_dict: dict[str, torch.Tensor] | None = None,
        *,
        device: str | torch.device | None = None,
        num_flow_updates: int = 12,
    ) -> None:
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        builders = {"raft-small": raft_small, "raft-large": raft_large}
        if variant not in builders:
            raise InputError(f"unknown RAFT variant {variant!r}: use one of {', '.join(builders)}")
        self.name = variant
        self.device = resolve_device(device)
        self.num_flow_updates = num_flow_updates
        model = builders[variant](weights=None, progress=False)
        if state_dict is not None:
            try:
                model.load_state_dict(state_dict, strict=True)
            except RuntimeError as exc:
                raise WeightsMismatchError(
                    f"the {variant} weights do not fit torchvision's {variant.replace('-', '_')} network ({_first_line(exc)}): "
                    f"import torchvision's {RAFT_WEIGHT_FILES[variant]} with `vidcolor models import {variant} FILE`"
                ) from exc
        self.model = model.eval().to(self.device)
        self._torch = torch

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        return self.pair(src, dst)[0]

    def pair(self, src: np.ndarray, dst: np.ndarray, *, both: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Flow src→dst and, with ``both``, dst→src in the same batch (one network call)."""
        _check_pair(src, dst)
        torch = self._torch
        h, w = src.shape
        a = self._prepare(src)
        b = self._prepare(dst)
        first, second = (torch.cat([a, b]), torch.cat([b, a])) if both else (a, b)
        with torch.inference_mode():
            flows = self.model(first, second, num_flow_updates=self.num_flow_updates)[-1]
        out = flows[:, :, :h, :w].permute(0, 2, 3, 1).float().cpu().numpy()
        forward = np.ascontiguousarray(out[0], dtype=np.float32)
        backward = np.ascontiguousarray(out[1], dtype=np.float32) if both else None
        return forward, backward

    def _prepare(self, gray: np.ndarray) -> torch.Tensor:
        torch = self._torch
        h, w = gray.shape
        ph = max(RAFT_MIN_SIZE, -(-h // 8) * 8) - h
        pw = max(RAFT_MIN_SIZE, -(-w // 8) * 8) - w
        image = gray.astype(np.float32) / 255.0 if gray.dtype == np.uint8 else np.asarray(gray, dtype=np.float32)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw)), mode="edge")
        tensor = torch.from_numpy(np.ascontiguousarray(image * 2.0 - 1.0))
        return tensor[None, None].expand(1, 3, -1, -1).contiguous().to(self.device)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when available, else CPU; strings are checked early with a clear error."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device {device!r} is not a torch device: use 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for CUDA but no CUDA GPU is available: use 'cpu'")
    return resolved


def raft_weight_dirs(variant: str) -> list[Path]:
    """Folders searched for ``variant``'s weights, in order.

    The vidcolor weights cache first (where ``vidcolor models import raft-small FILE`` puts them,
    see :mod:`vidcolor.weights`), then the torch hub cache (``torch.hub.get_dir()/checkpoints``),
    where torchvision itself keeps them.
    """
    import torch

    from .. import weights

    return [weights.model_dir(variant), Path(torch.hub.get_dir()) / "checkpoints"]


def find_raft_weights(variant: str) -> Path | None:
    """The installed weight file of ``variant`` ("raft-small" or "raft-large"), or ``None``."""
    if variant not in RAFT_WEIGHT_FILES:
        raise InputError(f"unknown RAFT variant {variant!r}: use one of {', '.join(RAFT_WEIGHT_FILES)}")
    name = RAFT_WEIGHT_FILES[variant]
    for folder in raft_weight_dirs(variant):
        candidate = folder / name
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    return None


def load_raft_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a RAFT state dict saved by torchvision (tensors only, no pickled code)."""
    import torch

    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        note_loaded(path)  # named in the run signature of --resume
    except FileNotFoundError as exc:
        raise WeightsNotFoundError(f"RAFT weight file {os.fspath(path)!r} does not exist") from exc
    except Exception as exc:  # torch raises pickle/zip errors of several kinds
        raise WeightsMismatchError(
            f"{os.fspath(path)!r} is not a torch weight file ({_first_line(exc)}): use torchvision's RAFT .pth file"
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightsMismatchError(f"{os.fspath(path)!r} does not hold a state dict of tensors: use torchvision's RAFT .pth file")
    return state


def make_flow(
    method: str = "auto",
    *,
    device: str | torch.device | None = None,
    weights_path: str | os.PathLike[str] | None = None,
) -> FlowEstimator:
    """Build the flow estimator for ``method``; never downloads anything.

    ``"dis"`` is OpenCV DIS. ``"raft-small"``/``"raft-large"`` need their torchvision weights
    installed (see :func:`find_raft_weights`) or given as ``weights_path``; when they are absent a
    notice is logged and DIS is used instead, so a missing optional file never stops a run.
    ``"auto"`` takes the best installed RAFT (large on a GPU, small on a CPU, where large is about
    5x slower) and otherwise DIS.
    """
    if method not in FLOW_METHODS:
        raise InputError(f"unknown flow method {method!r}: use one of {', '.join(FLOW_METHODS)}")
    if method == "dis":
        return DISFlow()
    if method == "auto":
        dev = resolve_device(device)
        order = ("raft-large", "raft-small") if dev.type == "cuda" else ("raft-small", "raft-large")
        for variant in order:
            path = find_raft_weights(variant)
            if path is not None:
                logger.info("optical flow: %s with weights %s", variant, path)
                return RAFTFlow(variant, load_raft_state_dict(path), device=dev)
        logger.info(
            "optical flow: no RAFT weights installed, using OpenCV DIS; for better flow run "
            "`vidcolor models import raft-small FILE` with torchvision's %s",
            RAFT_WEIGHT_FILES["raft-small"],
        )
        return DISFlow()
    path = Path(weights_path) if weights_path is not None else find_raft_weights(method)
    if path is None or not path.is_file():
        searched = ", ".join(str(d) for d in raft_weight_dirs(method))
        logger.warning(
            "optical flow: %s weights %s not found (searched %s); falling back to OpenCV DIS. "
            "Install them with `vidcolor models import %s FILE`",
            method,
            RAFT_WEIGHT_FILES[method] if weights_path is None else repr(os.fspath(weights_path)),
            searched,
            method,
        )
        return DISFlow()
    return RAFTFlow(method, load_raft_state_dict(path), device=device)


@dataclass(frozen=True)
class FlowPair:
    """Flows both ways between two frames and where ``a``'s pixels are visible in ``b``."""

    forward: np.ndarray
    backward: np.ndarray
    visible: np.ndarray

    @property
    def occluded_fraction(self) -> float:
        return float(1.0 - self.visible.mean())


def forward_backward(estimator: FlowEstimator, a: np.ndarray, b: np.ndarray) -> FlowPair:
    """Flow a→b and b→a, plus the forward–backward visibility mask on ``a``'s grid.

    RAFT computes both directions in one batched call; other estimators are called twice.
    """
    pair = getattr(estimator, "pair", None)
    if callable(pair):
        forward, backward = pair(a, b, both=True)
        assert backward is not None
    else:
        forward = estimator(a, b)
        backward = estimator(b, a)
    return FlowPair(forward, backward, visible_mask(forward, backward))


def _check_pair(src: np.ndarray, dst: np.ndarray) -> None:
    if src.ndim != 2 or src.shape != dst.shape:
        raise InputError(f"flow needs two gray frames of one shape (H, W), got {src.shape} and {dst.shape}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _to_u8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8))


def flow_pool() -> ThreadPoolExecutor:
    """Worker threads for flow that a step can estimate while its network runs: OpenCV and torch
    release the GIL while they compute, so the two overlap on a multi-core CPU."""
    return _flow_pool_of(os.getpid())  # a forked child gets its own: the parent's threads are not in it


@functools.cache
def _flow_pool_of(pid: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="vidcolor-flow")


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y coordinates of every pixel (read-only, cached: every frame of a clip has one size)."""
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


def _sample_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling positions ``(x + dx, y + dy)`` for :func:`cv2.remap`."""
    grid_x, grid_y = _pixel_grid(*flow.shape[:2])
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp ``image`` (H, W[, C]) by ``flow``: ``out[y, x] = image[y + dy, x + dx]``."""
    map_x, map_y = _sample_maps(flow)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=8)
def _hanning(height: int, width: int) -> np.ndarray:
    return cv2.createHanningWindow((width, height), cv2.CV_32F)


def global_shift(src: np.ndarray, dst: np.ndarray, min_response: float = 0.1) -> tuple[float, float] | None:
    """The one translation (dx, dy) that best carries ``src`` onto ``dst`` (phase correlation), or
    None when no translation stands out (peak response below ``min_response``: a zoom, a turn,
    other content). A pan's motion in one FFT, at any size: a starting point for a flow estimator."""
    _check_pair(src, dst)
    (dx, dy), response = cv2.phaseCorrelate(np.float32(src), np.float32(dst), _hanning(*src.shape[:2]))
    return (float(dx), float(dy)) if response >= min_response else None


def compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Flow a→c from ``first`` (a→b) and ``second`` (b→c): ``first(x) + second(x + first(x))``.

    Where ``first`` points outside b, ``second`` is read at the nearest edge pixel: a guess, which is
    what the result is for (a starting point for a flow estimator, not a measurement).
    """
    return first + warp(second, first)


def visible_mask(forward: np.ndarray, backward: np.ndarray, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Forward–backward consistency: True where a pixel of ``src`` is visible in ``dst``.

    ``forward`` is flow(src→dst), ``backward`` flow(dst→src). The test is the one of Sundaram et
    al. (2010) used by Lai et al. (2018) for warp error: ``|f + b(f)|² < α(|f|² + |b(f)|²) + β``.
    Pixels whose forward flow leaves the frame have no counterpart in ``dst`` and are occluded.
    """
    h, w = forward.shape[:2]
    tx, ty = _sample_maps(forward)
    back_at_fwd = cv2.remap(backward, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    fx, fy = forward[..., 0], forward[..., 1]
    bx, by = back_at_fwd[..., 0], back_at_fwd[..., 1]
    lhs = (fx + bx) ** 2 + (fy + by) ** 2
    rhs = alpha * (fx * fx + fy * fy + bx * bx + by * by) + beta
    inside = (tx >= -0.5) & (tx <= w - 0.5) & (ty >= -0.5) & (ty <= h - 0.5)
    return (lhs < rhs) & inside
