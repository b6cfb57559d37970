"""Multimodal learning: two partial, noisy views of a digit, fused early or late, against each view alone.

Data: scikit-learn's 8x8 digits. Modality A is the upper half of the image (rows 0-3, 32 pixels),
modality B the lower half (rows 4-7), each with its own Gaussian pixel noise (std 0.25 on pixels in
[0, 1]); each modality is standardised on the training set, so a missing one is 0. Each half alone is
ambiguous on different digits (the top halves of 7 and 9, the bottom halves of 3, 5 and 9 look alike),
so how much fusion gains over the better single modality is measured, not designed in. 25 % of the
training images are held out for validation.

Arms, each with its own Adam learning rate (grid) and number of epochs (early stopping on validation
accuracy, best weights restored): an MLP on A alone, on B alone, early fusion (one MLP on [A; B]), late
fusion (the two tuned unimodal models' predictions combined by product or mean, chosen on validation),
and early fusion trained with modality dropout (`dlterms.models.multimodal.modality_dropout`: a random
30 % of training examples have one modality blanked). Repeated over 3 draws (noise and validation
split); claims on the mean over draws and on every draw. Robustness: at test time one modality is
blanked (set to 0, its training mean); late fusion then falls back to the remaining unimodal model
(exactly, by construction: a demonstration), plain early fusion falls well below that model, and
early fusion trained with modality dropout is checked to beat plain early fusion there by >= 0.03 and
to close at least half of its shortfall.

Thresholds: docs/experiments.md#multimodal-learning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import digits, train_val_split
from dlterms.losses import cross_entropy
from dlterms.models.multimodal import EarlyFusion, LateFusion, UnimodalClassifier, modality_dropout
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import EarlyStopping, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the multimodal-learning experiment; the defaults are the recorded run."""

    noise: float = 0.25  # std of the Gaussian pixel noise added to each modality (pixels in [0, 1])
    hidden: int = 64  # hidden units of every MLP (unimodal and early fusion)
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)  # Adam learning rates each arm is tuned over
    epochs: int = 40  # most training epochs; early stopping on validation accuracy picks fewer
    patience: int = 10  # epochs without a better validation accuracy before stopping
    batch_size: int = 128  # examples per step
    drop_p: float = 0.5  # modality dropout: fraction of training examples with one modality blanked
    repeats: int = 3  # draws of noise and validation split (seeds run.seed * 100 + k)

    def __post_init__(self):
        if not self.noise >= 0:
            raise ValueError(f"noise must be >= 0, got {self.noise!r}")
        if not 0.0 < self.drop_p <= 1.0:
            raise ValueError(f"drop_p must be in (0, 1], got {self.drop_p!r}")
        if not self.lrs:
            raise ValueError("lrs must not be empty")
        for name in ("hidden", "epochs", "patience", "batch_size", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


def _views(x: torch.Tensor, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    img = x.view(-1, 8, 8)  # (N, 8, 8)
    a = img[:, :4].reshape(len(x), 32)  # upper half
    b = img[:, 4:].reshape(len(x), 32)  # lower half
    return a + noise * torch.randn(a.shape, generator=g), b + noise * torch.randn(b.shape, generator=g)


def _acc(model, xa, xb, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(xa, xb).argmax(1) == y).float().mean())


def _tuned(make, train, val, cfg: Config, seed: int, dev, drop: torch.Generator | None = None):
    """Train `make()` at each learning rate with early stopping on validation accuracy (best weights
    restored); return the model with the best validation accuracy and its setting. With `drop`, the
    training inputs go through modality dropout drawn from that generator."""
    best = None
    for lr in cfg.lrs:
        torch.manual_seed(seed)
        model = make().to(dev)

        def fwd(m, a, b):
            if drop is not None and m.training:
                a, b = modality_dropout(a, b, cfg.drop_p, generator=drop)
            return m(a, b)

        stop = EarlyStopping(patience=cfg.patience, monitor="val_acc", restore_best=True)
        fit(
            model,
            train,
            loss_fn=cross_entropy,
            optimizer=Adam(model.parameters(), lr=lr),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            val=val,
            seed=seed,
            forward=fwd,
            callbacks=[stop],
        )
        score = _acc(model, *val)
        if best is None or score > best[0]:
            best = (score, model, {"lr": lr, "epochs": (stop.best_epoch or 0) + 1})
    return best[1], best[2]


@experiment("multimodal-learning", config=Config)
def multimodal_learning(run: Run, cfg: Config) -> None:
    d = digits(seed=run.seed)
    dev = run.device
    names = ("A only", "B only", "early fusion", "late fusion", "early + modality dropout")
    acc = {k: [] for k in names}
    missing = {k: [] for k in ("early fusion", "early + modality dropout", "late fusion")}  # [(-B, -A)]
    chosen = {k: [] for k in names}
    for r in run.track(range(cfg.repeats), message="draws"):
        seed = run.seed * 100 + r
        g = run.generator(10 + r)
        xtr, ytr, xva, yva = train_val_split(d.x_train, d.y_train, 0.25, seed=seed)
        raw = {"tr": _views(xtr, cfg.noise, g), "va": _views(xva, cfg.noise, g), "te": _views(d.x_test, cfg.noise, g)}
        mu = [v.mean(0) for v in raw["tr"]]
        sd = [v.std(0) + 1e-6 for v in raw["tr"]]
        v = {k: tuple(((t - m) / s).to(dev) for t, m, s in zip(pair, mu, sd)) for k, pair in raw.items()}
        ytr, yva, yte = ytr.to(dev), yva.to(dev), d.y_test.to(dev)
        (atr, btr), (ava, bva), (ate, bte) = v["tr"], v["va"], v["te"]
        gdrop = torch.Generator().manual_seed(seed)

        models, picked = {}, {}
        makers = {
            "A only": lambda: UnimodalClassifier(32, 10, (cfg.hidden,), modality=0),
            "B only": lambda: UnimodalClassifier(32, 10, (cfg.hidden,), modality=1),
            "early fusion": lambda: EarlyFusion(32, 32, 10, (cfg.hidden,)),
            "early + modality dropout": lambda: EarlyFusion(32, 32, 10, (cfg.hidden,)),
        }
        for k, make in makers.items():
            drop = gdrop if k == "early + modality dropout" else None
            models[k], picked[k] = _tuned(make, (atr, btr, ytr), (ava, bva, yva), cfg, seed, dev, drop)
        late = {m: LateFusion(models["A only"], models["B only"], m) for m in ("product", "mean")}
        mode = max(late, key=lambda m: _acc(late[m], ava, bva, yva))
        models["late fusion"], picked["late fusion"] = late[mode], {"mode": mode}
        for k in names:
            chosen[k].append(picked[k])
        for k in names:
            acc[k].append(_acc(models[k], ate, bte, yte))
        zero_a, zero_b = torch.zeros_like(ate), torch.zeros_like(bte)
        for k in ("early fusion", "early + modality dropout"):
            missing[k].append((_acc(models[k], ate, zero_b, yte), _acc(models[k], zero_a, bte, yte)))
        missing["late fusion"].append((acc["A only"][-1], acc["B only"][-1]))  # falls back to the other expert

    a = {k: np.array(vs) for k, vs in acc.items()}
    best_single = np.maximum(a["A only"], a["B only"])
    for k in names:
        run.metric(f"test_acc_{k.replace(' ', '_').replace('+', 'with')}", float(a[k].mean()), key=k == "early fusion")
    run.metric("test_acc_per_draw", {k: a[k].tolist() for k in names})
    run.metric("chosen_settings", chosen)
    miss = {k: np.array(vs) for k, vs in missing.items()}  # (repeats, 2): B missing, A missing
    for k in ("early fusion", "early + modality dropout"):
        tag = k.replace(" ", "_").replace("+", "with")
        run.metric(f"test_acc_{tag}_B_missing", float(miss[k][:, 0].mean()))
        run.metric(f"test_acc_{tag}_A_missing", float(miss[k][:, 1].mean()))
    single = np.stack([a["A only"], a["B only"]], axis=1)  # the model of the modality that remains
    for k in ("early fusion", "late fusion"):
        gain = a[k] - best_single
        run.metric(f"gain_{k.replace(' ', '_')}_over_best_single_per_draw", gain.tolist())
        run.check_ge(f"{k} beats the better single modality by >= 0.05 (mean over draws)", float(gain.mean()), 0.05)
        run.check_ge(f"{k} beats the better single modality on every draw (worst draw)", float(gain.min()), 0.0, True)
    run.metric("early_minus_late", float((a["early fusion"] - a["late fusion"]).mean()))
    drop_gain = a["early + modality dropout"] - best_single
    run.check_ge(
        "early fusion trained with modality dropout still beats the better single modality by >= 0.05 (mean)",
        float(drop_gain.mean()),
        0.05,
    )
    shortfall_plain = (single - miss["early fusion"]).mean(0)  # (2,): B missing, A missing; mean over draws
    shortfall_drop = (single - miss["early + modality dropout"]).mean(0)
    run.metric("shortfall_plain_early_fusion_with_a_modality_missing", shortfall_plain.tolist())
    run.metric("shortfall_modality_dropout_with_a_modality_missing", shortfall_drop.tolist())
    run.check_ge(
        "with one modality missing at test time, early fusion trained with modality dropout beats plain early "
        "fusion by >= 0.03 (mean over both cases and draws)",
        float((miss["early + modality dropout"] - miss["early fusion"]).mean()),
        0.03,
    )
    run.check_le(
        "... and it closes at least half of plain early fusion's shortfall against the remaining modality's own "
        "model (worse case: its shortfall / plain shortfall)",
        float((shortfall_drop / np.maximum(shortfall_plain, 1e-9)).max()),
        0.5,
    )

    with run.figure(
        "fusion",
        alt="test accuracy of each single-modality model, early and late fusion and early fusion with "
        "modality dropout, with both modalities and with one missing at test time",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        means = [a[k].mean() for k in names]
        ax1.bar(range(len(names)), means, color=["gray", "gray", "tab:blue", "tab:orange", "tab:green"])
        for i, k in enumerate(names):
            ax1.scatter([i] * cfg.repeats, a[k], c="k", s=8, zorder=3)
            ax1.text(i, means[i] + 0.01, f"{means[i]:.3f}", ha="center", fontsize=8)
        ax1.set_xticks(range(len(names)), ["A", "B", "early", "late", "early+\nmod. drop"], fontsize=8)
        ax1.set(ylim=(0, 1.05), ylabel="test accuracy", title="both modalities (dots: draws)")
        w = 0.25
        for j, k in enumerate(("early fusion", "late fusion", "early + modality dropout")):
            ax2.bar(np.arange(2) + (j - 1) * w, miss[k].mean(0), w, label=k)
        ax2.scatter([-0.4, 0.6], single.mean(0), marker="_", s=400, c="k", label="remaining modality alone")
        ax2.set_xticks([0, 1], ["B missing", "A missing"])
        ax2.set(ylim=(0, 1.05), title="one modality blanked at test time")
        ax2.legend(fontsize=7, loc="lower right")
