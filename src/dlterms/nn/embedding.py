"""Embedding lookup table.

Not written yet (area `sequences`).
"""

__all__: list[str] = []
