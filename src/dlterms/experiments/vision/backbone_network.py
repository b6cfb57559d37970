"""Backbone network: one trained, frozen feature extractor serving several task heads, against separate
full networks, and against training from scratch when the new task has few labels.

The 8x8 digits CNN (`digits_cnn`, two conv blocks with batch norm) is trained on digit identity using
80 % of the training split; its conv blocks become a frozen `Backbone` (128 features). The other 20 % is
the validation set every arm is tuned on. Three tasks, each with its own linear head on the shared
backbone: the digit (the backbone's own task), the digit's parity, and whether the image is upside down
(a new task, on copies where a random half of the images are flipped; 0, 1 and 8 look much the same
flipped, which caps every arm). Heads pick their Adam learning rate from a grid and their epochs by
early stopping on validation accuracy.

1. Shared against separate: for each task a separate full CNN of the same architecture is trained
   from scratch on that task's labels (its own learning rate from a grid, chosen on validation). Claim:
   on the tasks the backbone's features were trained for (digit, parity) the heads come within 0.03 of
   the separate networks, and the backbone with its three heads has less than half the parameters of
   the three networks. Recorded, not claimed: on the upside-down task, which the features were not
   trained for, the head is 0.02-0.06 below its separate network, usually more than on the other two
   (a check that it loses >= 0.02 more failed at one seed of five).
2. Few labels (10 labelled images per class, 3 draws), for parity and for upside-down: the frozen
   backbone with a new head against the same CNN trained from scratch on those 20 images, each with
   its own learning rate and number of steps chosen on validation. Recorded, not claimed: the
   backbone's head did not reliably win (parity -0.00 to +0.09 over seeds; upside-down -0.04 to -0.07,
   a loss at every seed), in line with the transfer probe on these 8x8 digits (see vision/_common.py).

Demonstrations, which hold by construction: the backbone's weights and batch-norm statistics are
bit-for-bit unchanged after the heads have trained (the heads train on features computed under
no_grad), and the multi-head model's parameter count is the backbone's once plus the heads'.

Thresholds: docs/experiments.md#backbone-network.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import digits, train_val_split
from dlterms.losses import cross_entropy
from dlterms.models.backbone import Backbone, MultiHead
from dlterms.models.cnn import digits_cnn
from dlterms.nn import Linear
from dlterms.optim import Adam
from dlterms.optim.schedules import CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.training import EarlyStopping, Every, accuracy, count_parameters, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the backbone-network experiment; the defaults are the recorded run."""

    cnn_epochs: int = 12  # epochs (cosine-annealed Adam, batches of 64) of the backbone and of each full CNN
    cnn_lrs: tuple[float, ...] = (3e-3, 1e-2)  # learning rates each full CNN is tuned over
    head_lrs: tuple[float, ...] = (3e-3, 1e-2, 3e-2)  # learning rates each head is tuned over
    head_epochs: int = 30  # most epochs of a head; early stopping on validation accuracy picks fewer
    few_labels: int = 10  # labelled images per class in the few-label task
    few_steps: tuple[int, ...] = (25, 50, 100)  # full-batch step counts the scratch CNN is scored at (few labels)
    draws: int = 3  # draws of the few labelled images

    def __post_init__(self):
        if not self.cnn_lrs or not self.head_lrs or not self.few_steps:
            raise ValueError("cnn_lrs, head_lrs and few_steps must not be empty")
        for name in ("cnn_epochs", "head_epochs", "few_labels", "draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


def _flip_half(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-2), x), flip.long()


def _train_cnn(model, x, y, epochs, lr, seed):
    opt = Adam(model.parameters(), lr=lr)
    fit(
        model,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=opt,
        epochs=epochs,
        batch_size=64,
        seed=seed,
        scheduler=CosineAnnealingLR(opt, T_max=epochs),
    )
    return model.eval()


def _best_head(make, ztr, ytr, zva, yva, lrs, epochs, seed, batch_size=64):
    """A head trained on fixed features at each learning rate, early-stopped on validation accuracy;
    the one with the best validation accuracy."""
    best = None
    for lr in lrs:
        torch.manual_seed(seed)
        head = make()
        stop = EarlyStopping(patience=8, monitor="val_acc", restore_best=True)
        fit(
            head,
            (ztr, ytr),
            loss_fn=cross_entropy,
            optimizer=Adam(head.parameters(), lr=lr),
            epochs=epochs,
            batch_size=batch_size,
            val=(zva, yva),
            seed=seed,
            callbacks=[stop],
        )
        score = accuracy(head, zva, yva)
        if best is None or score > best[0]:
            best = (score, head, lr)
    return best[1], best[2]


