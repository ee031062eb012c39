"""What a run reports: one :class:`FrameResult` per frame as it is made, and the :class:`RunSummary`
of the whole run (the pipeline, the chunk encoder and the Ray workers all fill them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline reports after each frame (progress, per-frame statistics)."""

    index: int
    time: float
    timecode: str
    confidence: float
    stats: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data, kept beside a finished chunk so that a resumed run still reports its frames."""
        return {**asdict(self), "confidence": float(self.confidence),
                "stats": {key: float(value) for key, value in self.stats.items()}}

    @classmethod
    def from_json(cls, data: object) -> FrameResult | None:
        """The result :meth:`to_json` wrote, None when ``data`` is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("stats", {}), dict):
            return None
        try:
            return cls(int(data["index"]), float(data["time"]), str(data["timecode"]), float(data["confidence"]),
                       {str(key): float(value) for key, value in data.get("stats", {}).items()})
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class RunSummary:
    """The outcome of :func:`colorize_video`."""

    input: str
    output: str
    frames: int
    seconds: float
    working_size: tuple[int, int]
    model: str
    results: list[FrameResult] = field(default_factory=list)
    #: Frames decoded for this run, by Ray workers too: one pass of the input is the goal, and
    #: positioned reads (chunk warm-ups, no-reference keyframes) show here when they cost more.
    decoded_frames: int = 0
    #: Frames of the output that chunks of an earlier, interrupted run had finished (``--resume``):
    #: ``frames`` counts only those coloured now, so that ``fps`` is this run's speed.
    resumed_frames: int = 0

    @property
    def output_frames(self) -> int:
        """Frames in the output: coloured now plus resumed (what a restorer checks against the input)."""
        return self.frames + self.resumed_frames

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0
