"""vidcolor: exemplar-based colorization of black-and-white film and video.

The library is pure: it never imports click, tqdm or vapoursynth; the CLI and the VapourSynth
plugin are thin front ends over it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
