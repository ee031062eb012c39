"""Model weights: a typed registry, the user cache, importing release files, and safe loading.

Nothing is ever downloaded. A user obtains a model's files (for DeepEx, the authors' release) and
imports them once with ``vidcolor models import NAME PATH``: :func:`import_weights` finds the files
by name inside a zip or folder, checks every key and shape against the network that will load
them, copies them into the cache through a temporary file and ``os.replace`` (a crash never leaves
a half-written file under the real name) and records their SHA-256 in a JSON sidecar.

The cache is ``$VIDCOLOR_HOME`` when set, else the platform's user cache folder
(``~/.cache/vidcolor`` on Linux). Each model has its own folder, ``<home>/models/<name>/``.
A model whose weights ship inside the package (``packaged_in``) is found there and needs no import.

Loading uses ``torch.load(weights_only=True)``: a weight file can hold tensors only, never code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import weakref
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .io.durable import sha256_of_file
from .errors import InputError, WeightsMismatchError, WeightsNotFoundError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache folder.
HOME_ENV = "VIDCOLOR_HOME"
#: Name of the per-model sidecar recording what was imported.
SIDECAR = "weights.json"

TensorList = Sequence[tuple[str, tuple[int, ...]]]


@dataclass(frozen=True)
class WeightFile:
    """One file of a model.

    ``expected`` returns the ordered (key, shape) list of the state dict the file must hold
    (computed lazily from the network definition, so the registry stays importable without torch);
    ``release_path`` is where the file sits in the official release (used to pick between
    same-named files in an archive); ``sha256_prefix`` is checked when the release names it.
    """

    filename: str
    role: str
    expected: Callable[[], TensorList] | None = None
    release_path: str | None = None
    sha256_prefix: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model vidcolor knows: its files, where they come from and under which licence."""

    name: str
    description: str
    files: tuple[WeightFile, ...]
    licence: str
    source: str
    #: Package-relative folder (e.g. ``"models/data"``) when the weights ship inside vidcolor.
    packaged_in: str | None = None

    def file(self, key: str) -> WeightFile:
        """A file of this model by file name or by role."""
        for f in self.files:
            if key in (f.filename, f.role):
                return f
        known = ", ".join(f"{f.filename} ({f.role})" for f in self.files)
        raise InputError(f"model {self.name!r} has no weight file {key!r}: it has {known}")


@dataclass(frozen=True)
class ModelRow:
    """One line of ``vidcolor models list``."""

    name: str
    files: tuple[str, ...]
    licence: str
    source: str
    installed: bool
    location: Path


@dataclass(frozen=True)
class ImportedFile:
    """A file :func:`import_weights` installed."""

    filename: str
    sha256: str
    size: int
    source: str
    path: Path


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add a model to the registry (other modules call this at import time)."""
    if spec.name in _REGISTRY and not replace:
        raise InputError(f"a model named {spec.name!r} is already registered: pick another name or pass replace=True")
    names = [f.filename for f in spec.files]
    if len(set(names)) != len(names):
        raise InputError(f"model {spec.name!r} lists a file name twice: {names}")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_model(name: str) -> None:
    """Remove a model from the registry (its files stay where they are)."""
    _REGISTRY.pop(name, None)


def get_model(name: str) -> ModelSpec:
    """The registered spec of ``name``; the error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}: known models are {', '.join(sorted(_REGISTRY))} (see `vidcolor models list`)") from None


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


# --------------------------------------------------------------------------------------------
# Where files live
# --------------------------------------------------------------------------------------------


def vidcolor_home() -> Path:
    """``$VIDCOLOR_HOME``, else the platform user cache folder + ``vidcolor``."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "vidcolor" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "vidcolor"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "vidcolor"


def model_dir(name: str) -> Path:
    """The folder holding ``name``'s files (inside the package for packaged models)."""
    spec = get_model(name)
    if spec.packaged_in is not None:
        return Path(__file__).resolve().parent / spec.packaged_in
    return vidcolor_home() / "models" / name


def weights_dirs() -> list[Path]:
    """Every registered model's folder (for code that searches folders for a file name)."""
    return [model_dir(name) for name in model_names()]


def _sidecar(name: str) -> dict[str, Any]:
    path = model_dir(name) / SIDECAR
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"model": name, "files": {}}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable weights sidecar %s (%s)", path, exc)
        return {"model": name, "files": {}}
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return {"model": name, "files": {}}
    return data


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def installed_files(name: str) -> dict[str, bool]:
    """For each file of ``name``: is it present in the model's folder?"""
    spec = get_model(name)
    folder = model_dir(name)
    return {f.filename: (folder / f.filename).is_file() for f in spec.files}


