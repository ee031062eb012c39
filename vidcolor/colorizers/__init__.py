"""Colorizer registry: ``--model NAME`` → a :class:`~vidcolor.colorizers.base.Colorizer`.

Imports are lazy so that choosing ``classic`` never loads torch-heavy modules.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError
from ..weights import attach_weight_files, recording_loads, weight_files_of
from .base import ColorizedFrame, Colorizer

if TYPE_CHECKING:
    from ..temporal import TemporalSettings


@dataclass(frozen=True)
class ModelEntry:
    name: str
    module: str
    cls: str
    summary: str
    #: x264/x265 preset of the output when the user gives none (``--encoder-preset``). Kept here,
    #: not on the class, so the output can be checked before the model's module is imported.
    encoder_preset: str = "medium"


MODELS: dict[str, ModelEntry] = {
    "default": ModelEntry("default", "vidcolor.colorizers.default", "DefaultColorizer",
                          "vidcolor's own recurrent exemplar network, trained on CPU and shipped"),
    "classic": ModelEntry("classic", "vidcolor.colorizers.classic", "ClassicColorizer",
                          "weight-free: reference colours carried by DIS optical flow, re-anchored to the reference"),
    "deepex": ModelEntry("deepex", "vidcolor.colorizers.deepex", "DeepExColorizer",
                         "Deep Exemplar-based Video Colorization (Zhang et al. 2019), official weights imported by the user"),
    "fast": ModelEntry("fast", "vidcolor.colorizers.fast", "FastColorizer",
                       "quick previews: Color2Embed-style global colour embedding + modulated decoder, no correspondence, shipped",
                       # A preview is also encoded quickly: at x264 medium the encode took about half of this
                       # model's whole command on 480p. superfast is the slowest preset that made the command 3x
                       # faster than default's (veryfast: 2.7x), at -0.09 dB and +5 % file size against medium
                       # on real clips (fast.md, "Whole command"). --encoder-preset wins.
                       encoder_preset="superfast"),
    "eccv16": ModelEntry("eccv16", "vidcolor.colorizers.eccv16", "Eccv16Colorizer",
                         "automatic, no reference (Zhang et al. 2016): the authors' weights when imported, else vidcolor's small CPU-trained variant"),
    "cheng2015": ModelEntry("cheng2015", "vidcolor.colorizers.cheng2015", "Cheng2015Colorizer",
                            "automatic, no reference (Cheng et al. 2015): patch + DAISY descriptors, cluster-routed regressors, joint bilateral filter; shipped"),
    "autocolor": ModelEntry("autocolor", "vidcolor.colorizers.autocolor", "AutocolorColorizer",
                            "automatic, no reference: the pretrained Lite0 trunk + a CPU-trained decoder over 313 ab bins (ECCV16's loss and decoding); shipped"),
}


def get_colorizer(name: str, *, device: str = "cpu", **options: object) -> Colorizer:
    """Build the colorizer registered as ``name``; unknown names list the choices."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    entry = MODELS[name]
    module = importlib.import_module(entry.module)
    with recording_loads() as loaded:  # the weight files a resumed run must find unchanged
        colorizer = getattr(module, entry.cls)(device=device, **options)
    attach_weight_files(colorizer, loaded)
    return colorizer


def default_model() -> str:
    """The shipped default network when its weights are installed, else the weight-free baseline."""
    from importlib import resources

    try:
        if resources.files("vidcolor.models").joinpath("weights/default.pt").is_file():
            return "default"
    except ModuleNotFoundError:
        pass
    return "classic"


#: Automatic (reference-free) models.
AUTOMATIC_MODELS = ("autocolor", "eccv16", "cheng2015")


def default_auto_model() -> str:
    """The automatic model for shots without any reference: ``autocolor`` (the pretrained Lite0
    trunk + a trained decoder). Through the real pipeline (bench/quality.py --reference none, 7
    clips, 30 frames) it scores 24.22 dB with its keyframe decoding and each shot's most confident
    frame (23.59 with the plain decoding on the middle frame) against gray 23.35, cheng2015 22.12 and
    vidcolor's small eccv16 22.46 (the last two on the middle frame; autocolor.md). The
    authors' ECCV16 (``--auto-model eccv16`` once imported) has not been measured better here, so
    it no longer takes over by itself."""
    return "autocolor"


