"""What a run reports: one :class:`FrameResult` per frame as it is made, and the :class:`RunSummary`
of the whole run (the pipeline, the chunk encoder and the Ray workers all fill them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline reports after each frame (progress, per-frame statistics)."""

    index: int
    time: float
    timecode: str
    confidence: float
    stats: dict[str, float] = field(default_factory=dict)


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

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0
