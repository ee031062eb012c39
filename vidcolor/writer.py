"""Thin re-export for the README's library example before the move: use :mod:`vidcolor.io.writer`."""

from .io.writer import resolve_output

__all__ = ["resolve_output"]
