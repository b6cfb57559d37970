"""Neural architecture search: random search against regularised evolution, best against best, over
many repeated searches on a tabulated MNIST-1D search space.

Search space (`dlterms.methods.nas.SearchSpace`): MLPs with 1 or 2 hidden layers, each 32, 64, 128 or
256 units, ReLU / tanh / GELU, no dropout (60 architectures). As in tabular NAS benchmarks
(NAS-Bench-101), every architecture is trained once (4 epochs, Adam 3e-3, batches of 128, on 3 000
MNIST-1D training signals; the training seed is derived from the architecture) and scored on 1 000
held-out training signals (validation) and on the 1 000 test signals. Searches then look scores up
in this table, so both strategies see exactly the same landscape, and each can be repeated many times
at no extra cost.

At a budget of 15 evaluated architectures (a quarter of the space), 300 random searches and 300
regularised-evolution searches (population 5, tournament 2) are run, with different seeds. Each
returns its best on validation; compared: the test accuracy of that pick (paired by repeat:
evolution's best against random search's best), the hand-designed default (two hidden layers of 128
ReLU units) and the median architecture of the space. Checks: each strategy's pick beats the space's
median architecture on test by >= 0.02 (mean over searches), and the verdict measured here, that the
two strategies tie (|paired mean test difference| <= 0.01), which would fail if either were clearly
better. How far the picks are above the hand-designed default is reported, not claimed: 0.02-0.06.

Thresholds: docs/experiments.md#neural-architecture-search.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import mnist1d, train_val_split
from dlterms.losses import cross_entropy
from dlterms.methods.nas import SearchSpace, random_search, regularized_evolution
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the neural-architecture-search experiment; the defaults are the recorded run."""

    depths: tuple[int, ...] = (1, 2)  # hidden-layer counts of the search space
    widths: tuple[int, ...] = (32, 64, 128, 256)  # widths a hidden layer may take
    dropouts: tuple[float, ...] = (0.0,)  # dropout probabilities of the hidden layers
    epochs: int = 4  # training epochs of every tabulated architecture
    lr: float = 3e-3  # Adam step size
    budget: int = 15  # architectures evaluated per search
    population: int = 5  # evolution's population P
    sample: int = 2  # evolution's tournament size S
    searches: int = 300  # repeated searches per strategy (seeds run.seed * 1000 + k)

    def __post_init__(self):
        if self.budget < 1 or self.searches < 1 or self.epochs < 1:
            raise ValueError(
                f"budget, searches and epochs must be >= 1, got {self.budget}, {self.searches}, {self.epochs}"
            )
        if not 1 <= self.sample <= self.population:
            raise ValueError(
                f"need 1 <= sample <= population, got sample={self.sample!r}, population={self.population!r}"
            )


DEFAULT_ARCH = {"widths": (128, 128), "activation": "relu", "dropout": 0.0}  # the hand-designed baseline


def _key(arch: dict) -> str:
    return repr(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in arch.items()))


def _arch_seed(arch: dict, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}{_key(arch)}".encode()).hexdigest()[:8], 16)


