"""RNN, LSTM and GRU from their gate equations.

Not written yet (area `sequences`).
"""

__all__: list[str] = []
