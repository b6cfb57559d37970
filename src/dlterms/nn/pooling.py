"""Max and average pooling, 1-D, 2-D and global.

Not written yet (area `vision`).
"""

__all__: list[str] = []
