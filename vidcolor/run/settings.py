"""Every user setting of a colouring run, resolved once for ``vidcolor colorize``, ``vidcolor batch``
and the VapourSynth filter.

Precedence: a value the user gave (a command-line option, a batch option, a filter keyword) >
the film's preset > vidcolor's default. Each front end collects what the user gave into a mapping
(None meaning "not given") and calls :func:`resolve_settings`; nothing else chooses between the
three, so the same choices give the same frames in every front end.

Adding a setting: a field of :class:`RunSettings` (its default, its check, the preset attribute
that may set it), used where it acts (e.g. :func:`vidcolor.run.prepare.build_colorizers`); its
command-line option in ``vidcolor/cli/batch.py``'s ``SETTING_OPTIONS`` (``colorize`` and ``batch``
pass every such option on by name); a keyword of the same name in ``vsvidcolor.colorize`` (passed
on by name too); for a preset key, an entry in ``FLAG_KEYS`` (on/off) or a parser in
:mod:`vidcolor.schedule.presets` and a :class:`~vidcolor.schedule.presets.Preset` field; and the
setting's row in ``tests/test_preset_precedence.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .anchor import ANCHORS, DEFAULT_ANCHOR
from .chunks import ChunkPlan
from .sizes import MIN_WORKING_SIDE, parse_size, run_working_size

if TYPE_CHECKING:
    from ..colorizers.base import Colorizer
    from ..correspondence.detail import ReferenceDetail
    from ..io.writer import OutputSpec
    from ..schedule.presets import Preset
    from ..temporal import TemporalSettings

#: Optical flows of the temporal check (``auto``: installed RAFT weights, else OpenCV DIS).
FLOWS = ("auto", "dis", "raft-small", "raft-large")


class SettingError(InputError):
    """A setting whose value vidcolor cannot use; ``setting`` names it (the CLI shows ``--setting``)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


Check = Callable[[str, Any], Any]


def _models(name: str, value: Any) -> str:
    from ..colorizers import MODELS  # noqa: PLC0415 - the registry, not the models

    if not isinstance(value, str) or value not in MODELS:
        raise SettingError(name, f"{name} must be one of {', '.join(MODELS)}, got {value!r}")
    return value


def _size(name: str, value: Any) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise SettingError(name, f"{name} must be a short side in pixels (an integer of at least {MIN_WORKING_SIDE}) "
                           f"or WxH, got {value!r}")
    try:
        parse_size(text, name)
    except ValueError as exc:
        raise SettingError(name, str(exc)) from None
    return text


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool | int) or value not in (0, 1):
        raise SettingError(name, f"{name} must be True or False, got {value!r}")
    return bool(value)


def _count(minimum: int) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SettingError(name, f"{name} must be an integer of at least {minimum}, got {value!r}")
        return value

    return check


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SettingError(name, f"{name} must be a positive number, got {value!r}")
    return float(value)


def _one_of(choices: Callable[[], Any]) -> Check:
    def check(name: str, value: Any) -> str:
        known = tuple(choices())
        if value not in known:
            raise SettingError(name, f"{name} must be one of {', '.join(known)}, got {value!r}")
        return value

    return check


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SettingError(name, f"{name} must be a non-empty string, got {value!r}")
    return value


