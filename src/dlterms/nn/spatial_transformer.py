"""Affine grid and bilinear sampler of a spatial transformer.

Not written yet (area `vision`).
"""

__all__: list[str] = []
