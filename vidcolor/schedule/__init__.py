"""Which reference applies where: :mod:`.keyframes` (the reference schedule: keyframes resolved into
shots), :mod:`.presets` (keyframe presets in TOML, with timecodes) and :mod:`.scenes` (shot cuts
found by PySceneDetect, and scene presets written from them).

``Keyframe``, ``ReferenceSchedule`` and ``parse_ref_option`` are re-exported here because the
README's library example imports them from ``vidcolor.schedule``.
"""

from .keyframes import Keyframe, ReferenceSchedule, parse_ref_option

__all__ = ["Keyframe", "ReferenceSchedule", "parse_ref_option"]
