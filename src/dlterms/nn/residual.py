"""Residual (skip-connection) blocks.

Not written yet (area `training`).
"""

__all__: list[str] = []
