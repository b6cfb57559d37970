"""Experiments of area `training`: one module per term, each registering one function."""
