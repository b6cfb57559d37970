"""Sinusoidal and learned positional encodings.

Not written yet (area `sequences`).
"""

__all__: list[str] = []
