"""Batch normalisation (1-D, 2-D) and layer normalisation.

Not written yet (area `generalization`).
"""

__all__: list[str] = []
