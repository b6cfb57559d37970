"""Linear (affine) layer and a configurable multilayer perceptron.

Not written yet (area `foundations`).
"""

__all__: list[str] = []