def list_models() -> list[ModelRow]:
    """One row per registered model: files, licence, source and whether it is installed."""
    rows = []
    for name in model_names():
        spec = get_model(name)
        rows.append(
            ModelRow(
                name=name,
                files=tuple(f.filename for f in spec.files),
                licence=spec.licence,
                source=spec.source,
                installed=all(installed_files(name).values()),
                location=model_dir(name),
            )
        )
    return rows


def _not_found(name: str, missing: Sequence[str], looked: str) -> WeightsNotFoundError:
    spec = get_model(name)
    if spec.packaged_in is not None:
        return WeightsNotFoundError(
            f"the {name} model's weights {', '.join(missing)} are missing from the installed package ({looked}): reinstall vidcolor"
        )
    return WeightsNotFoundError(
        f"{name} weights are not installed: missing {', '.join(missing)} (looked in {looked}; set ${HOME_ENV} to use another "
        f"folder). Get them from {spec.source}, then run `vidcolor models import {name} PATH`, where PATH is the release zip "
        f"or a folder holding the files"
    )


def find_weights(name: str, file: str) -> Path:
    """Path of an installed weight file (``file`` is its name or role); raises WeightsNotFoundError."""
    spec = get_model(name)
    entry = spec.file(file)
    path = model_dir(name) / entry.filename
    if not installed_files(name)[entry.filename]:
        raise _not_found(name, [entry.filename], str(model_dir(name)))
    return path


def require_installed(name: str) -> dict[str, Path]:
    """All of ``name``'s files by role, or one WeightsNotFoundError naming every missing file."""
    spec = get_model(name)
    state = installed_files(name)
    missing = [f for f, ok in state.items() if not ok]
    if missing:
        raise _not_found(name, missing, str(model_dir(name)))
    return {f.role: model_dir(name) / f.filename for f in spec.files}


# --------------------------------------------------------------------------------------------
# Reading and checking state dicts
# --------------------------------------------------------------------------------------------


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


def load_state_dict(name: str, file: str, *, verify: bool = False) -> OrderedDict[str, torch.Tensor]:
    """Load an installed weight file of ``name`` (by file name or role), checked key by key.

    With ``verify``, the file's SHA-256 is also compared with the one recorded at import.
    """
    spec = get_model(name)
    entry = spec.file(file)
    path = find_weights(name, entry.filename)
    if spec.packaged_in is None:
        record = _sidecar(name)["files"].get(entry.filename, {})
        changed = record.get("size") is not None and path.stat().st_size != record["size"]
        if not changed and verify and record.get("sha256"):
            changed = sha256_file(path) != record["sha256"]
        if changed:
            raise WeightsMismatchError(
                f"{path} changed since it was imported (its {'SHA-256' if verify else 'size'} differs from the record in "
                f"{model_dir(name) / SIDECAR}): run `vidcolor models import {name} PATH` again"
            )
    state = read_state_dict(path)
    if entry.expected is not None:
        check_state_dict(state, entry.expected(), str(path))
    return state


sha256_file = sha256_of_file


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
# Import
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    display: str  # for messages: "archive.zip:inner/path" or a file path
    inner: str  # path used to match release_path (posix)
    archive: Path | None
    path: Path | None

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        if self.archive is not None:
            with zipfile.ZipFile(self.archive) as archive, archive.open(self.inner) as member:
                yield member
        else:
            assert self.path is not None
            with open(self.path, "rb") as f:
                yield f


def _candidates(sources: Sequence[Path], wanted: set[str]) -> dict[str, list[_Candidate]]:
    found: dict[str, list[_Candidate]] = {name: [] for name in wanted}
    for source in sources:
        if source.is_dir():
            for p in sorted(source.rglob("*")):
                if p.name in wanted and p.is_file():
                    found[p.name].append(_Candidate(str(p), p.relative_to(source).as_posix(), None, p))
        elif source.name in wanted:  # checked before the zip test: a torch .pth is itself a zip
            found[source.name].append(_Candidate(str(source), source.name, None, source))
        elif zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                members = archive.infolist()
                for info in members:
                    base = info.filename.rsplit("/", 1)[-1]
                    if base in wanted and not info.is_dir():
                        found[base].append(_Candidate(f"{source}:{info.filename}", info.filename, source, None))
            if not any(c.archive == source for options in found.values() for c in options) and any(
                m.filename.endswith("/data.pkl") for m in members
            ):
                raise InputError(
                    f"{str(source)!r} is a single PyTorch weight file, but none of the expected names ({', '.join(sorted(wanted))}): "
                    "give it its original name, or pass the release zip or folder"
                )
        else:
            raise InputError(
                f"{str(source)!r} is neither a folder, a zip archive nor one of the expected files ({', '.join(sorted(wanted))}): "
                "give the release zip, a folder holding the files, or the files under their original names"
            )
    return found


