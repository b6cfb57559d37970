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

import torch

from dlterms.data.datasets import digits
from dlterms.methods.tsne import TSNE, kl_divergence
from dlterms.run import Run, experiment


@experiment("tsne")
def tsne(run: Run) -> None:
    from sklearn.manifold import TSNE as SkTSNE
    from sklearn.manifold import trustworthiness

    d = digits()
    X = torch.cat([d.x_train, d.x_test]).double()  # (1797, 64)
    y = torch.cat([d.y_train, d.y_test]).numpy()
    max_iter = 300 if run.quick else 1000
    curve: list[tuple[int, float]] = []

    def on_iter(it: int, kl: float | None) -> None:
        curve.append((it, kl))
        run.progress(0.8 * it / max_iter, f"t-SNE iteration {it}, KL {kl:.3f}")

    t0 = time.perf_counter()
    ours = TSNE(perplexity=30.0, max_iter=max_iter, random_state=run.seed)
    Y = ours.fit_transform(X, callback=on_iter).numpy()
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    sk = SkTSNE(perplexity=30.0, max_iter=max_iter, init="pca", learning_rate="auto", random_state=run.seed)
    Ys = sk.fit_transform(X.numpy())
    t_sk = time.perf_counter() - t0
    run.progress(0.95, "trustworthiness")

    kl_ours = ours.kl_divergence_
    kl_sk_exact = kl_divergence(ours.P_, torch.from_numpy(Ys))  # sklearn's map under our P, exactly
    kl_sk_reported = float(sk.kl_divergence_)  # sklearn's own (Barnes-Hut) estimate under its P
    tw_ours = float(trustworthiness(X.numpy(), Y, n_neighbors=10))
    tw_sk = float(trustworthiness(X.numpy(), Ys, n_neighbors=10))
    run.metric("kl_ours", kl_ours, key=True)
    run.metric("kl_sklearn_exact", kl_sk_exact)
    run.metric("kl_sklearn_reported", kl_sk_reported)
    run.metric("trustworthiness_ours", tw_ours)
    run.metric("trustworthiness_sklearn", tw_sk)
    run.metric("seconds_ours", round(t_ours, 3))
    run.metric("seconds_sklearn", round(t_sk, 3))
    run.metric("time_ratio_ours_over_sklearn", round(t_ours / t_sk, 3))

    rel_exact = abs(kl_ours - kl_sk_exact) / kl_sk_exact
    rel_rep = abs(kl_ours - kl_sk_reported) / kl_sk_reported
    run.check(
        "final KL within 10 % of scikit-learn's (both maps, exact KL under the same P)",
        rel_exact <= 0.10,
        observed=round(rel_exact, 4),
        expected="<= 0.10",
    )
    run.check(
        "final KL within 10 % of the KL scikit-learn reports",
        rel_rep <= 0.10,
        observed=round(rel_rep, 4),
        expected="<= 0.10",
    )
    run.check(
        "trustworthiness (10 neighbours) within 0.02 of scikit-learn's",
        abs(tw_ours - tw_sk) <= 0.02,
        observed=round(tw_ours - tw_sk, 4),
        expected="|difference| <= 0.02",
    )
    kls = [k for _, k in curve]
    after = [k for it, k in curve if it > ours.exaggeration_iter]
    run.check(
        "KL falls after early exaggeration ends",
        len(after) >= 2 and after[-1] < after[0],
        observed=[round(after[0], 4), round(after[-1], 4)] if after else None,
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
