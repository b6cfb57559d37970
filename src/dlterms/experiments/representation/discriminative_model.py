"""Discriminative vs generative classifiers over training-set size (Ng & Jordan, 2002), on wine.

Generative: Gaussian naive Bayes (our `GaussianNB`, which models p(x | y) p(y)). Discriminative:
multinomial L2-regularised logistic regression, p(y | x) = softmax(W x + b) (our
`methods.logistic_regression`, fitted exactly by Newton's method). Each gets its own setting at every
training-set size, chosen by stratified cross-validation on that training set alone (3 folds, 2 when a
class has only 2 examples): naive Bayes' `var_smoothing` from 1e-4 .. 10 and logistic regression's C
from 0.001 .. 100 (ties go to the stronger regularisation). Data: scikit-learn's wine (178 examples, 13
features, 3 classes); 40 seeded stratified 70/30 splits, features standardised with the training
split's label-free statistics; for each split and size n (6 .. 124, 124 = the whole training split) a
stratified subset trains both models, scored on the split's 54 test examples.

Every claim is a statistic over the 40 paired splits: the mean accuracy difference and its standard
error (SE). Checked: logistic regression is more accurate with all 124 examples, by at least 2 SE
(measured 2.5-5.2 SE at seeds 0-4, a lead of 1.1-2.2 points), and naive Bayes is ahead by 2 SE at no
size. Reported, not checked: with 30 examples logistic regression leads on every seed 0-4 (0.9-1.9
points) but by 2 SE only on three of them (1.8 SE at seeds 2 and 3; still 1.8 SE at seed 2 with 80
splits). The small-sample advantage of naive Bayes that Ng & Jordan describe (against unregularised
logistic regression) does not appear once each model is tuned, and at 6 examples the two are level.
There, cross-validation on folds of three examples can hardly tell the settings apart; both models
mostly fall back on their strongest regularisation, which makes each close to a nearest-class-mean
rule. (Probed with scikit-learn's models and a similar protocol: on iris
and breast cancer there is no robust crossover either.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import make_split
from dlterms.methods.logistic_regression import fit_logistic_regression, logistic_regression_proba
from dlterms.methods.naive_bayes import GaussianNB
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the discriminative-model experiment; the defaults are the recorded run."""

    sizes: tuple[int, ...] = (6, 9, 15, 30, 124)  # training-set sizes, rising; the last is checked (124 = all)
    splits: int = 40  # paired repetitions (train/test splits)
    c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # logistic regression C, most regularised first
    vs_grid: tuple[float, ...] = (10.0, 1.0, 0.1, 0.01, 1e-3, 1e-4)  # naive Bayes var_smoothing, most smoothed first
    folds: int = 3  # cross-validation folds (fewer when a class has fewer examples)

    def __post_init__(self) -> None:
        if (
            not self.sizes
            or list(self.sizes) != sorted(set(self.sizes))
            or not 6 <= self.sizes[0] <= self.sizes[-1] <= 124
        ):
            raise ValueError(f"sizes must be distinct, rising and in 6..124 (the training split), got {self.sizes!r}")
        if self.splits < 2:
            raise ValueError(f"splits must be >= 2 (a standard error), got {self.splits!r}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds!r}")
        for name in ("c_grid", "vs_grid"):
            if not getattr(self, name) or min(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be non-empty and > 0, got {getattr(self, name)!r}")


def _folds(y: np.ndarray, seed: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    k = min(folds, int(np.bincount(y).min()))
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _pick(scores: np.ndarray) -> int:
    """Index of the best mean CV accuracy; the first (most regularised) among ties."""
    return int(np.flatnonzero(scores >= scores.max() - 1e-12)[0])


def _test_acc(coef: torch.Tensor, intercept: torch.Tensor, m: int, s) -> float:
    p = logistic_regression_proba(coef[m], intercept[m], s.x_test)
    return float((p.argmax(1) == s.y_test).double().mean())


@experiment("discriminative-model", config=Config)
def discriminative_model(run: Run, cfg: Config) -> None:
    from sklearn.datasets import load_wine

    wine = load_wine()
    splits = 4 if run.quick else cfg.splits
    acc = {"naive Bayes": np.zeros((len(cfg.sizes), splits)), "logistic regression": np.zeros((len(cfg.sizes), splits))}
    chosen = {"var_smoothing": np.zeros((len(cfg.sizes), splits)), "C": np.zeros((len(cfg.sizes), splits))}
    data = []  # per split: (split, {size: subset})
    for r in range(splits):
        s = make_split(
            wine.data.astype(np.float32), wine.target.astype(np.int64), test_size=0.3, seed=run.seed * 1000 + r
        )
        mu, sd = s.x_train.mean(0), s.x_train.std(0)
        s.x_train, s.x_test = (s.x_train - mu) / sd, (s.x_test - mu) / sd
        data.append((s, {n: s.subset_train(n, seed=run.seed * 1000 + r) for n in cfg.sizes}))

    for i, n in enumerate(cfg.sizes):
        # logistic regression: every (split, C, fold) and (split, C, all rows) fit, batched in one solve
        xs, ys, ws, cs, jobs = [], [], [], [], []
        for r, (s, subs) in enumerate(data):
            sub = subs[n]
            yn = sub.y_train.numpy()
            folds = _folds(yn, run.seed * 1000 + r, cfg.folds)
            # naive Bayes: the same folds, its own grid
            cv_nb = np.zeros(len(cfg.vs_grid))
            for j, vs in enumerate(cfg.vs_grid):
                cv_nb[j] = np.mean(
                    [
                        GaussianNB(vs).fit(sub.x_train[a], sub.y_train[a]).score(sub.x_train[b], sub.y_train[b])
                        for a, b in folds
                    ]
                )
            j = _pick(cv_nb)
            chosen["var_smoothing"][i, r] = cfg.vs_grid[j]
            acc["naive Bayes"][i, r] = (
                GaussianNB(cfg.vs_grid[j]).fit(sub.x_train, sub.y_train).score(s.x_test, s.y_test)
            )
            for j, c in enumerate(cfg.c_grid):
                for f, (a, _) in enumerate([*folds, (np.arange(n), None)]):
                    w = torch.zeros(n)
                    w[a] = 1.0  # the fold's training rows (all rows for the final fit)
                    xs.append(sub.x_train)
                    ys.append(sub.y_train)
                    ws.append(w)
                    cs.append(c)
                    jobs.append((r, j, f, len(folds)))
        coef, intercept = fit_logistic_regression(
            torch.stack(xs), torch.stack(ys), 3, torch.tensor(cs), torch.stack(ws)
        )  # M = splits x len(cfg.c_grid) x (folds + 1) models at once
        pred_train = logistic_regression_proba(coef, intercept, torch.stack(xs)).argmax(-1)  # (M, n)
        cv_lr = np.zeros((splits, len(cfg.c_grid)))
        final = {}
        for m, (r, j, f, k) in enumerate(jobs):
            if f < k:  # a CV fit: accuracy on its held-out fold
                held = ws[m] == 0
                cv_lr[r, j] += float((pred_train[m][held] == ys[m][held]).double().mean()) / k
            else:
                final[(r, j)] = m
        for r, (s, _) in enumerate(data):
            j = _pick(cv_lr[r])
            chosen["C"][i, r] = cfg.c_grid[j]
            acc["logistic regression"][i, r] = _test_acc(coef, intercept, final[(r, j)], s)
        run.progress((i + 1) / len(cfg.sizes), f"n = {n}")

    diff = acc["naive Bayes"] - acc["logistic regression"]  # (sizes, splits), paired
    mean_d = diff.mean(1)
    se_d = diff.std(1, ddof=1) / np.sqrt(splits)
    for k, short in (("naive Bayes", "nb"), ("logistic regression", "lr")):
        run.metric(f"test_acc_{short}_by_size", dict(zip(cfg.sizes, acc[k].mean(1).tolist())))
    run.metric("nb_minus_lr_by_size", dict(zip(cfg.sizes, mean_d.tolist())))
    run.metric("nb_minus_lr_standard_error_by_size", dict(zip(cfg.sizes, se_d.tolist())))
    run.metric(
        "nb_wins_ties_losses_by_size",
        {n: [int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum())] for n, d in zip(cfg.sizes, diff)},
    )
    run.metric(
        "median_chosen_var_smoothing_by_size", dict(zip(cfg.sizes, np.median(chosen["var_smoothing"], 1).tolist()))
    )
    run.metric("median_chosen_C_by_size", dict(zip(cfg.sizes, np.median(chosen["C"], 1).tolist())))
    run.metric("lr_minus_nb_at_full_size", float(-mean_d[-1]), key=True)
    if 30 in cfg.sizes:
        i30 = cfg.sizes.index(30)
        run.metric("lr_minus_nb_at_30_in_standard_errors", float(-mean_d[i30] / se_d[i30]))
    run.check(
        f"with all {cfg.sizes[-1]} training examples the discriminative classifier (logistic regression) is more "
        f"accurate (mean paired difference over {splits} splits >= 2 standard errors)",
        -mean_d[-1] >= 2 * se_d[-1] and mean_d[-1] < 0,
        observed=f"{-mean_d[-1]:+.4f} (SE {se_d[-1]:.4f})",
        expected=f">= {2 * se_d[-1]:.4f}",
    )
    t = mean_d / se_d
    run.check(
        "with each model tuned by cross-validation the curves do not cross: naive Bayes is ahead by "
        "2 standard errors at no training-set size, not even the smallest",
        bool((t < 2).all()),
        observed=", ".join(f"n={n}: {m:+.4f} ({v:+.1f} SE)" for n, m, v in zip(cfg.sizes, mean_d, t)),
        expected="every t < 2",
    )

    with run.figure(
        "learning_curves",
        alt="test accuracy against training-set size for Gaussian naive Bayes and logistic regression "
        "on wine, each tuned by cross-validation; level at 6 examples, logistic regression ahead "
        "from about 15 on",
    ) as fig:
        ax = fig.subplots()
        for k, v in acc.items():
            ax.errorbar(
                cfg.sizes, v.mean(axis=1), yerr=v.std(axis=1, ddof=1) / np.sqrt(splits), marker="o", capsize=3, label=k
            )
        ax.set(
            xscale="log",
            xlabel="training examples",
            ylabel=f"test accuracy (mean of {splits} splits, +- 1 SE)",
            title="generative vs discriminative (wine), each tuned by CV",
        )
        ax.set_xticks(cfg.sizes, [str(n) for n in cfg.sizes])
        ax.legend()
