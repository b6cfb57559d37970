"""Procedures that choose training settings, as opposed to optimisers that take the steps: the learning
rate range test (`lr_range_test`) and hyper-parameter search (`random_search`, `grid_search` over
`Choice`, `Uniform`, `LogUniform` and `IntUniform` spaces)."""

from dlterms.tuning.lr_finder import LRFinderResult, lr_range_test
from dlterms.tuning.search import (
    Choice,
    IntUniform,
    LogUniform,
    SearchResult,
    Trial,
    Uniform,
    grid_search,
    random_search,
)

__all__ = [
    "lr_range_test",
    "LRFinderResult",
    "grid_search",
    "random_search",
    "Choice",
    "Uniform",
    "LogUniform",
    "IntUniform",
    "Trial",
    "SearchResult",
]
