"""Experiments of area `generalization`: one module per term, each registering one function."""
