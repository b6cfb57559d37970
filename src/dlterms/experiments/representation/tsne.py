"""t-SNE: our exact-gradient t-SNE against scikit-learn's on the 1797 digits.

Both use the same settings (perplexity 30, early exaggeration 12 for 250 iterations, 1000 iterations,
learning rate "auto", PCA initialisation). Claims: our final KL(P || Q) is within 10 % of
scikit-learn's (compared like for like: the exact KL of both maps under the same P, and also against
the value scikit-learn reports), and trustworthiness (10 neighbours) is within 0.02 of scikit-learn's.
The time of both is recorded with the ratio; scikit-learn uses a Barnes-Hut O(N log N) gradient in C,
ours the exact O(N^2) gradient in torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.methods.tsne import TSNE, kl_divergence
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the tsne experiment; the defaults are the recorded run."""

    perplexity: float = 30.0  # perplexity of both t-SNEs
    max_iter: int = 1000  # iterations of both (the first 250 with early exaggeration)
    neighbours: int = 10  # neighbours of the trustworthiness score

    def __post_init__(self) -> None:
        if not 1 <= self.perplexity <= 500:
            raise ValueError(f"perplexity must be in [1, 500] (1797 points), got {self.perplexity!r}")
        if self.max_iter < 260:
            raise ValueError(f"max_iter must be >= 260 (past early exaggeration, the KL check), got {self.max_iter!r}")
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {self.neighbours!r}")


@experiment("tsne", config=Config)
def tsne(run: Run, cfg: Config) -> None:
    from sklearn.manifold import TSNE as SkTSNE
    from sklearn.manifold import trustworthiness

    d = digits()
    X = torch.cat([d.x_train, d.x_test]).double()  # (1797, 64)
    y = torch.cat([d.y_train, d.y_test]).numpy()
    max_iter = 300 if run.quick else cfg.max_iter
    curve: list[tuple[int, float]] = []

    def on_iter(it: int, kl: float | None) -> None:
        curve.append((it, kl))
        run.progress(0.8 * it / max_iter, f"t-SNE iteration {it}, KL {kl:.3f}")

    t0 = time.perf_counter()
    ours = TSNE(perplexity=cfg.perplexity, max_iter=max_iter, random_state=run.seed)
    Y = ours.fit_transform(X, callback=on_iter).numpy()
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    sk = SkTSNE(perplexity=cfg.perplexity, max_iter=max_iter, init="pca", learning_rate="auto", random_state=run.seed)
    Ys = sk.fit_transform(X.numpy())
    t_sk = time.perf_counter() - t0
    run.progress(0.95, "trustworthiness")

    kl_ours = ours.kl_divergence_
    kl_sk_exact = kl_divergence(ours.P_, torch.from_numpy(Ys))  # sklearn's map under our P, exactly
    kl_sk_reported = float(sk.kl_divergence_)  # sklearn's own (Barnes-Hut) estimate under its P
    tw_ours = float(trustworthiness(X.numpy(), Y, n_neighbors=cfg.neighbours))
    tw_sk = float(trustworthiness(X.numpy(), Ys, n_neighbors=cfg.neighbours))
    run.metric("kl_ours", kl_ours, key=True)
    run.metric("kl_sklearn_exact", kl_sk_exact)
    run.metric("kl_sklearn_reported", kl_sk_reported)
    run.metric("trustworthiness_ours", tw_ours)
    run.metric("trustworthiness_sklearn", tw_sk)
    run.metric("seconds_ours", t_ours)
    run.metric("seconds_sklearn", t_sk)
    run.metric("time_ratio_ours_over_sklearn", t_ours / t_sk)

    rel_exact = abs(kl_ours - kl_sk_exact) / kl_sk_exact
    rel_rep = abs(kl_ours - kl_sk_reported) / kl_sk_reported
    run.check_le("final KL within 10 % of scikit-learn's (both maps, exact KL under the same P)", rel_exact, 0.1)
    run.check_le("final KL within 10 % of the KL scikit-learn reports", rel_rep, 0.1)
    run.check(
        "trustworthiness (10 neighbours) within 0.02 of scikit-learn's",
        abs(tw_ours - tw_sk) <= 0.02,
        observed=tw_ours - tw_sk,
        expected="|difference| <= 0.02",
    )
    kls = [k for _, k in curve]
    after = [k for it, k in curve if it > ours.exaggeration_iter]
    run.check(
        "KL falls after early exaggeration ends",
        len(after) >= 2 and after[-1] < after[0],
        observed=[after[0], after[-1]] if after else None,
        expected="last < first",
    )

    with run.figure(
        "maps",
        alt="t-SNE maps of the 1797 digits, ours and scikit-learn's, coloured by class, and our KL over iterations",
        figsize=(13, 4),
    ) as fig:
        a1, a2, a3 = fig.subplots(1, 3)
        for ax, Z, name, kl, tw, t in (
            (a1, Y, "ours (exact gradient)", kl_ours, tw_ours, t_ours),
            (a2, Ys, "scikit-learn (Barnes-Hut)", kl_sk_exact, tw_sk, t_sk),
        ):
            ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=3)
            ax.set(title=f"{name}\nKL {kl:.3f}, trustworthiness {tw:.4f}, {t:.1f} s", xticks=[], yticks=[])
        a3.plot([it for it, _ in curve], kls, "o-", ms=3)
        a3.axvline(ours.exaggeration_iter, ls="--", c="gray", label="end of early exaggeration")
        a3.set(xlabel="iteration", ylabel="KL(P || Q) (exact, unexaggerated)", title="our optimisation")
        a3.legend()
