"""Thin re-export for the README's library example before the move: use :mod:`vidcolor.run.pipeline`."""

from .run.pipeline import colorize_video

__all__ = ["colorize_video"]