def no_reference_colorizer(colorizer: Colorizer, has_references: bool, auto_model: str | None = None, *,
                           device: str = "cpu") -> Colorizer | None:
    """The automatic model of no-reference mode (``auto_model``, else :func:`default_auto_model`),
    or None when it has no part: the schedule has references, or ``colorizer`` is automatic itself.
    One decision for the CLI, batch and the VapourSynth filter."""
    if has_references or not colorizer.needs_reference:
        return None
    name = auto_model or default_auto_model()
    # autocolor's weights carry a decoding chosen for whole no-reference keyframes (autocolor.md)
    return get_colorizer(name, device=device, **({"keyframe": True} if name == "autocolor" else {}))


#: The count the last call of :func:`set_torch_threads` was given (the CLI's ``--threads``), which
#: :func:`build_colorizer` then keeps; None (also after a call with None): the policy decides.
_chosen_threads: int | None = None


def set_torch_threads(threads: int | None, model: str) -> int:
    """Set torch's intra-op threads for a run of ``model`` and return the count.

    None picks 1 for the light models: at their small working sizes a second thread gains little
    and fights the decoder, the encoder and the chroma thread for the cores (measured 2.6x slower
    end to end on a busy 2-core machine). The heavy ``deepex`` networks get every core.
    A count given here stays until the next call: :func:`build_colorizer` keeps it, and a call
    with None hands the choice back to the policy (a later ``deepex`` gets every core again).
    """
    import torch

    global _chosen_threads
    _chosen_threads = None if threads is None else max(1, threads)
    if threads is None:
        threads = (os.cpu_count() or 1) if model == "deepex" else 1
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def build_colorizer(name: str, *, device: str = "cpu", temporal: TemporalSettings | None = None,
                    flow: str = "auto", fallback: str | None = None, **options: object) -> Colorizer:
    """The colorizer ``name``, wrapped in the optical-flow temporal check unless ``temporal`` is None.

    ``fallback`` names an automatic model that colours what an exemplar model had nothing to copy
    (:class:`~vidcolor.colorizers.fallback.FallbackColorizer`, inside the temporal check so the
    filled-in colour is checked and carried like the rest); ignored for automatic models.
    The one place front ends (CLI, batch, VapourSynth) turn their options into a colorizer, so
    they all produce the same frames for the same settings.

    It also sets torch's threads as the CLI does (:func:`set_torch_threads`), unless a count was
    given there: the thread count changes how float sums split, hence the frames, and a library
    run left at torch's default (every core) took 50 s against the CLI's 13 s for the same 180
    frames on a busy 2-core machine. ``torch.set_num_threads`` called afterwards still wins.
    """
    set_torch_threads(_chosen_threads, name)
    colorizer = get_colorizer(name, device=device, **options)
    if fallback is not None and colorizer.needs_reference:
        from .fallback import FallbackColorizer

        auto = get_colorizer(fallback, device=device)
        filled = FallbackColorizer(colorizer, auto)
        attach_weight_files(filled, [*weight_files_of(colorizer), *weight_files_of(auto)])
        colorizer = filled
    if temporal is None:
        return colorizer
    from ..correspondence.flow import make_flow
    from ..temporal import TemporalCheck

    with recording_loads() as loaded:
        checked = TemporalCheck(colorizer, make_flow(flow, device=device), temporal)
    attach_weight_files(checked, [*weight_files_of(colorizer), *loaded])
    return checked


__all__ = ["MODELS", "ColorizedFrame", "Colorizer", "ModelEntry", "AUTOMATIC_MODELS", "build_colorizer", "default_auto_model", "default_model", "get_colorizer",
           "no_reference_colorizer",
           "set_torch_threads"]
