"""Inverted dropout.

Not written yet (area `generalization`).
"""

__all__: list[str] = []
