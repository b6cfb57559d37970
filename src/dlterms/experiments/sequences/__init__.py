"""Experiments of area `sequences`: one module per term, each registering one function."""