def _pick(entry: WeightFile, options: list[_Candidate]) -> _Candidate:
    if len(options) == 1:
        return options[0]
    if entry.release_path:
        preferred = [c for c in options if c.inner == entry.release_path or c.inner.endswith("/" + entry.release_path)]
        if len(preferred) == 1:
            return preferred[0]
    listing = ", ".join(c.display for c in options)
    raise InputError(f"several files named {entry.filename} were found ({listing}): pass the folder or file that holds the one to import")


def import_weights(name: str, path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[ImportedFile]:
    """Install ``name``'s files from a release zip, a folder (searched recursively) or the files.

    Every file is checked against its network's keys and shapes before it replaces anything.
    Files found are installed even when others are missing; then WeightsNotFoundError names the
    ones still missing. Files already installed count as present.
    """
    spec = get_model(name)
    if spec.packaged_in is not None:
        raise InputError(f"the {name} model's weights ship with vidcolor: there is nothing to import")
    raw = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    sources = [Path(p).expanduser() for p in raw]
    if not sources:
        raise InputError(f"give the {name} release zip or a folder holding its files")
    for source in sources:
        if not source.exists():
            raise InputError(f"{str(source)!r} does not exist: give the {name} release zip, a folder or a weight file")
    found = _candidates(sources, {f.filename for f in spec.files})
    folder = model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    already = installed_files(name)
    imported: list[ImportedFile] = []
    missing: list[str] = []
    for entry in spec.files:
        options = found[entry.filename]
        if not options:
            if not already[entry.filename]:
                missing.append(entry.filename)
            continue
        imported.append(_install(name, entry, _pick(entry, options), folder))
    if missing:
        done = f"imported {', '.join(i.filename for i in imported)}; " if imported else ""
        looked = ", ".join(str(s) for s in sources)
        raise WeightsNotFoundError(
            f"{done}{name} still needs {', '.join(missing)}: not found in {looked}. Run `vidcolor models import {name} PATH` "
            f"with a zip or folder that holds {'it' if len(missing) == 1 else 'them'} (source: {spec.source})"
        )
    return imported


def _install(name: str, entry: WeightFile, candidate: _Candidate, folder: Path) -> ImportedFile:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out, candidate.open() as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        if entry.sha256_prefix and not sha.startswith(entry.sha256_prefix):
            raise WeightsMismatchError(
                f"{candidate.display} has SHA-256 {sha[:16]}..., but the released {entry.filename} starts with "
                f"{entry.sha256_prefix}: the file is corrupt or a different version; get it again from {get_model(name).source}"
            )
        state = read_state_dict(tmp, label=candidate.display)
        if entry.expected is not None:
            check_state_dict(state, entry.expected(), candidate.display)
        del state
        final = folder / entry.filename
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    record = {"sha256": sha, "size": size, "imported_from": candidate.display, "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    data = _sidecar(name)
    data["model"] = name
    data["files"][entry.filename] = record
    _write_json_atomic(folder / SIDECAR, data)
    logger.info("imported %s for %s from %s (sha256 %s)", entry.filename, name, candidate.display, sha[:16])
    return ImportedFile(entry.filename, sha, size, candidate.display, final)


def remove_weights(name: str) -> None:
    """Delete ``name``'s imported files and sidecar from the cache."""
    spec = get_model(name)
    if spec.packaged_in is not None:
        raise InputError(f"the {name} model's weights ship with vidcolor and cannot be removed")
    folder = model_dir(name)
    if folder.is_dir():
        shutil.rmtree(folder)


# --------------------------------------------------------------------------------------------
# Deterministic synthetic weights (tests, benchmarks)
# --------------------------------------------------------------------------------------------


def synthetic_state_dict(tensors: TensorList, seed: int) -> OrderedDict[str, torch.Tensor]:
    """Weights from a fixed rule, so tests and benchmarks run the real networks without real files.

    The rule of the DeepEx parity fixture: ``numpy.random.default_rng(seed)`` walked in key
    order; conv weights N(0, 2 / fan_in) (He), biases N(0, 0.01²), one-element tensors (PReLU)
    0.25, other 1-D tensors 1, running means 0 and variances 1, batch counters 0. Draws are
    float64, then cast to float32.
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape_ in tensors:
        shape = tuple(int(s) for s in shape_)
        count = math.prod(shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        if key.endswith("running_mean"):
            values = np.zeros(shape)
        elif key.endswith("running_var"):
            values = np.ones(shape)
        elif len(shape) >= 2:
            values = rng.standard_normal(size=shape) * math.sqrt(2.0 / math.prod(shape[1:]))
        elif key.endswith(".bias"):
            values = rng.standard_normal(size=shape) * 0.01
        elif count == 1:
            values = np.full(shape, 0.25)
        else:
            values = np.ones(shape)
        state[key] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64).astype(np.float32))
    return state


# --------------------------------------------------------------------------------------------
# Built-in entries
# --------------------------------------------------------------------------------------------


def _deepex_expected(network: str) -> Callable[[], TensorList]:
    def expected() -> TensorList:
        from .models.deepex import expected_tensors

        return expected_tensors(network)

    return expected


def _raft_expected(variant: str) -> Callable[[], TensorList]:
    def expected() -> TensorList:
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        with torch.device("meta"):
            model = (raft_small if variant == "raft-small" else raft_large)(weights=None, progress=False)
        return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]

    return expected


#: Seeds of the DeepEx parity fixture's synthetic weights, per network.
DEEPEX_SYNTHETIC_SEEDS = {"vggnet": 101, "nonlocal_net": 202, "colornet": 303}

DEEPEX = register_model(
    ModelSpec(
        name="deepex",
        description="Deep Exemplar-based Video Colorization (Zhang et al., CVPR 2019), the authors' networks",
        files=(
            WeightFile("vgg19_conv.pth", "vggnet", _deepex_expected("vggnet"), "data/vgg19_conv.pth"),
            WeightFile(
                "nonlocal_net_iter_76000.pth",
                "nonlocal_net",
                _deepex_expected("nonlocal_net"),
                "checkpoints/video_moredata_l1/nonlocal_net_iter_76000.pth",
            ),
            WeightFile(
                "colornet_iter_76000.pth",
                "colornet",
                _deepex_expected("colornet"),
                "checkpoints/video_moredata_l1/colornet_iter_76000.pth",
            ),
        ),
        licence="MIT (checkpoints and code, zhangmozhe/Deep-Exemplar-based-Video-Colorization); vgg19_conv.pth is the "
        "VGG-19 of Simonyan & Zisserman (CC BY 4.0)",
        source="https://github.com/zhangmozhe/Deep-Exemplar-based-Video-Colorization/releases (v1.0, colorization_checkpoint.zip)",
    )
)

for _variant, _file in (("raft-small", "raft_small_C_T_V2-01064c6d.pth"), ("raft-large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth")):
    register_model(
        ModelSpec(
            name=_variant,
            description=f"torchvision's RAFT ({_variant.split('-')[1]}) optical flow, for the temporal check",
            files=(WeightFile(_file, "raft", _raft_expected(_variant), sha256_prefix=_file.rsplit("-", 1)[1].split(".")[0]),),
            licence="BSD-3-Clause (torchvision)",
            source=f"https://download.pytorch.org/models/{_file}",
        )
    )


# --------------------------------------------------------------------------------------------
# ECCV16 (Zhang, Isola, Efros 2016): the authors' automatic colorizer
# --------------------------------------------------------------------------------------------

#: The authors' PyTorch release file (its name carries the start of its SHA-256).
ECCV16_RELEASE = "colorization_release_v2-9b330a0b.pth"


def release_hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix a release file name carries (``name-<8 hex>.pth``, PyTorch hub style), or None."""
    stem = filename.rsplit(".", 1)[0]
    tail = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail.lower()):
        return tail.lower()
    return None


def _eccv16_expected() -> TensorList:
    from .models.eccv16 import OFFICIAL, expected_tensors

    return expected_tensors(OFFICIAL)


def eccv16_spec(name: str = "eccv16", filename: str = ECCV16_RELEASE) -> ModelSpec:
    """The ECCV16 model spec for a release file name: strict keys of the official network, and the
    SHA-256 prefix the name carries (a file whose hash does not start with it is refused).

    The registry holds ``eccv16_spec()``; tests register the same spec under another name for a
    synthetic file named after its own hash, so acceptance and refusal run the real code path.
    """
    return ModelSpec(
        name=name,
        description="Colorful Image Colorization (Zhang, Isola, Efros, ECCV 2016), the authors' network (automatic, no reference)",
        files=(WeightFile(filename, "network", _eccv16_expected, sha256_prefix=release_hash_prefix(filename)),),
        licence="BSD-2-Clause (richzhang/colorization, code and released models)",
        source=f"https://github.com/richzhang/colorization (PyTorch port; release file {filename})",
    )


ECCV16 = register_model(eccv16_spec())


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
