"""Slow, obviously-correct NumPy references that the fast ops are held against.

Loops written straight from the definitions in the seeds, the papers and ``shared/API.md``;
no JAX here. One module per op family: ``conv.py``, ``pool.py``, ``norm.py``.
"""