@experiment("backbone-network", config=Config)
def backbone_network(run: Run, cfg: Config) -> None:
    dev = run.device
    d = digits(images=True)
    xtr, ytr, xva, yva = train_val_split(d.x_train, d.y_train, 0.2, seed=run.seed)
    xtr, ytr, xva, yva = xtr.to(dev), ytr.to(dev), xva.to(dev), yva.to(dev)
    xte, yte = d.x_test.to(dev), d.y_test.to(dev)
    torch.manual_seed(run.seed)
    model = _train_cnn(digits_cnn().to(dev), xtr, ytr, cfg.cnn_epochs, 3e-3, run.seed)
    backbone = Backbone.from_model(model).freeze()
    before = copy.deepcopy(backbone.state_dict())
    n = backbone.out_features
    run.progress(0.15, "backbone trained and frozen")

    flips = [_flip_half(x, run.generator(k)) for k, x in enumerate((xtr, xva, xte), start=1)]
    tasks = {  # name: (classes, (x, y) for train, val, test)
        "digit": (10, [(xtr, ytr), (xva, yva), (xte, yte)]),
        "parity": (2, [(xtr, ytr % 2), (xva, yva % 2), (xte, yte % 2)]),
        "upside-down": (2, flips),
    }

    def feats(x):
        with torch.no_grad():
            return backbone(x)  # (N, 128), computed once: the backbone is frozen

    shared, separate, chosen = {}, {}, {}
    heads = {}
    for i, (name, (c, splits)) in enumerate(tasks.items()):
        (a, ya), (b, yb), (t, yt) = splits
        head, lr = _best_head(
            lambda c=c: Linear(n, c).to(dev), feats(a), ya, feats(b), yb, cfg.head_lrs, cfg.head_epochs, run.seed
        )
        heads[name] = head
        best = None
        for lr_cnn in cfg.cnn_lrs:
            torch.manual_seed(run.seed + 1 + i)
            net = _train_cnn(digits_cnn(n_classes=c).to(dev), a, ya, cfg.cnn_epochs, lr_cnn, run.seed + 1 + i)
            score = accuracy(net, b, yb)
            if best is None or score > best[0]:
                best = (score, net, lr_cnn)
        _, net, lr_cnn = best
        separate[name] = accuracy(net, t, yt)
        chosen[name] = {"head_lr": lr, "cnn_lr": lr_cnn}
        separate_params = separate.get("_params", 0) + count_parameters(net)
        separate["_params"] = separate_params
        run.progress(0.15 + 0.2 * (i + 1), f"{name}: head and separate network trained")

    multi = MultiHead(backbone, heads).to(dev)
    for name, (_, splits) in tasks.items():
        shared[name] = accuracy(multi.head(name), *splits[2])  # end to end: heads[name](backbone(x))
    sep_params = separate.pop("_params")
    shared_params = count_parameters(multi)
    gaps = {k: separate[k] - shared[k] for k in tasks}
    for k in tasks:
        run.metric(f"test_acc_{k}_shared_backbone_head", shared[k], key=k == "upside-down")
        run.metric(f"test_acc_{k}_separate_network", separate[k])
    run.metric("separate_minus_shared_per_task", gaps)
    run.metric("chosen_settings", chosen)
    run.metric("params_shared_backbone_and_heads", shared_params)
    run.metric("params_separate_networks", sep_params)
    run.metric("backbone_params", count_parameters(backbone))
    run.check_le(
        "linear heads on one frozen backbone come within 0.03 of separate full networks on the tasks its features "
        "were trained for (digit, parity; worse gap, separate - shared)",
        max(gaps["digit"], gaps["parity"]),
        0.03,
    )
    # a task the features were not trained for (upside-down) lost 0.02-0.06 at seeds 0-3: recorded, not claimed
    run.metric("upside_down_gap_minus_trained_for_gap", gaps["upside-down"] - max(gaps["digit"], gaps["parity"]))
    run.check_le(
        "the backbone with its three heads has less than half the parameters of the three networks (shared / separate)",
        shared_params / sep_params,
        0.5,
        True,
    )

    # few labels: frozen backbone + new head against the same CNN trained from scratch on those labels
    few = {}
    for name in ("parity", "upside-down"):
        (fx, fy), (vx, vy), (tx, ty) = tasks[name][1]
        zva, zte = feats(vx), feats(tx)
        res = {"head": [], "scratch": []}
        for r in range(cfg.draws):
            g = run.rng(20 + r)
            pools = [np.flatnonzero(fy.cpu().numpy() == c) for c in (0, 1)]
            idx = torch.as_tensor(
                np.concatenate([g.choice(p, cfg.few_labels, replace=False) for p in pools]), device=dev
            )
            xs, ys = fx[idx], fy[idx]
            seed = run.seed * 100 + r
            head, _ = _best_head(
                lambda: Linear(n, 2).to(dev), feats(xs), ys, zva, vy, cfg.head_lrs, max(cfg.few_steps), seed, None
            )
            res["head"].append(accuracy(head, zte, ty))
            best = None
            for lr in cfg.cnn_lrs:  # one run per learning rate, scored on validation after each step count
                torch.manual_seed(seed)
                net = digits_cnn(n_classes=2).to(dev)

                def score(state, vx=vx, vy=vy, tx=tx, ty=ty):
                    if len(state.history.train_loss) not in cfg.few_steps:
                        return None
                    state.model.eval()
                    out = (accuracy(state.model, vx, vy), accuracy(state.model, tx, ty))
                    state.model.train()
                    return out

                rec = Every(1, score, on="epoch")
                fit(
                    net,
                    (xs, ys),
                    loss_fn=cross_entropy,
                    optimizer=Adam(net.parameters(), lr=lr),
                    epochs=max(cfg.few_steps),
                    batch_size=None,
                    seed=seed,
                    callbacks=[rec],
                )
                for steps in cfg.few_steps:
                    va, te = rec.values[steps - 1]
                    if best is None or va > best[0]:
                        best = (va, te)
            res["scratch"].append(best[1])
        few[name] = {k: np.array(v) for k, v in res.items()}
        run.progress(0.9 if name == "upside-down" else 0.8, f"few-label {name}")
    for name, res in few.items():
        run.metric(f"few_label_{name}_test_acc_backbone_head", float(res["head"].mean()))
        run.metric(f"few_label_{name}_test_acc_scratch", float(res["scratch"].mean()))
        run.metric(f"few_label_{name}_gain_per_draw", (res["head"] - res["scratch"]).tolist())
    # the transfer claim (pretrained backbone + head beats scratch on few labels) did not hold here:
    # recorded as metrics, not as a check (see the module docstring)

    after = backbone.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    run.metric("backbone_tensors_changed", len(changed))
    run.check(
        "demonstration (holds by construction): the frozen backbone's weights and batch-norm statistics are unchanged",
        not changed,
        observed=f"{len(changed)} of {len(before)} tensors changed",
        expected="0 changed",
    )
    run.check(
        "demonstration (an identity): the multi-head model counts the shared backbone once",
        shared_params == count_parameters(backbone) + sum(count_parameters(h) for h in multi.heads.values()),
        observed=shared_params,
        expected="backbone + heads",
    )

    with run.figure(
        "heads",
        alt="test accuracy per task of a linear head on one frozen shared backbone and of a separate full "
        "network; right: upside-down detection from few labels, backbone head against training from scratch",
        figsize=(9, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        names = list(tasks)
        idx = np.arange(len(names))
        ax1.bar(idx - 0.2, [shared[k] for k in names], 0.4, label=f"head on shared backbone ({shared_params} params)")
        ax1.bar(idx + 0.2, [separate[k] for k in names], 0.4, label=f"separate networks ({sep_params} params)")
        ax1.set_xticks(idx, names)
        ax1.set(ylim=(0.5, 1.0), ylabel="test accuracy", title="one backbone, three heads")
        ax1.legend(fontsize=7, loc="lower left")
        for j, name in enumerate(few):
            fh, fs = few[name]["head"], few[name]["scratch"]
            ax2.bar([3 * j, 3 * j + 1], [fh.mean(), fs.mean()], color=["tab:blue", "gray"])
            ax2.scatter([3 * j] * cfg.draws + [3 * j + 1] * cfg.draws, [*fh, *fs], c="k", s=10, zorder=3)
        ax2.set_xticks(
            [0, 1, 3, 4],
            ["parity:\nbackbone", "parity:\nscratch", "upside-down:\nbackbone", "upside-down:\nscratch"],
            fontsize=7,
        )
        ax2.set(ylim=(0.4, 1.0), title=f"{cfg.few_labels} labels per class (dots: draws)")
