"""Experiments of area `representation`: one module per term, each registering one function."""
