"""Benchmarks: ours vs PyTorch / scikit-learn, side by side."""
