"""Trainers of the shipped models (``vidcolor train``, ``python -m vidcolor.training.fast`` ...).

Colouring never imports this package (tests/test_layering.py checks it): what inference shares with
training lives in :mod:`vidcolor.color` and :mod:`vidcolor.models`.
"""
