"""Multi-head attention and transformer encoder/decoder blocks.

Not written yet (area `sequences`).
"""

__all__: list[str] = []
