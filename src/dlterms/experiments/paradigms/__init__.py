"""Experiments of area `paradigms`: one module per term, each registering one function."""
