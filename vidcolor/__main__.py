"""``python -m vidcolor`` runs the command line."""

from .cli import run

run()
