"""Colorizer registry: ``--model NAME`` → a :class:`~vidcolor.colorizers.base.Colorizer`.

Imports are lazy so that choosing ``classic`` never loads torch-heavy modules.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import ColorizedFrame, Colorizer


@dataclass(frozen=True)
class ModelEntry:
    name: str
    module: str
    cls: str
    summary: str


MODELS: dict[str, ModelEntry] = {
    "default": ModelEntry("default", "vidcolor.colorizers.default", "DefaultColorizer",
                          "vidcolor's own recurrent exemplar network, trained on CPU and shipped"),
    "classic": ModelEntry("classic", "vidcolor.colorizers.classic", "ClassicColorizer",
                          "weight-free: reference colours carried by DIS optical flow, re-anchored to the reference"),
    "deepex": ModelEntry("deepex", "vidcolor.colorizers.deepex", "DeepExColorizer",
                         "Deep Exemplar-based Video Colorization (Zhang et al. 2019), official weights imported by the user"),
}


def get_colorizer(name: str, *, device: str = "cpu", **options: object) -> Colorizer:
    """Build the colorizer registered as ``name``; unknown names list the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    entry = MODELS[name]
    module = importlib.import_module(entry.module)
    return getattr(module, entry.cls)(device=device, **options)


__all__ = ["MODELS", "ColorizedFrame", "Colorizer", "ModelEntry", "get_colorizer"]