@experiment("neural-architecture-search", config=Config)
def neural_architecture_search(run: Run, cfg: Config) -> None:
    data = mnist1d()
    xtr, ytr, xva, yva = train_val_split(data.x_train, data.y_train, 0.25, seed=run.seed)
    dev = run.device
    xtr, ytr, xva, yva = xtr.to(dev), ytr.to(dev), xva.to(dev), yva.to(dev)
    xte, yte = data.x_test.to(dev), data.y_test.to(dev)
    space = SearchSpace(depths=cfg.depths, widths=cfg.widths, dropouts=cfg.dropouts)
    archs = space.architectures()

    def train_and_score(arch: dict) -> tuple[float, float]:
        torch.manual_seed(_arch_seed(arch, run.seed))
        model = MLP([40, *arch["widths"], 10], activation=arch["activation"], dropout=arch["dropout"] or None).to(dev)
        fit(
            model,
            (xtr, ytr),
            loss_fn=cross_entropy,
            optimizer=Adam(model.parameters(), lr=cfg.lr),
            epochs=cfg.epochs,
            batch_size=128,
            seed=run.seed,
        )
        return accuracy(model, xva, yva), accuracy(model, xte, yte)

    val, test = {}, {}  # the table: architecture -> validation / test accuracy
    for i, arch in enumerate(archs):
        val[_key(arch)], test[_key(arch)] = train_and_score(arch)
        run.progress(0.9 * (i + 1) / len(archs), "tabulating the search space")
    # the hand-designed default, trained the same way (outside the table if the space leaves it out)
    default_val, default_test = (
        (val[_key(DEFAULT_ARCH)], test[_key(DEFAULT_ARCH)])
        if _key(DEFAULT_ARCH) in val
        else train_and_score(DEFAULT_ARCH)
    )

    def lookup(arch: dict) -> float:
        return val[_key(arch)]

    picks = {"random": [], "evolution": []}  # test accuracy of each search's validation-best
    best_val = {"random": [], "evolution": []}
    for k in range(cfg.searches):
        s = run.seed * 1000 + k
        for name, trials in (
            ("random", random_search(space, lookup, cfg.budget, seed=s)),
            ("evolution", regularized_evolution(space, lookup, cfg.budget, cfg.population, cfg.sample, seed=s)),
        ):
            best = max(trials, key=lambda t: t.score)
            best_val[name].append(best.score)
            picks[name].append(test[_key(best.arch)])
    p = {k: np.array(v) for k, v in picks.items()}
    bv = {k: np.array(v) for k, v in best_val.items()}
    all_val = np.array(list(val.values()))
    all_test = np.array(list(test.values()))
    median_test = float(np.median(all_test))
    oracle = max(val, key=val.get)  # the architecture with the best validation score in the whole space
    diff = p["evolution"] - p["random"]  # paired by repeat
    diff_val = bv["evolution"] - bv["random"]

    run.metric("search_space_size", space.size())
    run.metric("evolution_pick_test", float(p["evolution"].mean()), key=True)
    run.metric("random_pick_test", float(p["random"].mean()))
    run.metric("evolution_pick_test_median", float(np.median(p["evolution"])))
    run.metric("random_pick_test_median", float(np.median(p["random"])))
    run.metric("evolution_best_val", float(bv["evolution"].mean()))
    run.metric("random_best_val", float(bv["random"].mean()))
    run.metric("evolution_minus_random_test_paired_mean", float(diff.mean()))
    run.metric("evolution_minus_random_test_paired_se", float(diff.std(ddof=1) / np.sqrt(len(diff))))
    run.metric("evolution_minus_random_val_paired_mean", float(diff_val.mean()))
    run.metric(
        "evolution_wins_ties_losses_val",
        [int((diff_val > 0).sum()), int((diff_val == 0).sum()), int((diff_val < 0).sum())],
    )
    run.metric("space_median_arch_test", median_test)
    run.metric("space_best_val_arch", oracle)
    run.metric("space_best_val_arch_test", test[oracle])
    run.metric("space_best_test", float(all_test.max()))
    run.metric("default_arch_test", default_test)
    run.metric("default_arch_val", default_val)
    run.metric("val_test_correlation", float(np.corrcoef(all_val, all_test)[0, 1]))
    for name in ("random", "evolution"):
        run.check_ge(
            f"{name} search's pick (best of {cfg.budget} on validation) beats the space's median architecture on "
            "test by >= 0.02 (mean over searches)",
            float(p[name].mean()) - median_test,
            0.02,
        )

    run.metric("evolution_pick_minus_default_test", float(p["evolution"].mean()) - default_test)
    run.metric("random_pick_minus_default_test", float(p["random"].mean()) - default_test)
    run.check_le(
        "verdict: at this budget evolution and random search pick equally good architectures (|paired mean test "
        "difference| over searches)",
        abs(float(diff.mean())),
        0.01,
    )

    with run.figure(
        "search",
        alt="distribution over repeated searches of the test accuracy of the architecture random search and "
        "evolution pick, with the hand-designed default, the space's median and its best-on-validation",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        ax1.hist(all_test, bins=30, color="lightgray", label="all architectures")
        ax1.axvline(median_test, c="gray", ls="--", label="space median")
        ax1.axvline(default_test, c="k", ls=":", label="hand-designed default")
        ax1.set(xlabel="test accuracy", ylabel="architectures", title=f"the tabulated space ({space.size()})")
        ax1.legend(fontsize=7)
        bins = np.linspace(min(p["random"].min(), p["evolution"].min()), max(all_test.max(), 1e-9), 20)
        ax2.hist(p["random"], bins=bins, alpha=0.6, color="tab:orange", label="random search")
        ax2.hist(p["evolution"], bins=bins, alpha=0.6, color="tab:blue", label="regularised evolution")
        ax2.axvline(test[oracle], c="tab:green", label="best on validation in the whole space")
        ax2.set(xlabel="test accuracy of the pick", ylabel="searches", title=f"{cfg.searches} searches of {cfg.budget}")
        ax2.legend(fontsize=7)
