"""Experiments of area `foundations`: one module per term, each registering one function."""
