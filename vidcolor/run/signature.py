"""The resume signature: everything that changes a resumable run's frames, so that a rerun
never mixes chunks made with other models, weights, devices or settings."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..colorizers.base import Colorizer
from ..io.reader import VideoInfo
from ..io.writer import OutputSpec
from .resume import RunSignature, input_identity, run_signature

if TYPE_CHECKING:
    from .pipeline import FrameColorizer

#: Bumped whenever vidcolor changes the frames a pass gives with the same settings, models and
#: weights (its version number moves only at releases), so that chunks of a run interrupted before
#: such a change are never joined to chunks made after it; a change to how the writer encodes a
#: chunk (its bitstream or stream parameters: the join copies the first chunk's) bumps it too. 2: a reference of another aspect is
#: placed or stretched on its shot's start frame, and its moment is found at its own aspect.
#: 3: a no-reference shot's keyframe is, of the candidates as sure as the surest within
#: CONFIDENCE_MARGIN, the one nearest its middle frame. 4: the last shot of a film whose
#: container gives no frame count takes the frame the scan chose for it, not its first. 5: a
#: two-keyframe shot's end reference of another aspect is placed or stretched by its own frame.
#: 6: the colorizer matches each frame to a user's reference near the reference's tone (run.tone).
#: 7: only where that reference shows the shot's scene (run.tone.ToneGate), not another picture.
#: 8: a ProRes chunk's frames state the colour matrix, primaries and transfer (writer._yuv_frame).
PASS_RULES = 8


def resume_signature(info: VideoInfo, spec: OutputSpec, frames: FrameColorizer,
                     settings: Mapping[str, object] | None = None) -> RunSignature:
    """Everything that changes a resumable run's frames: vidcolor's version and :data:`PASS_RULES`,
    the models and the SHA-256 of every weight file they loaded, the device and dtype, the working size, the encoder,
    the chunk plan, the schedule (reference pictures by content), the detail settings, the anchoring, ``settings``
    (e.g. a batch job's preset) and the input's identity (every frame file of a sequence)."""
    from .. import __version__  # noqa: PLC0415 - the package imports this module

    schedule, detail = frames.schedule, frames.detail
    models = [model for model in (frames.colorizer, frames.auto) if model is not None]
    return run_signature(
        vidcolor=__version__, rules=PASS_RULES, input=input_identity(info.path, info.sequence_files),
        model=frames.colorizer.describe(), auto=frames.auto.describe() if frames.auto is not None else None,
        weights=_weight_digests(models), runtime=_runtime(models), work=list(frames.work),
        output={"codec": spec.codec.name, "crf": spec.crf, "encoder_preset": spec.encoder_preset,
                "extension": os.path.splitext(spec.path)[1].lower()},
        plan=[frames.plan.length, frames.plan.warmup], cuts=sorted(schedule.cuts),
        keyframes=[(k.frame, k.reference.fingerprint, k.end_reference.fingerprint if k.end_reference else None, k.end_frame)
                   for k in schedule.keyframes],
        detail=dataclasses.asdict(detail.settings) if detail is not None else None, settings=dict(settings or {}),
        anchor=frames.anchor)


def _weight_files(model: object) -> tuple[str, ...]:
    """Weight files behind ``model`` as recorded when it was built (see
    :func:`vidcolor.weights.recording_loads`); a wrapper built by hand falls back to its inner model."""
    from ..weights import weight_files_of  # noqa: PLC0415

    files = weight_files_of(model)
    inner = getattr(model, "inner", None)
    return files if files or inner is None else _weight_files(inner)


def _weight_digests(models: Sequence[Colorizer]) -> dict[str, str]:
    from ..weights import weights_digest  # noqa: PLC0415

    digests: dict[str, str] = {}
    named: dict[str, str] = {}  # file name -> path: two files of one name are told apart by path
    for model in models:
        for path in _weight_files(model):
            name = os.path.basename(path)
            key = name if named.setdefault(name, path) == path else path
            digests[key] = weights_digest(path)
    return dict(sorted(digests.items()))


def _runtime(models: Sequence[Colorizer]) -> dict[str, object]:
    """Device and floating-point type: the same weights give other frames on another device."""
    devices = []
    for model in models:
        holder: object | None = model
        while holder is not None and getattr(holder, "device", None) is None:
            holder = getattr(holder, "inner", None)
        devices.append(str(getattr(holder, "device", "cpu")))
    torch = sys.modules.get("torch")  # not imported by a weight-free run: torch's default then
    return {"devices": devices, "dtype": str(torch.get_default_dtype()) if torch is not None else "torch.float32"}
