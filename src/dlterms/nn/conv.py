"""1-D and 2-D convolution by im2col/unfold.

Not written yet (area `vision`).
"""

__all__: list[str] = []
