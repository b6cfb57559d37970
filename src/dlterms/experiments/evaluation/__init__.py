"""Experiments of area `evaluation`: one module per term, each registering one function."""
