"""Backbone network: one trained, frozen feature extractor serves several task heads.

The digits CNN is trained on digit classes; its conv blocks become a `Backbone` (128 features),
frozen. Three new heads are then trained on top of the same frozen features, each on its own label:
the digit (a fresh linear head), the digit's parity (linear), and whether the image was flipped
upside down (a small MLP head, on a copy of the data where half the images are flipped). Checks:
each head reaches good accuracy, and the backbone's weights and batch-norm statistics are bit-for-bit
unchanged after all three heads have trained. The flip label is harder for features learned for
digit identity (and 0, 1 and 8 look alike flipped), so its bar is "well above chance".
"""

from __future__ import annotations

import copy

import torch

from dlterms.experiments.vision._common import trained_digits_cnn
from dlterms.losses import cross_entropy
from dlterms.models.backbone import Backbone, MultiHead, trainable_parameters
from dlterms.models.cnn import count_parameters
from dlterms.nn import MLP, Linear
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit

HEAD_EPOCHS = 10
THRESHOLDS = {"digit": 0.97, "parity": 0.95, "upside-down": 0.75}


def _flip_half(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-2), x), flip.long()


@experiment("backbone-network")
def backbone_network(run: Run) -> None:
    model, d = trained_digits_cnn(run)
    backbone = Backbone.from_model(model).freeze()
    before = copy.deepcopy(backbone.state_dict())
    n = backbone.out_features
    torch.manual_seed(run.seed)
    heads = {"digit": Linear(n, 10), "parity": Linear(n, 2), "upside-down": MLP([n, 64, 2])}
    multi = MultiHead(backbone, heads).to(run.device)
    xf_tr, yf_tr = _flip_half(d.x_train, run.generator(1))
    xf_te, yf_te = _flip_half(d.x_test, run.generator(2))
    tasks = {
        "digit": (d.x_train, d.y_train, d.x_test, d.y_test),
        "parity": (d.x_train, d.y_train % 2, d.x_test, d.y_test % 2),
        "upside-down": (xf_tr, yf_tr, xf_te, yf_te),
    }
    run.progress(0.4, "backbone trained and frozen")

    acc = {}
    for i, (name, (xtr, ytr, xte, yte)) in enumerate(tasks.items()):
        # the backbone is frozen, so its features are computed once and the head trains on them
        with torch.no_grad():
            backbone.eval()
            z_tr = backbone(xtr)  # (N, 128)
        head = multi.heads[name]
        params = trainable_parameters(head)
        opt = Adam(params, lr=1e-2)
        fit(head, (z_tr, ytr), loss_fn=cross_entropy, optimizer=opt, epochs=HEAD_EPOCHS, batch_size=64, seed=run.seed)
        acc[name] = accuracy(multi.head(name), xte, yte)  # end to end: heads[name](backbone(x))
        run.metric(f"test_acc_{name}_head", round(acc[name], 4), key=name == "digit")
        run.metric(f"params_{name}_head", sum(p.numel() for p in params))
        run.progress(0.4 + 0.2 * (i + 1), f"{name} head trained")

    after = backbone.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    run.metric("backbone_params", count_parameters(backbone))
    run.metric("backbone_tensors_changed", len(changed))
    run.metric("feature_dim", n)
    for name, thr in THRESHOLDS.items():
        run.check(
            f"the '{name}' head on the frozen backbone reaches >= {thr:.0%}",
            acc[name] >= thr,
            observed=round(acc[name], 4),
            expected=f">= {thr}",
        )
    run.check(
        "the backbone stays frozen: weights and batch-norm statistics unchanged",
        not changed,
        observed=f"{len(changed)} of {len(before)} tensors changed",
        expected="0 changed",
    )
    run.check(
        "the three heads share one backbone",
        count_parameters(multi) == count_parameters(backbone) + sum(count_parameters(h) for h in multi.heads.values()),
        observed=count_parameters(multi),
        expected="backbone + heads, backbone counted once",
    )

    with run.figure("heads", alt="test accuracy of three heads trained on one frozen backbone") as fig:
        ax = fig.subplots()
        names = list(acc)
        ax.bar(names, [acc[k] for k in names])
        ax.scatter(names, [THRESHOLDS[k] for k in names], marker="_", s=600, c="k", label="threshold")
        ax.axhline(0.5, ls=":", c="grey")
        ax.set(
            ylim=(0, 1),
            ylabel="test accuracy",
            title=f"one frozen backbone ({count_parameters(backbone)} params, {n} features), three heads",
        )
        ax.legend()
