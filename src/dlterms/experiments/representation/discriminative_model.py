"""Discriminative vs generative classifiers over training-set size (Ng & Jordan, 2002), on iris.

Generative: Gaussian naive Bayes (our `GaussianNB`, which models p(x | y) p(y); variance prior
`var_smoothing` = 0.1 of the largest feature variance, since a class seen twice gives useless variance
estimates). Discriminative: multinomial logistic regression, p(y | x) = softmax(W x + b), a
`dlterms.nn.Linear` trained by `fit` on cross-entropy without regularisation. For each training-set size
n (stratified, 6 .. 105), 10 repetitions on different seeded train/test splits (features standardised
with the full training split's label-free statistics); test accuracy averaged. Claims: naive Bayes is
more accurate at the smallest size, logistic regression at the full size (the curves cross).
"""

from __future__ import annotations

import numpy as np
import torch

from dlterms.data.datasets import make_split
from dlterms.losses import cross_entropy
from dlterms.methods.naive_bayes import GaussianNB
from dlterms.nn import Linear
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import fit

SIZES = [6, 9, 15, 30, 105]  # 105 = the whole training split (70 % of 150)
REPS = 10


@experiment("discriminative-model")
def discriminative_model(run: Run) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    reps = 2 if run.quick else REPS
    acc = {"naive Bayes": np.zeros((len(SIZES), reps)), "logistic regression": np.zeros((len(SIZES), reps))}
    for r in range(reps):
        s = make_split(iris.data.astype(np.float32), iris.target.astype(np.int64), test_size=0.3, seed=run.seed + r)
        mu, sd = s.x_train.mean(0), s.x_train.std(0)
        s.x_train, s.x_test = (s.x_train - mu) / sd, (s.x_test - mu) / sd
        for i, n in enumerate(SIZES):
            sub = s.subset_train(n, seed=run.seed + r)
            acc["naive Bayes"][i, r] = (
                GaussianNB(var_smoothing=0.1).fit(sub.x_train, sub.y_train).score(s.x_test, s.y_test)
            )
            torch.manual_seed(run.seed + r)
            lr = Linear(4, 3).to(run.device)
            fit(
                lr,
                (sub.x_train, sub.y_train),
                loss_fn=cross_entropy,
                optimizer=Adam(lr.parameters(), lr=0.05),
                epochs=200,
                batch_size=None,
                seed=run.seed + r,
                device=run.device,
            )
            with torch.no_grad():
                acc["logistic regression"][i, r] = float(
                    (lr(s.x_test.to(run.device)).argmax(1).cpu() == s.y_test).float().mean()
                )
        run.progress((r + 1) / reps, f"repetition {r + 1}")
    mean = {k: v.mean(axis=1) for k, v in acc.items()}
    for k, short in (("naive Bayes", "nb"), ("logistic regression", "lr")):
        run.metric(f"test_acc_{short}_by_size", dict(zip(SIZES, mean[k].round(4).tolist())))
    nb0, lr0 = mean["naive Bayes"][0], mean["logistic regression"][0]
    nb1, lr1 = mean["naive Bayes"][-1], mean["logistic regression"][-1]
    run.metric("nb_minus_lr_at_n6", nb0 - lr0, key=True)
    run.metric("lr_minus_nb_at_n105", lr1 - nb1)
    run.check(
        f"with {SIZES[0]} training examples the generative classifier (naive Bayes) is more accurate",
        nb0 > lr0,
        observed=round(float(nb0), 4),
        expected=f"> {lr0:.4f} (logistic regression)",
    )
    run.check(
        f"with all {SIZES[-1]} training examples the discriminative classifier is more accurate",
        lr1 > nb1,
        observed=round(float(lr1), 4),
        expected=f"> {nb1:.4f} (naive Bayes)",
    )

    with run.figure(
        "learning_curves",
        alt="test accuracy against training-set size for Gaussian naive Bayes "
        "and logistic regression on iris; naive Bayes leads with few examples, logistic "
        "regression with many",
    ) as fig:
        ax = fig.subplots()
        for k, v in acc.items():
            ax.errorbar(SIZES, v.mean(axis=1), yerr=v.std(axis=1) / np.sqrt(reps), marker="o", capsize=3, label=k)
        ax.set(
            xscale="log",
            xlabel="training examples",
            ylabel=f"test accuracy (mean of {reps} splits)",
            title="generative vs discriminative (iris)",
        )
        ax.set_xticks(SIZES, [str(n) for n in SIZES])
        ax.legend()
