"""The ``vidcolor`` command line (a front end: click and tqdm live here, never in the library)."""

from .main import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, VidcolorGroup, main, run

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "VidcolorGroup", "main", "run"]
