"""Multimodal learning: two synthetic modalities that each carry half of the label, fused early or late.

Data (`dlterms.data.toy.two_modalities`): modality A (8 features) shows a hidden bit a, modality B
(16 features) a bit b, each as a mean vector plus unit Gaussian noise; 2000 training and 2000 test
examples. Setting 1, y = 2a + b (4 classes): claims that early fusion (one MLP on [x_a; x_b]) and late
fusion (product of the two separately trained unimodal MLPs' probabilities) each beat the better
single-modality model by >= 20 points. Setting 2, y = a XOR b: neither modality alone says anything
about y, so late fusion of unimodal models stays near chance while early fusion, which sees both at
once, learns the interaction; claim: early beats late by >= 20 points.
"""

from __future__ import annotations

import torch

from dlterms.data.toy import two_modalities
from dlterms.losses import cross_entropy
from dlterms.models.multimodal import EarlyFusion, LateFusion, UnimodalClassifier
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import fit


def _train(run: Run, model, xa, xb, y, epochs):
    torch.manual_seed(run.seed)
    fit(
        model,
        (xa, xb, y),
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=3e-3),
        epochs=epochs,
        batch_size=128,
        seed=run.seed,
        forward=lambda m, a, b: m(a, b),
    )
    return model


def _acc(model, xa, xb, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(xa, xb).argmax(1) == y).float().mean())


@experiment("multimodal-learning")
def multimodal_learning(run: Run) -> None:
    epochs = 3 if run.quick else 30
    results = {}
    for k, interaction in enumerate((False, True)):
        g = run.generator(10 + k)
        xa, xb, y = two_modalities(4000, 8, 16, noise=1.0, interaction=interaction, generator=g)
        xa, xb, y = xa.to(run.device), xb.to(run.device), y.to(run.device)
        tr, te = slice(0, 2000), slice(2000, 4000)
        C = 2 if interaction else 4
        torch.manual_seed(run.seed)
        ua = _train(run, UnimodalClassifier(8, C, modality=0).to(run.device), xa[tr], xb[tr], y[tr], epochs)
        torch.manual_seed(run.seed + 1)
        ub = _train(run, UnimodalClassifier(16, C, modality=1).to(run.device), xa[tr], xb[tr], y[tr], epochs)
        torch.manual_seed(run.seed + 2)
        early = _train(run, EarlyFusion(8, 16, C).to(run.device), xa[tr], xb[tr], y[tr], epochs)
        late = LateFusion(ua, ub, "product")
        r = {
            name: _acc(m, xa[te], xb[te], y[te])
            for name, m in (("A only", ua), ("B only", ub), ("early fusion", early), ("late fusion", late))
        }
        results["XOR" if interaction else "2a+b"] = r
        tag = "xor" if interaction else "additive"
        for name, v in r.items():
            run.metric(f"{tag}_test_acc_{name.replace(' ', '_')}", v, key=(not interaction and name == "early fusion"))
        run.progress(0.5 * (k + 1), f"setting {tag}")

    r = results["2a+b"]
    best_single = max(r["A only"], r["B only"])
    for name in ("early fusion", "late fusion"):
        run.check(
            f"y = 2a + b: {name} beats the better single modality by >= 20 points",
            r[name] - best_single >= 0.20,
            observed=round(r[name] - best_single, 4),
            expected=f">= 0.20 (best single {best_single:.4f})",
        )
    x = results["XOR"]
    run.check(
        "y = a XOR b: early fusion beats late fusion by >= 20 points (late fusion cannot see the interaction)",
        x["early fusion"] - x["late fusion"] >= 0.20,
        observed=round(x["early fusion"] - x["late fusion"], 4),
        expected=f">= 0.20 (late {x['late fusion']:.4f})",
    )

    with run.figure(
        "fusion",
        alt="test accuracy of single-modality models and of early and late fusion, "
        "for a label split across modalities (2a+b) and for an interaction label (XOR)",
        figsize=(10, 4),
    ) as fig:
        axes = fig.subplots(1, 2)
        for ax, (setting, r) in zip(axes, results.items()):
            names = list(r)
            ax.bar(range(4), [r[n] for n in names], color=["gray", "gray", "tab:blue", "tab:orange"])
            ax.set_xticks(range(4), names, fontsize=8)
            for i, n in enumerate(names):
                ax.text(i, r[n] + 0.01, f"{r[n]:.3f}", ha="center")
            ax.set(ylim=(0, 1.05), ylabel="test accuracy", title=f"label y = {setting}")
