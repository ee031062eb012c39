"""The model registry: each model's weight files, where they come from and under which licence.

A network registers its own :class:`ModelSpec` when its module is imported (``models/deepex``,
``models/eccv16``, ``correspondence/flow``). A lookup imports those modules first
(:data:`BUILTIN_SPEC_MODULES`), so every built-in model is known without this module importing a
network (and torch) itself, and without an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import InputError

TensorList = Sequence[tuple[str, tuple[int, ...]]]

#: Modules that register the built-in models' specs when imported.
BUILTIN_SPEC_MODULES = ("vidcolor.models.deepex", "vidcolor.models.eccv16", "vidcolor.correspondence.flow")


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


def _import_builtin_specs() -> None:
    for module in BUILTIN_SPEC_MODULES:
        importlib.import_module(module)


def get_model(name: str) -> ModelSpec:
    """The registered spec of ``name``; the error lists the known names."""
    _import_builtin_specs()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}: known models are {', '.join(sorted(_REGISTRY))} (see `vidcolor models list`)") from None


def model_names() -> list[str]:
    """Registered model names, sorted."""
    _import_builtin_specs()
    return sorted(_REGISTRY)


def release_hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix a release file name carries (``name-<8 hex>.pth``, PyTorch hub style), or None."""
    stem = filename.rsplit(".", 1)[0]
    tail = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail.lower()):
        return tail.lower()
    return None


__all__ = ["BUILTIN_SPEC_MODULES", "ModelSpec", "TensorList", "WeightFile", "get_model", "model_names", "register_model",
           "release_hash_prefix", "unregister_model"]
