"""Graph convolution from the normalised adjacency.

Not written yet (area `paradigms`).
"""

__all__: list[str] = []
