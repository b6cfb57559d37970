"""Our metrics (NumPy, vectorised) against scikit-learn's at the experiment sizes and 10x."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

from benchmarks._harness import Case
from dlterms import metrics as dm


def _quiet(fn):
    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()

    return call


def cases() -> list[Case]:
    out = []
    rng = np.random.default_rng(0)
    for n, label in ((2000, "experiment"), (20000, "10x")):
        y = rng.integers(0, 2, n)
        s = rng.normal(size=n) + y
        yk = rng.integers(0, 4, n)
        pk = np.where(rng.random(n) < 0.6, yk, rng.integers(0, 4, n))
        size = f"n={n} ({label})"
        out += [
            Case(
                "roc_auc_score",
                size,
                lambda y=y, s=s: dm.roc_auc_score(y, s),
                lambda y=y, s=s: skm.roc_auc_score(y, s),
                reference_name="scikit-learn",
                diff=lambda y=y, s=s: abs(dm.roc_auc_score(y, s) - skm.roc_auc_score(y, s)),
            ),
            Case(
                "roc_curve",
                size,
                lambda y=y, s=s: dm.roc_curve(y, s),
                lambda y=y, s=s: skm.roc_curve(y, s),
                reference_name="scikit-learn",
                diff=lambda y=y, s=s: float(np.abs(dm.roc_curve(y, s)[1] - skm.roc_curve(y, s)[1]).max()),
            ),
            Case(
                "f1_score macro, 4 classes",
                size,
                lambda a=yk, b=pk: dm.f1_score(a, b, average="macro"),
                _quiet(lambda a=yk, b=pk: skm.f1_score(a, b, average="macro")),
                reference_name="scikit-learn",
                diff=lambda a=yk, b=pk: abs(dm.f1_score(a, b, average="macro") - skm.f1_score(a, b, average="macro")),
            ),
        ]
    return out
