"""Reading weight files safely: ``torch.load(weights_only=True)`` (a weight file holds tensors,
never code), strict key and shape checks, vidcolor's own inference file format, and the record of
which files a run loaded (the run signature of ``--resume`` names them with their SHA-256).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WeightsMismatchError, WeightsNotFoundError
from ..io.durable import sha256_of_file
from .registry import TensorList

if TYPE_CHECKING:
    import torch


def read_state_dict(source: str | os.PathLike[str] | Any, label: str | None = None) -> OrderedDict[str, torch.Tensor]:
    """``torch.load(weights_only=True, map_location='cpu')`` plus unwrapping.

    Accepts a plain state dict, one wrapped as ``{"state_dict": ...}``, and ``module.``-prefixed
    keys (``nn.DataParallel`` checkpoints), which are stripped.
    """
    import torch

    label = label or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "weight file")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
        if isinstance(source, (str, os.PathLike)):
            note_loaded(source)
    except FileNotFoundError as exc:
        raise WeightsNotFoundError(f"weight file {label!r} does not exist") from exc
    except Exception as exc:  # pickle, zip and "unsupported global" errors all mean "not a tensor file"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsMismatchError(f"{label!r} is not a PyTorch weight file holding only tensors ({first})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"{label!r} does not hold a state dict of tensors")
    keys = list(state)
    if all(k.startswith("module.") for k in keys):
        return OrderedDict((k[len("module.") :], v) for k, v in state.items())
    return OrderedDict(state.items())


def check_state_dict(state: dict[str, Any], expected: TensorList, label: str) -> None:
    """Raise WeightsMismatchError unless ``state`` has exactly the expected keys and shapes."""
    want = {k: tuple(s) for k, s in expected}
    have = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    wrong = [f"{k} {have[k]} (expected {want[k]})" for k in want if k in have and have[k] != want[k]]
    if missing or unexpected or wrong:
        parts = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
            if items:
                shown = ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")
                parts.append(f"{title}: {shown}")
        raise WeightsMismatchError(f"{label} does not match the network it is for ({'; '.join(parts)}): is it the right file?")


# --------------------------------------------------------------------------------------------
# Which weight files a model loaded, and their digests (the run signature of --resume)
# --------------------------------------------------------------------------------------------
_recording = threading.local()
_attached: weakref.WeakKeyDictionary[object, tuple[str, ...]] = weakref.WeakKeyDictionary()
_digests: dict[tuple[str, int, int], str] = {}


def note_loaded(path: str | os.PathLike[str]) -> None:
    """Every loader calls this with the file it read, for the open :func:`recording_loads` blocks."""
    for files in getattr(_recording, "stack", ()):
        files.append(os.path.abspath(path))


@contextlib.contextmanager
def recording_loads() -> Iterator[list[str]]:
    """The weight files loaded (on this thread) inside the block, in order."""
    stack: list[list[str]] = _recording.__dict__.setdefault("stack", [])
    files: list[str] = []
    stack.append(files)
    try:
        yield files
    finally:
        stack.remove(files)


def attach_weight_files(owner: object, files: Iterable[str]) -> None:
    """Remember which weight files made ``owner`` (a colorizer): its run signature names them."""
    _attached[owner] = tuple(dict.fromkeys(files))


def weight_files_of(owner: object) -> tuple[str, ...]:
    return _attached.get(owner, ())


def weights_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a weight file, hashed once per (path, size, mtime): a resumed run checks a
    400 MB file without reading it again in the same process."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_of_file(path)
    return _digests[key]


# --------------------------------------------------------------------------------------------
# vidcolor's own trained networks: one inference file format for all of them
# --------------------------------------------------------------------------------------------


def load_trained_network(path: str | os.PathLike[str], *, family: str, weights_format: str, build: Callable[[dict[str, Any]], Any],
                         missing_hint: str, device: Any = "cpu", to_float: bool = False) -> tuple[Any, dict[str, object]]:
    """A frozen network from a vidcolor inference file (``{"format", "config", "state_dict", "meta"}``).

    Every vidcolor-trained model (default, fast, eccv16-small) ships in this format; loading is
    ``weights_only`` and strict, and each way a file can be wrong gets its own message naming the
    file and the fix. ``build(config)`` makes the untrained network; returns (network, meta).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{family} weights {str(path)!r} are missing: {missing_hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        note_loaded(path)
    except Exception as exc:  # a truncated or foreign file
        raise WeightsMismatchError(f"{str(path)!r} is not a readable {family} weights file ({exc}): re-export or reinstall it") from exc
    if not isinstance(payload, dict) or payload.get("format") != weights_format:
        raise WeightsMismatchError(
            f"{str(path)!r} is not {family} inference weights (format tag {weights_format!r} missing): pass the exported "
            "best.pt or the shipped file, not a training checkpoint"
        )
    network = build(payload["config"])
    state = payload["state_dict"]
    if to_float:
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsMismatchError(f"{str(path)!r} does not fit the {family} architecture it names: {exc}") from exc
    network.eval().to(device)
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network, dict(payload.get("meta", {}))


__all__ = ["attach_weight_files", "check_state_dict", "load_trained_network", "note_loaded", "read_state_dict", "recording_loads",
           "weight_files_of", "weights_digest"]
