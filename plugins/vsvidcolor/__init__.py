"""vsvidcolor: vidcolor as a VapourSynth filter.

All algorithms come from the ``vidcolor`` library; this module only validates arguments, adapts
VapourSynth frames to arrays and back, and caches chunks so that a recurrent colorizer can serve
VapourSynth's random, parallel frame requests with exactly what one sequential pass produces.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import vapoursynth as vs

from vidcolor.color import (CODE_BY_MATRIX, MATRIX_BY_CODE, LumaFormat, gray_to_lightness, luma_to_gray_level,
                            luma_to_lightness, matrix_named, rgb_codes)
from vidcolor.errors import VidcolorError
from vidcolor.io.writer import INTERLACE_ADVICE
from vidcolor.references import Reference, load_reference
from vidcolor.run.pipeline import FrameColorizer
from vidcolor.run.prepare import build_colorizers
from vidcolor.run.render import chroma_for_frame
from vidcolor.run.settings import SETTING_NAMES, resolve_settings
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

if TYPE_CHECKING:
    from vidcolor.schedule.presets import Preset

__all__ = ["colorize"]


def colorize(
    clip: vs.VideoNode,
    ref: str | PathLike[str] | None = None,
    refs: Mapping[int, str | PathLike[str]] | None = None,
    ref_clip: vs.VideoNode | None = None,
    ref_frames: Sequence[int] | None = None,
    preset: str | PathLike[str] | None = None,
    model: str | None = None,
    auto_model: str | None = None,
    fallback: str | None = None,
    cuts: Sequence[int] | None = None,
    size: int | str | None = None,
    temporal: bool | None = None,
    flow: str | None = None,
    detail: bool | None = None,
    device: str | None = None,
    threads: int | None = None,
    rgb: bool = False,
    chunk_length: int | None = None,
    warmup: int | None = None,
    anchor: str | None = None,
    cache_chunks: int = 2,
) -> vs.VideoNode:
    """Colorize a black-and-white clip from colour reference images.

    :param clip:         GRAY or YUV clip, 8-16-bit integer or half/single float. Only luma is used;
                         it passes through untouched. An interlaced clip (``_FieldBased`` 1 or 2) is
                         coloured as whole frames: VapourSynth's log says so once, with the fix.
    :param ref:          one reference image for the whole clip.
    :param refs:         keyframes ``{frame: image_path}``; each reference applies from its frame on.
    :param ref_clip:     RGB clip of reference images; with ``ref_frames`` (one clip frame number per
                         ``ref_clip`` frame), or a single frame for the whole clip.
    :param ref_frames:   frame numbers for ``ref_clip``.
    :param preset:       a vidcolor keyframe preset file (TOML).
    :param model:        colorizer name, as ``vidcolor colorize --model`` (``default``, ``classic``, ``fast``, ``deepex``; ``autocolor``, ``eccv16``, ``cheng2015`` are automatic);
                         default: the preset's, else the shipped default model.
    :param auto_model:   with no reference at all: the automatic model (``autocolor``, the default, ``eccv16``,
                         ``cheng2015``) that colours up to 17 frames of each segment (16 evenly spaced and
                         the middle one); the middle one becomes the reference ``model`` carries through
                         it, unless another is clearly surer.
    :param fallback:     an automatic model (``autocolor``) whose colour is blended in, pixel by pixel, where the
                         references do not show the scene; ``none``: off (default: the preset's, else ``none``,
                         as the CLI's ``--fallback``).
    :param cuts:         with no reference: shot starts (e.g. from ``vidcolor scenes``); each gets its own
                         automatic reference. Default: the clip's scene-change frame properties (below),
                         read in one pass over the clip at the first request; ``[]`` for none.
    :param size:         working resolution: short side in pixels, or ``"WxH"`` (default: the preset's, else
                         the model's).
    :param temporal:     optical-flow temporal check (default: on, with the preset's ``[temporal]`` settings).
    :param flow:         flow for the temporal check: ``auto`` (installed RAFT, else OpenCV DIS; the default),
                         ``dis``, ``raft-small``, ``raft-large``.
    :param detail:       carry the references' colour detail finer than the working size (printed text,
                         patterns, thin painted lines) onto each full-size frame by optical flow
                         (default: the preset's ``detail``, else off).
    :param device:       torch device for learned models (``cpu``, the default, ``cuda``, ``cuda:1``).
    :param threads:      torch CPU threads, as ``vidcolor colorize --threads`` (default: 1, all cores for
                         ``deepex``). Set for the whole process, as the CLI does: the thread count changes how
                         float sums are split, so it is part of what makes the frames equal the CLI's.
    :param rgb:          return RGB (same depth) instead of YUV444.
    :param chunk_length: frames per chunk; a request computes its chunk sequentially, so seeking costs up
                         to ``chunk_length + warmup`` frames of colorization. Must match the CLI's value for
                         identical results (both default to 240).
    :param warmup:       frames replayed before each chunk so colour carries across chunk boundaries (default 8).
    :param anchor:       ``auto``: colour each keyframe's shot outward from the frame its reference really
                         shows (found among the shot's first 64 frames); ``pinned``: from the frame it is
                         pinned to (default: the preset's, else ``pinned``, as the CLI's ``--anchor``).
    :param cache_chunks: finished chunks kept in memory (working-resolution chroma only).

    Settings follow the CLI's precedence (:func:`vidcolor.run.settings.resolve_settings`): a keyword
    given here > the preset's value > vidcolor's default. A preset's ``[scenes] detect`` has no effect
    here (the filter has no file to scan): mark the cuts with frame properties or pass ``cuts``.

    Scene changes marked with ``_SceneChangePrev``/``_SceneChangeNext`` frame properties (e.g. by
    ``misc.SCDetect``) restart the recurrence, like keyframes do. With no reference and no ``cuts``
    they also start a new shot with its own automatic reference, as ``vidcolor colorize
    --detect-scenes`` does: the filter then reads every frame's properties once, before colorizing,
    so that any frame requested in any order gets the colours one sequential pass gives.
    """
    # the keywords named like a run setting, as given (None: not given), before any other local exists
    explicit = {name: value for name, value in locals().items() if name in SETTING_NAMES}
    func = "vsvidcolor.colorize"
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"{func}: clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or clip.width == 0 or clip.height == 0:
        raise vs.Error(f"{func}: clip must have a constant format and size, got a variable one")
    if fmt.color_family not in (vs.GRAY, vs.YUV):
        raise vs.Error(f"{func}: clip must be GRAY or YUV (only luma is used), got {fmt.name}")
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        raise vs.Error(f"{func}: integer clips must be 8-16-bit, got {fmt.name}")
    if cache_chunks < 1:
        raise vs.Error(f"{func}: cache_chunks must be >= 1, got {cache_chunks}")
    given = [name for name, value in (("ref", ref), ("refs", refs), ("ref_clip", ref_clip), ("preset", preset))
             if value is not None]
    if len(given) > 1:
        raise vs.Error(f"{func}: give only one of ref, refs, ref_clip, preset, got {', '.join(given)}")
    try:
        if given:
            schedule, loaded = _schedule(func, clip, ref, refs, ref_clip, ref_frames, preset)
        else:  # no reference: each segment between `cuts` gets its own automatic reference
            if cuts is not None and not all(isinstance(c, int) and 0 < c < clip.num_frames for c in cuts):
                raise vs.Error(f"{func}: cuts must be frame numbers in 1..{clip.num_frames - 1}, got {cuts!r}")
            schedule, loaded = ReferenceSchedule([], cuts or (), frame_count=clip.num_frames), None
        settings = resolve_settings(explicit, loaded)
        colorizer, auto = build_colorizers(settings, bool(schedule.keyframes))
        work = settings.work_size(clip.width, clip.height, colorizer)
    except VidcolorError as exc:
        raise vs.Error(f"{func}: {exc}") from None

    def colorizer_of_frames() -> FrameColorizer:
        shots = schedule.as_stored((clip.width, clip.height), _sample_aspect(clip.get_frame(0)))
        if auto is not None and cuts is None and _marks_scene_changes(clip):
            shots = ReferenceSchedule([], _scene_change_cuts(clip), frame_count=clip.num_frames)
        return FrameColorizer(colorizer, shots, work, settings.plan, auto=auto,
                              frame_at=lambda n: _lightness(clip.get_frame(n)), detail=settings.reference_detail(),
                              anchor=settings.anchor,
                              frames_from=lambda a, b: (_lightness(clip.get_frame(n)) for n in range(a, min(b, clip.num_frames))))

    chunks = _ChunkCache(clip, colorizer_of_frames, cache_chunks)

    if rgb:
        out_format = vs.core.query_video_format(vs.RGB, fmt.sample_type, fmt.bits_per_sample, 0, 0)
    else:
        out_format = vs.core.query_video_format(vs.YUV, fmt.sample_type, fmt.bits_per_sample, 0, 0)
    blank = clip.std.BlankClip(format=out_format.id, keep=True)
    interlace_said = threading.Lock()  # taken for good by the first interlaced frame: one warning per call

    def render(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out, src = f[0].copy(), f[1]
        if int(src.props.get("_FieldBased", 0)) in _FIELD_ORDERS and interlace_said.acquire(blocking=False):
            _warn_interlaced(func, n, int(src.props["_FieldBased"]))
        luma = np.asarray(src[0])
        luma_format = _luma_format(src)
        if fmt.sample_type == vs.FLOAT:
            gray = np.clip(luma.astype(np.float32), 0.0, 1.0)
            lightness = gray_to_lightness(gray)
        else:
            lightness = luma_to_lightness(luma, luma_format)
            gray = luma_to_gray_level(luma, luma_format)
        ab = chunks.ab(n)
        upsample = functools.partial(chunks.frames.upsample, n)
        if rgb:
            ab_full = upsample(ab, lightness)
            bits = 16 if fmt.sample_type == vs.FLOAT or fmt.bits_per_sample > 8 else 8
            codes = rgb_codes(gray, ab_full, bits, luma_format.matrix)
            scale = 1.0 / 65535.0 if fmt.sample_type == vs.FLOAT else None
            for plane in range(3):
                channel = codes[..., plane]
                if scale is not None:
                    np.asarray(out[plane])[:] = channel.astype(np.float32) * scale
                elif fmt.bits_per_sample not in (8, 16):
                    np.asarray(out[plane])[:] = np.rint(channel * ((1 << fmt.bits_per_sample) - 1) / 65535.0)
                else:
                    np.asarray(out[plane])[:] = channel
        else:
            np.asarray(out[0])[:] = luma
            if fmt.sample_type == vs.FLOAT:
                cb, cr = chroma_for_frame(lightness, gray, ab, (clip.width, clip.height),
                                          LumaFormat(16, True, luma_format.matrix), upsample)
                np.asarray(out[1])[:] = (cb.astype(np.float32) - 32768.0) / 65535.0
                np.asarray(out[2])[:] = (cr.astype(np.float32) - 32768.0) / 65535.0
            else:
                cb, cr = chroma_for_frame(lightness, gray, ab, (clip.width, clip.height), luma_format, upsample)
                np.asarray(out[1])[:] = cb
                np.asarray(out[2])[:] = cr
        props = out.props
        for key, value in src.props.items():  # the clip's own: pixel aspect, field order, range, colour tags...
            props[key] = value
        props["_ChromaLocation"] = 0
        if rgb:
            for key in ("_Matrix", "_Range", "_ColorRange"):
                if key in props:
                    del props[key]
        elif int(props.get("_Matrix", 2)) not in MATRIX_BY_CODE:  # say which matrix the chroma was made with
            props["_Matrix"] = CODE_BY_MATRIX[luma_format.matrix]
        return out

    return blank.std.ModifyFrame([blank, clip], render)


#: VapourSynth's ``_FieldBased``: 1 bottom field first, 2 top field first (0: progressive).
_FIELD_ORDERS = {1: "bottom field first", 2: "top field first"}


def _warn_interlaced(func: str, n: int, field_based: int) -> None:
    """What the CLI says of an interlaced input, through VapourSynth's log, which its host shows."""
    vs.core.log_message(vs.MESSAGE_TYPE_WARNING, (
        f"{func}: frame {n} is interlaced (_FieldBased={field_based}, {_FIELD_ORDERS[field_based]}): "
        f"{INTERLACE_ADVICE} The luma's fields are kept as they are, and so is _FieldBased"))


def _lightness(frame: vs.VideoFrame) -> np.ndarray:
    luma = np.asarray(frame[0])
    if frame.format.sample_type == vs.FLOAT:
        return gray_to_lightness(np.clip(luma.astype(np.float32), 0.0, 1.0))
    return luma_to_lightness(luma, _luma_format(frame))


def _luma_format(frame: vs.VideoFrame) -> LumaFormat:
    props = frame.props
    bits = frame.format.bits_per_sample if frame.format.sample_type == vs.INTEGER else 16
    # VapourSynth's own constant: _Range is 1 for full range and 0 for limited (its old _ColorRange was the reverse)
    full_range = "_Range" in props and int(props["_Range"]) == int(vs.RANGE_FULL)
    matrix = matrix_named(int(props.get("_Matrix", 2)), frame.height)
    return LumaFormat(bits, full_range, matrix)


def _schedule(func: str, clip: vs.VideoNode, ref: object, refs: Mapping[int, object] | None,
              ref_clip: vs.VideoNode | None, ref_frames: Sequence[int] | None,
              preset: object) -> tuple[ReferenceSchedule, Preset | None]:
    if ref is not None:
        return ReferenceSchedule.single(load_reference(ref)), None  # type: ignore[arg-type]
    if refs is not None:
        if not isinstance(refs, Mapping) or not refs:
            raise vs.Error(f"{func}: refs must be a non-empty dict {{frame: image_path}}, got {refs!r}")
        keyframes = []
        for frame, path in refs.items():
            if not isinstance(frame, int) or not 0 <= frame < clip.num_frames:
                raise vs.Error(f"{func}: refs keys must be frame numbers in 0..{clip.num_frames - 1}, got {frame!r}")
            keyframes.append(Keyframe(frame, load_reference(path)))  # type: ignore[arg-type]
        return ReferenceSchedule(keyframes), None
    if ref_clip is not None:
        if not isinstance(ref_clip, vs.VideoNode) or ref_clip.format is None or ref_clip.format.color_family != vs.RGB:
            got = ref_clip.format.name if isinstance(ref_clip, vs.VideoNode) and ref_clip.format else type(ref_clip).__name__
            raise vs.Error(f"{func}: ref_clip must be an RGB clip, got {got}")
        frames = list(ref_frames) if ref_frames is not None else [0]
        if ref_clip.num_frames != len(frames):
            raise vs.Error(f"{func}: ref_clip must have one frame per entry of ref_frames ({len(frames)}), "
                           f"got {ref_clip.num_frames} frames")
        keyframes = []
        for i, frame in enumerate(frames):
            if not isinstance(frame, int) or not 0 <= frame < clip.num_frames:
                raise vs.Error(f"{func}: ref_frames must be frame numbers in 0..{clip.num_frames - 1}, got {frame!r}")
            image = ref_clip.get_frame(i)
            rgb = np.stack([np.asarray(image[p]) for p in range(3)], axis=-1)
            if image.format.sample_type == vs.INTEGER:
                rgb = rgb.astype(np.float32) / ((1 << image.format.bits_per_sample) - 1)
            keyframes.append(Keyframe(frame, Reference.from_array(rgb.astype(np.float32), key=f"ref_clip:{id(ref_clip)}:{i}")))
        return ReferenceSchedule(keyframes), None
    from vidcolor.schedule.presets import load_preset  # noqa: PLC0415 - optional until presets are used

    loaded = load_preset(preset)  # type: ignore[arg-type]
    fps = clip.fps if clip.fps.numerator else None
    return loaded.schedule(clip.num_frames, fps), loaded


def _sample_aspect(frame: vs.VideoFrame) -> Fraction:
    """The clip's pixel aspect (``_SARNum``/``_SARDen``; 1 when unset or 0, VapourSynth's "unknown")."""
    num, den = int(frame.props.get("_SARNum", 0)), int(frame.props.get("_SARDen", 0))
    return Fraction(num, den) if num > 0 and den > 0 else Fraction(1)


def _marks_scene_changes(clip: vs.VideoNode) -> bool:
    """Whether the clip carries scene-change properties (a detector sets them on every frame)."""
    props = clip.get_frame(0).props
    return "_SceneChangePrev" in props or "_SceneChangeNext" in props


def _scene_change_cuts(clip: vs.VideoNode) -> list[int]:
    """Shot starts marked by frame properties: a frame with ``_SceneChangePrev`` starts a shot, and
    so does the frame after one with ``_SceneChangeNext``."""
    cuts: set[int] = set()
    for index in range(clip.num_frames):
        props = clip.get_frame(index).props
        if index > 0 and props.get("_SceneChangePrev", 0):
            cuts.add(index)
        if props.get("_SceneChangeNext", 0) and index + 1 < clip.num_frames:
            cuts.add(index + 1)
    return sorted(cuts)


class _ChunkCache:
    """Working-resolution chroma per frame, computed one chunk at a time under a lock.

    ``build`` makes the :class:`FrameColorizer` at the first request, so that work it needs first
    (reading scene-change properties) does not delay the script's evaluation.
    """

    def __init__(self, clip: vs.VideoNode, build: Callable[[], FrameColorizer], capacity: int) -> None:
        self.clip = clip
        self.build = build
        self._frames: FrameColorizer | None = None
        self.capacity = capacity
        self.lock = threading.Lock()
        self.chunks: OrderedDict[int, dict[int, np.ndarray]] = OrderedDict()

    @property
    def frames(self) -> FrameColorizer:
        if self._frames is None:
            self._frames = self.build()
        return self._frames

    def ab(self, n: int) -> np.ndarray:
        with self.lock:
            start = self.frames.chunk_start(n)
            chunk = self.chunks.get(start)
            if chunk is None:
                chunk = self._compute(n)
                self.chunks[start] = chunk
                while len(self.chunks) > self.capacity:
                    self.chunks.popitem(last=False)
            else:
                self.chunks.move_to_end(start)
            return chunk[n]

    def _compute(self, n: int) -> dict[int, np.ndarray]:
        begin, chunk_start, end = self.frames.chunk_bounds(n, self.clip.num_frames)
        self.frames.start_pass()  # the recurrence restarts at ``begin``
        results: dict[int, np.ndarray] = {}
        previous_next = False
        for index in range(begin, end):
            frame = self.clip.get_frame(index)
            props = frame.props
            cut = bool(props.get("_SceneChangePrev", 0)) or previous_next
            previous_next = bool(props.get("_SceneChangeNext", 0))
            lightness = _lightness(frame)
            result = self.frames.predict(index, lightness, cut=cut and index != begin)
            if index >= chunk_start:
                results[index] = result.ab
        return results
