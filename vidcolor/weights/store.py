"""Where weight files live, and importing them.

Nothing is ever downloaded. A user obtains a model's files (for DeepEx, the authors' release) and
imports them once with ``vidcolor models import NAME PATH``: :func:`import_weights` finds the files
by name inside a zip or folder, checks every key and shape against the network that will load
them, copies them into the cache through a temporary file and ``os.replace`` (a crash never leaves
a half-written file under the real name) and records their SHA-256 in a JSON sidecar.

The cache is ``$VIDCOLOR_HOME`` when set, else the platform's user cache folder
(``~/.cache/vidcolor`` on Linux). Each model has its own folder, ``<home>/models/<name>/``.
A model whose weights ship inside the package (``packaged_in``) is found there and needs no import.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import InputError, WeightsMismatchError, WeightsNotFoundError
from ..io.durable import atomic_write_text, sha256_of_file
from .loading import check_state_dict, read_state_dict
from .registry import WeightFile, get_model, model_names

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache folder.
HOME_ENV = "VIDCOLOR_HOME"
#: Name of the per-model sidecar recording what was imported.
SIDECAR = "weights.json"


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
        return Path(__file__).resolve().parents[1] / spec.packaged_in
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
            changed = sha256_of_file(path) != record["sha256"]
        if changed:
            raise WeightsMismatchError(
                f"{path} changed since it was imported (its {'SHA-256' if verify else 'size'} differs from the record in "
                f"{model_dir(name) / SIDECAR}): run `vidcolor models import {name} PATH` again"
            )
    state = read_state_dict(path)
    if entry.expected is not None:
        check_state_dict(state, entry.expected(), str(path))
    return state


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
    atomic_write_text(folder / SIDECAR, json.dumps(data, indent=2, sort_keys=True) + "\n")
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


__all__ = ["HOME_ENV", "SIDECAR", "ImportedFile", "ModelRow", "find_weights", "import_weights", "installed_files", "list_models",
           "load_state_dict", "model_dir", "remove_weights", "require_installed", "vidcolor_home", "weights_dirs"]
