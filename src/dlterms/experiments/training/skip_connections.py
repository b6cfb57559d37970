"""Skip connections: at depth 32, a residual MLP trains where the same plain MLP does not move.

Two networks with identical layers and identical initial weights (PyTorch's default uniform
+-1/sqrt(fan_in)): `dlterms.nn.ResidualMLP` with 30 pre-activation blocks y = x + W relu(x) between an
input and an output layer (32 weight layers, width 64), and the plain counterpart y = W relu(x)
(`residual=False`). Both are trained on scikit-learn's digits with Adam (lr 1e-3, batch 64) for the
same 132 steps (6 epochs). Checks (TERMS.md): the residual net lowers its full training loss at least 5x more
than the plain net, and its first-layer gradient norm at initialisation is larger. In the plain stack
each layer scales the signal by about 1/sqrt(6) (the default init has weight variance
1/(3 fan_in), and ReLU halves the second moment), so after 30 layers the first layer's gradient is
~1e-12 and even Adam's normalised steps cannot use it (its eps dominates); the identity path of the
residual blocks carries the gradient to every layer.
"""

from __future__ import annotations

import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.nn import ResidualMLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import GradientNormRecorder, evaluate, fit

N_BLOCKS, WIDTH, EPOCHS = 30, 64, 6


@experiment("skip-connections")
def skip_connections(run: Run) -> None:
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train
    out = {}
    for residual in (True, False):
        torch.manual_seed(run.seed)
        model = ResidualMLP(64, WIDTH, 10, n_blocks=N_BLOCKS, residual=residual).to(run.device)
        depth = len(model.linear_layers)
        cross_entropy(model(x), y).backward()
        g_first = float(model.stem.weight.grad.norm())
        g_last = float(model.head[-1].weight.grad.norm())
        model.zero_grad()
        loss0, _ = evaluate(model, x, y, cross_entropy)
        rec = GradientNormRecorder(every=5)
        h = fit(
            model,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=Adam(model.parameters(), lr=1e-3),
            epochs=EPOCHS,
            batch_size=64,
            seed=run.seed,
            callbacks=[rec],
        )
        loss1, _ = evaluate(model, x, y, cross_entropy)
        _, test_acc = evaluate(model, split.x_test, split.y_test, cross_entropy)
        out[residual] = dict(
            g_first=g_first,
            g_last=g_last,
            loss0=loss0,
            loss1=loss1,
            drop=loss0 - loss1,
            h=h,
            test_acc=test_acc,
            stem=h.extra["grad_norm/stem"],
        )
        name = "residual" if residual else "plain"
        run.metric(f"{name}_train_loss_before_after", [round(loss0, 4), round(loss1, 4)])
        run.metric(f"{name}_first_layer_grad_norm_at_init", float(f"{g_first:.3g}"))
        run.metric(f"{name}_last_layer_grad_norm_at_init", float(f"{g_last:.3g}"))
        run.metric(f"{name}_test_acc", round(test_acc, 4))
        run.progress(0.5 if residual else 1.0, f"{name} trained")
    r, p = out[True], out[False]
    ratio = r["drop"] / max(p["drop"], 1e-12) if p["drop"] > 0 else float("inf")
    run.metric("weight_layers", depth)
    run.metric("steps", r["h"].steps)
    run.metric(
        "loss_drop_residual_over_plain",
        float(f"{ratio:.3g}") if ratio != float("inf") else "inf (plain rose)",
        key=True,
    )
    run.check(
        f"at depth {depth}, the residual net lowers its training loss >= 5x more than the plain net "
        f"in the same {r['h'].steps} steps",
        r["drop"] > 0 and ratio >= 5,
        observed=f"{r['drop']:.4f} vs {p['drop']:.2e}",
        expected=">= 5x",
    )
    run.check(
        "its first-layer gradient norm is larger",
        r["g_first"] > p["g_first"],
        observed=f"{r['g_first']:.3g} vs {p['g_first']:.3g}",
        expected="residual > plain",
    )

    with run.figure(
        "training",
        alt="left: training loss per step, the residual net falling from 1.8 toward 0.1 "
        "while the plain net stays flat at 2.30; right: first-layer gradient norm during training, "
        "about 1e1 for the residual net and 1e-12 for the plain one",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        for i, (res, o) in enumerate(out.items()):
            label = "residual" if res else "plain"
            ax1.plot(range(1, len(o["h"].step_loss) + 1), o["h"].step_loss, color=f"C{i}", label=label)
            ax2.semilogy([5 * k for k in range(len(o["stem"]))], o["stem"], color=f"C{i}", label=label)
        ax1.set_xlabel("step")
        ax1.set_ylabel("mini-batch training loss")
        ax1.legend()
        ax1.grid(alpha=0.3)
        ax2.set_xlabel("step")
        ax2.set_ylabel("first-layer gradient norm")
        ax2.legend()
        ax2.grid(alpha=0.3)
        fig.suptitle(f"{depth} weight layers, same init, Adam")
