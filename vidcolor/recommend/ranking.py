"""Ranking a library for a query: global cosine keeps the best candidates, the local score (nearest
neighbour cosine plus β times the lightness-histogram correlation) orders them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .features import ImageFeatures
from .library import FeatureLibrary
from .queries import ShotQuery

#: Weight of the luminance-histogram term against the semantic term (the paper's β).
BETA = 0.25
#: Candidates kept by the global ranking for the local re-ranking (the paper's N).
DEFAULT_PRESELECT = 200


@dataclass(frozen=True)
class Suggestion:
    """One recommended reference: ``score = semantic + β · luminance`` (local re-ranking)."""

    rank: int
    path: Path
    score: float
    semantic: float
    luminance: float
    global_score: float


@torch.inference_mode()
def local_score(query: ImageFeatures, candidate: ImageFeatures, beta: float = BETA) -> tuple[float, float, float]:
    """(score, semantic, luminance): means over query positions of the nearest neighbour's cosine
    and of the histogram correlation of the matched cells."""
    q = torch.from_numpy(np.asarray(query.local, dtype=np.float32))
    r = torch.from_numpy(np.asarray(candidate.local, dtype=np.float32))
    sims = q @ r.t()
    best, nearest = sims.max(dim=1)
    hq = torch.from_numpy(np.asarray(query.hist, dtype=np.float32))
    hr = torch.from_numpy(np.asarray(candidate.hist, dtype=np.float32))[nearest]
    semantic = float(best.mean())
    luminance = float((hq * hr).sum(dim=1).mean())
    return semantic + beta * luminance, semantic, luminance


def rank(library: FeatureLibrary, query: ImageFeatures | Sequence[ImageFeatures], *, top: int = 5,
         preselect: int = DEFAULT_PRESELECT, beta: float = BETA) -> list[Suggestion]:
    """The ``top`` library images for a query: global cosine keeps ``preselect``, the local score orders them.

    ``query`` may be several frames of one shot: every score (and its parts) is then the mean
    over the frames, so the winner fits the shot as a whole rather than one moment of it.
    """
    if top < 1:
        raise InputError(f"--top {top}: ask for at least 1 suggestion")
    frames = [query] if isinstance(query, ImageFeatures) else list(query)
    if not frames:
        raise InputError("no query frame to rank the library for")
    glob, usable = library.global_matrix()
    similarity = np.mean([glob @ np.asarray(f.global_, dtype=np.float32) for f in frames], axis=0)
    scores = np.where(usable, similarity, -np.inf)
    keep = min(max(preselect, top), int(np.isfinite(scores).sum()))
    order = np.argsort(-scores, kind="stable")[:keep]
    scored = []
    for index in order:
        candidate = library.entries[int(index)].features
        total, semantic, luminance = np.mean([local_score(f, candidate, beta) for f in frames], axis=0)
        scored.append((float(total), float(semantic), float(luminance), float(scores[index]), int(index)))
    scored.sort(key=lambda s: -s[0])
    return [Suggestion(n, library.path_of(i), t, s, lum, g) for n, (t, s, lum, g, i) in enumerate(scored[:top], 1)]


@dataclass(frozen=True)
class ShotSuggestions:
    """A shot and its ranked references."""

    shot: ShotQuery
    suggestions: tuple[Suggestion, ...]


def suggest(library: FeatureLibrary, queries: Sequence[ShotQuery], *, top: int = 5, preselect: int = DEFAULT_PRESELECT,
            beta: float = BETA) -> list[ShotSuggestions]:
    """Rank the (refreshed) library for every shot."""
    results = []
    for q in queries:
        frames = [library.backbone.features(lightness) for lightness in q.lightness]
        results.append(ShotSuggestions(q, tuple(rank(library, frames, top=top, preselect=preselect, beta=beta))))
    return results
