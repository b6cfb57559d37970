"""Batch normalization: a 10-layer ReLU MLP trains at a learning rate where the same net without batch
norm diverges or stalls.

scikit-learn's digits (1347 train / 450 test), ten Linear layers (width 256, He-normal init, zero
biases), SGD with momentum 0.9, batch 64 with the last partial batch dropped (a batch of 3 would give
batch norm meaningless statistics). At lr 0.1 the plain net's loss blows up (non-finite, on most seeds)
or it stalls far below 0.9; with a `BatchNorm1d` after every hidden Linear it reaches 0.9 test accuracy
within 2 epochs (TERMS.md: "diverges, or reaches the target in <= half the epochs"). At lr 0.01 both
train, so the figure shows what the larger step costs the plain net. (He init matters: with PyTorch's
default init the plain net never leaves chance at either rate, and the comparison says nothing.)
"""

import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.nn import BatchNorm1d, Linear, ReLU
from dlterms.nn.init import kaiming_normal_, zeros_
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import fit

DEPTH, WIDTH = 10, 256
EPOCHS = 5
TARGET = 0.9  # test accuracy
HIGH_LR, LOW_LR = 0.1, 0.01


def _deep_mlp(batch_norm: bool, seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    d = 64
    for _ in range(DEPTH - 1):
        lin = Linear(d, WIDTH)
        kaiming_normal_(lin.weight, nonlinearity="relu")
        zeros_(lin.bias)
        layers += [lin, BatchNorm1d(WIDTH), ReLU()] if batch_norm else [lin, ReLU()]
        d = WIDTH
    layers.append(Linear(d, 10))
    return torch.nn.Sequential(*layers)


def _epochs_to_target(acc: list[float]) -> int | None:
    return next((i + 1 for i, a in enumerate(acc) if a >= TARGET), None)


@experiment("batch-normalization")
def batch_normalization(run: Run) -> None:
    split = digits(seed=run.seed).to(run.device)
    results = {}
    for i, (lr, bn) in enumerate([(HIGH_LR, False), (HIGH_LR, True), (LOW_LR, False), (LOW_LR, True)]):
        model = _deep_mlp(bn, run.seed).to(run.device)
        h = fit(
            model,
            (split.x_train, split.y_train),
            loss_fn=cross_entropy,
            optimizer=SGD(model.parameters(), lr=lr, momentum=0.9),
            epochs=EPOCHS,
            batch_size=64,
            drop_last=True,
            val=(split.x_test, split.y_test),
            seed=run.seed,
        )
        results[(lr, bn)] = h
        run.progress((i + 1) / 4, f"lr {lr} {'with' if bn else 'without'} BN")
        tag = f"{'bn' if bn else 'plain'}_lr{lr}"
        run.metric(f"test_acc_{tag}", [round(a, 3) for a in h.val_acc])
        run.metric(f"epochs_to_{TARGET}_{tag}", _epochs_to_target(h.val_acc))
        run.metric(f"diverged_{tag}", h.diverged)
    plain, bn = results[(HIGH_LR, False)], results[(HIGH_LR, True)]
    e_bn, e_plain = _epochs_to_target(bn.val_acc), _epochs_to_target(plain.val_acc)
    run.metric("diverged_step_plain", plain.nonfinite_step)
    run.metric(f"final_test_acc_bn_lr{HIGH_LR}", round(bn.val_acc[-1], 4), key=True)
    run.check(
        f"with batch norm the deep net reaches {TARGET} test accuracy within 2 epochs at lr {HIGH_LR}",
        e_bn is not None and e_bn <= 2,
        observed=e_bn,
        expected="<= 2 epochs",
    )
    fails = plain.diverged or e_plain is None or (e_bn is not None and 2 * e_bn <= e_plain)
    run.check(
        f"without batch norm the same net diverges, or needs >= 2x the epochs, at lr {HIGH_LR}",
        fails,
        observed=("non-finite loss at step " + str(plain.nonfinite_step))
        if plain.diverged
        else f"epochs to {TARGET}: {e_plain or f'not within {EPOCHS}'}; best test acc {max(plain.val_acc):.3f}",
        expected=f"diverges, or >= {2 * e_bn if e_bn else '?'} epochs",
    )
    run.check(
        f"the comparison is not empty: at lr {LOW_LR} the plain net trains too",
        _epochs_to_target(results[(LOW_LR, False)].val_acc) is not None,
        observed=round(max(results[(LOW_LR, False)].val_acc), 4),
        expected=f">= {TARGET} within {EPOCHS} epochs",
    )

    with run.figure(
        "curves",
        alt="test accuracy per epoch of a 10-layer MLP with and without batch norm at two "
        "learning rates; at 0.1 the plain net diverges or stalls while the batch-norm net passes 0.9 "
        "in one or two epochs",
    ) as fig:
        ax = fig.subplots()
        for (lr, use_bn), h in results.items():
            style = "-" if lr == HIGH_LR else ":"
            label = f"{'BN' if use_bn else 'plain'}, lr {lr}" + (" (diverged)" if h.diverged else "")
            ax.plot(
                range(1, len(h.val_acc) + 1), h.val_acc, style, color="C1" if use_bn else "C0", marker="o", label=label
            )
        ax.axhline(TARGET, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title("10-layer MLP, He init, SGD momentum 0.9")
