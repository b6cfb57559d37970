"""Primary capsules, squash and routing by agreement.

Not written yet (area `vision`).
"""

__all__: list[str] = []
