"""Network architectures: VCNet (``vcnet``, the shipped ``default`` model) and Deep Exemplar (``deepex``).

Shipped weights live in ``weights/`` beside this file.
"""
