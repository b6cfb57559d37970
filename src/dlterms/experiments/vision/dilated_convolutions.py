"""Dilated convolutions: a receptive field of 31 from four 3-wide layers, and what it buys.

Measured: (1) the receptive field of four 3-wide layers, read off as the support of the input
gradient of one output position (union over 16 random inputs), is 9 with dilations 1,1,1,1 and 31
with 1,2,4,8, as 1 + sum d (k - 1) predicts, with identical parameter counts; (2) on a per-position
task that needs context 12 steps away on both sides, y_t = [x_{t-12} > x_{t+12}] for Gaussian noise
x of length 64, the plain stack cannot see the two inputs and stays near chance while the dilated
stack of equal parameters learns it.
"""

from __future__ import annotations

import torch

from dlterms.losses import cross_entropy
from dlterms.models.cnn import DilatedStack, count_parameters
from dlterms.nn.conv import receptive_field
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import fit, predict

LENGTH, GAP = 64, 12  # sequence length; the task compares x[t - GAP] with x[t + GAP]
N_TRAIN, N_TEST, EPOCHS = 1000, 500, 8
STACKS = {"plain (1,1,1,1)": (1, 1, 1, 1), "dilated (1,2,4,8)": (1, 2, 4, 8)}


def _task(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 1, LENGTH, generator=gen)
    t = torch.arange(GAP, LENGTH - GAP)  # positions whose two inputs both exist
    y = (x[:, 0, t - GAP] > x[:, 0, t + GAP]).long()  # (n, LENGTH - 2 GAP)
    return x, y, t


def _gradient_support(model: torch.nn.Module, gen: torch.Generator, device) -> int:
    x = torch.randn(16, 1, LENGTH, generator=gen).to(device).requires_grad_(True)
    model(x)[:, :, LENGTH // 2].sum().backward()  # d(outputs at the centre) / d(input)
    return int((x.grad.abs().sum(dim=(0, 1)) > 0).sum())


@experiment("dilated-convolutions")
def dilated_convolutions(run: Run) -> None:
    dev = run.device
    x_tr, y_tr, t = _task(N_TRAIN, run.generator(1))
    x_te, y_te, _ = _task(N_TEST, run.generator(2))
    x_tr, y_tr, x_te, y_te = x_tr.to(dev), y_tr.to(dev), x_te.to(dev), y_te.to(dev)

    def loss_fn(out, y):  # logits only at the positions that have a label
        return cross_entropy(out[:, :, GAP : LENGTH - GAP], y)

    res = {}
    for i, (name, dil) in enumerate(STACKS.items()):
        torch.manual_seed(run.seed)
        m = DilatedStack(1, 2, channels=16, kernel_size=3, dilations=dil).to(dev)
        support = _gradient_support(m, run.generator(3), dev)
        opt = Adam(m.parameters(), lr=3e-3)
        fit(m, (x_tr, y_tr), loss_fn=loss_fn, optimizer=opt, epochs=EPOCHS, batch_size=100, seed=run.seed)
        pred = predict(m, x_te)[:, :, GAP : LENGTH - GAP].argmax(1)
        acc = (pred == y_te).float().mean().item()
        res[name] = {
            "rf": receptive_field([3] * 4, dil),
            "support": support,
            "params": count_parameters(m),
            "acc": acc,
            "model": m,
        }
        run.progress((i + 1) / len(STACKS), f"{name} trained")

    plain, dilated = (res[n] for n in STACKS)
    for name, r in res.items():
        short = name.split()[0]
        run.metric(f"receptive_field_measured_{short}", r["support"])
        run.metric(f"receptive_field_formula_{short}", r["rf"])
        run.metric(f"params_{short}", r["params"])
        run.metric(f"test_acc_{short}", round(r["acc"], 4), key=short == "dilated")

    run.check(
        "dilations 1,2,4,8 give a receptive field of 31 (input-gradient support)",
        dilated["support"] == 31,
        observed=dilated["support"],
        expected="31",
    )
    run.check("the plain stack's receptive field is 9", plain["support"] == 9, observed=plain["support"], expected="9")
    run.check(
        "same number of parameters",
        dilated["params"] == plain["params"],
        observed=f"{dilated['params']} vs {plain['params']}",
        expected="equal",
    )
    run.check(
        f"the plain stack cannot see x[t+-{GAP}]: it stays near chance",
        plain["acc"] <= 0.6,
        observed=round(plain["acc"], 4),
        expected="<= 0.6 (chance 0.5)",
    )
    run.check(
        "the dilated stack of equal parameters learns the long-range task",
        dilated["acc"] >= 0.9,
        observed=round(dilated["acc"], 4),
        expected=">= 0.9",
    )

    with run.figure(
        "receptive-fields",
        alt="input-gradient magnitude of the centre output for the plain and "
        "dilated stacks, and test accuracy on the long-range task",
        figsize=(9, 3.2),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
        for name, r in res.items():
            xg = torch.randn(16, 1, LENGTH, generator=run.generator(3)).to(dev).requires_grad_(True)
            r["model"](xg)[:, :, LENGTH // 2].sum().backward()
            ax1.plot(xg.grad.abs().sum(dim=(0, 1)).cpu(), label=f"{name}: {r['support']} inputs")
        for s in (-GAP, GAP):
            ax1.axvline(LENGTH // 2 + s, ls=":", c="grey")
        ax1.set(xlabel="input position", ylabel="|d out[32] / d x|", title="receptive field of position 32")
        ax1.legend(fontsize=8)
        ax2.bar([n.split()[0] for n in res], [r["acc"] for r in res.values()])
        ax2.axhline(0.5, ls=":", c="grey")
        ax2.set(ylim=(0, 1), ylabel="test accuracy", title=f"y = [x(t-{GAP}) > x(t+{GAP})]")
