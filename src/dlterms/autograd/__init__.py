"""A from-scratch NumPy tensor with reverse-mode automatic differentiation."""
