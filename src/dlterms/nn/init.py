"""Weight initialisers: uniform, Xavier/Glorot, He/Kaiming.

Not written yet (area `foundations`).
"""

__all__: list[str] = []
