"""Experiments of area `vision`: one module per term, each registering one function."""
