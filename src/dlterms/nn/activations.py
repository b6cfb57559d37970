"""Activation functions (sigmoid, tanh, ReLU, leaky ReLU, GELU) and numerically stable softmax / log-softmax.

Not written yet (area `foundations`).
"""

__all__: list[str] = []