def _crf(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 51:
        raise SettingError(name, f"{name} must be an integer from 0 to 51, got {value!r}")
    return value


def _fallback(name: str, value: Any) -> str:
    from ..colorizers import AUTOMATIC_MODELS  # noqa: PLC0415 - the registry, not the models

    if value != "none" and value not in AUTOMATIC_MODELS:
        raise SettingError(name, f"{name} must be none or an automatic model ({', '.join(AUTOMATIC_MODELS)}), "
                           f"got {value!r}")
    return value


def _codecs() -> Any:
    from ..io.writer import CODECS  # noqa: PLC0415

    return CODECS


def _encoder_presets() -> Any:
    from ..io.writer import ENCODER_PRESETS  # noqa: PLC0415

    return ENCODER_PRESETS


def _default_model() -> str:
    from ..colorizers import default_model  # noqa: PLC0415

    return default_model()


def _default_temporal() -> TemporalSettings:
    from ..temporal import TemporalSettings  # noqa: PLC0415

    return TemporalSettings()


def setting(default: Any = None, *, check: Check | None = None, preset: str | None = None,
            default_factory: Callable[[], Any] | None = None) -> Any:
    """A field of :class:`RunSettings`: its default, how a given value is checked, and the preset
    attribute (dotted, e.g. ``scenes.detect``) that sets it when the user did not."""
    metadata = {"check": check, "preset": preset}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunSettings:
    """The resolved settings of one run. Build it with :func:`resolve_settings`; ``RunSettings()``
    is vidcolor's defaults."""

    #: the colorizer (``--model``).
    model: str = setting(check=_models, preset="model", default_factory=_default_model)
    #: no-reference mode's automatic model; None: :func:`vidcolor.colorizers.default_auto_model`.
    auto_model: str | None = setting(check=_models)
    #: the automatic model that colours what the references do not show (``none``: off; see
    #: :class:`vidcolor.colorizers.fallback.FallbackColorizer`).
    fallback: str = setting("none", check=_fallback, preset="fallback")
    #: working resolution, ``N`` (short side) or ``WxH``; None: the model's own.
    size: str | None = setting(check=_size, preset="size")
    #: the optical-flow temporal check (None: off). Given as True/False; the preset's
    #: ``[temporal]`` table sets its values (see :func:`resolve_settings`).
    temporal: TemporalSettings | None = setting(default_factory=_default_temporal)
    flow: str = setting("auto", check=_one_of(lambda: FLOWS))
    #: carry the references' fine colour detail to the output size.
    detail: bool = setting(False, check=_flag, preset="detail")
    #: reset at PySceneDetect's cuts; None: only when the run has no reference (each shot then gets
    #: its own automatic reference).
    detect_scenes: bool | None = setting(check=_flag, preset="scenes.detect")
    scene_threshold: float = setting(27.0, check=_number, preset="scenes.threshold")
    scene_min_length: int = setting(15, check=_count(1), preset="scenes.min_length")
    #: torch device of the learned models.
    device: str = setting("cpu", check=_text)
    #: torch CPU threads; None: :func:`vidcolor.colorizers.set_torch_threads` decides.
    threads: int | None = setting(check=_count(1))
    #: encoder; None: from the output's extension.
    codec: str | None = setting(check=_one_of(_codecs), preset="codec")
    crf: int | None = setting(check=_crf, preset="crf")
    #: x264/x265 speed preset; None: the model's own (:func:`model_encoder_preset`).
    encoder_preset: str | None = setting(check=_one_of(_encoder_presets), preset="encoder_preset")
    #: frames per chunk (the recurrence restarts with warm-up); 0: whole shots.
    chunk_length: int = setting(ChunkPlan.length, check=_count(0))
    warmup: int = setting(ChunkPlan.warmup, check=_count(0))
    #: ``auto``: colour each keyframe's shot outward from the frame its reference shows;
    #: ``pinned``: from the frame it is pinned to (see :mod:`vidcolor.run.anchor`).
    anchor: str = setting(DEFAULT_ANCHOR, check=_one_of(lambda: ANCHORS), preset="anchor")

    @property
    def plan(self) -> ChunkPlan:
        return ChunkPlan(self.chunk_length, self.warmup)

    @property
    def short_side(self) -> int | None:
        return parse_size(self.size)[0]

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """``WxH`` as (width, height); None for a short side or the model's default."""
        return parse_size(self.size)[1]

    def work_size(self, width: int, height: int, colorizer: Colorizer) -> tuple[int, int]:
        """The working size on a ``width`` x ``height`` input: ``WxH``, else the short side given or
        the model's own default (aspect kept)."""
        return run_working_size(width, height, colorizer, self.short_side, self.fixed_size)

    def scene_detection(self, has_references: bool) -> bool:
        """Whether the run looks for cuts: as set, else exactly when it has no reference."""
        return self.detect_scenes if self.detect_scenes is not None else not has_references

    def reference_detail(self) -> ReferenceDetail | None:
        from ..correspondence.detail import ReferenceDetail  # noqa: PLC0415

        return ReferenceDetail() if self.detail else None

    @property
    def effective_encoder_preset(self) -> str:
        """The x264/x265 preset the output is encoded with: as given, else the model's own."""
        return self.encoder_preset or model_encoder_preset(self.model)

    def output_spec(self, path: str) -> OutputSpec:
        """The output ``path`` with this run's encoder settings (the preset resolved, so that the
        resume signature, which holds the spec, tells a ``superfast`` run from a ``medium`` one)."""
        from ..io.writer import resolve_output  # noqa: PLC0415

        return resolve_output(path, codec=self.codec, crf=self.crf, encoder_preset=self.effective_encoder_preset)


def model_encoder_preset(model: str) -> str:
    """The encoder preset of a run of ``model`` when none is given: its registry entry's
    (``medium``; ``superfast`` for the quick-preview ``fast`` model, whose command would otherwise
    spend most of its time in x264). Read from the registry: neither the model's module nor its weights load."""
    from ..colorizers import MODELS  # noqa: PLC0415 - the registry, not the models

    return MODELS[model].encoder_preset


#: The names :func:`resolve_settings` accepts, in order.
SETTING_NAMES = tuple(item.name for item in dataclasses.fields(RunSettings))


def setting_default(name: str) -> Any:
    """The default of setting ``name`` (for help texts: one source for every front end)."""
    item = next(item for item in dataclasses.fields(RunSettings) if item.name == name)
    return item.default_factory() if item.default is dataclasses.MISSING else item.default  # type: ignore[misc]


def resolve_settings(explicit: Mapping[str, Any] | None = None, preset: Preset | None = None) -> RunSettings:
    """The run's settings: each one as given in ``explicit`` (None or absent: not given), else as
    ``preset`` sets it, else vidcolor's default; every value checked (:class:`SettingError` names
    the setting and what it accepts).

    ``temporal`` is the one setting that combines: the preset's ``[temporal]`` table gives the
    check's values (or turns it off), and a given True/False switches the check on (with the
    table's values, else the defaults) or off.
    """
    explicit = dict(explicit or {})
    unknown = sorted(set(explicit) - set(SETTING_NAMES))
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(unknown)}: the settings are {', '.join(SETTING_NAMES)}")
    values: dict[str, Any] = {}
    for item in dataclasses.fields(RunSettings):
        if item.name == "temporal":
            continue
        value = explicit.get(item.name)
        if value is None and preset is not None and item.metadata["preset"]:
            value = _preset_value(preset, item.metadata["preset"])
        if value is None:
            values[item.name] = setting_default(item.name)
        else:
            check = item.metadata["check"]
            values[item.name] = check(item.name, value) if check is not None else value
    values["temporal"] = _temporal(explicit.get("temporal"), preset)
    return RunSettings(**values)


def _preset_value(preset: Preset, path: str) -> Any:
    value: Any = preset
    for part in path.split("."):
        value = getattr(value, part, None)
    return value


def _temporal(given: Any, preset: Preset | None) -> TemporalSettings | None:
    base = preset.temporal_settings() if preset is not None else _default_temporal()
    if given is None:
        return base
    return (base or _default_temporal()) if _flag("temporal", given) else None


__all__ = ["FLOWS", "RunSettings", "SETTING_NAMES", "SettingError", "model_encoder_preset", "resolve_settings", "setting",
           "setting_default"]
